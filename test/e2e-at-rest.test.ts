import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { LevelStore } from '../src/store/level.ts';
import { ADMIN, agent, approver, eventually, startWrit, tempDir } from './helpers/writ.ts';

/** What a stolen copy of the data directory gives away: as little as possible. */
async function modes(dir: string): Promise<Array<{ file: string; mode: number }>> {
  const out = [{ file: '.', mode: (await fs.stat(dir)).mode & 0o777 }];
  for (const sub of ['db', 'keys']) {
    out.push({ file: sub, mode: (await fs.stat(path.join(dir, sub))).mode & 0o777 });
    for (const name of await fs.readdir(path.join(dir, sub))) out.push({ file: `${sub}/${name}`, mode: (await fs.stat(path.join(dir, sub, name))).mode & 0o777 });
  }
  return out;
}

test('the data directory is 0700 and every file in it 0600, enforced at every start', async (t) => {
  const data = await tempDir();
  let w = await startWrit({ data });
  await w.close();
  await fs.chmod(data, 0o755);
  for (const { file } of await modes(data)) if (file.includes('/')) await fs.chmod(path.join(data, file), 0o644);
  w = await startWrit({ data });
  try {
    await (await agent(w)).call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:a@acme.com' });
    for (const { file, mode } of await modes(data)) t.is(mode, file.includes('/') ? 0o600 : 0o700, file);
  } finally {
    await w.close();
  }
});

test('WRIT_ADMIN_TOKEN is kept as an HMAC under a key of the data directory, never as a plain hash', async (t) => {
  const data = await tempDir();
  let w = await startWrit({ data });
  await w.close();
  const store = await LevelStore.open(path.join(data, 'db'));
  const stored = JSON.parse((await store.get('key/env-admin'))!);
  const plain = crypto.createHash('sha256').update(ADMIN).digest('base64');
  t.is(stored.alg, 'hmac-sha256');
  t.not(stored.hash, plain, 'a stolen database alone cannot test guesses of the token');
  // A record an older Writ wrote (plain SHA-256) is re-keyed at the next start.
  await store.batch([{ type: 'put', key: 'key/env-admin', value: JSON.stringify({ hash: plain, role: 'admin', principal_id: 'admin', name: 'admin' }) }], { sync: true });
  await store.close();
  w = await startWrit({ data });
  try {
    t.is((await w.admin('GET', '/api/v1/status')).status, 200);
    t.is(JSON.parse((await w.server.writ.store.get('key/env-admin'))!).alg, 'hmac-sha256');
  } finally {
    await w.close();
  }
});

test('a webhook URL with credentials in it is refused; query values are stored sealed and shown redacted', async (t) => {
  const seen: string[] = [];
  const receiver = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    req.resume();
    res.end();
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => receiver.close(() => r())));
  const port = (receiver.address() as AddressInfo).port;
  const w = await startWrit();
  try {
    const secret = crypto.randomBytes(16).toString('hex');
    const withUser = await w.admin('POST', '/api/v1/webhooks', { url: `http://ops:hunter2@127.0.0.1:${port}/hook`, events: ['approval.requested'], secret });
    t.is(withUser.status, 422);
    t.is(withUser.body.error.detail.field, 'url');

    const created = await w.admin('POST', '/api/v1/webhooks', { url: `http://127.0.0.1:${port}/hook?token=sk_live_123&team=ops`, events: ['approval.requested'], secret });
    t.is(created.status, 201);
    t.is(created.body.url, `http://127.0.0.1:${port}/hook?token=…&team=…`);
    t.is((await w.admin('GET', '/api/v1/webhooks')).body.webhooks[0].url, created.body.url);
    const inPath = await w.admin('POST', '/api/v1/webhooks', { url: `http://127.0.0.1:${port}/services/T01/B02/sk_path_456`, events: ['approval.requested'], secret });
    t.is(inPath.body.url, `http://127.0.0.1:${port}/services/…`, 'a credential carried in the path (as chat services do) is not shown either');
    const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
    t.false(/sk_live_123|sk_path_456/.test(JSON.stringify(records)), 'the log never holds it');
    for await (const [, value] of w.server.writ.store.iterate({})) t.false(/sk_live_123|sk_path_456/.test(value), 'nor the database, in clear');

    const a = await agent(w, { trust_tier: 'T2' });
    await approver(w);
    await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:x', value: 5, currency: 'EUR' });
    await eventually(() => seen.length > 0, 'a delivery');
    await eventually(() => seen.length >= 2, 'both deliveries');
    t.deepEqual(seen.sort(), ['/hook?token=sk_live_123&team=ops', '/services/T01/B02/sk_path_456'], 'deliveries go to the full URLs');
  } finally {
    await w.close();
  }
});
