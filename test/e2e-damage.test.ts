import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { KEYS } from '../src/log/log.ts';
import { LevelStore } from '../src/store/level.ts';
import type { Store } from '../src/store/store.ts';
import { ADMIN, agent, caller, spawnWrit, startWrit, tempDir, writCli } from './helpers/writ.ts';

/**
 * A damaged data directory is refused at start with a message naming the damage and the way back,
 * never served with holes; a read that meets damage while running answers 500 storage_corrupt and
 * turns health to damaged.
 */
const email = { action: 'email.send', resource: 'email:crash@acme.com' };

/** A server that took some decisions and was then killed (kill -9): its last writes are only in LevelDB's write-ahead log. */
async function killedMidStream(): Promise<{ data: string; ids: string[] }> {
  const data = await tempDir();
  const server = await spawnWrit(data);
  const key = (await caller(server.url, ADMIN)('POST', '/api/v1/agents', { name: 'crash' })).body.api_key;
  const ids: string[] = [];
  for (let i = 0; i < 200; i++) ids.push((await caller(server.url, key)('POST', '/api/v1/permissions', email)).body.id);
  server.child.kill('SIGKILL');
  await server.exited;
  return { data, ids };
}

const serve = (data: string) => writCli('serve', '--port', '0', '--data', data);

test('a flipped byte in LevelDB\'s write-ahead log after kill -9 is refused at start, and stays refused', async (t) => {
  const { data } = await killedMidStream();
  const db = path.join(data, 'db');
  const wal = (await fs.readdir(db)).find((f) => f.endsWith('.log'))!;
  const bytes = await fs.readFile(path.join(db, wal));
  t.true(bytes.length > 10_000, 'the write-ahead log holds the recent decisions');
  bytes[Math.floor(bytes.length / 3)]! ^= 0x01;
  await fs.writeFile(path.join(db, wal), bytes);

  const first = await serve(data);
  t.is(first.code, 1);
  t.regex(first.out, /write-ahead log damaged/);
  t.regex(first.out, /dropping \d+ bytes/);
  t.regex(first.out, /writ restore FILE --data NEWDIR/);
  const kept = (await fs.readdir(data)).find((f) => f.startsWith('wal-damaged-'));
  t.truthy(kept, 'the write-ahead log as it was is kept as evidence');
  t.deepEqual(await fs.readFile(path.join(data, kept!, wal)), bytes);
  // LevelDB has already replaced the damaged log: the refusal must not depend on seeing it again.
  const second = await serve(data);
  t.is(second.code, 1);
  t.regex(second.out, /found damaged at an earlier start/);
  const verify = await writCli('log', 'verify', '--data', data);
  t.regex(verify.out, /log .*: (OK|FAILED)/, 'an operator can still inspect the directory');
  const backup = await writCli('backup', '--out', path.join(await tempDir(), 'before-anything.backup'), '--data', data);
  t.is(backup.code, 0, 'and copy it before trying anything');
});

test('a log entry missing after the latest checkpoint is refused at start, naming its index', async (t) => {
  const { data } = await killedMidStream();
  const store = await LevelStore.open(path.join(data, 'db'));
  const size = (JSON.parse((await store.get(KEYS.meta))!) as { size: number }).size;
  const victim = size - 3;
  await store.batch([{ type: 'del', key: KEYS.entry(victim) }], { sync: true });
  await store.close();
  const refused = await serve(data);
  t.is(refused.code, 1);
  t.regex(refused.out, new RegExp(`the log in .* is damaged: log entry ${victim}: entry ${victim} is missing`));
  t.regex(refused.out, /writ log verify --data/);
});

test('a damaged MANIFEST is refused at start as damage, not as "failed to open"', async (t) => {
  const data = await tempDir();
  const w = await startWrit({ data });
  await w.close();
  const db = path.join(data, 'db');
  const manifest = (await fs.readdir(db)).find((f) => f.startsWith('MANIFEST-'))!;
  const bytes = await fs.readFile(path.join(db, manifest));
  bytes[10]! ^= 0xff;
  await fs.writeFile(path.join(db, manifest), bytes);
  const refused = await serve(data);
  t.is(refused.code, 1);
  t.regex(refused.out, /database in .* is damaged and cannot be opened \(Corruption: /);
  t.regex(refused.out, /writ restore/);
});

test('a read that meets corruption answers 500 storage_corrupt, turns health to damaged and refuses writes', async (t) => {
  let corrupt = false;
  const wrapDriver = (driver: Store): Store => ({
    ...bind(driver),
    get: async (key) => {
      if (corrupt && key.startsWith('perm/')) throw Object.assign(new Error('Corruption: bad block contents'), { code: 'LEVEL_CORRUPTION' });
      return driver.get(key);
    },
  });
  const w = await startWrit({ hooks: { wrapDriver } });
  try {
    const a = await agent(w);
    const { id } = (await a.call('POST', '/api/v1/permissions', email)).body;
    corrupt = true;
    const read = await a.call('GET', `/api/v1/permissions/${id}`);
    t.is(read.status, 500);
    t.is(read.body.error.reason_code, 'storage_corrupt');
    const health = await w.call('GET', '/healthz');
    t.is(health.status, 503);
    t.is(health.body.status, 'damaged');
    t.regex(health.body.reason, /storage is damaged/);
    t.regex((await w.admin('GET', '/api/v1/status')).body.storage.reason, /bad block contents/, 'the details are for the admin');
    const write = await a.call('POST', '/api/v1/permissions', email);
    t.is(write.status, 500);
    t.is(write.body.error.reason_code, 'storage_corrupt');
  } finally {
    await w.close();
  }
});

function bind(driver: Store): Store {
  return {
    get: (k) => driver.get(k),
    getMany: (k) => driver.getMany(k),
    iterate: (r) => driver.iterate(r),
    batch: (o, s) => driver.batch(o, s),
    settle: () => driver.settle(),
    close: () => driver.close(),
  };
}

test("a proof's checkpoint does not move where the start-up check begins: a hole before it is still found", async (t) => {
  const data = await tempDir();
  const server = await spawnWrit(data);
  const admin = caller(server.url, ADMIN);
  const key = (await admin('POST', '/api/v1/agents', { name: 'p' })).body.api_key;
  const agentCall = caller(server.url, key);
  for (let i = 0; i < 10; i++) await agentCall('POST', '/api/v1/permissions', email);
  const settled = Number((await admin('POST', '/api/v1/log/checkpoint')).text.split('\n')[1]);
  let last = 0;
  for (let i = 0; i < 10; i++) last = (await agentCall('POST', '/api/v1/permissions', email)).body.log.index;
  const proof = (await caller(server.url)('GET', `/api/v1/log/proof/${last}`)).body;
  t.true(proof.tree_size > settled + 5, 'the proof was signed a checkpoint of its own, beyond the settled one');
  server.child.kill('SIGKILL');
  await server.exited;
  const store = await LevelStore.open(path.join(data, 'db'));
  await store.batch([{ type: 'del', key: KEYS.entry(settled + 5) }], { sync: true });
  await store.close();
  const refused = await serve(data);
  t.is(refused.code, 1);
  t.regex(refused.out, new RegExp(`log entry ${settled + 5}: entry ${settled + 5} is missing`));
});
