import test from 'ava';
import { ADMIN, caller, spawnWrit, tempDir, writCli } from './helpers/writ.ts';

test('SIGTERM answers the requests in flight, flushes the log and exits cleanly', async (t) => {
  const data = await tempDir();
  const server = await spawnWrit(data);
  const admin = caller(server.url, ADMIN);
  const key = (await admin('POST', '/api/v1/agents', { name: 'a', trust_tier: 'T2' })).body.api_key;
  const agent = caller(server.url, key);
  const pending = (await agent('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:x', value: 5 })).body;
  const longPoll = agent('GET', `/api/v1/permissions/${pending.id}?wait=30`);
  const burst = Array.from({ length: 20 }, () => agent('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:s@acme.com' }));
  // Once the first is answered the rest are on their way: the signal comes in the middle of the burst.
  await Promise.race(burst);
  const started = Date.now();
  server.child.kill('SIGTERM');
  const released = await longPoll;
  t.is(released.status, 200);
  t.is(released.body.status, 'pending');
  t.true(Date.now() - started < 5000, 'the long poll was released, not left to run out');
  const settled = await Promise.allSettled(burst);
  // Each request either got its whole answer or never reached the closing server; those that
  // were already in flight were finished, not dropped.
  const answered = settled.filter((r) => r.status === 'fulfilled');
  t.true(answered.length > 0);
  for (const res of answered) t.is(res.value.status, 201);
  t.is(await server.exited, 0);
  t.regex(server.output(), /SIGTERM: finishing in-flight requests/);
  const verified = await writCli('log', 'verify', '--data', data);
  t.is(verified.code, 0);
  t.regex(verified.out, /OK — \d+ entries, \d+ checkpoints verified/);
});

test('a second server on the same data directory is refused with a clear message', async (t) => {
  const data = await tempDir();
  const server = await spawnWrit(data);
  try {
    const second = await writCli('serve', '--port', '0', '--data', data);
    t.is(second.code, 1);
    t.regex(second.out, /in use by another Writ process/);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});
