import { canonicalMembers, isCanonical, memberString } from './jcs.ts';
import { Frontier, HASH_SIZE, leafHash } from './merkle.ts';
import type { LogEntry } from './log.ts';

/**
 * The checks of one chunk of stored log entries that need nothing outside the chunk, so that chunks
 * can be checked side by side (on verification threads, see verify.ts): each entry present,
 * canonical, under its own index and chained to the entry before it in the chunk, and its leaf
 * hash. A chunk that is one whole aligned subtree also has its inner tree nodes (levels up to
 * SUBTREE_LEVEL) re-derived and compared with the stored ones here; the caller then adds the
 * subtree to its tree by the root alone.
 */

/** Nodes up to this level are checked with their chunk. */
export const SUBTREE_LEVEL = 12;
/** Entries per chunk: one aligned subtree of 2^SUBTREE_LEVEL leaves. */
export const CHUNK = 2 ** SUBTREE_LEVEL;

export interface ChunkWork {
  /** The index of the first entry. */
  start: number;
  /** The stored entries from `start` on (undefined where none is stored). */
  raws: Array<string | undefined>;
  /**
   * With `subtree`: the stored nodes of levels up to SUBTREE_LEVEL that the entries complete, in the
   * order they complete (entry by entry, each from level 0 up). Empty otherwise.
   */
  low: Array<string | undefined>;
  /** Whether the chunk is a whole aligned subtree whose inner nodes are checked here. */
  subtree: boolean;
}

export type ChunkProblem = { index: number; message: string; kind: 'entry' | 'node' } | { index: number; kind: 'missing' };

export interface ChunkChecked {
  /** How many entries passed every check made here. */
  count: number;
  /** Their leaf hashes, HASH_SIZE bytes each, in order. */
  leaves: Uint8Array;
  /** The first entry's prev member, which the caller compares with the leaf hash before the chunk. */
  firstPrev?: string;
  /** The first check that failed; later entries were not looked at. */
  problem?: ChunkProblem;
  /** For a subtree without a problem: its root hash. */
  root?: Uint8Array;
}

export function checkChunk(work: ChunkWork): ChunkChecked {
  const { start, raws, low } = work;
  const leaves = new Uint8Array(raws.length * HASH_SIZE);
  const tree = work.subtree ? new Frontier() : undefined;
  // The hash before the chunk is the caller's: the first entry's link is handed back, not checked.
  let prev: string | undefined;
  let firstPrev: string | undefined;
  let node = 0;
  const stop = (count: number, problem: ChunkProblem): ChunkChecked => ({ count, leaves: leaves.subarray(0, count * HASH_SIZE), firstPrev, problem });
  for (let i = 0; i < raws.length; i++) {
    const raw = raws[i];
    const index = start + i;
    if (raw === undefined) return stop(i, { index, kind: 'missing' });
    // The common case in one pass over the text; anything else gets the checks that say what is wrong.
    const members = canonicalMembers(raw);
    let link = members && memberString(members.prev ?? '');
    if (members === undefined || members.index !== String(index) || link === undefined || (prev !== undefined && link !== prev)) {
      const checked = checkEntry(raw, index, prev);
      if ('message' in checked) return stop(i, { ...checked, kind: 'entry' });
      link = checked.prev;
    }
    if (i === 0) firstPrev = link;
    const leaf = leafHash(raw);
    leaves.set(leaf, i * HASH_SIZE);
    if (tree) {
      for (const completed of tree.append(leaf)) {
        if (low[node++] !== completed.hash.toString('base64')) return stop(i, { index, kind: 'node', message: nodeMismatch(completed.level, start / 2 ** completed.level + completed.index) });
      }
    }
    prev = leaf.toString('base64');
  }
  return { count: raws.length, leaves, firstPrev, ...(tree ? { root: tree.root() } : {}) };
}

export function nodeMismatch(level: number, index: number): string {
  return level === 0 ? 'entry does not hash to its stored leaf hash' : `stored tree node ${level}/${index} does not match`;
}

/** The checks of one entry, in order, each with its own message; its prev link when it passes them all (`prev` undefined: not compared). */
function checkEntry(raw: string, index: number, prev: string | undefined): { index: number; message: string } | { prev: string | undefined } {
  let entry: LogEntry;
  try {
    entry = JSON.parse(raw) as LogEntry;
  } catch {
    return { index, message: 'entry is not valid JSON' };
  }
  if (!isCanonical(raw, entry)) return { index, message: 'entry is not in canonical (RFC 8785) form' };
  if (entry.index !== index) return { index, message: `entry says index ${entry.index}` };
  if (prev !== undefined && entry.prev !== prev) return { index, message: PREV_MISMATCH };
  return { prev: typeof entry.prev === 'string' ? entry.prev : undefined };
}

export const PREV_MISMATCH = "prev does not match the previous entry's hash";
