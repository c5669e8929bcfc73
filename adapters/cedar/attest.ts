import { createHash } from 'node:crypto';
import { canonicalize } from '../../src/log/canonical.ts';

/**
 * Turns a decision made by your own Cedar (cedar-wasm's answer, or the IsAuthorized response of
 * Amazon Verified Permissions) plus the request it decided into a Writ attestation, and submits
 * it with retries. The evidence digest is SHA-256 of canonical(input) "|" canonical(output)
 * (RFC 8785), so anyone holding both can show they are what was attested.
 */
export type LegalBasis = 'consent' | 'contract' | 'legal_obligation' | 'vital_interests' | 'public_task' | 'legitimate_interests';

export interface CedarRequest {
  principal: unknown;
  action: { type?: string; id: string } | { entityType?: string; entityId: string } | string;
  resource: unknown;
  context?: unknown;
}

/** cedar-wasm: {type: "success", response: {decision: "allow"|"deny", diagnostics}}; AVP: {decision: "ALLOW"|"DENY", determiningPolicies, errors}. */
export type CedarAnswer =
  | { type: 'success'; response: { decision: 'allow' | 'deny'; diagnostics: { reason: string[]; errors: unknown[] } } }
  | { type: 'failure'; errors: unknown[] }
  | { decision: 'ALLOW' | 'DENY'; determiningPolicies?: Array<{ policyId: string }>; errors?: unknown[] };

export interface Attestation {
  attestation_id: string;
  touchpoint_id: string;
  agent_class: string;
  action_class: string;
  decision: 'allow' | 'deny' | 'escalate';
  decided_at: string;
  sequence_number: number;
  legal_basis: LegalBasis;
  evidence_digest: string;
  context?: Record<string, unknown>;
}

export function evidenceDigest(input: unknown, output: unknown): string {
  return createHash('sha256').update(`${canonicalize(input)}|${canonicalize(output)}`).digest('hex');
}

/** allow, deny — and a failed evaluation or any evaluation error is a deny (fail closed). */
export function cedarDecision(answer: CedarAnswer): { decision: 'allow' | 'deny'; determining: string[] } {
  if ('type' in answer) {
    if (answer.type !== 'success' || answer.response.diagnostics.errors.length > 0) return { decision: 'deny', determining: [] };
    return { decision: answer.response.decision, determining: answer.response.diagnostics.reason };
  }
  if (answer.errors?.length) return { decision: 'deny', determining: [] };
  return { decision: answer.decision === 'ALLOW' ? 'allow' : 'deny', determining: (answer.determiningPolicies ?? []).map((p) => p.policyId) };
}

function actionId(action: CedarRequest['action']): string {
  if (typeof action === 'string') return action.replace(/^.*::"?/, '').replace(/"$/, '');
  return 'id' in action ? action.id : action.entityId;
}

export function attestationFromCedar(options: {
  request: CedarRequest;
  answer: CedarAnswer;
  touchpointId: string;
  agentClass: string;
  legalBasis: LegalBasis;
  sequenceNumber: number;
  attestationId?: string;
  actionClass?: string;
  /** Send "escalate" instead of the decision (your app wants a human to decide). */
  escalate?: boolean;
  reason?: string;
  decidedAt?: Date;
}): Attestation {
  const { decision, determining } = cedarDecision(options.answer);
  const digest = evidenceDigest(options.request, options.answer);
  return {
    attestation_id: options.attestationId ?? `cedar-${options.touchpointId}-${options.sequenceNumber}-${digest.slice(0, 16)}`,
    touchpoint_id: options.touchpointId,
    agent_class: options.agentClass,
    action_class: options.actionClass ?? actionId(options.request.action),
    decision: options.escalate ? 'escalate' : decision,
    decided_at: (options.decidedAt ?? new Date()).toISOString(),
    sequence_number: options.sequenceNumber,
    legal_basis: options.legalBasis,
    evidence_digest: digest,
    context: { engine: 'cedar', determining, ...(options.reason ? { reason: options.reason } : {}) },
  };
}

/**
 * POSTs the attestation; retries on 429, 5xx and network errors with exponential backoff (Writ
 * answers a retried attestation with the first receipt, so retrying is always safe).
 */
export async function submitAttestation(
  url: string,
  apiKey: string,
  attestation: Attestation,
  options: { retries?: number; baseDelayMs?: number; timeoutMs?: number; fetch?: typeof fetch } = {},
): Promise<{ status: number; body: { attestation?: Record<string, unknown>; receipt?: string; error?: { reason_code: string; message: string } } }> {
  const retries = options.retries ?? 5;
  const doFetch = options.fetch ?? fetch;
  for (let attempt = 0; ; attempt++) {
    try {
      // Relative to the base, so a Writ behind a path prefix (WRIT_PUBLIC_URL) is reached too.
      const endpoint = new URL('api/v1/oap/attestations', url.endsWith('/') ? url : `${url}/`);
      const res = await doFetch(endpoint, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(attestation),
        signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
      });
      const body = (await res.json().catch(() => ({}))) as Awaited<ReturnType<typeof submitAttestation>>['body'];
      if ((res.status === 429 || res.status >= 500) && attempt < retries) throw new Error(`HTTP ${res.status}`);
      return { status: res.status, body };
    } catch (err) {
      if (attempt >= retries) throw err;
      await new Promise((r) => setTimeout(r, (options.baseDelayMs ?? 200) * 2 ** attempt));
    }
  }
}
