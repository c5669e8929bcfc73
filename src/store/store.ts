/**
 * Storage sits behind this small interface; the LevelDB and in-memory versions pass one shared
 * conformance suite (test/store.test.ts). Keys and values are strings; values are JSON by convention.
 */
export type BatchOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

export interface Range {
  gte?: string;
  lt?: string;
  reverse?: boolean;
  limit?: number;
  /**
   * Read the whole range as one snapshot, untouched by writes made while it is read (a backup).
   * LevelDB's iterators always are; PostgreSQL holds a transaction of its own for it.
   */
  snapshot?: boolean;
}

/** What a transaction of `Store.exclusive` may do. */
export type Transaction = Pick<Store, 'get' | 'getMany' | 'batch'>;

/** A condition of a batch: `key` holds `value` as stored (undefined: holds nothing). */
export interface Expectation {
  key: string;
  value: string | undefined;
}

export interface BatchOptions {
  /** Resolve only once the ops are on disk. */
  sync?: boolean;
  /**
   * Apply the ops only if every key still holds what is expected, checked and written atomically
   * against every other conditional batch, in this process or (PostgreSQL) on any node: the batch
   * is otherwise refused with a Conflict, and nothing of it is written.
   */
  expect?: Expectation[];
}

/** A conditional batch found a key changed: nothing was written. Not a failure of the store. */
export class Conflict extends Error {
  constructor(readonly found: Expectation[]) {
    super(`a concurrent write changed ${found.map((f) => f.key).join(', ')}`);
    this.name = 'Conflict';
  }
}

/** The expectations that `read` (what the keys hold now) contradicts, if any. */
export function unmet(expect: readonly Expectation[], read: ReadonlyArray<string | undefined>): Expectation[] {
  return expect.flatMap((e, i) => (read[i] === e.value ? [] : [{ key: e.key, value: read[i] }]));
}

export interface Store {
  get(key: string): Promise<string | undefined>;
  getMany(keys: string[]): Promise<Array<string | undefined>>;
  /** Applies all ops atomically, under the options' conditions (see BatchOptions). */
  batch(ops: BatchOp[], options?: BatchOptions): Promise<void>;
  iterate(range: Range): AsyncIterable<[string, string]>;
  /**
   * Runs `fn` holding `key`'s lock (the one conditional batches that expect `key` take, on any
   * node) in one transaction: its reads see everything committed before it, its batches commit
   * together when it returns, and no conditional batch on `key` can come between. For stores that
   * many processes share (PostgreSQL); one process alone never needs it.
   */
  exclusive?<T>(key: string, fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** The values alone of a bounded range, in key order, where the driver has a bulk read (see `readValues`). */
  readValues?(range: Range): Promise<string[]>;
  /**
   * Moves recent writes out of the write-ahead log into the store's checksummed tables, so a later
   * damaged write-ahead log cannot take them away (LevelDB: a memtable flush). Called before a
   * checkpoint is signed.
   */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export const put = (key: string, value: unknown): BatchOp => ({
  type: 'put',
  key,
  value: typeof value === 'string' ? value : JSON.stringify(value),
});

export async function getJson<T>(store: Store, key: string): Promise<T | undefined> {
  const raw = await store.get(key);
  return raw === undefined ? undefined : (JSON.parse(raw) as T);
}

/**
 * Reads a key and deletes it, as one act against every other taker on any node: of several
 * callers racing for a one-time thing (a login link, a challenge), one gets it, the rest nothing.
 */
export async function take(store: Store, key: string): Promise<string | undefined> {
  for (;;) {
    const raw = await store.get(key);
    if (raw === undefined) return undefined;
    try {
      await store.batch([{ type: 'del', key }], { sync: true, expect: [{ key, value: raw }] });
      return raw;
    } catch (err) {
      // Changed meanwhile: look again (it is gone, or holds something new to take).
      if (!(err instanceof Conflict)) throw err;
    }
  }
}

/** Fixed-width decimal so that lexicographic key order is numeric order. */
export const pad = (n: number): string => n.toString().padStart(16, '0');

/**
 * The values of a bounded range in key order, read in one go where the driver can (LevelDB's bulk
 * read costs ~1 µs an entry for small values against ~4 µs through `iterate`, and no key is made).
 * Stores without one are iterated.
 */
export async function readValues(store: Store, range: Range): Promise<string[]> {
  if (store.readValues) return store.readValues(range);
  const values: string[] = [];
  for await (const [, value] of store.iterate(range)) values.push(value);
  return values;
}
