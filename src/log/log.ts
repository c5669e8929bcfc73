import type { BatchOp, Store } from '../store/store.ts';
import { pad } from '../store/store.ts';
import { canonicalBytes } from './canonical.ts';
import { Frontier, consistencyProof, inclusionProof, leafHash, type NodeReader } from './merkle.ts';
import { formatCheckpoint, signNote } from './note.ts';
import type { SigningKey } from '../crypto/keys.ts';
import { WritError } from '../errors.ts';

/**
 * The append-only log. The append path is a pipeline: sequence (synchronously, so the hash chain
 * and leaf order are fixed the moment `append` is called) → group commit (one synced LevelDB batch
 * for everything sequenced while the previous batch was being written) → resolve. A caller's
 * promise resolves only once its entry, its tree nodes and its `extra` ops are on disk together,
 * so a receipt built after `await append(...)` always points at a durable entry.
 */
export interface LogEntry {
  v: 1;
  index: number;
  time: string;
  type: string;
  /** Leaf hash of the previous entry (standard base64), empty for the first. */
  prev: string;
  data: Record<string, unknown>;
}

export interface Appended {
  index: number;
  leafHash: string;
  time: string;
}

export interface Checkpoint {
  size: number;
  root: string;
  note: string;
}

export const KEYS = {
  meta: 'log/meta',
  entry: (i: number) => `log/e/${pad(i)}`,
  entryRange: { gte: 'log/e/', lt: 'log/e/~' },
  node: (level: number, i: number) => `log/n/${level.toString().padStart(2, '0')}/${pad(i)}`,
  checkpoint: (size: number) => `log/c/${pad(size)}`,
  checkpointRange: { gte: 'log/c/', lt: 'log/c/~' },
};

/** Past this many undurable entries the log pushes back with 503 and Retry-After. */
const MAX_PENDING = 20_000;

interface Batch {
  ops: BatchOp[];
  waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
  size: number;
  root: Buffer;
}

export class TransparencyLog {
  private frontier: Frontier;
  private lastLeaf: Buffer | undefined;
  private pending: Batch | undefined;
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private broken: unknown;
  private durable: { size: number; root: Buffer };
  private latest: Checkpoint | undefined;
  private checkpointing: Promise<Checkpoint> | undefined;
  private closed = false;

  private constructor(
    private readonly store: Store,
    readonly origin: string,
    private readonly key: SigningKey,
    private readonly commitWindowMs: number,
    frontier: Frontier,
    lastLeaf: Buffer | undefined,
    latest: Checkpoint | undefined,
  ) {
    this.frontier = frontier;
    this.lastLeaf = lastLeaf;
    this.durable = { size: frontier.size, root: frontier.root() };
    this.latest = latest;
  }

  static async open(store: Store, options: { origin: string; key: SigningKey; commitWindowMs?: number }) {
    const { frontier, lastLeaf } = await TransparencyLog.loadTail(store);
    let latest: Checkpoint | undefined;
    for await (const [, note] of store.iterate({ ...KEYS.checkpointRange, reverse: true, limit: 1 })) {
      latest = parseStoredCheckpoint(note);
    }
    return new TransparencyLog(store, options.origin, options.key, options.commitWindowMs ?? 2, frontier, lastLeaf, latest);
  }

  private static async loadTail(store: Store): Promise<{ frontier: Frontier; lastLeaf: Buffer | undefined }> {
    const meta = await store.get(KEYS.meta);
    const size = meta === undefined ? 0 : (JSON.parse(meta) as { size: number }).size;
    const frontier = await Frontier.fromNodes(size, nodeReader(store));
    const lastLeaf = size > 0 ? await nodeReader(store)(0, size - 1) : undefined;
    return { frontier, lastLeaf };
  }

  get size(): number {
    return this.durable.size;
  }

  /**
   * Sequences an entry now and resolves once it (and `extra`) are durable. `extra` may be a
   * function of the entry's position, so records can carry their log anchor in the same batch.
   */
  append(type: string, data: Record<string, unknown>, extra: BatchOp[] | ((at: Appended) => BatchOp[]) = []): Promise<Appended> {
    if (this.closed) return Promise.reject(new WritError('storage_unavailable', 'the log is shutting down'));
    if (this.broken) return Promise.reject(new WritError('storage_unavailable', 'the log cannot write right now'));
    const batch = (this.pending ??= { ops: [], waiters: [], size: 0, root: Buffer.alloc(0) });
    if (batch.waiters.length >= MAX_PENDING) {
      return Promise.reject(new WritError('overloaded', 'too many writes in flight; retry shortly', { retry_after: 1 }));
    }
    const index = this.frontier.size;
    const time = new Date().toISOString();
    const entry: LogEntry = { v: 1, index, time, type, prev: this.lastLeaf?.toString('base64') ?? '', data };
    const bytes = canonicalBytes(entry);
    const leaf = leafHash(bytes);
    for (const node of this.frontier.append(leaf)) {
      batch.ops.push({ type: 'put', key: KEYS.node(node.level, node.index), value: node.hash.toString('base64') });
    }
    this.lastLeaf = leaf;
    const at: Appended = { index, leafHash: leaf.toString('base64'), time };
    batch.ops.push({ type: 'put', key: KEYS.entry(index), value: bytes.toString('utf8') }, ...(typeof extra === 'function' ? extra(at) : extra));
    const done = new Promise<void>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    this.schedule();
    return done.then(() => at);
  }

  private schedule(): void {
    if (this.timer || this.writing) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flushLoop();
    }, this.commitWindowMs);
  }

  /** One batch at a time, in sequence order; whatever queued meanwhile becomes the next batch. */
  private flushLoop(): Promise<void> {
    if (this.writing) return this.writing;
    const run = async () => {
      try {
        while (this.pending) {
          const batch = this.pending;
          this.pending = undefined;
          batch.size = this.frontier.size;
          batch.root = this.frontier.root();
          // Entries sequenced after this point belong to the next batch, whose size is larger.
          batch.ops.push({ type: 'put', key: KEYS.meta, value: JSON.stringify({ size: batch.size }) });
          try {
            await this.store.batch(batch.ops, { sync: true });
            this.durable = { size: batch.size, root: batch.root };
            for (const w of batch.waiters) w.resolve();
          } catch (err) {
            await this.fail(err, batch);
          }
        }
      } finally {
        // Cleared in the same step that saw the queue empty, so no append can slip between the
        // last check and this and find `writing` still set (it would then never be flushed).
        this.writing = undefined;
      }
    };
    this.writing = run();
    return this.writing;
  }

  /**
   * A failed write leaves the in-memory tree ahead of the disk, and everything sequenced after it
   * chains onto entries that do not exist: fail all of them, then reload the tail from disk.
   */
  private async fail(err: unknown, batch: Batch): Promise<void> {
    this.broken = err;
    const rejected = [batch, this.pending].filter((b): b is Batch => b !== undefined);
    this.pending = undefined;
    try {
      const { frontier, lastLeaf } = await TransparencyLog.loadTail(this.store);
      this.frontier = frontier;
      this.lastLeaf = lastLeaf;
      this.broken = undefined;
    } catch {
      // Stay broken: every append is refused until a restart reloads the tail.
    }
    // Answered only now, so a client that retries at once meets the recovered log.
    const error = new WritError('storage_unavailable', 'the log could not write; nothing was recorded');
    for (const b of rejected) for (const w of b.waiters) w.reject(error);
  }

  /** Waits until everything appended so far is durable. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.flushLoop();
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  latestCheckpoint(): Checkpoint | undefined {
    return this.latest;
  }

  /** Signs a checkpoint of the durable tree unless the latest one already covers it. */
  async checkpoint(options: { force?: boolean } = {}): Promise<Checkpoint> {
    if (this.checkpointing) await this.checkpointing.catch(() => undefined);
    const { size, root } = this.durable;
    if (this.latest && this.latest.size === size && !options.force) return this.latest;
    this.checkpointing = (async () => {
      const text = formatCheckpoint({ origin: this.origin, size, rootHash: root });
      const note = signNote(text, { name: this.origin, privateKey: this.key.privateKey, publicKeyRaw: this.key.publicRaw });
      await this.store.batch([{ type: 'put', key: KEYS.checkpoint(size), value: note }], { sync: true });
      const checkpoint = { size, root: root.toString('base64'), note };
      if (!this.latest || this.latest.size <= size) this.latest = checkpoint;
      return checkpoint;
    })();
    try {
      return await this.checkpointing;
    } finally {
      this.checkpointing = undefined;
    }
  }

  /** An inclusion proof against the latest checkpoint, signing a fresh one if it does not cover the index. */
  async proof(index: number): Promise<{ index: number; tree_size: number; leaf_hash: string; hashes: string[]; checkpoint: string }> {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.durable.size) {
      throw new WritError('not_found', `no log entry at index ${index}`, { field: 'index', size: this.durable.size });
    }
    let checkpoint = this.latest;
    if (!checkpoint || checkpoint.size <= index) checkpoint = await this.checkpoint();
    const read = nodeReader(this.store);
    const hashes = await inclusionProof(read, index, checkpoint.size);
    return {
      index,
      tree_size: checkpoint.size,
      leaf_hash: (await read(0, index)).toString('base64'),
      hashes: hashes.map((h) => h.toString('base64')),
      checkpoint: checkpoint.note,
    };
  }

  async consistency(oldSize: number, newSize: number): Promise<string[]> {
    const proof = await consistencyProof(nodeReader(this.store), oldSize, newSize);
    return proof.map((h) => h.toString('base64'));
  }

  async *entries(from = 0, to = Number.MAX_SAFE_INTEGER): AsyncIterable<{ entry: LogEntry; raw: string }> {
    const end = Math.min(to, this.durable.size);
    if (from >= end) return;
    for await (const [, raw] of this.store.iterate({ gte: KEYS.entry(from), lt: KEYS.entry(end) })) {
      yield { entry: JSON.parse(raw) as LogEntry, raw };
    }
  }
}

export function nodeReader(store: Store): NodeReader {
  return async (level, index) => {
    const value = await store.get(KEYS.node(level, index));
    if (value === undefined) throw new Error(`log node ${level}/${index} is missing`);
    return Buffer.from(value, 'base64');
  };
}

function parseStoredCheckpoint(note: string): Checkpoint {
  const [, size, root] = note.split('\n');
  return { size: Number(size), root: root ?? '', note };
}
