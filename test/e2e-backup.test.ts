import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { ADMIN, caller, spawnWrit, startWrit, tempDir, writCli } from './helpers/writ.ts';

/** `writ backup` copies a live instance consistently; `writ restore` is the way back from a damaged disk. */
const email = { action: 'email.send', resource: 'email:backup@acme.com' };

test('an online backup taken under load restores into a new directory serving the same log, keys and records', async (t) => {
  const data = await tempDir();
  const server = await spawnWrit(data);
  const admin = caller(server.url, ADMIN);
  const key = (await admin('POST', '/api/v1/agents', { name: 'b', trust_tier: 'T2' })).body.api_key as string;
  const agent = caller(server.url, key);
  const before: Array<{ id: string; token: string; receipt: string }> = [];
  for (let i = 0; i < 20; i++) before.push((await agent('POST', '/api/v1/permissions', email)).body);
  const pending = (await agent('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:x', value: 5, currency: 'EUR' })).body;
  let load = true;
  const during = (async () => {
    while (load) await agent('POST', '/api/v1/permissions', email);
  })();
  const file = path.join(await tempDir(), 'writ.backup');
  const taken = await writCli('backup', '--out', file, '--url', server.url);
  load = false;
  await during;
  server.child.kill('SIGTERM');
  await server.exited;
  t.is(taken.code, 0, taken.out);
  t.regex(taken.out, /backup written to .* it holds the keys/);
  t.is((await fs.stat(file)).mode & 0o777, 0o600);

  const restoredDir = path.join(await tempDir(), 'restored');
  const restored = await writCli('restore', file, '--data', restoredDir);
  t.is(restored.code, 0, restored.out);
  t.regex(restored.out, /entries and \d+ checkpoints verified/);
  t.is((await writCli('log', 'verify', '--data', restoredDir)).code, 0);
  // The same restore for a script: what was restored, as JSON.
  const again = path.join(await tempDir(), 'restored-again');
  const json = JSON.parse((await writCli('restore', file, '--data', again, '--json')).out);
  t.like(json, { data: again });
  t.is(json.log_size, Number(/, (\d+) entries and/.exec(restored.out)![1]), 'the same log as the restore above');
  t.true(json.log_size > 0);

  const w = await startWrit({ data: restoredDir });
  try {
    const again = caller(w.url, key);
    const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
    for (const p of before) {
      t.is((await again('GET', `/api/v1/permissions/${p.id}`)).body.status, 'approved');
      t.truthy(await verifyReceipt(p.receipt, { jwks }));
    }
    t.is((await again('POST', '/api/v1/tokens/consume', { token: before[0]!.token, ...email })).status, 200);
    t.true((await w.admin('GET', '/api/v1/approvals')).body.approvals.some((a: { id: string }) => a.id === pending.approval.id));
  } finally {
    await w.close();
  }
});

test('a truncated or altered backup is refused, and nothing is left behind', async (t) => {
  const data = await tempDir();
  const w = await startWrit({ data });
  await w.close();
  const dir = await tempDir();
  const file = path.join(dir, 'good.backup');
  t.is((await writCli('backup', '--out', file, '--data', data)).code, 0);
  const lines = gunzipSync(await fs.readFile(file)).toString('utf8').trimEnd().split('\n');

  const truncated = path.join(dir, 'truncated.backup');
  await fs.writeFile(truncated, gzipSync(lines.slice(0, -3).join('\n')));
  const target = path.join(dir, 'never');
  const refused = await writCli('restore', truncated, '--data', target);
  t.is(refused.code, 1);
  t.regex(refused.out, /truncated/);

  const altered = path.join(dir, 'altered.backup');
  const edited = lines.map((l, i) => (i === lines.length - 2 ? l.replace(/"v":"/, '"v":"x') : l));
  await fs.writeFile(altered, gzipSync(edited.join('\n')));
  const refusedToo = await writCli('restore', altered, '--data', target);
  t.is(refusedToo.code, 1);
  t.regex(refusedToo.out, /damaged/);
  t.deepEqual((await fs.readdir(dir)).sort(), ['altered.backup', 'good.backup', 'truncated.backup']);
});

test('restore never writes into a directory that holds anything', async (t) => {
  const data = await tempDir();
  const w = await startWrit({ data });
  await w.close();
  const file = path.join(await tempDir(), 'b.backup');
  t.is((await writCli('backup', '--out', file, '--data', data)).code, 0);
  const refused = await writCli('restore', file, '--data', data);
  t.is(refused.code, 1);
  t.regex(refused.out, /not empty; restore into a new directory/);
  t.is((await writCli('log', 'verify', '--data', data)).code, 0, 'the directory is untouched');
});
