import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { KEYS, nodeReader, type Checkpoint } from './log.ts';
import { Frontier, HASH_SIZE } from './merkle.ts';
import { openNote, parseCheckpoint, type NoteVerifier } from './note.ts';
import { CHUNK, PREV_MISMATCH, SUBTREE_LEVEL, checkChunk, nodeMismatch, type ChunkChecked, type ChunkWork } from './verify-chunk.ts';
import { readValues, type Store } from '../store/store.ts';
import { startWorker } from '../workers.ts';

/**
 * Checking the stored log. `verifyLog` is fsck: it re-derives every leaf hash, chain link and
 * stored tree node from the entries alone, then checks every checkpoint's signature and root
 * against the re-derived tree. `verifyTail` is what opening the log does: the same checks, but only
 * from the latest signed checkpoint to the stored size, so a start costs what was written since the
 * last checkpoint, not the whole history. Both stop at the first bad index, because every later
 * hash depends on it.
 */
export interface LogVerification {
  ok: boolean;
  size: number;
  checkpoints: number;
  root: string;
  problem?: { index?: number; checkpoint_size?: number; message: string };
}

/** The stored log is not what was written: opening it is refused, and the message says where. */
export class LogDamage extends Error {
  /** What the store's guard looks for: damage is not retried. */
  readonly damage = true;
  constructor(
    message: string,
    readonly index?: number,
  ) {
    super(message);
    this.name = 'LogDamage';
  }
}

type Problem = { index: number; message: string };

/** The log's size as `log/meta` records it. */
export async function storedSize(store: Store): Promise<number> {
  return sizeOf(await store.get(KEYS.meta));
}

const sizeOf = (meta: string | undefined): number => (meta === undefined ? 0 : (JSON.parse(meta) as { size: number }).size);

/**
 * Entries [start, end) as stored (undefined where none is), and the stored tree nodes each one
 * completes, in completion order: those of levels up to SUBTREE_LEVEL in `low`, the others in `high`.
 */
interface Chunk {
  start: number;
  raws: Array<string | undefined>;
  low: Array<string | undefined>;
  high: Array<string | undefined>;
}

/** The levels of the nodes appending entry `index` completes: 0, then one more per trailing 1 bit of the index. */
function completedLevels(index: number): number {
  let levels = 1;
  for (let n = index + 1; n % 2 === 0; n /= 2) levels++;
  return levels;
}

/**
 * Entries and the tree nodes they complete, read as values alone, by range (entries [start, end)
 * complete the nodes (level, j) with (j + 1)·2^level − 1 in [start, end), consecutive keys of that
 * level): when a range holds as many values as it should, each is where its position says. A range
 * short of values has a gap, and is read again by key, so that what is missing is named.
 */
async function readChunk(store: Store, start: number, end: number): Promise<Chunk> {
  const levels: Array<{ first: number; count: number }> = [];
  for (let level = 0, width = 1; width <= end; level++, width *= 2) {
    const first = Math.ceil((start + 1) / width) - 1;
    const last = Math.floor(end / width) - 1;
    if (last < first) break;
    levels.push({ first, count: last - first + 1 });
  }
  const [raws, ...byLevel] = await Promise.all([
    readPositions(store, start, end - start, KEYS.entry),
    ...levels.map(({ first, count }, level) => readPositions(store, first, count, (j) => KEYS.node(level, j))),
  ]);
  const low: Array<string | undefined> = [];
  const high: Array<string | undefined> = [];
  for (let index = start; index < end; index++) {
    for (let level = 0, n = completedLevels(index); level < n; level++) {
      (level <= SUBTREE_LEVEL ? low : high).push(byLevel[level]![Math.floor(index / 2 ** level) - levels[level]!.first]);
    }
  }
  return { start, raws, low, high };
}

/** The values under key(first) … key(first + count − 1), by position (undefined where none is stored). */
async function readPositions(store: Store, first: number, count: number, key: (i: number) => string): Promise<Array<string | undefined>> {
  const values = await readValues(store, { gte: key(first), lt: key(first + count) });
  if (values.length === count) return values;
  if (values.length === 0) return new Array<string | undefined>(count);
  const keys: string[] = [];
  for (let i = first; i < first + count; i++) keys.push(key(i));
  return store.getMany(keys);
}

/** Chunks in flight per verification thread (or this one): one being checked, the next ones being read (3 measured quicker than 1 or 2). */
const DEPTH_PER_THREAD = 3;

/**
 * Checks entries [from, to): each present under its own index, canonical, chained to the one before,
 * hashing to its stored leaf, and every tree node it completes matching the stored one. Without
 * `to`, every stored entry from `from` on is checked. `frontier` and `prev` describe the tree
 * before `from` and are advanced in place; `at(size)` runs once the tree has each size in `sizes`,
 * for callers that want the root there. Chunks are read ahead while earlier ones are checked, on
 * `threads` when given (see verify-chunk.ts for what a chunk checks by itself); past `expected`
 * (where the log says it ends), where there is most likely nothing, one at a time.
 */
async function checkEntries(
  store: Store,
  range: { from: number; to?: number; expected?: number },
  state: { frontier: Frontier; prev: string },
  sizes: { has(size: number): boolean; at(size: number): void },
  threads?: VerificationThreads,
): Promise<Problem | undefined> {
  const limit = range.to ?? Number.MAX_SAFE_INTEGER;
  const expected = Math.min(limit, range.expected ?? limit);
  const inFlight: Array<Promise<{ chunk: Chunk; checked: ChunkChecked }>> = [];
  const depth = (threads?.size ?? 1) * DEPTH_PER_THREAD;
  let ahead = range.from;
  // Chunks after the first are aligned, so that whole ones are subtrees; one ends where the log is expected to.
  const readNext = () => {
    const start = ahead;
    const aligned = (Math.floor(start / CHUNK) + 1) * CHUNK;
    const end = Math.min(limit, start < expected ? Math.min(aligned, expected) : aligned);
    ahead = end;
    const job = readChunk(store, start, end).then(async (chunk) => {
      let subtree = start % CHUNK === 0 && end - start === CHUNK;
      for (let n = start + 1; subtree && n < end; n++) if (sizes.has(n)) subtree = false;
      const work: ChunkWork = { start, raws: chunk.raws, low: subtree ? chunk.low : [], subtree };
      return { chunk, checked: await (threads ? threads.check(work) : checkChunk(work)) };
    });
    // A check that stops early leaves the chunks read ahead unread; their failures are nobody's then.
    job.catch(() => undefined);
    inFlight.push(job);
  };
  let index = range.from;
  for (;;) {
    while (inFlight.length < (ahead < expected ? depth : 1) && ahead < limit) readNext();
    const next = inFlight.shift();
    if (!next) break;
    const { chunk, checked } = await next;
    const problem = checked.problem;
    // A first entry that failed its own checks is named for them; otherwise its link comes first.
    if (!(problem && problem.index === chunk.start && problem.kind !== 'node') && checked.firstPrev !== state.prev) return { index, message: PREV_MISMATCH };
    let high = 0;
    if (checked.root) {
      // The chunk's own nodes were checked with it: the tree takes the subtree whole.
      const [, ...above] = state.frontier.appendSubtree(SUBTREE_LEVEL, checked.root);
      for (const node of above) if (chunk.high[high++] !== node.hash.toString('base64')) return { index: index + CHUNK - 1, message: nodeMismatch(node.level, node.index) };
      index += CHUNK;
      if (sizes.has(index)) sizes.at(index);
    } else {
      let low = 0;
      for (let i = 0; i < checked.count; i++, index++) {
        for (const node of state.frontier.append(checked.leaves.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE))) {
          const stored = node.level <= SUBTREE_LEVEL ? chunk.low[low++] : chunk.high[high++];
          if (stored !== node.hash.toString('base64')) return { index, message: nodeMismatch(node.level, node.index) };
        }
        if (sizes.has(index + 1)) sizes.at(index + 1);
      }
    }
    if (checked.count > 0) state.prev = Buffer.from(checked.leaves.subarray((checked.count - 1) * HASH_SIZE, checked.count * HASH_SIZE)).toString('base64');
    if (problem?.kind === 'missing') return missing(store, problem.index, range.to);
    if (problem) return { index: problem.index, message: problem.message };
  }
  if (range.to !== undefined && index !== range.to) return missing(store, index, range.to);
  return undefined;
}

/**
 * Entry `index` is not stored: a gap when a later one is (below `to`), else the end of what is
 * stored, which is a problem only when the log claims `to` entries.
 */
async function missing(store: Store, index: number, to: number | undefined): Promise<Problem | undefined> {
  const lt = to === undefined ? KEYS.entryRange.lt : KEYS.entry(to);
  for await (const [key] of store.iterate({ gte: KEYS.entry(index), lt, limit: 1 })) return { index, message: `entry ${index} is missing (found ${key})` };
  return to === undefined ? undefined : { index, message: `entry ${index} is missing: the log claims ${to} entries` };
}

/** Below this many entries `verifyLog` checks on this thread: starting threads would cost more than they save. */
const THREADS_FROM = 4 * CHUNK;

/**
 * `threads`: how many verification threads check chunks beside this one (0: none). By default one
 * per core, up to 4, for a log of more than a few chunks.
 */
export async function verifyLog(store: Store, logKey: NoteVerifier, options: { threads?: number } = {}): Promise<LogVerification> {
  // Checkpoints first, then the size: beside a serving node (PostgreSQL) a checkpoint signed in
  // between is then never larger than the size read.
  const notes: string[] = [];
  for await (const [, note] of store.iterate(KEYS.checkpointRange)) notes.push(note);
  const size = await storedSize(store);
  const parsed: Array<{ size: number; root: string }> = [];
  for (const note of notes) {
    try {
      parsed.push(verifiedCheckpoint(note, logKey));
    } catch (err) {
      return fail(size, 0, { checkpoint_size: Number(note.split('\n', 2)[1] ?? NaN), message: `checkpoint does not verify: ${(err as Error).message}` });
    }
  }
  const wanted = new Set(parsed.map((cp) => cp.size));
  const state = { frontier: new Frontier(), prev: '' };
  const roots = new Map<number, string>();
  if (wanted.has(0)) roots.set(0, state.frontier.root().toString('base64'));
  const count = options.threads ?? (size >= THREADS_FROM ? Math.min(os.availableParallelism(), 4) : 0);
  const threads = count > 0 ? new VerificationThreads(count) : undefined;
  let problem: Problem | undefined;
  try {
    problem = await checkEntries(store, { from: 0, expected: size }, state, { has: (n) => wanted.has(n), at: (n) => roots.set(n, state.frontier.root().toString('base64')) }, threads);
  } finally {
    await threads?.close();
  }
  if (problem) return fail(size, parsed.length, problem);
  if (state.frontier.size !== size) return fail(size, parsed.length, { index: state.frontier.size, message: `the log claims ${size} entries but holds ${state.frontier.size}` });
  for (const cp of parsed) {
    if (cp.size > size) return fail(size, parsed.length, { checkpoint_size: cp.size, message: 'checkpoint is larger than the log' });
    if (roots.get(cp.size) !== cp.root) return fail(size, parsed.length, { checkpoint_size: cp.size, message: 'checkpoint root does not match the re-derived tree' });
  }
  return { ok: true, size, checkpoints: parsed.length, root: state.frontier.root().toString('base64') };
}

export type ToVerifier = { id: number; work: ChunkWork };
export type FromVerifier = { id: number; checked: ChunkChecked };

/**
 * Threads that check chunks (checkChunk) while this one reads the next: the checks are most of
 * the work, and chunks do not depend on each other. A thread that fails hands what it held back
 * to this one, which checks it here.
 */
class VerificationThreads {
  private readonly workers: Worker[] = [];
  private readonly jobs = new Map<number, { work: ChunkWork; worker: Worker; resolve: (checked: ChunkChecked) => void; reject: (err: unknown) => void }>();
  private nextId = 1;
  private turn = 0;

  constructor(count: number) {
    for (let i = 0; i < count; i++) {
      const worker = startWorker('verify-worker', import.meta.url);
      worker.on('message', ({ id, checked }: FromVerifier) => {
        const job = this.jobs.get(id);
        this.jobs.delete(id);
        job?.resolve(checked);
      });
      worker.on('error', () => this.lost(worker));
      worker.on('exit', () => this.lost(worker));
      this.workers.push(worker);
    }
  }

  get size(): number {
    return Math.max(1, this.workers.length);
  }

  check(work: ChunkWork): Promise<ChunkChecked> {
    const worker = this.workers[this.turn++ % Math.max(1, this.workers.length)];
    if (!worker) return Promise.resolve().then(() => checkChunk(work));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { work, worker, resolve, reject });
      worker.postMessage({ id, work } satisfies ToVerifier);
    });
  }

  private lost(worker: Worker): void {
    const at = this.workers.indexOf(worker);
    if (at < 0) return;
    this.workers.splice(at, 1);
    for (const [id, job] of this.jobs) {
      if (job.worker !== worker) continue;
      this.jobs.delete(id);
      try {
        job.resolve(checkChunk(job.work));
      } catch (err) {
        job.reject(err);
      }
    }
  }

  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

/**
 * The tail a log opens on. The latest checkpoint Writ settled (its entries moved out of LevelDB's
 * write-ahead log before it was signed) is where the check starts: the frontier it commits to is
 * rebuilt from stored nodes, then every entry after it is checked up to the stored size, and the
 * latest checkpoint of all (perhaps one signed for a proof, not settled) must match the tree at its
 * size. `acknowledged` is what this process already answered for (after a failed write): the
 * store must still hold at least that, with the same root.
 */
export async function verifyTail(
  store: Store,
  logKey: NoteVerifier,
  acknowledged?: { size: number; root: Buffer },
): Promise<{ frontier: Frontier; lastLeaf: Buffer | undefined; latest: Checkpoint | undefined; meta: string | undefined }> {
  // The checkpoints before the size: a node sharing the store may sign one in between, and it
  // never covers more than the size read after it.
  const signed: Array<Checkpoint & { settled: boolean }> = [];
  for await (const [, note] of store.iterate({ ...KEYS.checkpointRange, reverse: true })) {
    let cp: { size: number; root: string };
    try {
      cp = verifiedCheckpoint(note, logKey);
    } catch (err) {
      throw new LogDamage(`a stored checkpoint does not verify against the log key: ${(err as Error).message}`);
    }
    const settled = (await store.get(KEYS.ephemeral(cp.size))) === undefined;
    signed.push({ ...cp, note, settled });
    if (settled) break;
  }
  const meta = await store.get(KEYS.meta);
  const size = sizeOf(meta);
  const latest = signed[0];
  const start = signed.find((cp) => cp.settled);
  const from = start?.size ?? 0;
  if (acknowledged && size < acknowledged.size) {
    throw new LogDamage(`the store holds ${size} log entries but ${acknowledged.size} were acknowledged: entries from ${size} on are lost`, size);
  }
  if (latest && size < latest.size) throw new LogDamage(`the store holds ${size} log entries but a checkpoint of ${latest.size} entries was signed: entries from ${size} on are lost`, size);
  let frontier: Frontier;
  let prev = '';
  try {
    frontier = await Frontier.fromNodes(from, nodeReader(store));
    if (from > 0) prev = (await nodeReader(store)(0, from - 1)).toString('base64');
  } catch (err) {
    throw new LogDamage(`the tree under the checkpoint of ${from} entries cannot be read: ${(err as Error).message}`);
  }
  if (start && frontier.root().toString('base64') !== start.root) {
    throw new LogDamage(`the stored tree of the first ${from} entries does not match the signed checkpoint of that size`);
  }
  // The roots this check must agree with, at the sizes where it will pass them.
  const expected = new Map<number, { root: string; what: string }>();
  if (latest && latest !== start) expected.set(latest.size, { root: latest.root, what: `the signed checkpoint of ${latest.size} entries` });
  if (acknowledged && acknowledged.size >= from) expected.set(acknowledged.size, { root: acknowledged.root.toString('base64'), what: `the tree of ${acknowledged.size} entries this process acknowledged` });
  const state = { frontier, prev };
  let mismatch: string | undefined;
  const rootAt = (n: number) => {
    const want = expected.get(n);
    if (want && !mismatch && state.frontier.root().toString('base64') !== want.root) mismatch = want.what;
  };
  rootAt(from);
  const problem = await checkEntries(store, { from, to: size }, state, { has: (n) => expected.has(n), at: rootAt });
  if (problem) throw new LogDamage(`log entry ${problem.index}: ${problem.message}`, problem.index);
  if (mismatch) throw new LogDamage(`the stored tree does not match ${mismatch}`);
  // An entry past the recorded size means the size itself was lost.
  // (Unless another node sharing the store has appended it since, and moved the size on.)
  if ((await store.get(KEYS.entry(size))) !== undefined && (await storedSize(store)) <= size) {
    throw new LogDamage(`log entry ${size} is stored beyond the recorded size of ${size}`, size);
  }
  return { frontier: state.frontier, lastLeaf: size > 0 ? Buffer.from(state.prev, 'base64') : undefined, latest: latest ? { size: latest.size, root: latest.root, note: latest.note } : undefined, meta };
}

/** Opens a stored checkpoint note with the log key and returns its size and root. */
function verifiedCheckpoint(note: string, logKey: NoteVerifier): { size: number; root: string } {
  const cp = parseCheckpoint(openNote(note, [logKey]).text);
  if (cp.origin !== logKey.name) throw new Error(`origin ${cp.origin} is not ${logKey.name}`);
  return { size: cp.size, root: cp.rootHash.toString('base64') };
}

function fail(size: number, checkpoints: number, problem: NonNullable<LogVerification['problem']>): LogVerification {
  return { ok: false, size, checkpoints, root: '', problem };
}
