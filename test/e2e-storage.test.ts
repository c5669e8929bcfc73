import test from 'ava';
import path from 'node:path';
import { KEYS } from '../src/log/log.ts';
import { verifyConsistency } from '../src/log/merkle.ts';
import { LevelStore } from '../src/store/level.ts';
import { Faults } from './helpers/faults.ts';
import { agent, caller, eventually, startWrit, writCli, type TestWrit } from './helpers/writ.ts';

/**
 * Storage faults, through a fault-injecting wrapper around the real LevelDB driver: after any
 * failed write nothing is acknowledged until the database has been reopened and the log tail
 * re-verified; health and status say so meanwhile; nothing acknowledged is lost; the signed log
 * is only ever extended.
 */
const email = { action: 'email.send', resource: 'email:client@acme.com' };
const rootOf = (note: string) => Buffer.from(note.split('\n')[2]!, 'base64');
const sizeOf = (note: string) => Number(note.split('\n')[1]);

async function healthy(w: TestWrit) {
  return eventually(async () => (await w.call('GET', '/healthz')).status === 200, 'storage to recover');
}

test('after a failed write every write is refused, health and status say why, until the store is reopened and re-verified', async (t) => {
  const faults = new Faults();
  let w = await startWrit({ hooks: { wrapDriver: faults.wrap } });
  const a = await agent(w);
  const before = await a.call('POST', '/api/v1/permissions', email);
  t.is(before.status, 201);
  const signed = (await w.admin('POST', '/api/v1/log/checkpoint')).text;

  faults.reopenFailures = Number.MAX_SAFE_INTEGER; // hold it in the refusing state
  faults.failWrites(1);
  const failed = await a.call('POST', '/api/v1/permissions', email);
  t.is(failed.status, 503);
  t.is(failed.body.error.reason_code, 'storage_unavailable');
  t.is(failed.headers.get('retry-after'), '1');

  const health = await w.call('GET', '/healthz');
  t.is(health.status, 503);
  t.is(health.body.status, 'unavailable');
  t.regex(health.body.reason, /write failed/);
  const status = await eventually(async () => {
    const res = await w.admin('GET', '/api/v1/status');
    return res.status === 200 && res.body;
  }, 'the status while storage refuses writes');
  t.not(status.storage.state, 'ok');
  t.regex(status.storage.reason, /injected write failure/);
  t.true(status.storage.failures >= 1);

  // Nothing is acknowledged meanwhile: not a decision, not a token use, not a checkpoint.
  t.is((await a.call('POST', '/api/v1/permissions', email)).status, 503);
  t.is((await a.call('POST', '/api/v1/tokens/consume', { token: before.body.token, ...email })).status, 503);
  t.is((await w.admin('POST', '/api/v1/log/checkpoint')).status, 503);

  faults.reopenFailures = 0;
  await healthy(w);
  const after = await a.call('POST', '/api/v1/permissions', email);
  t.is(after.status, 201);
  t.is((await a.call('POST', '/api/v1/tokens/consume', { token: after.body.token, ...email })).status, 200);
  t.is((await w.admin('GET', '/api/v1/status')).body.storage.recoveries, 1);
  const extended = (await w.admin('POST', '/api/v1/log/checkpoint')).text;
  await w.close();

  t.is((await writCli('log', 'verify', '--data', w.data)).code, 0);
  w = await startWrit({ data: w.data });
  const again = caller(w.url, a.key);
  try {
    t.is((await again('GET', `/api/v1/permissions/${after.body.id}`)).body.status, 'used', 'what was acknowledged survived the restart');
    t.is((await again('POST', '/api/v1/tokens/consume', { token: after.body.token, ...email })).status, 409);
    const proof = (await w.call('GET', `/api/v1/log/consistency?old=${sizeOf(signed)}&new=${sizeOf(extended)}`)).body;
    const hashes = proof.hashes.map((h: string) => Buffer.from(h, 'base64'));
    t.true(verifyConsistency(sizeOf(signed), sizeOf(extended), rootOf(signed), rootOf(extended), hashes), 'the later checkpoint extends the earlier one');
  } finally {
    await w.close();
  }
});

test('a write that landed although the driver reported a failure is not acknowledged, and the log goes on from what is stored', async (t) => {
  const faults = new Faults();
  const w = await startWrit({ hooks: { wrapDriver: faults.wrap } });
  try {
    const a = await agent(w);
    t.is((await a.call('POST', '/api/v1/permissions', email)).status, 201);
    const size = w.server.writ.log.size;
    faults.failWrites(1, { landed: true });
    const failed = await a.call('POST', '/api/v1/permissions', email);
    t.is(failed.status, 503);
    t.is(failed.body.token, undefined);
    await healthy(w);
    t.is(w.server.writ.log.size, size + 1, 'the entry that landed is part of the log');
    const next = await a.call('POST', '/api/v1/permissions', email);
    t.is(next.status, 201);
    t.is(next.body.log.index, size + 1, 'the next entry follows it, with no gap and no fork');
  } finally {
    await w.close();
  }
  t.is((await writCli('log', 'verify', '--data', w.data)).code, 0);
});

test('acknowledged entries found missing when the store is reopened mark it damaged, and the next start refuses it', async (t) => {
  const faults = new Faults();
  const w = await startWrit({ hooks: { wrapDriver: faults.wrap } });
  const a = await agent(w);
  for (let i = 0; i < 3; i++) t.is((await a.call('POST', '/api/v1/permissions', email)).status, 201);
  const lastIndex = w.server.writ.log.size - 1;
  faults.reopenFailures = 1; // the first reopen fails, so there is time to damage the disk underneath
  faults.failWrites(1);
  t.is((await a.call('POST', '/api/v1/permissions', email)).status, 503);
  await eventually(() => faults.opened >= 2, 'a first reopen attempt');
  // While the database is closed between attempts, the disk loses the last acknowledged entry.
  const db = await eventually(() => LevelStore.open(path.join(w.data, 'db')).catch(() => undefined), 'the database between two reopen attempts');
  await db.batch([{ type: 'del', key: KEYS.entry(lastIndex) }, { type: 'put', key: KEYS.meta, value: JSON.stringify({ size: lastIndex }) }], { sync: true });
  await db.close();
  const health = await eventually(async () => {
    const res = await w.call('GET', '/healthz');
    return res.body.status === 'damaged' ? res : undefined;
  }, 'health to say damaged', 30_000);
  t.is(health.status, 503);
  await w.close();
  const refused = await writCli('serve', '--port', '0', '--data', w.data);
  t.is(refused.code, 1);
  t.regex(refused.out, /found damaged at an earlier start/);
  t.regex(refused.out, new RegExp(`while Writ ran: the store holds ${lastIndex} log entries but ${lastIndex + 1} were acknowledged`));
});
