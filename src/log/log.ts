import { Conflict, pad, type BatchOp, type Expectation, type Store, type Transaction } from '../store/store.ts';
import { canonicalize } from './canonical.ts';
import { Frontier, consistencyProof, frontierNodeIds, inclusionProof, leafHash, type NodeReader } from './merkle.ts';
import { formatCheckpoint, signNote } from './note.ts';
import type { SigningKey } from '../crypto/keys.ts';
import { WritError } from '../errors.ts';
import { storedSize, verifyTail } from './verify.ts';

/**
 * The append-only log. The append path is a pipeline, and no step can leave half a state behind:
 * 1. sequence: the entry's position, time, chain link and leaf hash are computed from the current
 *    tail without changing it;
 * 2. companions: the caller's `extra` ops are built for that position (records carrying their log
 *    anchor, receipts signed for it); if this throws, nothing has changed;
 * 3. commit: the tail advances and the entry, its tree nodes and its companions join the pending
 *    batch, synchronously, so the hash chain and leaf order are fixed the moment `append` returns.
 *    A companion may still be in the making (a receipt on the signing thread): its batch is
 *    written once it is ready, and one that fails fails its batch as a failed write does.
 * Then group commit writes everything sequenced while the previous batch was being written as one
 * synced batch, and a caller's promise resolves only once its batch is on disk: a receipt built
 * after `await append(...)` always points at a durable entry.
 *
 * A failed write breaks the log: whatever was sequenced behind it chains onto entries that do not
 * exist, so every pending append fails and nothing more is accepted until `reload` has re-verified
 * the stored tail against the latest signed checkpoint (the store's guard calls it once it has
 * reopened the database).
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

/** A page of the log as stored (see TransparencyLog.storedRange); null where the store holds nothing. */
export interface StoredRange {
  size: number;
  from: number;
  to: number;
  entries: Array<{ index: number; entry: string | null; nodes: Array<string | null> }>;
  checkpoints: Array<{ size: number; note: string }>;
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
  /** Marks a checkpoint signed only because a proof needed one: pruned when a newer one is signed. */
  ephemeral: (size: number) => `log/ce/${pad(size)}`,
  ephemeralRange: { gte: 'log/ce/', lt: 'log/ce/~' },
};

/** Past this many undurable entries the log pushes back with 503 and Retry-After. */
const MAX_PENDING = 20_000;
/** Proofs that need a newer checkpoint share one signed at most this often. */
const ON_DEMAND_INTERVAL_MS = 1000;

/** An op to write with an entry, or one still being made (a signature on its way): its batch waits for it. */
export type Companion = BatchOp | Promise<BatchOp>;

/** What an append is made of, kept until it is durable: it is placed again if the log moved under it. */
interface Item {
  type: string;
  data: Record<string, unknown>;
  time: string;
  extra: Companion[] | ((at: Appended) => Companion[]);
  /** What the caller read its decision from: the entry is written only while the store still holds it. */
  expect: readonly Expectation[];
  resolve: (at: Appended) => void;
  reject: (err: unknown) => void;
  /** Set each time the item is placed: its position, its ops, the store conditions left to check. */
  at?: Appended;
  ops: BatchOp[];
  making: Array<Promise<void>>;
  checks: Expectation[];
}

/** A batch's write, done: the `log/meta` it wrote, and how long it took. */
interface Written {
  meta: string;
  seconds: number;
}

interface Batch {
  items: Item[];
  /** The tail the batch was placed on, and where it ends (the durable tree once it is written). */
  base: number;
  end: { size: number; root: Buffer };
  /** What the batch's own ops leave in each key they write, for the conditions of later items. */
  written: Map<string, string | undefined>;
}

/** What an observer of durable batches sees of each entry. */
export interface CommittedEntry {
  type: string;
  data: Record<string, unknown>;
}

export interface LogOptions {
  origin: string;
  key: SigningKey;
  commitWindowMs?: number;
  /** Why the store refuses writes, while it does: appends are refused before they are sequenced. */
  writeRefusal?: () => WritError | undefined;
  /** Sees each batch once it is durable, with how long its synced write took (metrics); it cannot affect the log. */
  onCommit?: (entries: readonly CommittedEntry[], seconds: number) => void;
}

export interface AppendOptions {
  /** Store conditions (values read before deciding): unmet, the append fails with a Conflict and nothing of it is written. */
  expect?: readonly Expectation[];
}

/** Batches placed again because the log moved under them, before one gives up (each attempt is another node's progress). */
const MAX_ATTEMPTS = 100;

export class TransparencyLog {
  private frontier: Frontier;
  private lastLeaf: Buffer | undefined;
  /** The stored `log/meta` of the tail appends are placed on (undefined: an empty store). */
  private tail: { size: number; meta: string | undefined };
  private pending: Batch | undefined;
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private broken: string | undefined;
  private durable: { size: number; root: Buffer };
  private latest: Checkpoint | undefined;
  private signing: Promise<unknown> = Promise.resolve();
  private onDemand: Promise<Checkpoint> | undefined;
  private lastSignedAt = 0;
  private closed = false;
  /** Batches placed again before they were written, because another writer moved the log (or a condition failed). */
  readonly stats = { replaced: 0 };
  readonly origin: string;
  private readonly key: SigningKey;
  private readonly commitWindowMs: number;
  private readonly writeRefusal: () => WritError | undefined;
  private readonly onCommit: (entries: readonly CommittedEntry[], seconds: number) => void;

  private constructor(
    private readonly store: Store,
    options: LogOptions,
    tail: { frontier: Frontier; lastLeaf: Buffer | undefined; latest: Checkpoint | undefined; meta: string | undefined },
  ) {
    this.origin = options.origin;
    this.key = options.key;
    this.commitWindowMs = options.commitWindowMs ?? 0;
    this.writeRefusal = options.writeRefusal ?? (() => undefined);
    this.onCommit = options.onCommit ?? (() => {});
    this.frontier = tail.frontier;
    this.lastLeaf = tail.lastLeaf;
    this.tail = { size: tail.frontier.size, meta: tail.meta };
    this.durable = { size: tail.frontier.size, root: tail.frontier.root() };
    this.latest = tail.latest;
  }

  /** Opens the log after checking its stored tail against the latest signed checkpoint (throws LogDamage). */
  static async open(store: Store, options: LogOptions): Promise<TransparencyLog> {
    const tail = await verifyTail(store, { name: options.origin, publicKeyRaw: options.key.publicRaw });
    return new TransparencyLog(store, options, tail);
  }

  /** The size this process has seen durable (other nodes sharing the store may have added more: see storedSize). */
  get size(): number {
    return this.durable.size;
  }

  /** Nothing waits to be written or is being written. */
  get idle(): boolean {
    return !this.pending && !this.writing && !this.timer;
  }

  /** Why the log refuses appends, while it does. */
  get fault(): string | undefined {
    return this.broken;
  }

  /**
   * Sequences an entry now and resolves once it (and `extra`) are durable. `extra` may be a
   * function of the entry's position, so records can carry their log anchor in the same batch; it
   * is called again, with the new position, if the entry has to be placed again (another node
   * sharing the store appended first), so it must only build ops and set fields, never count.
   */
  append(type: string, data: Record<string, unknown>, extra: Companion[] | ((at: Appended) => Companion[]) = [], options: AppendOptions = {}): Promise<Appended> {
    if (this.closed) return Promise.reject(new WritError('storage_unavailable', 'the log is shutting down'));
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    if ((this.pending?.items.length ?? 0) >= MAX_PENDING) {
      return Promise.reject(new WritError('overloaded', 'too many writes in flight; retry shortly', { retry_after: 1 }));
    }
    return new Promise<Appended>((resolve, reject) => {
      const item: Item = { type, data, time: new Date().toISOString(), extra, expect: options.expect ?? [], resolve, reject, ops: [], making: [], checks: [] };
      this.pending ??= this.newBatch();
      if (this.place(item, this.pending)) this.schedule();
    });
  }

  private newBatch(): Batch {
    return { items: [], base: this.frontier.size, end: { size: this.frontier.size, root: this.frontier.root() }, written: new Map() };
  }

  /**
   * Places an item at the end of the tail, into `batch`:
   * 1. its conditions, against what earlier items of the batch write (the rest go to the store);
   * 2. its position, time, chain link and leaf hash, from the tail as it is;
   * 3. its companions, built for that position; if this throws, nothing has changed;
   * 4. the tail advances and its ops join the batch, synchronously, so the hash chain and leaf
   *    order are fixed the moment it returns. Says whether it was placed (else it is rejected).
   */
  private place(item: Item, batch: Batch): boolean {
    try {
      const checks: Expectation[] = [];
      for (const e of item.expect) {
        if (!batch.written.has(e.key)) checks.push(e);
        else if (batch.written.get(e.key) !== e.value) throw new Conflict([{ key: e.key, value: batch.written.get(e.key) }]);
      }
      const index = this.frontier.size;
      const entry: LogEntry = { v: 1, index, time: item.time, type: item.type, prev: this.lastLeaf?.toString('base64') ?? '', data: item.data };
      // Canonical once: the text is what is hashed (as UTF-8) and what is stored.
      const text = canonicalize(entry);
      const leaf = leafHash(text);
      const at: Appended = { index, leafHash: leaf.toString('base64'), time: item.time };
      const companions = typeof item.extra === 'function' ? item.extra(at) : item.extra;
      // From here on nothing throws.
      const ops: BatchOp[] = [];
      for (const node of this.frontier.append(leaf)) ops.push({ type: 'put', key: KEYS.node(node.level, node.index), value: node.hash.toString('base64') });
      this.lastLeaf = leaf;
      ops.push({ type: 'put', key: KEYS.entry(index), value: text });
      const making: Array<Promise<void>> = [];
      for (const op of companions) {
        if (!(op instanceof Promise)) {
          ops.push(op);
          batch.written.set(op.key, op.type === 'put' ? op.value : undefined);
          continue;
        }
        // A companion in the making takes its slot now and fills it once made.
        const slot = ops.push({ type: 'del', key: '' }) - 1;
        const filled = op.then((made) => void (ops[slot] = made));
        // Its failure is the batch's, met when the batch is written (or never, if placed again).
        filled.catch(() => undefined);
        making.push(filled);
      }
      Object.assign(item, { at, ops, making, checks });
      batch.items.push(item);
      batch.end = { size: this.frontier.size, root: this.frontier.root() };
      return true;
    } catch (err) {
      item.reject(err);
      return false;
    }
  }

  private refusal(): WritError | undefined {
    return this.writeRefusal() ?? (this.broken ? unavailable() : undefined);
  }

  /**
   * An idle log commits at once: after the requests read in this turn of the event loop have
   * been sequenced (setImmediate), so they share one fsync. While a commit is in flight the next
   * batch forms behind it and is written the moment it lands, so under load a batch holds what
   * arrived during one fsync. A commit window above 0 makes an idle log wait that long first.
   */
  private schedule(): void {
    if (this.timer || this.writing) return;
    const flush = () => {
      this.timer = undefined;
      void this.flushLoop();
    };
    this.timer = this.commitWindowMs > 0 ? setTimeout(flush, this.commitWindowMs) : setImmediate(flush);
  }

  /** One batch at a time, in sequence order; whatever queued meanwhile becomes the next batch. */
  private flushLoop(): Promise<void> {
    if (this.writing) return this.writing;
    // With nothing to write, run() would finish before `writing` is even set, and leave it set.
    if (!this.pending || this.broken) return Promise.resolve();
    let settled = false;
    const run = async () => {
      try {
        while (this.pending && !this.broken) {
          const batch = this.pending;
          this.pending = undefined;
          await this.write(batch);
        }
      } finally {
        // Cleared in the same step that saw the queue empty, so no append can slip between the
        // last check and this and find `writing` still set (it would then never be flushed).
        this.writing = undefined;
        settled = true;
      }
    };
    const running = run();
    // A run that ended without awaiting anything (a batch that failed at once) has already
    // cleared `writing`; setting it now would leave it set for good.
    if (!settled) this.writing = running;
    return running;
  }

  /**
   * Writes a batch as one synced, conditional store batch: only if `log/meta` still says the tail
   * it was placed on (no other writer appended meanwhile) and every item's conditions hold. A
   * conflict writes nothing: the items whose conditions failed are refused (their callers decide
   * again), the tail is read again if it moved, and the rest are placed again and retried. Where
   * the store has transactions of its own (PostgreSQL), the retry holds the sequencing lock
   * (`log/meta`'s) from reading the tail to the commit, so it cannot be outrun again.
   */
  private async write(batch: Batch): Promise<void> {
    const exclusive = this.store.exclusive?.bind(this.store);
    let outcome: Written | Conflict | undefined;
    try {
      outcome = await this.attempt(batch, this.store);
      if (outcome instanceof Conflict && exclusive) {
        outcome = await exclusive(KEYS.meta, async (tx) => {
          let result: Written | Conflict | undefined = outcome;
          // Each round refuses at least one item whose condition failed, or moves to the held tail.
          while (result instanceof Conflict) {
            await this.replace(batch, result.found, tx);
            result = await this.attempt(batch, tx);
          }
          return result;
        });
      }
      for (let attempt = 1; outcome instanceof Conflict; attempt++) {
        if (attempt >= MAX_ATTEMPTS) {
          // Outrun too often by other writers: this batch is turned away (503, retry), the log is fine.
          await this.replace(batch, outcome.found, this.store, new WritError('overloaded', 'the log is busy with other writers; retry shortly', { retry_after: 1 }));
        } else await this.replace(batch, outcome.found, this.store);
        outcome = await this.attempt(batch, this.store);
      }
    } catch (err) {
      this.fail(err, batch);
      return;
    }
    if (!outcome) return;
    this.tail = { size: batch.end.size, meta: outcome.meta };
    this.durable = batch.end;
    for (const item of batch.items) item.resolve(item.at!);
    this.observe(batch.items, outcome.seconds);
  }

  /**
   * One conditional write of the batch through `writer` (the store, or a transaction holding the
   * sequencing lock): what it wrote, or the Conflict that stopped it; undefined when nothing is
   * left to write (every item refused, or a companion failed, which fails the batch).
   */
  private async attempt(batch: Batch, writer: Transaction): Promise<Written | Conflict | undefined> {
    try {
      // Not awaited when everything is ready: the next write then starts before the answers
      // of the last one are worked out (an await would queue it behind all of them).
      const making = batch.items.flatMap((item) => item.making);
      if (making.length > 0) await Promise.all(making);
    } catch (err) {
      // A companion that could not be made: nothing of this batch was written, and the tail
      // is re-derived from the store (nothing else will ask for that: the store is fine).
      this.fail(err, batch);
      void this.reload().catch(() => undefined);
      return undefined;
    }
    if (batch.items.length === 0) return undefined;
    const meta = JSON.stringify({ size: batch.end.size });
    const ops = batch.items.flatMap((item) => item.ops);
    ops.push({ type: 'put', key: KEYS.meta, value: meta });
    const expect = conditions([{ key: KEYS.meta, value: batch.base === this.tail.size ? this.tail.meta : JSON.stringify({ size: batch.base }) }, ...batch.items.flatMap((item) => item.checks)]);
    const started = performance.now();
    try {
      await writer.batch(ops, { sync: true, expect });
    } catch (err) {
      if (err instanceof Conflict) return err;
      throw err;
    }
    return { meta, seconds: (performance.now() - started) / 1000 };
  }

  /**
   * After a conflict: refuses the items whose conditions the store contradicts, reads the tail
   * again if another writer moved it, and places the rest of this batch and everything queued
   * behind it again, in order, on that tail.
   */
  private async replace(batch: Batch, found: readonly Expectation[], reader: Transaction, refuseAll?: WritError): Promise<void> {
    const now = new Map(found.map((f) => [f.key, f.value]));
    const meta = now.has(KEYS.meta) ? now.get(KEYS.meta) : undefined;
    const size = now.has(KEYS.meta) ? (meta === undefined ? 0 : (JSON.parse(meta) as { size: number }).size) : batch.base;
    ({ frontier: this.frontier, lastLeaf: this.lastLeaf } = await storedTail(reader, size));
    if (now.has(KEYS.meta)) this.tail = { size, meta };
    now.delete(KEYS.meta);
    this.stats.replaced++;
    const queued = this.pending?.items ?? [];
    const again = this.newBatch();
    for (const item of batch.items) {
      const stale = item.checks.find((c) => now.has(c.key) && now.get(c.key) !== c.value);
      if (refuseAll) item.reject(refuseAll);
      else if (stale) item.reject(new Conflict([{ key: stale.key, value: now.get(stale.key) }]));
      else this.place(item, again);
    }
    Object.assign(batch, again);
    // What queued behind this batch was placed on where it used to end.
    if (this.pending) {
      this.pending = this.newBatch();
      for (const item of queued) this.place(item, this.pending);
      if (this.pending.items.length === 0) this.pending = undefined;
    }
  }

  private observe(items: readonly Item[], seconds: number): void {
    try {
      this.onCommit(items.map(({ type, data }) => ({ type, data })), seconds);
    } catch {
      // an observer's failure is its own: the batch is durable either way
    }
  }

  /** Fails the batch that did not make it and everything sequenced behind it. */
  private fail(err: unknown, batch: Batch): void {
    this.broken = `a log write failed: ${(err as Error).message}`;
    const rejected = [batch, this.pending].filter((b): b is Batch => b !== undefined);
    this.pending = undefined;
    const error = unavailable();
    for (const b of rejected) for (const item of b.items) item.reject(error);
  }

  /**
   * After the store was reopened: re-derives the tail from what is stored, checks it against the
   * latest signed checkpoint and against everything this process acknowledged, and accepts
   * appends again. Throws LogDamage when acknowledged entries are gone.
   */
  async reload(): Promise<void> {
    const tail = await verifyTail(this.store, { name: this.origin, publicKeyRaw: this.key.publicRaw }, this.durable);
    this.frontier = tail.frontier;
    this.lastLeaf = tail.lastLeaf;
    this.tail = { size: tail.frontier.size, meta: tail.meta };
    this.durable = { size: tail.frontier.size, root: tail.frontier.root() };
    if (tail.latest && (!this.latest || tail.latest.size >= this.latest.size)) this.latest = tail.latest;
    // Nothing should be waiting (a failure rejects every pending append), but nothing may hang either.
    for (const item of this.pending?.items ?? []) item.reject(unavailable());
    this.pending = undefined;
    this.broken = undefined;
  }

  /** Waits until everything appended so far is durable (or has failed). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = undefined;
    }
    await this.flushLoop();
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  /** The tree as stored, which other nodes sharing the store may have extended beyond what this one wrote. */
  private async stored(): Promise<{ size: number; root: Buffer }> {
    const size = await storedSize(this.store);
    if (size <= this.durable.size) return this.durable;
    return { size, root: (await storedTail(this.store, size)).frontier.root() };
  }

  /** The stored checkpoint of the largest size (its signature was checked when it was made, or at start). */
  private async newestCheckpoint(): Promise<Checkpoint | undefined> {
    for await (const [key, note] of this.store.iterate({ ...KEYS.checkpointRange, reverse: true, limit: 1 })) {
      const size = Number(key.slice('log/c/'.length));
      if (this.latest?.size === size) return this.latest;
      const root = (await storedTail(this.store, size)).frontier.root();
      return { size, root: root.toString('base64'), note };
    }
    return undefined;
  }

  /** The log's size as stored: with nodes sharing the store, what any of them has made durable. */
  async storedSize(): Promise<number> {
    return (await this.stored()).size;
  }

  /** The newest checkpoint as stored: signed by this node or another sharing the store. */
  async newest(): Promise<Checkpoint | undefined> {
    // While storage cannot be read, the newest this node knows is still signed and true.
    const stored = await this.newestCheckpoint().catch(() => undefined);
    if (stored && (!this.latest || stored.size > this.latest.size)) this.latest = stored;
    return this.latest;
  }

  latestCheckpoint(): Checkpoint | undefined {
    return this.latest;
  }

  /**
   * Signs a checkpoint of the durable tree unless the latest one already covers it. A checkpoint
   * is only ever extended: it is signed over what is on disk, never below the latest one, and
   * stored (synced) before anyone sees it. For all but proofs' checkpoints the store first settles
   * its recent writes into its tables, so what such a checkpoint covers no longer depends on the
   * write-ahead log (the start-up check begins there).
   */
  checkpoint(options: { force?: boolean; ephemeral?: boolean } = {}): Promise<Checkpoint> {
    const run = async (): Promise<Checkpoint> => {
      const refusal = this.refusal();
      if (refusal) throw refusal;
      const { size, root } = await this.stored();
      // Another node sharing the store may have signed one already.
      await this.newest();
      if (this.latest && this.latest.size >= size && !options.force) return this.latest;
      if (this.latest && size < this.latest.size) {
        throw new Error(`refusing to sign a checkpoint of size ${size} below the latest one (${this.latest.size})`);
      }
      // A proof's checkpoint is not settled (strangers may ask for one a second); the start-up
      // check then begins at the latest one that was (see verifyTail).
      if (!options.ephemeral) await this.store.settle();
      const text = formatCheckpoint({ origin: this.origin, size, rootHash: root });
      const note = signNote(text, { name: this.origin, privateKey: this.key.privateKey, publicKeyRaw: this.key.publicRaw });
      const ops: BatchOp[] = [{ type: 'put', key: KEYS.checkpoint(size), value: note }];
      if (options.ephemeral) {
        // Only the newest proof checkpoint is kept; those the log signs on its interval stay.
        for await (const [marker] of this.store.iterate(KEYS.ephemeralRange)) {
          const old = Number(marker.slice('log/ce/'.length));
          if (old !== size) ops.push({ type: 'del', key: marker }, { type: 'del', key: KEYS.checkpoint(old) });
        }
        ops.push({ type: 'put', key: KEYS.ephemeral(size), value: '' });
      } else {
        ops.push({ type: 'del', key: KEYS.ephemeral(size) });
      }
      await this.store.batch(ops, { sync: true });
      this.lastSignedAt = Date.now();
      const checkpoint = { size, root: root.toString('base64'), note };
      if (!this.latest || this.latest.size <= size) this.latest = checkpoint;
      return checkpoint;
    };
    // One signing at a time, in order, so two never race to store different views.
    const signed = this.signing.then(run, run);
    this.signing = signed.catch(() => undefined);
    return signed;
  }

  /** A checkpoint covering `index`: the latest if it does, else one shared by everyone asking within a second. */
  private async covering(index: number): Promise<Checkpoint> {
    if (this.latest && this.latest.size > index) return this.latest;
    this.onDemand ??= (async () => {
      const wait = this.lastSignedAt + ON_DEMAND_INTERVAL_MS - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      return this.checkpoint({ ephemeral: true });
    })().finally(() => (this.onDemand = undefined));
    const checkpoint = await this.onDemand;
    return checkpoint.size > index ? checkpoint : this.covering(index);
  }

  /** An inclusion proof against a signed checkpoint that covers the index. */
  async proof(index: number): Promise<{ index: number; tree_size: number; leaf_hash: string; hashes: string[]; checkpoint: string }> {
    const size = Number.isSafeInteger(index) && index >= this.durable.size ? await storedSize(this.store) : this.durable.size;
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
      throw new WritError('not_found', `no log entry at index ${index}`, { field: 'index', size });
    }
    const checkpoint = await this.covering(index);
    const [hashes, leaf] = await withNodes(this.store, (read) => Promise.all([inclusionProof(read, index, checkpoint.size), read(0, index)]));
    return {
      index,
      tree_size: checkpoint.size,
      leaf_hash: leaf.toString('base64'),
      hashes: hashes.map((h) => h.toString('base64')),
      checkpoint: checkpoint.note,
    };
  }

  async consistency(oldSize: number, newSize: number): Promise<string[]> {
    const proof = await withNodes(this.store, (read) => consistencyProof(read, oldSize, newSize));
    return proof.map((h) => h.toString('base64'));
  }

  /**
   * Entries [from, from + limit) exactly as stored, each with the stored tree nodes it completed,
   * and the stored checkpoints a verifier passes on the way (those of sizes from < s <= to, size 0
   * on the first page, and on the last page any claiming more than the log holds): what a reader
   * needs to re-derive the log as `verifyLog` does, without trusting the server's own check.
   * Nothing is parsed, so damage is shown to the reader rather than failing the read.
   */
  async storedRange(from: number, limit: number): Promise<StoredRange> {
    const size = Math.max(this.durable.size, await storedSize(this.store));
    const to = Math.min(size, from + limit);
    const entries: StoredRange['entries'] = [];
    for (let index = from; index < to; index++) {
      const nodes: Array<string | null> = [];
      for (let level = 0; (index + 1) % 2 ** level === 0; level++) nodes.push((await this.store.get(KEYS.node(level, Math.floor(index / 2 ** level)))) ?? null);
      entries.push({ index, entry: (await this.store.get(KEYS.entry(index))) ?? null, nodes });
    }
    const checkpoints: StoredRange['checkpoints'] = [];
    const range = { gte: KEYS.checkpoint(from === 0 ? 0 : from + 1), lt: to === size ? KEYS.checkpointRange.lt : KEYS.checkpoint(to + 1) };
    for await (const [key, note] of this.store.iterate(range)) checkpoints.push({ size: Number(key.slice('log/c/'.length)), note });
    return { size, from, to, entries, checkpoints };
  }

  async *entries(from = 0, to = Number.MAX_SAFE_INTEGER): AsyncIterable<{ entry: LogEntry; raw: string }> {
    const end = Math.min(to, Math.max(this.durable.size, await storedSize(this.store)));
    if (from >= end) return;
    let expected = from;
    for await (const [key, raw] of this.store.iterate({ gte: KEYS.entry(from), lt: KEYS.entry(end) })) {
      // An export must never skip an entry silently.
      if (key !== KEYS.entry(expected)) throw new WritError('storage_corrupt', `log entry ${expected} is missing from the store`, { index: expected });
      expected++;
      yield { entry: JSON.parse(raw) as LogEntry, raw };
    }
    if (expected !== end) throw new WritError('storage_corrupt', `log entry ${expected} is missing from the store`, { index: expected });
  }
}

/** Each condition once (a batch of one agent's decisions expects its key record fifty times). */
function conditions(all: readonly Expectation[]): Expectation[] {
  const seen = new Set<string>();
  return all.filter((e) => {
    const id = JSON.stringify([e.key, e.value ?? null]);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

const unavailable = () => new WritError('storage_unavailable', 'storage is not accepting writes right now; this request was not acknowledged, retry shortly', { retry_after: 1 });

/**
 * Runs a proof's computation over tree nodes read in one store call: which nodes a proof needs
 * depends only on its sizes and indexes, never on their hashes, so a first run with stand-in hashes
 * names them all, and the real run reads them from what one `getMany` returned (a proof at a
 * million entries needs about 20; read one after another they cost a millisecond).
 */
async function withNodes<T>(store: Store, compute: (read: NodeReader) => Promise<T>): Promise<T> {
  const keys = new Set<string>();
  const standIn = Buffer.alloc(32);
  await compute(async (level, index) => (keys.add(KEYS.node(level, index)), standIn));
  const wanted = [...keys];
  const values = await store.getMany(wanted);
  const stored = new Map(wanted.map((key, i) => [key, values[i]]));
  return compute(async (level, index) => {
    const value = stored.get(KEYS.node(level, index));
    if (value === undefined) throw new WritError('storage_corrupt', `log tree node ${level}/${index} is missing from the store`);
    return Buffer.from(value, 'base64');
  });
}

/** The tree's right edge at `size`, and its last leaf, as stored: the nodes read in one call. */
async function storedTail(store: Pick<Store, 'getMany'>, size: number): Promise<{ frontier: Frontier; lastLeaf: Buffer | undefined }> {
  const ids = frontierNodeIds(size);
  const keys = [...ids.map((id) => KEYS.node(id.level, id.index)), ...(size > 0 ? [KEYS.node(0, size - 1)] : [])];
  const values = await store.getMany(keys);
  const hashes = values.map((value, i) => {
    if (value === undefined) throw new WritError('storage_corrupt', `log tree node ${keys[i]} is missing from the store`);
    return Buffer.from(value, 'base64');
  });
  return { frontier: Frontier.restore(size, hashes.slice(0, ids.length)), lastLeaf: size > 0 ? hashes[ids.length] : undefined };
}

export function nodeReader(store: Store): NodeReader {
  return async (level, index) => {
    const value = await store.get(KEYS.node(level, index));
    if (value === undefined) throw new WritError('storage_corrupt', `log tree node ${level}/${index} is missing from the store`);
    return Buffer.from(value, 'base64');
  };
}
