import { signCompact } from '../crypto/jws.ts';
import type { KeyRing } from '../crypto/keys.ts';
import type { Tier } from '../policy/types.ts';
import type { Json } from '../policy/types.ts';

/** Receipt claims as SPEC "Receipts" lists them; a receipt is built only from durable records. */
export interface ReceiptClaims {
  iss: string;
  iss_role: 'authorizer' | 'witness' | 'approval_url_signer';
  aud?: string;
  sub: string;
  jti: string;
  oap_ver: '1.0';
  permission_id?: string;
  action: string;
  resource: string;
  scope: Record<string, Json>;
  value?: number;
  currency?: string;
  decision: 'allow';
  tier: Tier;
  approvals: Array<{ approver_id: string; name: string; at: string }>;
  single_use: true;
  policy: { hash: string; determining: string[] };
  log: { origin: string; index: number; leaf_hash: string };
  iat: number;
  exp: number;
}

export const RECEIPT_TYP = 'oap-receipt+jwt';

export function signReceipt(keys: KeyRing, claims: ReceiptClaims): string {
  return signCompact({ typ: RECEIPT_TYP }, claims, keys.current);
}
