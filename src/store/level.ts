import { Level } from 'level';
import type { BatchOp, Range, Store } from './store.ts';

/** LevelDB in the data directory: the embedded default, nothing else to run. */
export class LevelStore implements Store {
  private constructor(private readonly db: Level<string, string>) {}

  static async open(location: string): Promise<LevelStore> {
    const db = new Level<string, string>(location, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    return new LevelStore(db);
  }

  get(key: string): Promise<string | undefined> {
    return this.db.get(key);
  }

  getMany(keys: string[]): Promise<Array<string | undefined>> {
    return this.db.getMany(keys);
  }

  batch(ops: BatchOp[], options: { sync?: boolean } = {}): Promise<void> {
    // `sync` makes LevelDB fsync its write-ahead log before the promise resolves.
    return this.db.batch(ops, { sync: options.sync ?? false } as never);
  }

  async *iterate(range: Range): AsyncIterable<[string, string]> {
    const options: Record<string, unknown> = { reverse: range.reverse ?? false, limit: range.limit ?? -1 };
    if (range.gte !== undefined) options.gte = range.gte;
    if (range.lt !== undefined) options.lt = range.lt;
    for await (const entry of this.db.iterator(options)) yield entry;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
