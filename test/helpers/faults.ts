import type { BatchOp, Range, Store } from '../../src/store/store.ts';

/**
 * A fault-injecting wrapper around the real storage driver (LevelDB): the writes it is told to
 * fail reject with an I/O error, either before reaching the driver or after it has written them
 * (an error reported for a write that landed). Reopening can be made to fail too, to hold the
 * store in its refusing state. One `Faults` serves every driver the server opens.
 */
export class Faults {
  private plan: Array<'before' | 'after'> = [];
  reopenFailures = 0;
  opened = 0;
  /** The real driver most recently opened, for a test that damages the data underneath. */
  driver: Store | undefined;

  /** The next `n` writes fail; with `landed` the driver writes them first. */
  failWrites(n = 1, options: { landed?: boolean } = {}): void {
    for (let i = 0; i < n; i++) this.plan.push(options.landed ? 'after' : 'before');
  }

  wrap = (driver: Store): Store => {
    if (this.opened++ > 0 && this.reopenFailures > 0) {
      this.reopenFailures--;
      void driver.close();
      throw ioError('reopen refused by the test');
    }
    this.driver = driver;
    const write = async (run: () => Promise<void>) => {
      const fault = this.plan.shift();
      if (fault === 'before') throw ioError('injected write failure');
      await run();
      if (fault === 'after') throw ioError('injected failure after the write landed');
    };
    return {
      get: (key: string) => driver.get(key),
      getMany: (keys: string[]) => driver.getMany(keys),
      iterate: (range: Range) => driver.iterate(range),
      batch: (ops: BatchOp[], options?: { sync?: boolean }) => write(() => driver.batch(ops, options)),
      settle: () => write(() => driver.settle()),
      close: () => driver.close(),
    };
  };
}

function ioError(message: string): Error {
  return Object.assign(new Error(`IO error: ${message}`), { code: 'LEVEL_IO_ERROR' });
}
