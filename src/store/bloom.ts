/**
 * A Bloom filter over 32-byte digests: "definitely absent" without a LevelDB read. Indexes come
 * from the digest's own bytes (double hashing), so adding and testing cost no extra hashing.
 * A "maybe" is always confirmed against the store, so a false positive costs a read, never a
 * wrong answer.
 */
export class DigestBloom {
  private readonly bits: Uint8Array;
  private readonly size: number;

  constructor(
    expected = 4_000_000,
    private readonly hashes = 7,
  ) {
    // ~9.6 bits per element gives about 1 % false positives at `expected` entries.
    this.size = Math.max(1024, Math.ceil(expected * 9.6));
    this.bits = new Uint8Array(Math.ceil(this.size / 8));
  }

  private *indexes(digest: Uint8Array): Iterable<number> {
    const view = new DataView(digest.buffer, digest.byteOffset, digest.byteLength);
    const a = view.getUint32(0);
    const b = view.getUint32(4) | 1;
    for (let i = 0; i < this.hashes; i++) yield (a + Math.imul(i, b)) >>> 0;
  }

  add(digest: Uint8Array): void {
    for (const i of this.indexes(digest)) {
      const bit = i % this.size;
      this.bits[bit >> 3]! |= 1 << (bit & 7);
    }
  }

  mightContain(digest: Uint8Array): boolean {
    for (const i of this.indexes(digest)) {
      const bit = i % this.size;
      if ((this.bits[bit >> 3]! & (1 << (bit & 7))) === 0) return false;
    }
    return true;
  }
}
