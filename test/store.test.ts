import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MemoryStore } from '../src/store/memory.ts';
import { LevelStore } from '../src/store/level.ts';
import { PostgresStore } from '../src/store/postgres.ts';
import { readValues, type Store } from '../src/store/store.ts';
import { startPostgres, type TestPostgres } from './helpers/postgres.ts';

/** One PostgreSQL server for this file, a database of its own for each test. */
let server: Promise<TestPostgres> | undefined;
const postgres = () => (server ??= startPostgres());
test.after.always(async () => (await server)?.stop());

/** One conformance suite for every storage driver. */
const drivers: Array<[string, () => Promise<{ store: Store; reopen?: () => Promise<Store> }>]> = [
  ['memory', async () => ({ store: new MemoryStore() })],
  [
    'leveldb',
    async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'writ-store-'));
      const store = await LevelStore.open(dir);
      return { store, reopen: async () => (await store.close(), LevelStore.open(dir)) };
    },
  ],
  [
    'postgresql',
    async () => {
      const url = await (await postgres()).database();
      const store = await PostgresStore.open(url);
      return { store, reopen: async () => (await store.close(), PostgresStore.open(url)) };
    },
  ],
];

for (const [name, open] of drivers) {
  test(`${name}: a missing key reads as undefined`, async (t) => {
    const { store } = await open();
    t.is(await store.get('nope'), undefined);
    t.deepEqual(await store.getMany(['nope', 'nada']), [undefined, undefined]);
  });

  test(`${name}: a batch applies puts and deletes together`, async (t) => {
    const { store } = await open();
    await store.batch([
      { type: 'put', key: 'a', value: '1' },
      { type: 'put', key: 'b', value: '2' },
    ]);
    await store.batch([{ type: 'del', key: 'a' }, { type: 'put', key: 'c', value: '3' }], { sync: true });
    t.deepEqual(await store.getMany(['a', 'b', 'c']), [undefined, '2', '3']);
  });

  test(`${name}: a conditional batch is written only while every key holds what it expects, a missing key included`, async (t) => {
    const { store } = await open();
    await store.batch([{ type: 'put', key: 'perm/1', value: 'approved' }]);
    await store.batch([{ type: 'put', key: 'perm/1', value: 'used' }], { expect: [{ key: 'perm/1', value: 'approved' }, { key: 'new', value: undefined }] });
    t.is(await store.get('perm/1'), 'used');
    const err = await t.throwsAsync(
      store.batch([{ type: 'put', key: 'perm/1', value: 'used again' }, { type: 'put', key: 'other', value: 'x' }], { expect: [{ key: 'perm/1', value: 'approved' }] }),
    );
    t.is(err?.name, 'Conflict');
    t.deepEqual((err as unknown as { found: unknown }).found, [{ key: 'perm/1', value: 'used' }], 'it says what the key holds now');
    t.deepEqual(await store.getMany(['perm/1', 'other']), ['used', undefined], 'nothing of a refused batch is written');
    await t.throwsAsync(store.batch([{ type: 'put', key: 'x', value: '1' }], { expect: [{ key: 'perm/1', value: undefined }] }), { name: 'Conflict' });
  });

  test(`${name}: of many conditional batches racing on one key, exactly one is written`, async (t) => {
    const { store } = await open();
    await store.batch([{ type: 'put', key: 'token', value: 'unspent' }]);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => store.batch([{ type: 'put', key: 'token', value: `spent by ${i}` }], { sync: true, expect: [{ key: 'token', value: 'unspent' }] })),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    t.is(won.length, 1);
    t.true(results.every((r) => r.status === 'fulfilled' || (r.reason as Error).name === 'Conflict'));
    t.is(await store.get('token'), `spent by ${won[0]}`);
    // A key that holds nothing yet is claimed once too.
    const claims = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store.batch([{ type: 'put', key: 'lease', value: String(i) }], { expect: [{ key: 'lease', value: undefined }] })));
    t.is(claims.filter((r) => r.status === 'fulfilled').length, 1);
  });

  test(`${name}: iteration is in key order within the range, forwards and backwards`, async (t) => {
    const { store } = await open();
    await store.batch(['x/3', 'x/1', 'y/0', 'x/2', 'w/9'].map((key) => ({ type: 'put' as const, key, value: key })));
    const forward: string[] = [];
    for await (const [key] of store.iterate({ gte: 'x/', lt: 'x/~' })) forward.push(key);
    t.deepEqual(forward, ['x/1', 'x/2', 'x/3']);
    const backward: string[] = [];
    for await (const [key] of store.iterate({ gte: 'x/', lt: 'x/~', reverse: true, limit: 2 })) backward.push(key);
    t.deepEqual(backward, ['x/3', 'x/2']);
  });

  test(`${name}: a range's values alone come back in key order, and an empty range is empty`, async (t) => {
    const { store } = await open();
    await store.batch(['x/3', 'x/1', 'y/0', 'x/2', 'w/9'].map((key) => ({ type: 'put' as const, key, value: `v${key}` })));
    t.deepEqual(await readValues(store, { gte: 'x/', lt: 'x/~' }), ['vx/1', 'vx/2', 'vx/3']);
    t.deepEqual(await readValues(store, { gte: 'x/2', lt: 'x/3' }), ['vx/2']);
    t.deepEqual(await readValues(store, { gte: 'z/', lt: 'z/~' }), []);
  });

  test(`${name}: a bound with a NUL in it (the first key after another) is a bound like any other`, async (t) => {
    const { store } = await open();
    await store.batch(['p/a', 'p/a0', 'p/b', 'p/c'].map((key) => ({ type: 'put' as const, key, value: key })));
    const keys = async (range: { gte?: string; lt?: string; reverse?: boolean }) => {
      const out: string[] = [];
      for await (const [key] of store.iterate(range)) out.push(key);
      return out;
    };
    t.deepEqual(await keys({ gte: 'p/a\u0000', lt: 'p/~' }), ['p/a0', 'p/b', 'p/c']);
    t.deepEqual(await keys({ gte: 'p/', lt: 'p/b\u0000' }), ['p/a', 'p/a0', 'p/b']);
    t.deepEqual(await keys({ gte: 'p/', lt: 'p/b\u0000', reverse: true }), ['p/b', 'p/a0', 'p/a']);
    t.deepEqual(await readValues(store, { gte: 'p/a\u0000', lt: 'p/b\u0000' }), ['p/a0', 'p/b']);
    t.is(await store.get('p/a\u0000'), undefined);
    t.deepEqual(await store.getMany(['p/a\u0000', 'p/b']), [undefined, 'p/b']);
  });

  test(`${name}: readers that make other calls while they iterate do not wait on each other, however many there are`, async (t) => {
    const { store } = await open();
    await store.batch(Array.from({ length: 600 }, (_, i) => ({ type: 'put' as const, key: `q/${String(i).padStart(4, '0')}`, value: String(i) })));
    const reader = async () => {
      let n = 0;
      for await (const [key] of store.iterate({ gte: 'q/', lt: 'q/~' })) if ((await store.get(key)) !== undefined) n++;
      return n;
    };
    t.deepEqual(await Promise.all(Array.from({ length: 12 }, reader)), Array.from({ length: 12 }, () => 600));
  });

  test(`${name}: an iteration reads one snapshot: writes made while it runs are not seen`, async (t) => {
    const { store } = await open();
    const keys = Array.from({ length: 1300 }, (_, i) => `s/${String(i).padStart(5, '0')}`);
    await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: 'before' })));
    const seen: Array<[string, string]> = [];
    for await (const entry of store.iterate({ gte: 's/', lt: 's/~', snapshot: true })) {
      if (seen.length === 0) {
        await store.batch([
          { type: 'del', key: keys[1299]! },
          { type: 'put', key: keys[700]!, value: 'after' },
          { type: 'put', key: 's/99999', value: 'after' },
        ]);
      }
      seen.push(entry);
    }
    t.deepEqual(seen, keys.map((key) => [key, 'before']));
  });

  test(`${name}: values are kept byte for byte`, async (t) => {
    const { store, reopen } = await open();
    const value = JSON.stringify({ s: 'é — 😀', n: 1.5 });
    await store.batch([{ type: 'put', key: 'k', value }], { sync: true });
    const again = reopen ? await reopen() : store;
    t.is(await again.get('k'), value);
  });
}

test('postgresql: iteration pages through a range larger than one round trip, in both directions and with a limit', async (t) => {
  const store = await PostgresStore.open(await (await postgres()).database());
  const keys = Array.from({ length: 1300 }, (_, i) => `r/${String(i).padStart(5, '0')}`);
  await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: key })));
  const forward: string[] = [];
  for await (const [key] of store.iterate({ gte: 'r/', lt: 'r/~' })) forward.push(key);
  t.deepEqual(forward, keys);
  const backward: string[] = [];
  for await (const [key] of store.iterate({ gte: 'r/', lt: 'r/~', reverse: true, limit: 1000 })) backward.push(key);
  t.deepEqual(backward, keys.slice().reverse().slice(0, 1000));
  t.is((await readValues(store, { gte: 'r/00100', lt: 'r/00200' })).length, 100);
  await store.close();
});

test('postgresql: keys sort byte for byte as LevelDB sorts them, not by a language collation', async (t) => {
  const store = await PostgresStore.open(await (await postgres()).database());
  const keys = ['k/B', 'k/a', 'k/_', 'k/é', 'k/Z', 'k/~', 'k/0'];
  await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: '1' })));
  const seen: string[] = [];
  for await (const [key] of store.iterate({ gte: 'k/', lt: 'k/\u00ff' })) seen.push(key);
  t.deepEqual(seen, keys.slice().sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  await store.close();
});

test('postgresql: a batch that puts and deletes one key leaves what its last op says', async (t) => {
  const store = await PostgresStore.open(await (await postgres()).database());
  await store.batch([
    { type: 'put', key: 'a', value: '1' },
    { type: 'del', key: 'a' },
    { type: 'del', key: 'b' },
    { type: 'put', key: 'b', value: '2' },
  ]);
  t.deepEqual(await store.getMany(['a', 'b']), [undefined, '2']);
  await store.close();
});

test('postgresql: text it cannot keep as written is refused, and nothing of that batch is stored', async (t) => {
  const store = await PostgresStore.open(await (await postgres()).database());
  await t.throwsAsync(store.batch([{ type: 'put', key: 'ok', value: '1' }, { type: 'put', key: 'bad', value: 'a\u0000b' }]), { message: /NUL or a lone surrogate/ });
  await t.throwsAsync(store.batch([{ type: 'put', key: 'half\ud800', value: '1' }]), { message: /NUL or a lone surrogate/ });
  t.deepEqual(await store.getMany(['ok', 'bad']), [undefined, undefined]);
  await store.batch([{ type: 'put', key: 'pair', value: '😀' }]);
  t.is(await store.get('pair'), '😀');
  await store.close();
});
