import crypto from 'node:crypto';

export const sha256 = (data: string | Uint8Array): Buffer => crypto.createHash('sha256').update(data).digest();
export const b64 = (data: Uint8Array): string => Buffer.from(data).toString('base64');
export const b64url = (data: Uint8Array | string): string => Buffer.from(data).toString('base64url');
/**
 * Random bytes from a pool refilled 4 KiB at a time: one CSPRNG call per ~100 decisions instead of
 * four per decision. Each caller gets its own copy; consumed pool bytes are never handed out twice.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

export function randomBytes(n: number): Buffer {
  if (n > POOL_SIZE) return crypto.randomBytes(n);
  if (poolOffset + n > POOL_SIZE) {
    crypto.randomFillSync(pool);
    poolOffset = 0;
  }
  const out = Buffer.from(pool.subarray(poolOffset, poolOffset + n));
  pool.fill(0, poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

/** Constant-time equality for secrets of any length (lengths are not secret here: both are hashes). */
export function safeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** Short unguessable ids: 16 random bytes, base64url, with a readable prefix. */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(16).toString('base64url')}`;

/** Ids that sort by creation time (12 hex digits of milliseconds), then 10 random bytes. */
export const sortableId = (prefix: string, now = Date.now()): string =>
  `${prefix}_${now.toString(16).padStart(12, '0')}${randomBytes(10).toString('base64url')}`;
