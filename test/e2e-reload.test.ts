import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { agent, eventually, startWrit, tempDir } from './helpers/writ.ts';

/** Policies reload on change; a broken file is refused and the last good set keeps serving. */
const waitFor = (check: () => Promise<boolean>) => eventually(check, 'the policy change to be picked up');

test('policy changes apply while the server runs; a broken file never replaces the last good set', async (t) => {
  const dir = await tempDir('writ-policies-');
  await fs.writeFile(path.join(dir, 'main.cedar'), '@id("email") permit (principal, action in Action::"email.*", resource);\n');
  const w = await startWrit({ policies: dir });
  try {
    const a = await agent(w);
    const ask = async () => (await a.call('POST', '/api/v1/permissions', { action: 'db.read', resource: 'table:users' })).body;
    t.is((await ask()).status, 'denied');
    const firstHash = (await w.admin('GET', '/api/v1/policies')).body.hash;

    await fs.writeFile(path.join(dir, 'db.cedar'), '@id("db") permit (principal, action == Action::"db.read", resource);\n');
    t.true(await waitFor(async () => (await ask()).status === 'approved'));
    const decided = await ask();
    t.deepEqual(decided.policy.determining, ['db']);
    t.not(decided.policy.hash, firstHash);

    await fs.writeFile(path.join(dir, 'db.cedar'), 'permit (principal, action == Action::"db.read", resource)\nwhen { context.x = };\n');
    t.true(await waitFor(async () => (await w.admin('GET', '/api/v1/policies')).body.last_error !== undefined));
    const status = (await w.admin('GET', '/api/v1/policies')).body;
    t.regex(status.last_error.problems[0], /^db\.cedar:2:\d+: /);
    t.is((await ask()).status, 'approved', 'the last good set keeps serving');

    await fs.rm(path.join(dir, 'db.cedar'));
    t.true(await waitFor(async () => (await ask()).status === 'denied'));

    const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
    const changes = records.filter((r: { type: string }) => r.type === 'policy.activated');
    t.true(changes.length >= 3);
    t.is(changes.at(-1).data.hash_before, decided.policy.hash);
  } finally {
    await w.close();
  }
});

test('requests flowing during reloads each see one whole set', async (t) => {
  const dir = await tempDir('writ-policies-');
  const v = (n: number) => `@id("v${n}-a") permit (principal, action == Action::"db.read", resource);\n@id("v${n}-b") permit (principal, action == Action::"db.read", resource);\n`;
  await fs.writeFile(path.join(dir, 'main.cedar'), v(0));
  const w = await startWrit({ policies: dir });
  try {
    const a = await agent(w);
    let stop = false;
    const seen: string[][] = [];
    const flow = (async () => {
      while (!stop) seen.push((await a.call('POST', '/api/v1/permissions', { action: 'db.read', resource: 'table:t' })).body.policy.determining.sort());
    })();
    for (let n = 1; n <= 5; n++) {
      const before = (await w.admin('GET', '/api/v1/policies')).body.hash;
      await fs.writeFile(path.join(dir, 'main.cedar'), v(n));
      await waitFor(async () => (await w.admin('GET', '/api/v1/policies')).body.hash !== before);
    }
    stop = true;
    await flow;
    t.true(seen.length > 10);
    for (const ids of seen) {
      t.is(ids.length, 2);
      t.is(ids[0]!.split('-')[0], ids[1]!.split('-')[0], `mixed set: ${ids.join(', ')}`);
    }
  } finally {
    await w.close();
  }
});

test('the server refuses to start on a broken policy set and says where', async (t) => {
  const dir = await tempDir('writ-policies-');
  await fs.writeFile(path.join(dir, 'x.cedar'), 'permit (principal, action, resource)');
  const error = await t.throwsAsync(startWrit({ policies: dir }));
  t.regex(error!.message, /x\.cedar:1:\d+/);
});

test('a set changed while running and changed back before the next start is recorded both ways', async (t) => {
  const dir = await tempDir('writ-policies-');
  const data = await tempDir();
  const A = '@id("a") permit (principal, action == Action::"db.read", resource);\n';
  await fs.writeFile(path.join(dir, 'main.cedar'), A);
  let w = await startWrit({ policies: dir, data });
  const hashA = (await w.admin('GET', '/api/v1/policies')).body.hash;
  await fs.writeFile(path.join(dir, 'main.cedar'), '@id("b") permit (principal, action == Action::"db.write", resource);\n');
  t.true(await waitFor(async () => (await w.admin('GET', '/api/v1/policies')).body.hash !== hashA));
  await w.close();
  await fs.writeFile(path.join(dir, 'main.cedar'), A);
  w = await startWrit({ policies: dir, data });
  try {
    const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
    const last = records.filter((r: { type: string }) => r.type === 'policy.activated').at(-1);
    t.is(last.data.hash_after, hashA);
  } finally {
    await w.close();
  }
});
