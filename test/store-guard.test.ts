import test from 'ava';
import { GuardedStore } from '../src/store/guarded.ts';
import { MemoryStore } from '../src/store/memory.ts';
import type { BatchOp, Store } from '../src/store/store.ts';
import { eventually } from './helpers/writ.ts';

/** The guard in front of the storage driver: once a write fails, nothing is acknowledged until a reopen is verified. */
function controlled() {
  const inner = new MemoryStore();
  const pending: Array<{ ops: BatchOp[]; settle: (err?: Error) => void }> = [];
  const driver: Store = {
    get: (k) => inner.get(k),
    getMany: (k) => inner.getMany(k),
    iterate: (r) => inner.iterate(r),
    settle: () => inner.settle(),
    close: async () => undefined,
    batch: (ops) =>
      new Promise((resolve, reject) => {
        pending.push({ ops, settle: (err) => (err ? reject(err) : inner.batch(ops).then(resolve, reject)) });
      }),
  };
  return { driver, pending };
}

test('a write that completes after another write failed is not acknowledged, though the driver said it worked', async (t) => {
  const { driver, pending } = controlled();
  let reopened = false;
  const guard = new GuardedStore(driver, async () => ((reopened = true), driver));
  const a = guard.batch([{ type: 'put', key: 'a', value: '1' }]);
  const b = guard.batch([{ type: 'put', key: 'b', value: '2' }]);
  pending[0]!.settle(new Error('ENOSPC'));
  pending[1]!.settle();
  const [first, second] = await Promise.allSettled([a, b]);
  t.is(first.status, 'rejected');
  t.is(second.status, 'rejected', 'b straddled the failure of a');
  t.is(guard.health.state, 'unsafe');
  await t.throwsAsync(guard.batch([{ type: 'put', key: 'c', value: '3' }]), { message: /not accepting writes/ });
  t.false(reopened || pending.length > 2, 'nothing more reached the driver');
});

test('writes are accepted again only after a reopen whose checks pass', async (t) => {
  const { driver, pending } = controlled();
  let checks = 0;
  let allow = false;
  const guard = new GuardedStore(driver, async () => driver);
  guard.afterReopen(async () => {
    checks++;
    if (!allow) throw new Error('tail does not verify yet');
  });
  const failed = guard.batch([{ type: 'put', key: 'a', value: '1' }]);
  pending[0]!.settle(new Error('EIO'));
  await t.throwsAsync(failed);
  await eventually(() => checks >= 1, 'a recovery attempt');
  t.not(guard.health.state, 'ok', 'a failed check keeps writes refused');
  t.truthy(guard.health.last_attempt?.error);
  allow = true;
  await eventually(() => guard.health.state === 'ok', 'the recovery');
  t.is(guard.health.recoveries, 1);
  const write = guard.batch([{ type: 'put', key: 'b', value: '2' }]);
  pending.at(-1)!.settle();
  await write;
  t.is(await guard.get('b'), '2');
  await guard.close();
});
