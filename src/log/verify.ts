import { canonicalize } from './canonical.ts';
import { KEYS, nodeReader, type Checkpoint, type LogEntry } from './log.ts';
import { Frontier, leafHash } from './merkle.ts';
import { openNote, parseCheckpoint, type NoteVerifier } from './note.ts';
import type { Store } from '../store/store.ts';

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

/**
 * Checks entries [from, to): each present under its own index, canonical, chained to the one before,
 * hashing to its stored leaf, and every tree node it completes matching the stored one. `frontier`
 * and `prev` describe the tree before `from` and are advanced in place; `after(size)` runs after
 * each entry, for callers that want the root at some sizes.
 */
async function checkEntries(
  store: Store,
  range: { from: number; to?: number },
  state: { frontier: Frontier; prev: string },
  after?: (size: number) => void,
): Promise<Problem | undefined> {
  let expected = range.from;
  const end = range.to === undefined ? KEYS.entryRange.lt : KEYS.entry(range.to);
  for await (const [key, raw] of store.iterate({ gte: KEYS.entry(range.from), lt: end })) {
    const index = expected;
    if (key !== KEYS.entry(index)) return { index, message: `entry ${index} is missing (found ${key})` };
    let entry: LogEntry;
    try {
      entry = JSON.parse(raw) as LogEntry;
    } catch {
      return { index, message: 'entry is not valid JSON' };
    }
    if (canonicalize(entry) !== raw) return { index, message: 'entry is not in canonical (RFC 8785) form' };
    if (entry.index !== index) return { index, message: `entry says index ${entry.index}` };
    if (entry.prev !== state.prev) return { index, message: "prev does not match the previous entry's hash" };
    const leaf = leafHash(Buffer.from(raw, 'utf8'));
    for (const node of state.frontier.append(leaf)) {
      const stored = await store.get(KEYS.node(node.level, node.index));
      if (stored !== node.hash.toString('base64')) {
        return { index, message: node.level === 0 ? 'entry does not hash to its stored leaf hash' : `stored tree node ${node.level}/${node.index} does not match` };
      }
    }
    state.prev = leaf.toString('base64');
    expected++;
    after?.(expected);
  }
  if (range.to !== undefined && expected !== range.to) return { index: expected, message: `entry ${expected} is missing: the log claims ${range.to} entries` };
  return undefined;
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
