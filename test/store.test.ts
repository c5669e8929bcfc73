import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MemoryStore } from '../src/store/memory.ts';
import { LevelStore } from '../src/store/level.ts';
import { readValues, type Store } from '../src/store/store.ts';

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

  test(`${name}: values are kept byte for byte`, async (t) => {
    const { store, reopen } = await open();
    const value = JSON.stringify({ s: 'é — 😀', n: 1.5 });
    await store.batch([{ type: 'put', key: 'k', value }], { sync: true });
    const again = reopen ? await reopen() : store;
    t.is(await again.get('k'), value);
  });
}
