import { Conflict, unmet, type BatchOp, type BatchOptions, type Range, type Store } from './store.ts';

/** The in-memory store: the reference behaviour for the conformance suite, and a test double. */
export class MemoryStore implements Store {
  private readonly map = new Map<string, string>();
  private closed = false;

  async get(key: string): Promise<string | undefined> {
    this.check();
    return this.map.get(key);
  }

  async getMany(keys: string[]): Promise<Array<string | undefined>> {
    this.check();
    return keys.map((k) => this.map.get(k));
  }

  async batch(ops: BatchOp[], options: BatchOptions = {}): Promise<void> {
    this.check();
    const expect = options.expect ?? [];
    const found = unmet(expect, expect.map((e) => this.map.get(e.key)));
    if (found.length > 0) throw new Conflict(found);
    for (const op of ops) {
      if (op.type === 'put') this.map.set(op.key, op.value);
      else this.map.delete(op.key);
    }
  }

  async *iterate(range: Range): AsyncIterable<[string, string]> {
    this.check();
    // A snapshot, as the other drivers' iterators read: taken before the first entry is yielded.
    let entries = [...this.map]
      .filter(([k]) => (range.gte === undefined || k >= range.gte) && (range.lt === undefined || k < range.lt))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (range.reverse) entries.reverse();
    if (range.limit !== undefined && range.limit >= 0) entries = entries.slice(0, range.limit);
    yield* entries;
  }

  async settle(): Promise<void> {
    this.check();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private check(): void {
    if (this.closed) throw new Error('store is closed');
  }
}
