import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ensureOpa } from './helpers/opa.ts';
import { ADMIN, agent, caller, eventually, spawnWrit, startWrit, tempDir } from './helpers/writ.ts';

/** Rego in the running server: decisions, hot reload, and what happens without a compiler. */
test.before(() => {
  ensureOpa();
});

const waitFor = (check: () => Promise<boolean>) => eventually(check, 'the policy change to be picked up');

const version = (n: number) =>
  `package writ\n\ndecision := {"allow": true, "tier": "standard", "reasons": [a, b]} if {\n\ta := "v${n}-a"\n\tb := "v${n}-b"\n}\n`;

test('Rego and Cedar decide together in the server, and Rego files reload while requests flow', async (t) => {
  const dir = await tempDir('writ-policies-');
  await fs.writeFile(path.join(dir, 'base.cedar'), '@id("cedar-db") permit (principal, action == Action::"db.read", resource);\n');
  await fs.writeFile(path.join(dir, 'rules.rego'), version(0));
  const w = await startWrit({ policies: dir });
  try {
    const a = await agent(w);
    const ask = async () => (await a.call('POST', '/api/v1/permissions', { action: 'db.read', resource: 'table:t' })).body;
    const first = await ask();
    t.is(first.status, 'approved');
    t.deepEqual(first.policy.determining, ['cedar-db', 'rego:rules.rego']);
    t.deepEqual(first.reasons, ['v0-a', 'v0-b']);

    let stop = false;
    const seen: string[][] = [];
    const flow = (async () => {
      while (!stop) seen.push((await ask()).reasons);
    })();
    for (let n = 1; n <= 4; n++) {
      await fs.writeFile(path.join(dir, 'rules.rego'), version(n));
      t.true(await waitFor(async () => (await ask()).reasons[0] === `v${n}-a`), `version ${n} became active`);
    }
    // Broken: refused with file:line:col, the last good set keeps serving.
    await fs.writeFile(path.join(dir, 'rules.rego'), 'package writ\n\ndecision := {"allow": true\n');
    t.true(await waitFor(async () => (await w.admin('GET', '/api/v1/policies')).body.last_error !== undefined));
    t.regex((await w.admin('GET', '/api/v1/policies')).body.last_error.problems[0], /^rules\.rego:\d+:\d+: rego_parse_error/);
    t.deepEqual((await ask()).reasons, ['v4-a', 'v4-b']);
    // Fixed again.
    await fs.writeFile(path.join(dir, 'rules.rego'), version(5));
    t.true(await waitFor(async () => (await ask()).reasons[0] === 'v5-a'));
    stop = true;
    await flow;
    t.true(seen.length > 10);
    for (const reasons of seen) t.is(reasons[0]!.split('-')[0], reasons[1]!.split('-')[0], `half-loaded set: ${reasons.join(', ')}`);

    const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
    const changes = records.filter((r: { type: string }) => r.type === 'policy.activated');
    t.true(changes.length >= 6, 'every successful change of the active set is logged');
    t.true(changes.at(-1).data.files.includes('rules.rego'));
  } finally {
    await w.close();
  }
});

test('a Rego rule that does not finish is cut off at the time budget and denies', async (t) => {
  const dir = await tempDir('writ-policies-');
  await fs.writeFile(
    path.join(dir, 'slow.rego'),
    // A hundred million comparisons that allocate nothing: it runs for over a second instead of running out of memory.
    'package writ\n\nr := numbers.range(1, 10000)\n\ndecision := {"allow": true} if {\n\tcount([1 | some i in r; some j in r; i == j]) > 0\n}\n',
  );
  const w = await startWrit({ policies: dir, config: { policyTimeoutMs: 100 } });
  try {
    const a = await agent(w);
    const res = await a.call('POST', '/api/v1/permissions', { action: 'db.read', resource: 'table:t' });
    t.is(res.status, 201);
    t.is(res.body.status, 'denied');
    t.regex(res.body.reasons[0], /policy_timeout: .*exceeded its 100 ms budget/);
    t.deepEqual(res.body.failure, { step: 'policy_evaluation', code: 'policy_timeout' });
    t.like(res.body.trace.find((s: { step: string }) => s.step === 'policy_evaluation'), { outcome: 'error', failure: 'policy_timeout' });
  } finally {
    await w.close();
  }
});

test('without an OPA compiler the server starts, says how to get one, and denies until the Rego loads', async (t) => {
  const data = await tempDir();
  const dir = await tempDir('writ-policies-');
  await fs.writeFile(path.join(dir, 'base.cedar'), 'permit (principal, action, resource);\n');
  await fs.writeFile(path.join(dir, 'rules.rego'), version(0));
  const server = await spawnWrit(data, { WRIT_OPA: '/nonexistent/opa', WRIT_POLICIES: dir });
  try {
    t.regex(server.output(), /not loaded: rules\.rego — no OPA compiler; run `npm run build:opa`/);
    const key = (await caller(server.url, ADMIN)('POST', '/api/v1/agents', { name: 'a' })).body.api_key;
    const res = await caller(server.url, key)('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:a@b.c' });
    t.is(res.body.status, 'denied');
    t.regex(res.body.reasons[0], /policies not loaded: rules\.rego/);
    t.deepEqual(res.body.failure, { step: 'policy_evaluation', code: 'policy_not_loaded' }, 'recorded as a failure, not as a policy deny');
    t.like(res.body.trace.at(-1), { step: 'policy_evaluation', outcome: 'error', failure: 'policy_not_loaded' });
    t.deepEqual((await caller(server.url, ADMIN)('GET', '/api/v1/policies')).body.not_loaded, ['rules.rego']);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});
