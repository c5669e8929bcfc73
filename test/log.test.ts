import test from 'ava';
import crypto from 'node:crypto';
import { TransparencyLog } from '../src/log/log.ts';
import { verifyLog } from '../src/log/verify.ts';
import { MemoryStore } from '../src/store/memory.ts';
import type { BatchOp, Store } from '../src/store/store.ts';
import type { SigningKey } from '../src/crypto/keys.ts';
import { eventually } from './helpers/writ.ts';

/** The append pipeline against the in-memory store: ordering, durability, failure. */
function key(): SigningKey {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return { kid: 'k', privateKey, publicKey, publicJwk: {}, publicRaw: Buffer.from(raw) };
}

/** The in-memory store, its writes going through the test's `batch` (a fault, a gate). */
function writingThrough(inner: MemoryStore, batch: (ops: BatchOp[]) => Promise<void>): Store {
  return {
    get: (k) => inner.get(k),
    getMany: (k) => inner.getMany(k),
    iterate: (r) => inner.iterate(r),
    close: () => inner.close(),
    settle: () => inner.settle(),
    batch,
  };
}

test('an append made right after a batch completes is still written', async (t) => {
  t.timeout(10_000, 'the append never completed');
  const log = await TransparencyLog.open(new MemoryStore(), { origin: 'test/log', key: key(), commitWindowMs: 1 });
  const first = log.append('a', {});
  await log.flush();
  await first;
  await null;
  await log.append('b', {});
  t.is(log.size, 2);
});

test('entries get consecutive indexes in call order across batches', async (t) => {
  const log = await TransparencyLog.open(new MemoryStore(), { origin: 'test/log', key: key(), commitWindowMs: 0 });
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append('e', { i })));
  t.deepEqual(answers.map((a) => a.index), Array.from({ length: 50 }, (_, i) => i));
  const seen: number[] = [];
  for await (const { entry } of log.entries()) seen.push(entry.data.i as number);
  t.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i));
});

test('a failed write answers storage_unavailable, records nothing, and the log recovers', async (t) => {
  const inner = new MemoryStore();
  let failNext = false;
  const flaky = writingThrough(inner, (ops) => (failNext ? ((failNext = false), Promise.reject(new Error('disk full'))) : inner.batch(ops)));
  const log = await TransparencyLog.open(flaky, { origin: 'test/log', key: key(), commitWindowMs: 0 });
  await log.append('ok', {});
  failNext = true;
  const error = await t.throwsAsync(log.append('lost', {}));
  t.is((error as { code?: string }).code, 'storage_unavailable');
  t.is(log.size, 1);
  const refused = await t.throwsAsync(log.append('meanwhile', {}));
  t.is((refused as { code?: string }).code, 'storage_unavailable', 'nothing is accepted until the tail is re-verified');
  await log.reload();
  const next = await log.append('after', {});
  t.is(next.index, 1, 'the failed entry left no gap and no phantom');
});

test('an append whose companion work throws leaves the log exactly as it was', async (t) => {
  const store = new MemoryStore();
  const log = await TransparencyLog.open(store, { origin: 'test/log', key: key(), commitWindowMs: 0 });
  await log.append('first', {});
  const thrown = await t.throwsAsync(
    log.append('doomed', {}, () => {
      throw new Error('receipt signing failed');
    }),
  );
  t.is(thrown?.message, 'receipt signing failed');
  const next = await log.append('second', {});
  t.is(next.index, 1, 'the failed append took no position');
  await log.flush();
  const verified = await verifyLog(store, { name: 'test/log', publicKeyRaw: log['key'].publicRaw });
  t.true(verified.ok, verified.problem?.message);
  t.is(verified.size, 2);
});

test('a flush with nothing pending leaves the log writing what comes next', async (t) => {
  t.timeout(10_000, 'the append after the flush never completed');
  const log = await TransparencyLog.open(new MemoryStore(), { origin: 'test/log', key: key(), commitWindowMs: 1 });
  await log.flush();
  t.is((await log.append('after', {})).index, 0);
});

test('an idle log commits at once, and appends made while a commit is in flight share the next one', async (t) => {
  const inner = new MemoryStore();
  const batches: number[] = [];
  let release: (() => void) | undefined;
  const gated = writingThrough(inner, async (ops) => {
    batches.push(ops.filter((op) => op.key.startsWith('log/e/')).length);
    if (batches.length === 1) await new Promise<void>((r) => (release = r));
    await inner.batch(ops);
  });
  const log = await TransparencyLog.open(gated, { origin: 'test/log', key: key() });
  const first = log.append('first', {});
  await eventually(() => release !== undefined, 'the first commit');
  t.deepEqual(batches, [1], 'the first append was written without waiting for company');
  const behind = Array.from({ length: 10 }, (_, i) => log.append('behind', { i }));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(batches, [1], 'nothing more is written while the first commit is in flight');
  release!();
  await Promise.all([first, ...behind]);
  t.deepEqual(batches, [1, 10], 'everything that queued behind it went in one batch');
});

test('a companion that cannot be made fails its batch and what queued behind it, and the log then takes appends again', async (t) => {
  const store = new MemoryStore();
  const log = await TransparencyLog.open(store, { origin: 'test/log', key: key() });
  await log.append('first', {});
  const doomed = log.append('doomed', {}, () => [Promise.reject(new Error('no signature'))]);
  const behind = log.append('behind', {});
  t.is((await t.throwsAsync(doomed))?.message.includes('retry shortly'), true);
  t.is(((await t.throwsAsync(behind)) as { code?: string }).code, 'storage_unavailable');
  const next = await eventually(() => log.append('after', {}).catch(() => undefined), 'the log to take appends again');
  t.is(next.index, 1, 'nothing of the failed batch was written, and the tail was re-derived');
  const verified = await verifyLog(store, { name: 'test/log', publicKeyRaw: log['key'].publicRaw });
  t.true(verified.ok, verified.problem?.message);
  t.is(verified.size, 2);
});

test('two logs sharing one store (two nodes) sequence one chain: every entry once, in one order, and the log verifies', async (t) => {
  const store = new MemoryStore();
  const signing = key();
  const a = await TransparencyLog.open(store, { origin: 'test/log', key: signing });
  const b = await TransparencyLog.open(store, { origin: 'test/log', key: signing });
  const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? b : a).append('e', { i, node: i % 3 === 0 ? 'b' : 'a' })));
  t.deepEqual(
    answers.map((x) => x.index).sort((x, y) => x - y),
    Array.from({ length: 60 }, (_, i) => i),
    'each entry has its own index',
  );
  const seen = new Map<number, number>();
  for await (const { entry } of a.entries()) seen.set(entry.data.i as number, entry.index);
  t.is(seen.size, 60, 'every entry is stored once');
  for (const [i, answer] of answers.entries()) t.is(seen.get(i), answer.index, `entry ${i} is where its append said`);
  t.true(a.stats.replaced + b.stats.replaced > 0, 'the nodes met each other at the sequencing lock');
  const checkpoint = await b.checkpoint();
  t.is(checkpoint.size, 60, 'a checkpoint covers what either node wrote');
  t.is((await a.checkpoint()).size, 60, 'and the other node does not sign a smaller one after it');
  const verified = await verifyLog(store, { name: 'test/log', publicKeyRaw: signing.publicRaw });
  t.true(verified.ok, verified.problem?.message);
  t.is(verified.size, 60);
});

test('of two appends conditional on one record, on two nodes, exactly one is written; the other fails with a Conflict', async (t) => {
  const store = new MemoryStore();
  const signing = key();
  await store.batch([{ type: 'put', key: 'perm/1', value: 'approved' }]);
  const a = await TransparencyLog.open(store, { origin: 'test/log', key: signing });
  const b = await TransparencyLog.open(store, { origin: 'test/log', key: signing });
  const expect = [{ key: 'perm/1', value: 'approved' }];
  const spend = (log: TransparencyLog, by: string) => log.append('token.used', { by }, [{ type: 'put', key: 'perm/1', value: `used by ${by}` }], { expect });
  const results = await Promise.allSettled([spend(a, 'a'), spend(b, 'b'), a.append('other', {}), b.append('other', {})]);
  const spent = results.slice(0, 2);
  t.is(spent.filter((r) => r.status === 'fulfilled').length, 1, 'one spend wins');
  const lost = spent.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  t.is((lost.reason as Error).name, 'Conflict');
  t.true(results.slice(2).every((r) => r.status === 'fulfilled'), 'appends without conditions are unaffected');
  const winner = spent[0]!.status === 'fulfilled' ? 'a' : 'b';
  t.is(await store.get('perm/1'), `used by ${winner}`);
  const types: string[] = [];
  for await (const { entry } of a.entries()) types.push(entry.type);
  t.deepEqual(types.sort(), ['other', 'other', 'token.used']);
  t.true((await verifyLog(store, { name: 'test/log', publicKeyRaw: signing.publicRaw })).ok);
});

test('an append conditional on a record an earlier append of the same batch changes is refused at once', async (t) => {
  const log = await TransparencyLog.open(new MemoryStore(), { origin: 'test/log', key: key() });
  const first = log.append('a', {}, [{ type: 'put', key: 'x', value: '1' }]);
  const second = log.append('b', {}, [], { expect: [{ key: 'x', value: undefined }] });
  const third = log.append('c', {}, [], { expect: [{ key: 'x', value: '1' }] });
  await first;
  const err = await t.throwsAsync(second);
  t.is(err?.name, 'Conflict');
  t.is((await third).index, 1, 'what expects the batch as it will be follows it');
});
