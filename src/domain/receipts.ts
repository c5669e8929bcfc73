import { signCompact } from '../crypto/jws.ts';
import type { KeyRing } from '../crypto/keys.ts';
import { RECEIPT_TYP, type AuthorizerClaims, type WitnessClaims } from '../../packages/writ-verify/src/receipt-claims.ts';

/** Receipts are signed with the current receipt key; a receipt is built only from durable records. */
export { RECEIPT_TYP };
export type { AuthorizerClaims, WitnessClaims };

export function signReceipt(keys: KeyRing, claims: AuthorizerClaims | WitnessClaims): string {
  return signCompact({ typ: RECEIPT_TYP }, claims, keys.current);
}
