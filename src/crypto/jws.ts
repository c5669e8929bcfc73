import crypto from 'node:crypto';
import type { SigningKey } from './keys.ts';

/**
 * Compact JWS with EdDSA. Keys come from jose (JWK import/export); the signature itself is one
 * `node:crypto` call, because jose's async CompactSign costs ~85 µs against ~25 µs here and
 * receipts sit on the decision path. test/e2e-keys.test.ts checks that jose verifies our receipts.
 */
export function signCompact(header: Record<string, unknown>, payload: unknown, key: SigningKey): string {
  const head = Buffer.from(JSON.stringify({ ...header, alg: 'EdDSA', kid: key.kid })).toString('base64url');
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const input = `${head}.${body}`;
  const signature = crypto.sign(null, Buffer.from(input), key.privateKey).toString('base64url');
  return `${input}.${signature}`;
}
