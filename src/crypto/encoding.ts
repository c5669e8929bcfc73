import crypto from 'node:crypto';

export const sha256 = (data: string | Uint8Array): Buffer => crypto.createHash('sha256').update(data).digest();
export const b64 = (data: Uint8Array): string => Buffer.from(data).toString('base64');
export const b64url = (data: Uint8Array | string): string => Buffer.from(data).toString('base64url');
export const randomToken = (bytes = 32): string => crypto.randomBytes(bytes).toString('base64url');

/** Constant-time equality for secrets of any length (lengths are not secret here: both are hashes). */
export function safeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** Short unguessable ids: 16 random bytes, base64url, with a readable prefix. */
export const newId = (prefix: string): string => `${prefix}_${crypto.randomBytes(16).toString('base64url')}`;

/** Ids that sort by creation time (12 hex digits of milliseconds), then 10 random bytes. */
export const sortableId = (prefix: string, now = Date.now()): string =>
  `${prefix}_${now.toString(16).padStart(12, '0')}${crypto.randomBytes(10).toString('base64url')}`;
