import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { canonicalize } from '../../log/canonical.ts';
import { sha256 } from '../../crypto/encoding.ts';
import { LEGAL_BASES, type AttestationInput } from '../../domain/oversight.ts';
import { WritError } from '../../errors.ts';
import type { Writ } from '../../writ.ts';
import { defineRoute } from '../route.ts';
import { errorSchema } from '../schemas.ts';

/**
 * OPA's decision_logs plugin, spoken as it is: a JSON array of decision events, gzip or plain.
 * Each event becomes an attestation: `result.escalate` → escalate, `result.allow` (or a bare
 * `true`) → allow, anything else → deny. OPA re-sends an upload until it gets a 2xx, so the
 * answer comes only once every entry is durable, and decisions seen before are dropped.
 */
const eventSchema = z.looseObject({
  decision_id: z.string().min(1).max(200),
  path: z.string().max(500).optional(),
  input: z.unknown().optional(),
  result: z.unknown().optional(),
  timestamp: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
});
const uploadSchema = z.array(eventSchema).max(10_000);
const INFLATE_FACTOR = 16;

function at(value: unknown, dotted: string): unknown {
  let here = value;
  for (const key of dotted.split('.').filter(Boolean)) {
    if (here === null || typeof here !== 'object') return undefined;
    here = (here as Record<string, unknown>)[key];
  }
  return here;
}

export function toAttestation(writ: Writ, event: z.infer<typeof eventSchema>): Omit<AttestationInput, 'sequence_number' | 'touchpoint_id'> {
  const result = event.result as Record<string, unknown> | boolean | undefined;
  const r = result && typeof result === 'object' ? result : {};
  const decision = r.escalate === true ? 'escalate' : r.allow === true || result === true ? 'allow' : 'deny';
  const basis = typeof r.legal_basis === 'string' ? r.legal_basis : writ.config.opaDefaultLegalBasis;
  if (!(LEGAL_BASES as readonly string[]).includes(basis)) {
    throw new WritError('legal_basis_invalid', `decision ${event.decision_id}: legal basis "${basis}" is not one of ${LEGAL_BASES.join(', ')}`, { field: 'result.legal_basis', decision_id: event.decision_id });
  }
  const agentClass = at(event.input, writ.config.opaAgentClassPath);
  const decidedAt = event.timestamp && !Number.isNaN(Date.parse(event.timestamp)) ? new Date(event.timestamp).toISOString() : new Date().toISOString();
  const reasons = Array.isArray(r.reasons) ? r.reasons.filter((x): x is string => typeof x === 'string') : [];
  return {
    attestation_id: event.decision_id,
    agent_class: typeof agentClass === 'string' && agentClass ? agentClass : 'unknown',
    action_class: (event.path ?? 'data').replace(/^\/+/, '').replace(/\//g, '.') || 'data',
    decision,
    decided_at: decidedAt,
    legal_basis: basis as AttestationInput['legal_basis'],
    // The same digest as the Cedar adapter: SHA-256 of canonical input "|" canonical output.
    evidence_digest: sha256(`${canonicalize(event.input ?? null)}|${canonicalize(event.result ?? null)}`).toString('hex'),
    context: { engine: 'opa', path: event.path ?? '', ...(reasons.length ? { reason: reasons.join('; ') } : {}), ...(event.labels ? { labels: event.labels } : {}) },
  };
}

export default defineRoute({
  method: 'POST',
  path: '/api/v1/adapters/opa/logs',
  summary: "OPA decision-log upload (the decision_logs plugin's own format, gzip or plain JSON)",
  auth: ['attester'],
  ownBody: true,
  responses: {
    200: { description: 'Every new decision is durable', schema: z.object({ recorded: z.number(), duplicates: z.number() }) },
    413: { description: 'Upload too large', schema: errorSchema },
  },
  async handle({ writ, principal, headers, rawRequest }) {
    const attester = await writ.principals.getAttester(principal!.id);
    if (!attester) throw new WritError('forbidden', 'this endpoint needs an attester key', { field: 'authorization' });
    const limit = writ.config.maxBodyBytes;
    let raw = await rawRequest(limit);
    if (String(headers['content-encoding'] ?? '').toLowerCase() === 'gzip' || (raw[0] === 0x1f && raw[1] === 0x8b)) {
      try {
        raw = gunzipSync(raw, { maxOutputLength: limit * INFLATE_FACTOR });
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new WritError('payload_too_large', `the decompressed upload is larger than ${limit * INFLATE_FACTOR} bytes`, { limit: limit * INFLATE_FACTOR });
        throw new WritError('invalid_request', 'the body is not valid gzip', { field: 'body' });
      }
    }
    let events: unknown;
    try {
      events = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new WritError('malformed_json', 'the upload is not a JSON array of decision events', { field: 'body' });
    }
    const parsed = uploadSchema.safeParse(events);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new WritError('invalid_request', `${issue.path.join('.') || 'body'}: ${issue.message}`, { field: issue.path.join('.') || 'body' });
    }
    const inputs = parsed.data.map((event) => toAttestation(writ, event));
    return { status: 200, body: await writ.oversight.ingestDecisions(attester, inputs) };
  },
});
