import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { sha256 } from '../crypto/encoding.ts';
import { FUTURE_TOLERANCE_MS, LEGAL_BASES, type AttestationInput, type LegalBasis } from '../domain/oversight.ts';
import { WritError } from '../errors.ts';
import { attestationSchema } from '../http/schemas.ts';
import { checkJson, parseJsonOnly } from '../http/validate.ts';
import { canonicalize } from '../log/canonical.ts';

/**
 * OPA's decision_logs format, decoded: a JSON array of decision events, gzip or plain, each mapped
 * to an attestation or to the reason it cannot be one. Pure functions of their input, so that
 * they can run on the ingest worker (opa-ingest-worker.ts) rather than on the event loop.
 */
export type DecisionInput = Omit<AttestationInput, 'sequence_number' | 'touchpoint_id'>;
export interface Rejected {
  decision_id: string;
  reason: string;
}
/** The settings the mapping reads (WRIT_OPA_AGENT_CLASS_PATH, WRIT_OPA_DEFAULT_LEGAL_BASIS). */
export interface OpaMapping {
  agentClassPath: string;
  defaultLegalBasis: LegalBasis;
}

const eventSchema = z.looseObject({
  decision_id: z.string().min(1).max(200),
  path: z.string().max(500).optional(),
  input: z.unknown().optional(),
  result: z.unknown().optional(),
  timestamp: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
});
const MAX_EVENTS = 10_000;
const uploadSchema = z.array(z.unknown()).max(MAX_EVENTS);
/** A decompressed upload is held in memory whole while it is parsed: capped outright. */
const MAX_INFLATED_BYTES = 32 * 1024 * 1024;

/** The body → its events; a body that is not an upload at all is refused as a whole. */
export function decodeUpload(body: Buffer, declaredGzip: boolean): unknown[] {
  let raw = body;
  if (declaredGzip || (body[0] === 0x1f && body[1] === 0x8b)) {
    try {
      raw = gunzipSync(body, { maxOutputLength: MAX_INFLATED_BYTES });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new WritError('payload_too_large', `the decompressed upload is larger than ${MAX_INFLATED_BYTES} bytes`, { limit: MAX_INFLATED_BYTES });
      throw new WritError('invalid_request', 'the body is not valid gzip', { field: 'body' });
    }
  }
  // Not UTF-8, or a key given twice, refuses the whole upload, as for every body; anything else
  // refuses one event at a time (mapEvents).
  const events = parseJsonOnly(raw);
  const parsed = uploadSchema.safeParse(events);
  if (!parsed.success) throw new WritError('invalid_request', 'the upload must be a JSON array of at most 10,000 decision events', { field: 'body' });
  return parsed.data;
}

/** Events `offset`… of an upload → the attestations they become and the ones rejected, in order. */
export function mapEvents(events: unknown[], mapping: OpaMapping, offset = 0): { inputs: DecisionInput[]; rejected: Rejected[] } {
  const inputs: DecisionInput[] = [];
  const rejected: Rejected[] = [];
  events.forEach((event, i) => {
    try {
      checkJson(event, `body.${offset + i}`, 1);
    } catch (err) {
      return void rejected.push({ decision_id: String((event as { decision_id?: unknown })?.decision_id ?? '').slice(0, 200), reason: (err as Error).message });
    }
    const mapped = toAttestation(event, mapping);
    if (mapped.ok) inputs.push(mapped.input);
    else rejected.push({ decision_id: mapped.decision_id, reason: mapped.reason });
  });
  return { inputs, rejected };
}

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
export function toAttestation(raw: unknown, mapping: OpaMapping): { ok: true; input: DecisionInput } | { ok: false; decision_id: string; reason: string } {
  const parsed = eventSchema.safeParse(raw);
  const id = typeof (raw as { decision_id?: unknown })?.decision_id === 'string' ? String((raw as { decision_id: string }).decision_id).slice(0, 200) : '';
  if (!parsed.success) return { ok: false, decision_id: id, reason: `${parsed.error.issues[0]!.path.join('.') || 'event'}: ${parsed.error.issues[0]!.message}` };
  const event = parsed.data;
  const result = event.result as Record<string, unknown> | boolean | undefined;
  const r = result && typeof result === 'object' ? result : {};
  const decision = r.escalate === true ? 'escalate' : r.allow === true || result === true ? 'allow' : 'deny';
  const basis = typeof r.legal_basis === 'string' ? r.legal_basis : mapping.defaultLegalBasis;
  if (!(LEGAL_BASES as readonly string[]).includes(basis)) return { ok: false, decision_id: event.decision_id, reason: `legal_basis_invalid: "${basis.slice(0, 50)}"` };
  const decidedAt = event.timestamp && !Number.isNaN(Date.parse(event.timestamp)) ? new Date(event.timestamp).toISOString() : new Date().toISOString();
  if (Date.parse(decidedAt) > Date.now() + FUTURE_TOLERANCE_MS) return { ok: false, decision_id: event.decision_id, reason: 'decided_at_in_future' };
  const agentClass = at(event.input, mapping.agentClassPath);
  const reasons = Array.isArray(r.reasons) ? r.reasons.filter((x): x is string => typeof x === 'string') : [];
  const input = {
    attestation_id: event.decision_id,
    agent_class: typeof agentClass === 'string' && agentClass ? agentClass.slice(0, 200) : 'unknown',
    action_class: ((event.path ?? 'data').replace(/^\/+/, '').replace(/\//g, '.') || 'data').slice(0, 200),
    decision,
    decided_at: decidedAt,
    legal_basis: basis as LegalBasis,
    // The same digest as the Cedar adapter: SHA-256 of canonical input "|" canonical output.
    evidence_digest: sha256(`${canonicalize(event.input ?? null)}|${canonicalize(event.result ?? null)}`).toString('hex'),
    context: { engine: 'opa', path: (event.path ?? '').slice(0, 500), ...(reasons.length ? { reason: reasons.join('; ').slice(0, 1000) } : {}), ...(event.labels ? { labels: event.labels } : {}) },
  } as const;
  // The same rules as a direct attestation, on what the event became: its context is shown to
  // people, so it is free text (no controls, no bidi overrides).
  const checked = attestationSchema.safeParse({ ...input, touchpoint_id: 'opa', sequence_number: 0 });
  if (!checked.success) return { ok: false, decision_id: event.decision_id, reason: `${checked.error.issues[0]!.path.join('.')}: ${checked.error.issues[0]!.message}` };
  try {
    checkJson(input.context, 'context', 1, { freeText: true });
  } catch (err) {
    return { ok: false, decision_id: event.decision_id, reason: (err as Error).message };
  }
  return { ok: true, input };
}
