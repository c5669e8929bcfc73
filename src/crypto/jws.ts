import crypto, { type KeyObject } from 'node:crypto';
import type { SigningKey } from './keys.ts';

/**
 * Compact JWS with EdDSA. Keys come from jose (JWK import/export); the signature itself is one
 * `node:crypto` call, because jose's async CompactSign costs ~85 µs against ~25 µs here and
 * receipts sit on the decision path (see signer.ts for signing them off the event loop).
 * test/e2e-keys.test.ts checks that jose verifies our receipts.
 */
export function signCompact(header: Record<string, unknown>, payload: unknown, key: SigningKey): string {
  const input = signingInput(header, payload, key);
  return `${input}.${signature(input, key.privateKey)}`;
}

/** `base64url(header).base64url(payload)`, the header with alg EdDSA and the key's kid. */
export function signingInput(header: Record<string, unknown>, payload: unknown, key: Pick<SigningKey, 'kid'>): string {
  const head = Buffer.from(JSON.stringify({ ...header, alg: 'EdDSA', kid: key.kid })).toString('base64url');
  return `${head}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
}

export function signature(input: string, key: KeyObject): string {
  return crypto.sign(null, Buffer.from(input), key).toString('base64url');
}
