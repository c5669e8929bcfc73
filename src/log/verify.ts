import { canonicalMembers, isCanonical, memberString } from './jcs.ts';
import { KEYS, nodeReader, type Checkpoint, type LogEntry } from './log.ts';
import { Frontier, leafHash } from './merkle.ts';
import { openNote, parseCheckpoint, type NoteVerifier } from './note.ts';
import { readRange, type Store } from '../store/store.ts';

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

async function storedSize(store: Store): Promise<number> {
  const meta = await store.get(KEYS.meta);
  return meta === undefined ? 0 : (JSON.parse(meta) as { size: number }).size;
}

/** Entries read per store call while checking (with their tree nodes): one round trip, not thousands. */
const CHUNK = 4096;

/** Entries [start, end) as stored (undefined where none is), and the stored tree nodes each one completes, in completion order. */
interface Chunk {
  start: number;
  raws: Array<string | undefined>;
  nodes: Array<string | undefined>;
}

/** The levels of the nodes appending entry `index` completes: 0, then one more per trailing 1 bit of the index. */
function completedLevels(index: number): number {
  let levels = 1;
  for (let n = index + 1; n % 2 === 0; n /= 2) levels++;
  return levels;
}

/**
 * Entries by key (for values this size one `getMany` is the cheapest read); the tree nodes they
 * complete by range, one per level: entries [start, end) complete the nodes (level, j) with
 * (j + 1)·2^level − 1 in [start, end), consecutive keys of that level.
 */
async function readChunk(store: Store, start: number, end: number): Promise<Chunk> {
  const entryKeys: string[] = [];
  for (let index = start; index < end; index++) entryKeys.push(KEYS.entry(index));
  const levels: Array<{ first: number; count: number }> = [];
  for (let level = 0, width = 1; width <= end; level++, width *= 2) {
    const first = Math.ceil((start + 1) / width) - 1;
    const last = Math.floor(end / width) - 1;
    if (last < first) break;
    levels.push({ first, count: last - first + 1 });
  }
  const [raws, ...stored] = await Promise.all([
    store.getMany(entryKeys),
    ...levels.map(({ first, count }, level) => readRange(store, { gte: KEYS.node(level, first), lt: KEYS.node(level, first + count) })),
  ]);
  // Each level's values by position; a missing node stays undefined (and fails its comparison).
  const byLevel = levels.map(({ first, count }, level) => {
    const values = new Array<string | undefined>(count);
    for (const [key, value] of stored[level]!) {
      const j = Number(key.slice(KEYS.node(level, 0).length - 16)) - first;
      if (j >= 0 && j < count) values[j] = value;
    }
    return values;
  });
  const nodes: Array<string | undefined> = [];
  for (let index = start; index < end; index++) {
    for (let level = 0, n = completedLevels(index); level < n; level++) {
      nodes.push(byLevel[level]![Math.floor(index / 2 ** level) - levels[level]!.first]);
    }
  }
  return { start, raws, nodes };
}

/**
 * Checks entries [from, to): each present under its own index, canonical, chained to the one before,
 * hashing to its stored leaf, and every tree node it completes matching the stored one. Without
 * `to`, every stored entry from `from` on is checked. `frontier` and `prev` describe the tree
 * before `from` and are advanced in place; `after(size)` runs after each entry, for callers that
 * want the root at some sizes. Entries and nodes are read a chunk at a time, the next chunk while
 * this one is checked.
 */
async function checkEntries(
  store: Store,
  range: { from: number; to?: number },
  state: { frontier: Frontier; prev: string },
  after?: (size: number) => void,
): Promise<Problem | undefined> {
  const limit = range.to ?? Number.MAX_SAFE_INTEGER;
  const read = (start: number) => {
    const chunk = readChunk(store, start, Math.min(limit, start + CHUNK));
    // A check that stops early leaves the chunk read ahead unread; its failure is nobody's then.
    chunk.catch(() => undefined);
    return chunk;
  };
  let index = range.from;
  let next = index < limit ? read(index) : undefined;
  while (next) {
    const chunk = await next;
    const end = chunk.start + chunk.raws.length;
    next = end < limit && chunk.raws[chunk.raws.length - 1] !== undefined ? read(end) : undefined;
    let node = 0;
    for (const raw of chunk.raws) {
      if (raw === undefined) return missing(store, index, range.to);
      // The common case in one pass over the text; anything else gets the checks that say what is wrong.
      const members = canonicalMembers(raw);
      if (members === undefined || members.index !== String(index) || memberString(members.prev ?? '') !== state.prev) {
        const problem = checkEntry(raw, index, state.prev);
        if (problem) return problem;
      }
      const leaf = leafHash(raw);
      for (const completed of state.frontier.append(leaf)) {
        if (chunk.nodes[node++] !== completed.hash.toString('base64')) {
          return { index, message: completed.level === 0 ? 'entry does not hash to its stored leaf hash' : `stored tree node ${completed.level}/${completed.index} does not match` };
        }
      }
      state.prev = leaf.toString('base64');
      index++;
      after?.(index);
    }
  }
  if (range.to !== undefined && index !== range.to) return missing(store, index, range.to);
  return undefined;
}

/** The checks of one entry, in order, each with its own message; undefined when it passes them all. */
function checkEntry(raw: string, index: number, prev: string): Problem | undefined {
  let entry: LogEntry;
  try {
    entry = JSON.parse(raw) as LogEntry;
  } catch {
    return { index, message: 'entry is not valid JSON' };
  }
  if (!isCanonical(raw, entry)) return { index, message: 'entry is not in canonical (RFC 8785) form' };
  if (entry.index !== index) return { index, message: `entry says index ${entry.index}` };
  if (entry.prev !== prev) return { index, message: "prev does not match the previous entry's hash" };
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

export async function verifyLog(store: Store, logKey: NoteVerifier): Promise<LogVerification> {
  const size = await storedSize(store);
  const parsed: Array<{ size: number; root: string }> = [];
  for await (const [, note] of store.iterate(KEYS.checkpointRange)) {
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
  const problem = await checkEntries(store, { from: 0 }, state, (n) => {
    if (wanted.has(n)) roots.set(n, state.frontier.root().toString('base64'));
  });
  if (problem) return fail(size, parsed.length, problem);
  if (state.frontier.size !== size) return fail(size, parsed.length, { index: state.frontier.size, message: `the log claims ${size} entries but holds ${state.frontier.size}` });
  for (const cp of parsed) {
    if (cp.size > size) return fail(size, parsed.length, { checkpoint_size: cp.size, message: 'checkpoint is larger than the log' });
    if (roots.get(cp.size) !== cp.root) return fail(size, parsed.length, { checkpoint_size: cp.size, message: 'checkpoint root does not match the re-derived tree' });
  }
  return { ok: true, size, checkpoints: parsed.length, root: state.frontier.root().toString('base64') };
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
): Promise<{ frontier: Frontier; lastLeaf: Buffer | undefined; latest: Checkpoint | undefined }> {
  const size = await storedSize(store);
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
  const problem = await checkEntries(store, { from, to: size }, state, rootAt);
  if (problem) throw new LogDamage(`log entry ${problem.index}: ${problem.message}`, problem.index);
  if (mismatch) throw new LogDamage(`the stored tree does not match ${mismatch}`);
  // An entry past the recorded size means the size itself was lost.
  if ((await store.get(KEYS.entry(size))) !== undefined) throw new LogDamage(`log entry ${size} is stored beyond the recorded size of ${size}`, size);
  return { frontier: state.frontier, lastLeaf: size > 0 ? Buffer.from(state.prev, 'base64') : undefined, latest: latest ? { size: latest.size, root: latest.root, note: latest.note } : undefined };
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
