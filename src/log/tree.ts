// RFC 6962 / RFC 9162 tree math that needs no Node API: the server (merkle.ts, with node:crypto) and
// the dashboard's log verifier (in a browser worker) run this same code, each with its own SHA-256.

export const HASH_SIZE = 32;

/** SHA-256(0x01 ‖ left ‖ right), computed by whichever SHA-256 the caller has. */
export type NodeHash<H extends Uint8Array> = (left: Uint8Array, right: Uint8Array) => H;

/** A complete aligned subtree: the hash of leaves [index·2^level, (index+1)·2^level). */
export type CompletedNode<H extends Uint8Array> = { level: number; index: number; hash: H };

export function isSize(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

export function isHash(h: Uint8Array): boolean {
  return h instanceof Uint8Array && h.length === HASH_SIZE;
}

// Sizes can exceed 2^32, so this uses arithmetic instead of JS's 32-bit bitwise operators.
const half = (n: number): number => Math.floor(n / 2);
const isOdd = (n: number): boolean => n % 2 === 1;

/** Recomputes the root from an inclusion proof per RFC 9162 §2.1.3.2; null when the proof's shape does not fit (index, size). */
export function rootFromInclusion<H extends Uint8Array>(nodeHash: NodeHash<H>, index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Uint8Array | null {
  if (!isSize(index) || !isSize(size) || index >= size) return null;
  if (!isHash(leaf) || !proof.every(isHash)) return null;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : null;
}

/**
 * The right edge of an append-only tree: parallel stacks of subtree levels and hashes, leftmost
 * (largest) first, levels strictly decreasing; one entry per set bit of the size.
 */
export interface CompactRange<H extends Uint8Array> {
  levels: number[];
  hashes: H[];
}

/**
 * Appends the leaf hash of entry `leafIndex` (the range's size) and returns every complete aligned
 * node that became complete with it: the leaf at level 0, then each merged parent. With `level`
 * above 0 the hash is that of a whole aligned subtree of 2^level leaves starting at `leafIndex`
 * (the range's size, a multiple of 2^level), and the nodes returned start at that level.
 */
export function extendRange<H extends Uint8Array>(range: CompactRange<H>, leafIndex: number, leaf: H, nodeHash: NodeHash<H>, level = 0): Array<CompletedNode<H>> {
  let hash = leaf;
  const completed: Array<CompletedNode<H>> = [{ level, index: Math.floor(leafIndex / 2 ** level), hash }];
  while (range.levels.length > 0 && range.levels[range.levels.length - 1] === level) {
    range.levels.pop();
    const left = range.hashes.pop()!;
    hash = nodeHash(left, hash);
    level++;
    completed.push({ level, index: Math.floor(leafIndex / 2 ** level), hash });
  }
  range.levels.push(level);
  range.hashes.push(hash);
  return completed;
}

/** MTH of the leaves a range covers; `empty` (SHA-256 of nothing) when it covers none. */
export function rangeRoot<H extends Uint8Array>(range: CompactRange<H>, empty: H, nodeHash: NodeHash<H>): H {
  const count = range.hashes.length;
  if (count === 0) return empty;
  // RFC 6962 splits at the largest power of two, so the root folds the decomposition from the right.
  let r = range.hashes[count - 1]!;
  for (let i = count - 2; i >= 0; i--) r = nodeHash(range.hashes[i]!, r);
  return r;
}
