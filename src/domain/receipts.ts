import { signCompact } from '../crypto/jws.ts';
import type { KeyRing } from '../crypto/keys.ts';
import type { Signer } from '../crypto/signer.ts';
import { RECEIPT_TYP, type AuthorizerClaims, type WitnessClaims } from '../../packages/writ-verify/src/receipt-claims.ts';

/** Receipts are signed with the current receipt key; a receipt is built only from durable records. */
export { RECEIPT_TYP };
export type { AuthorizerClaims, WitnessClaims };

export function signReceipt(keys: KeyRing, claims: AuthorizerClaims | WitnessClaims): string {
  return signCompact({ typ: RECEIPT_TYP }, claims, keys.current);
}

/** The same receipt, signed on the signing thread when that is cheaper (the decision paths). */
export function signReceiptSoon(signer: Signer, keys: KeyRing, claims: AuthorizerClaims | WitnessClaims): Promise<string> {
  return signer.sign({ typ: RECEIPT_TYP }, claims, keys.current);
}
