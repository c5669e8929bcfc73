// RFC 6962 / RFC 9162 Merkle tree math over SHA-256: hashing, proofs from stored nodes, verifiers and an append-only frontier.
import crypto, { createHash } from 'node:crypto';
import { HASH_SIZE, extendRange, isHash, isSize, rangeRoot, rootFromInclusion as treeRootFromInclusion, type CompactRange } from './tree.ts';

export { HASH_SIZE };

/** MTH({}) = SHA-256 of the empty string (RFC 6962 §2.1). */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

/** A complete aligned subtree: the hash of leaves [index·2^level, (index+1)·2^level). */
export type StoredNode = { level: number; index: number; hash: Buffer };

/** Returns the stored complete aligned node (level 0 = leaf hashes); it must exist for every range the proofs ask for. */
export type NodeReader = (level: number, index: number) => Promise<Buffer>;

/**
 * SHA-256(0x00 ‖ entry): the 0x00 prefix keeps leaves from ever colliding with interior nodes.
 * An entry given as text is hashed as its UTF-8 bytes, in one call (no Buffer of it is made).
 */
export function leafHash(entry: Uint8Array | string): Buffer {
  if (typeof entry === 'string') return crypto.hash('sha256', `\u0000${entry}`, 'buffer');
  return createHash('sha256').update(LEAF_PREFIX).update(entry).digest();
}

/** SHA-256(0x01 ‖ left ‖ right), hashed from one scratch buffer (crypto.hash copies it before returning). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
  NODE_INPUT.set(left, 1);
  NODE_INPUT.set(right, 1 + HASH_SIZE);
  return crypto.hash('sha256', NODE_INPUT, 'buffer');
}

const NODE_INPUT = Buffer.alloc(1 + 2 * HASH_SIZE, 0x01);

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

// ---------------------------------------------------------------------------
// Size arithmetic. Sizes can exceed 2^32, so this uses arithmetic instead of JS's 32-bit bitwise operators.

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/** The largest power of two strictly less than n (n ≥ 2): RFC 6962's split point k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function log2Exact(powerOfTwo: number): number {
  let level = 0;
  for (let p = powerOfTwo; p > 1; p /= 2) level++;
  return level;
}

function half(n: number): number {
  return Math.floor(n / 2);
}

function isOdd(n: number): boolean {
  return n % 2 === 1;
}

function assertSize(name: string, n: number): void {
  if (!isSize(n)) throw new RangeError(`${name} must be a non-negative safe integer, got ${n}`);
}

// ---------------------------------------------------------------------------
// Reference implementation.

/** MTH straight from RFC 6962 §2.1's recursive definition; quadratic-ish and meant for tests only. */
export function mthOfLeaves(leafHashes: readonly Buffer[]): Buffer {
  const n = leafHashes.length;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leafHashes[0]!;
  const k = splitPoint(n);
  return nodeHash(mthOfLeaves(leafHashes.slice(0, k)), mthOfLeaves(leafHashes.slice(k)));
}

// ---------------------------------------------------------------------------
// Proof construction from stored nodes.

/**
 * MTH of leaves [start, end), read from stored complete aligned nodes with O(log n) reads.
 * `start` must be aligned the way RFC 6962's recursion produces ranges: a multiple of the split point of every sub-range visited.
 */
export async function subtreeRoot(read: NodeReader, start: number, end: number): Promise<Buffer> {
  assertSize('start', start);
  assertSize('end', end);
  if (end < start) throw new RangeError(`subtreeRoot: end ${end} < start ${start}`);
  const n = end - start;
  if (n === 0) return EMPTY_ROOT;
  if (isPowerOfTwo(n)) {
    if (start % n !== 0) throw new RangeError(`subtreeRoot: [${start}, ${end}) is not aligned`);
    return read(log2Exact(n), start / n);
  }
  const k = splitPoint(n);
  // The left half is complete, so it costs one read; only the right edge recurses.
  const left = await subtreeRoot(read, start, start + k);
  const right = await subtreeRoot(read, start + k, end);
  return nodeHash(left, right);
}

/** RFC 6962 §2.1.1 PATH(index, D[0:size]): the audit path, ordered bottom-up (leaf's sibling first) as in RFC 9162 §2.1.3.1. */
export async function inclusionProof(read: NodeReader, index: number, size: number): Promise<Buffer[]> {
  assertSize('index', index);
  assertSize('size', size);
  if (index >= size) throw new RangeError(`inclusionProof: index ${index} is not below size ${size}`);
  return path(read, index, 0, size);
}

async function path(read: NodeReader, m: number, start: number, end: number): Promise<Buffer[]> {
  const n = end - start;
  if (n === 1) return [];
  const k = splitPoint(n);
  if (m < k) {
    const below = await path(read, m, start, start + k);
    below.push(await subtreeRoot(read, start + k, end));
    return below;
  }
  const below = await path(read, m - k, start + k, end);
  below.push(await subtreeRoot(read, start, start + k));
  return below;
}

/** RFC 6962 §2.1.2 PROOF(oldSize, D[0:newSize]); empty when oldSize is 0 or equals newSize. */
export async function consistencyProof(read: NodeReader, oldSize: number, newSize: number): Promise<Buffer[]> {
  assertSize('oldSize', oldSize);
  assertSize('newSize', newSize);
  if (oldSize > newSize) throw new RangeError(`consistencyProof: oldSize ${oldSize} > newSize ${newSize}`);
  if (oldSize === 0 || oldSize === newSize) return [];
  return subproof(read, oldSize, 0, newSize, true);
}

async function subproof(read: NodeReader, m: number, start: number, end: number, startsAtOldRoot: boolean): Promise<Buffer[]> {
  const n = end - start;
  if (m === n) {
    // The verifier already knows the old root, so it is only sent when this subtree is not the whole old tree.
    return startsAtOldRoot ? [] : [await subtreeRoot(read, start, end)];
  }
  const k = splitPoint(n);
  if (m <= k) {
    const below = await subproof(read, m, start, start + k, startsAtOldRoot);
    below.push(await subtreeRoot(read, start + k, end));
    return below;
  }
  const below = await subproof(read, m - k, start + k, end, false);
  below.push(await subtreeRoot(read, start, start + k));
  return below;
}

// ---------------------------------------------------------------------------
// Verifiers (pure). They return false rather than throw, so untrusted input can be passed straight in.

function equalHash(a: Uint8Array, b: Uint8Array): boolean {
  return isHash(a) && isHash(b) && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Recomputes the root from an inclusion proof per RFC 9162 §2.1.3.2; null when the proof's shape does not fit (index, size). */
export function rootFromInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Buffer | null {
  const root = treeRootFromInclusion(nodeHash, index, size, leaf, proof);
  return root === null ? null : Buffer.from(root);
}

/** RFC 9162 §2.1.3.2: true iff `proof` shows `leaf` at `index` in the tree of `size` leaves with root `root`. */
export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  const computed = rootFromInclusion(index, size, leaf, proof);
  return computed !== null && equalHash(computed, root);
}

/**
 * RFC 9162 §2.1.4.2 for 0 < oldSize < newSize. Outside that range: equal sizes need equal roots and an empty proof,
 * and oldSize 0 needs an empty proof and oldRoot = EMPTY_ROOT (every tree extends the empty tree).
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!isSize(oldSize) || !isSize(newSize) || oldSize > newSize) return false;
  if (!isHash(oldRoot) || !isHash(newRoot) || !proof.every(isHash)) return false;
  if (oldSize === 0) return proof.length === 0 && equalHash(oldRoot, EMPTY_ROOT);
  if (oldSize === newSize) return proof.length === 0 && equalHash(oldRoot, newRoot);

  if (proof.length === 0) return false;
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Buffer = Buffer.from(path[0]!);
  let sr: Buffer = Buffer.from(path[0]!);
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return equalHash(fr, oldRoot) && equalHash(sr, newRoot) && sn === 0;
}

// ---------------------------------------------------------------------------
// Frontier (compact range covering [0, size)).

/**
 * The complete aligned subtrees of the binary decomposition of `size`, largest (leftmost) first:
 * exactly the nodes `Frontier.restore` / `Frontier.fromNodes` need to rebuild a frontier of that size.
 */
export function frontierNodeIds(size: number): Array<{ level: number; index: number }> {
  assertSize('size', size);
  const ids: Array<{ level: number; index: number }> = [];
  let start = 0;
  let width = 1;
  while (width * 2 <= size) width *= 2;
  for (let level = log2Exact(width); width >= 1; width /= 2, level--) {
    if (start + width <= size) {
      ids.push({ level, index: start / width });
      start += width;
    }
  }
  return ids;
}

/** The right edge of an append-only tree in O(log n) memory: one hash per set bit of `size`; `new Frontier()` is empty. */
export class Frontier {
  #size = 0;
  #range: CompactRange<Buffer> = { levels: [], hashes: [] };

  /** Rebuilds from the hashes of `frontierNodeIds(size)`, in that order. */
  static restore(size: number, nodes: readonly Uint8Array[]): Frontier {
    const ids = frontierNodeIds(size);
    if (nodes.length !== ids.length) {
      throw new RangeError(`Frontier.restore: size ${size} needs ${ids.length} nodes, got ${nodes.length}`);
    }
    if (!nodes.every(isHash)) throw new RangeError('Frontier.restore: every node must be a 32-byte hash');
    const frontier = new Frontier();
    frontier.#size = size;
    frontier.#range = { levels: ids.map((id) => id.level), hashes: nodes.map((h) => Buffer.from(h)) };
    return frontier;
  }

  /** Reads the `frontierNodeIds(size)` nodes through `read` and rebuilds the frontier, e.g. after a restart. */
  static async fromNodes(size: number, read: NodeReader): Promise<Frontier> {
    const ids = frontierNodeIds(size);
    const nodes = await Promise.all(ids.map((id) => read(id.level, id.index)));
    return Frontier.restore(size, nodes);
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Appends one leaf hash and returns every complete aligned node that became complete with it
   * (the leaf itself at level 0, then each merged parent), so the caller can persist them for proofs.
   */
  append(leaf: Uint8Array): StoredNode[] {
    if (!isHash(leaf)) throw new RangeError('Frontier.append: leaf hash must be 32 bytes');
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new RangeError('Frontier.append: tree is full');
    const leafIndex = this.#size;
    const completed = extendRange(this.#range, leafIndex, Buffer.from(leaf), nodeHash);
    this.#size = leafIndex + 1;
    return completed;
  }

  /**
   * Appends a whole aligned subtree of 2^level leaves by its root hash (the tree's size must be a
   * multiple of 2^level) and returns the nodes that became complete, from that level up.
   */
  appendSubtree(level: number, hash: Uint8Array): StoredNode[] {
    const width = 2 ** level;
    if (!isHash(hash)) throw new RangeError('Frontier.appendSubtree: the subtree hash must be 32 bytes');
    if (this.#size % width !== 0) throw new RangeError(`Frontier.appendSubtree: size ${this.#size} is not a multiple of ${width}`);
    if (this.#size + width > Number.MAX_SAFE_INTEGER) throw new RangeError('Frontier.appendSubtree: tree is full');
    const completed = extendRange(this.#range, this.#size, Buffer.from(hash), nodeHash, level);
    this.#size += width;
    return completed;
  }

  /** MTH of all leaves appended so far; EMPTY_ROOT when empty. */
  root(): Buffer {
    return rangeRoot(this.#range, EMPTY_ROOT, nodeHash);
  }

  /** The frontier's stored nodes, in `frontierNodeIds(size)` order. */
  nodes(): StoredNode[] {
    return frontierNodeIds(this.#size).map((id, i) => ({ ...id, hash: this.#range.hashes[i]! }));
  }

  clone(): Frontier {
    const copy = new Frontier();
    copy.#size = this.#size;
    copy.#range = { levels: [...this.#range.levels], hashes: [...this.#range.hashes] };
    return copy;
  }
}
