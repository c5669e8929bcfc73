import { WritError } from '../errors.ts';
import { Conflict, type Expectation, type Store } from '../store/store.ts';

/**
 * The values a decision was read from, kept as the conditions of its write: the log writes the
 * entry only if none of them has changed meanwhile, on this node or any other sharing the store
 * (see TransparencyLog.append). This, not a lock in one process, is what makes exactly one of
 * many concurrent consumes, votes or revocations win.
 */
export class Reads {
  private readonly seen = new Map<string, string | undefined>();

  constructor(private readonly store: Store) {}

  /** The conditions: each key read, as it was first read. */
  get expect(): Expectation[] {
    return [...this.seen].map(([key, value]) => ({ key, value }));
  }

  async raw(key: string): Promise<string | undefined> {
    const value = await this.store.get(key);
    if (!this.seen.has(key)) this.seen.set(key, value);
    return value;
  }

  async json<T>(key: string): Promise<T | undefined> {
    const raw = await this.raw(key);
    return raw === undefined ? undefined : (JSON.parse(raw) as T);
  }

  async many(keys: string[]): Promise<Array<string | undefined>> {
    const values = await this.store.getMany(keys);
    keys.forEach((key, i) => {
      if (!this.seen.has(key)) this.seen.set(key, values[i]);
    });
    return values;
  }

  /** A condition read elsewhere (a principal's standing). */
  add(conditions: readonly Expectation[]): void {
    for (const { key, value } of conditions) if (!this.seen.has(key)) this.seen.set(key, value);
  }
}

/** Runs that decide again before a request is turned away as too contended. */
const ATTEMPTS = 20;

/**
 * Runs `decide` (read, check, write conditionally) again while its write meets a concurrent change:
 * each run reads afresh, so the loser of a race sees what the winner wrote (a token already used,
 * an approval already decided) and answers from that.
 */
export async function retrying<T>(decide: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await decide();
    } catch (err) {
      if (!(err instanceof Conflict)) throw err;
      if (attempt >= ATTEMPTS) throw new WritError('conflict', 'this record kept changing while the request was decided; retry shortly', { retry_after: 1 });
    }
  }
}
