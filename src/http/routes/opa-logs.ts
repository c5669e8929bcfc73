import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { canonicalize } from '../../log/canonical.ts';
import { sha256 } from '../../crypto/encoding.ts';
import { FUTURE_TOLERANCE_MS, LEGAL_BASES, type AttestationInput } from '../../domain/oversight.ts';
import { WritError } from '../../errors.ts';
import type { Writ } from '../../writ.ts';
import { defineRoute } from '../route.ts';
import { attesterOf } from './oversight.ts';
import { checkJson } from '../validate.ts';
import { attestationSchema, errorSchema } from '../schemas.ts';

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
const uploadSchema = z.array(z.unknown()).max(10_000);
/** A decompressed upload is held in memory and parsed on the event loop: capped outright. */
const MAX_INFLATED_BYTES = 32 * 1024 * 1024;

function at(value: unknown, dotted: string): unknown {
  let here = value;
  for (const key of dotted.split('.').filter(Boolean)) {
    if (here === null || typeof here !== 'object') return undefined;
    here = (here as Record<string, unknown>)[key];
  }
  return here;
}

/**
 * One event → one attestation, or the reason it cannot be one. A bad event is rejected on its
 * own (and logged): one malformed decision must not block the rest of OPA's log stream, which
 * OPA would otherwise re-send forever.
 */
export function toAttestation(writ: Writ, raw: unknown): { ok: true; input: Omit<AttestationInput, 'sequence_number' | 'touchpoint_id'> } | { ok: false; decision_id: string; reason: string } {
  const parsed = eventSchema.safeParse(raw);
  const id = typeof (raw as { decision_id?: unknown })?.decision_id === 'string' ? String((raw as { decision_id: string }).decision_id).slice(0, 200) : '';
  if (!parsed.success) return { ok: false, decision_id: id, reason: `${parsed.error.issues[0]!.path.join('.') || 'event'}: ${parsed.error.issues[0]!.message}` };
  const event = parsed.data;
  const result = event.result as Record<string, unknown> | boolean | undefined;
  const r = result && typeof result === 'object' ? result : {};
  const decision = r.escalate === true ? 'escalate' : r.allow === true || result === true ? 'allow' : 'deny';
  const basis = typeof r.legal_basis === 'string' ? r.legal_basis : writ.config.opaDefaultLegalBasis;
  if (!(LEGAL_BASES as readonly string[]).includes(basis)) return { ok: false, decision_id: event.decision_id, reason: `legal_basis_invalid: "${basis.slice(0, 50)}"` };
  const decidedAt = event.timestamp && !Number.isNaN(Date.parse(event.timestamp)) ? new Date(event.timestamp).toISOString() : new Date().toISOString();
  if (Date.parse(decidedAt) > Date.now() + FUTURE_TOLERANCE_MS) return { ok: false, decision_id: event.decision_id, reason: 'decided_at_in_future' };
  const agentClass = at(event.input, writ.config.opaAgentClassPath);
  const reasons = Array.isArray(r.reasons) ? r.reasons.filter((x): x is string => typeof x === 'string') : [];
  const input = {
    attestation_id: event.decision_id,
    agent_class: typeof agentClass === 'string' && agentClass ? agentClass.slice(0, 200) : 'unknown',
    action_class: ((event.path ?? 'data').replace(/^\/+/, '').replace(/\//g, '.') || 'data').slice(0, 200),
    decision,
    decided_at: decidedAt,
    legal_basis: basis as AttestationInput['legal_basis'],
    // The same digest as the Cedar adapter: SHA-256 of canonical input "|" canonical output.
    evidence_digest: sha256(`${canonicalize(event.input ?? null)}|${canonicalize(event.result ?? null)}`).toString('hex'),
    context: { engine: 'opa', path: (event.path ?? '').slice(0, 500), ...(reasons.length ? { reason: reasons.join('; ').slice(0, 1000) } : {}), ...(event.labels ? { labels: event.labels } : {}) },
  } as const;
  // The same rules as a direct attestation, on what the event became.
  const checked = attestationSchema.safeParse({ ...input, touchpoint_id: 'opa', sequence_number: 0 });
  if (!checked.success) return { ok: false, decision_id: event.decision_id, reason: `${checked.error.issues[0]!.path.join('.')}: ${checked.error.issues[0]!.message}` };
  return { ok: true, input };
}

export default defineRoute({
  method: 'POST',
  path: '/api/v1/adapters/opa/logs',
  summary: "OPA decision-log upload (the decision_logs plugin's own format, gzip or plain JSON)",
  auth: ['attester'],
  ownBody: true,
  responses: {
    200: {
      description: 'Every new decision is durable; duplicates dropped; events that cannot be attestations are rejected one by one (and logged)',
      schema: z.object({ recorded: z.number(), duplicates: z.number(), rejected: z.array(z.object({ decision_id: z.string(), reason: z.string() })) }),
    },
    413: { description: 'Upload too large', schema: errorSchema },
  },
  async handle({ writ, principal, headers, rawRequest }) {
    const attester = await attesterOf(writ, principal);
    const limit = writ.config.maxBodyBytes;
    let raw = await rawRequest(limit);
    if (String(headers['content-encoding'] ?? '').toLowerCase() === 'gzip' || (raw[0] === 0x1f && raw[1] === 0x8b)) {
      try {
        raw = gunzipSync(raw, { maxOutputLength: MAX_INFLATED_BYTES });
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new WritError('payload_too_large', `the decompressed upload is larger than ${MAX_INFLATED_BYTES} bytes`, { limit: MAX_INFLATED_BYTES });
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
    if (!parsed.success) throw new WritError('invalid_request', 'the upload must be a JSON array of at most 10,000 decision events', { field: 'body' });
    const inputs: Array<Omit<AttestationInput, 'sequence_number' | 'touchpoint_id'>> = [];
    const rejected: Array<{ decision_id: string; reason: string }> = [];
    parsed.data.forEach((event, i) => {
      try {
        checkJson(event, `body.${i}`, 1);
      } catch (err) {
        return void rejected.push({ decision_id: String((event as { decision_id?: unknown })?.decision_id ?? '').slice(0, 200), reason: (err as Error).message });
      }
      const mapped = toAttestation(writ, event);
      if (mapped.ok) inputs.push(mapped.input);
      else rejected.push({ decision_id: mapped.decision_id, reason: mapped.reason });
    });
    if (rejected.length) {
      await writ.log.append('attestation.rejected', { touchpoint_id: attester.touchpoint_id, source: 'opa', rejected: rejected.slice(0, 100), count: rejected.length });
    }
    const result = await writ.oversight.ingestDecisions(attester, inputs);
    return { status: 200, body: { ...result, rejected } };
  },
});
