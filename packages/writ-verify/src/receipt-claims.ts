/**
 * What a Writ receipt says: one set of types for the server that signs receipts and the SDK that
 * verifies them. No runtime code, so the verifier stays free of anything Node-only.
 *
 * `ReceiptClaims` is what `verifyReceipt` promises of any receipt it accepts (other issuers'
 * claims are passed through); `AuthorizerClaims` and `WitnessClaims` are exactly what Writ signs
 * in conductor and oversight mode, and both are checked to be `ReceiptClaims`.
 */
export const RECEIPT_TYP = 'oap-receipt+jwt';

export type IssuerRole = 'authorizer' | 'witness' | 'approval_url_signer';

export interface ReceiptApproval {
  approver_id: string;
  name?: string;
  /** When they approved, ISO 8601. */
  at: string;
}

export interface LogAnchor {
  origin: string;
  index: number;
  leaf_hash: string;
}

export interface ReceiptClaims {
  iss: string;
  iss_role: IssuerRole;
  aud?: string | string[];
  sub: string;
  jti: string;
  oap_ver: '1.0';
  permission_id?: string;
  grant_id?: string;
  attestation_id?: string;
  action?: string;
  resource?: string;
  scope?: Record<string, unknown>;
  value?: number;
  currency?: string;
  decision: string;
  tier?: string;
  approvals?: ReceiptApproval[];
  legal_basis?: string;
  single_use?: boolean;
  policy?: { hash: string; determining: string[] };
  log?: LogAnchor;
  iat: number;
  exp: number;
  /** Unknown extra claims are allowed and passed through. */
  [claim: string]: unknown;
}

/** A conductor receipt: Writ decided, and the token it issued may be spent once. */
export interface AuthorizerClaims extends ReceiptClaims {
  iss_role: 'authorizer';
  aud?: string;
  permission_id: string;
  action: string;
  resource: string;
  scope: Record<string, unknown>;
  decision: 'allow';
  tier: 'standard' | 'sensitive' | 'critical';
  approvals: Array<{ approver_id: string; name: string; at: string }>;
  single_use: true;
  policy: { hash: string; determining: string[] };
  log: LogAnchor;
}

/** An oversight receipt: another engine decided, and Writ witnessed it (and, for an escalation, the people's decision). */
export interface WitnessClaims extends ReceiptClaims {
  iss_role: 'witness';
  attestation_id: string;
  touchpoint_id: string;
  agent_class: string;
  action_class: string;
  decision: 'allow' | 'deny' | 'escalate';
  decided_at: string;
  sequence_number: number;
  legal_basis: string;
  evidence_digest: string;
  log: LogAnchor;
  human_decision?: { outcome: string; decided_at: string; approvals: Array<{ approver_id: string; name: string; at: string }>; by?: { approver_id: string; name?: string | undefined } };
}
