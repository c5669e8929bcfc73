import { WritError } from '../errors.ts';
import { Conflict, readValues, type BatchOp, type BatchOptions, type Range, type Store, type Transaction } from './store.ts';
import type { Report } from '../report.ts';

/**
 * The store as the rest of Writ sees it: the real driver behind a guard that turns any failed
 * write into a state of the whole store. LevelDB can keep running after a write fails (ENOSPC,
 * EIO) and acknowledge later writes that its next open then drops along with the torn record, so
 * after any failure nothing more is acknowledged: every write is refused (503
 * storage_unavailable) until the database has been closed, reopened, and re-verified by the hooks
 * registered with `afterReopen` (the log checks its tail against the latest signed checkpoint and
 * against what it acknowledged). Recovery is retried with backoff, so a disk that gets space back
 * heals without a restart. A read that meets corruption marks the store damaged: writes stay
 * refused until an operator restores it (reads go on, each failing on its own).
 */
export type StorageState = 'ok' | 'unsafe' | 'recovering' | 'damaged';

export type StorageDriver = 'leveldb' | 'postgresql';

export interface StorageHealth {
  driver: StorageDriver;
  state: StorageState;
  /** Why the store is not ok, for /healthz, /api/v1/status and the console. */
  reason?: string;
  since?: string;
  /** Reads and writes that failed since start, and successful recoveries. */
  failures: number;
  recoveries: number;
  last_attempt?: { at: string; error: string };
}

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 10_000;

export class GuardedStore implements Store {
  private status: StorageHealth;
  /** Bumped by every failure and every recovery: a write that straddles one is not acknowledged. */
  private epoch = 0;
  private retry: NodeJS.Timeout | undefined;
  private attempts = 0;
  private recovering: Promise<void> | undefined;
  private readonly verifiers: Array<() => Promise<void>> = [];
  private closed = false;

  constructor(
    private inner: Store,
    private readonly reopen: () => Promise<Store>,
    private readonly report: Report = () => {},
    /** Keeps a finding of damage where the next start will see it (the data directory's DAMAGED note). */
    private readonly recordDamage: (reason: string) => Promise<void> = async () => {},
    driver: StorageDriver = 'leveldb',
  ) {
    this.status = { driver, state: 'ok', failures: 0, recoveries: 0 };
  }

  get health(): StorageHealth {
    return { ...this.status };
  }

  get writable(): boolean {
    return this.status.state === 'ok' && !this.closed;
  }

  /** Runs after every reopen, before writes are accepted again; throwing keeps the store refused. */
  afterReopen(verify: () => Promise<void>): void {
    this.verifiers.push(verify);
  }

  get(key: string): Promise<string | undefined> {
    return this.read(() => this.inner.get(key));
  }

  getMany(keys: string[]): Promise<Array<string | undefined>> {
    return this.read(() => this.inner.getMany(keys));
  }

  async *iterate(range: Range): AsyncIterable<[string, string]> {
    this.checkReadable();
    try {
      for await (const entry of this.inner.iterate(range)) yield entry;
    } catch (err) {
      throw this.readFailure(err);
    }
  }

  readValues(range: Range): Promise<string[]> {
    return this.read(() => readValues(this.inner, range));
  }

  batch(ops: BatchOp[], options?: BatchOptions): Promise<void> {
    return this.write(() => this.inner.batch(ops, options));
  }

  settle(): Promise<void> {
    return this.write(() => this.inner.settle());
  }

  /** The driver's, where it has one (PostgreSQL); a failure of the transaction is a failed write. */
  get exclusive(): Store['exclusive'] {
    const inner = this.inner;
    if (!inner.exclusive) return undefined;
    return async <T>(key: string, fn: (tx: Transaction) => Promise<T>): Promise<T> => {
      let result: T | undefined;
      await this.write(async () => {
        result = await inner.exclusive!(key, fn);
      });
      return result as T;
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.recovering?.catch(() => undefined);
    await this.inner.close();
  }

  /**
   * Marks the store damaged (a check found what the driver could not): writes are refused from
   * now on, and the finding is kept for the next start, which then refuses to serve the directory.
   */
  markDamaged(reason: string): void {
    if (this.status.state === 'damaged') return;
    this.epoch++;
    this.status = { ...this.status, state: 'damaged', reason, since: new Date().toISOString() };
    this.report(`storage is damaged and refuses writes: ${reason}. Stop Writ, run \`writ log verify\`, and restore the latest backup (\`writ restore FILE --data DIR\`).`, 'error');
    void this.recordDamage(reason).catch((err) => this.report(`could not keep the damage note: ${(err as Error).message}`, 'error'));
  }

  private async write(run: () => Promise<void>): Promise<void> {
    if (!this.writable) throw this.refusal();
    const epoch = this.epoch;
    try {
      await run();
    } catch (err) {
      // A condition that did not hold wrote nothing, and says nothing about the store.
      if (err instanceof Conflict) throw err;
      this.failed(err);
      throw this.refusal();
    }
    // Another write failed while this one was in flight: it may not survive the reopen.
    if (epoch !== this.epoch) throw this.refusal();
  }

  private async read<T>(run: () => Promise<T>): Promise<T> {
    this.checkReadable();
    try {
      return await run();
    } catch (err) {
      throw this.readFailure(err);
    }
  }

  private checkReadable(): void {
    if (this.status.state === 'recovering') throw this.refusal();
  }

  private readFailure(err: unknown): unknown {
    if (err instanceof WritError) return err;
    const code = (err as { code?: string }).code;
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    if (code === 'LEVEL_CORRUPTION' || cause === 'LEVEL_CORRUPTION') {
      this.markDamaged(`a read met corruption: ${(err as Error).message}`);
      return new WritError('storage_corrupt', 'the stored data is damaged; the operator has been told', {});
    }
    // A database that cannot be read (PostgreSQL gone, a disk failing) is not healthy either: the
    // store is reopened and re-verified before anything more is acknowledged.
    this.failed(err, 'read');
    return new WritError('storage_unavailable', 'storage could not be read right now', { retry_after: 1 });
  }

  /** The error a write gets now, or undefined while writes are accepted. */
  writeRefusal(): WritError | undefined {
    return this.writable ? undefined : this.refusal();
  }

  /** What a client is told: fixed words (the reason, with its paths, is for /api/v1/status and the console). */
  private refusal(): WritError {
    if (this.status.state === 'damaged') return new WritError('storage_corrupt', 'storage is damaged and refuses writes; the operator has been told', {});
    return new WritError('storage_unavailable', 'storage is not accepting writes right now; this request was not acknowledged, retry shortly', { retry_after: 1 });
  }

  private failed(err: unknown, what: 'read' | 'write' = 'write'): void {
    if (this.closed) return;
    // A failed write may take writes made beside it with it (a torn record); a failed read cannot,
    // so a write in flight meanwhile that succeeded is still acknowledged.
    if (what === 'write') this.epoch++;
    this.status.failures++;
    if (this.status.state !== 'ok') return;
    this.status = { ...this.status, state: 'unsafe', reason: `a ${what} failed: ${(err as Error).message}`, since: new Date().toISOString() };
    this.report(`storage: ${this.status.reason}; refusing writes until the database is reopened and re-verified`, 'error');
    this.scheduleRecovery();
  }

  private scheduleRecovery(): void {
    if (this.retry || this.closed) return;
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.attempts);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.recovering = this.recover().finally(() => (this.recovering = undefined));
    }, delay);
    this.retry.unref();
  }

  private async recover(): Promise<void> {
    if (this.closed || this.status.state !== 'unsafe') return;
    this.status = { ...this.status, state: 'recovering' };
    try {
      await this.inner.close().catch(() => undefined);
      this.inner = await this.reopen();
    } catch (err) {
      return this.retryLater(err);
    }
    // Reads work again (the verifiers read); writes stay refused until every verifier is satisfied.
    this.status = { ...this.status, state: 'unsafe' };
    try {
      for (const verify of this.verifiers) await verify();
    } catch (err) {
      // Damage does not heal by trying again; anything else (the disk still full) may.
      if ((err as { damage?: boolean }).damage === true) return this.markDamaged((err as Error).message);
      return this.retryLater(err);
    }
    this.epoch++;
    this.attempts = 0;
    const { driver, failures, recoveries } = this.status;
    this.status = { driver, state: 'ok', failures, recoveries: recoveries + 1 };
    this.report('storage: reopened and re-verified; accepting writes again', 'info');
  }

  private retryLater(err: unknown): void {
    this.attempts++;
    this.status = { ...this.status, state: 'unsafe', last_attempt: { at: new Date().toISOString(), error: (err as Error).message } };
    this.scheduleRecovery();
  }
}
