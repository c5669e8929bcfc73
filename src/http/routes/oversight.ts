import { z } from 'zod';
import type { Attester } from '../../domain/principals.ts';
import { WritError } from '../../errors.ts';
import type { Writ } from '../../writ.ts';
import { defineRoute, type RouteContext } from '../route.ts';
import { LEGAL_BASES, OVERSIGHT_DECISIONS } from '../../domain/oversight.ts';
import { REVOCATION_SCOPES, attestationSchema, escalationSchema, heartbeatSchema, revocationSchema, touchpointSchema, wholeNumberParam } from '../schemas.ts';

/** The attester behind an attester key (403 for any other key). */
export async function attesterOf(writ: Writ, principal: RouteContext['principal']): Promise<Attester> {
  const attester = principal ? await writ.principals.getAttester(principal.id) : undefined;
  if (!attester) throw new WritError('forbidden', 'this endpoint needs an attester key', { field: 'authorization' });
  return attester;
}

const attestationAnswer = z.object({
  attestation: z.object({
    id: z.string(),
    received_at: z.string(),
    sequence_number: z.number(),
    decision: z.enum(OVERSIGHT_DECISIONS),
    idempotent_replay: z.boolean(),
    permission_id: z.string().optional().describe('For an escalation: the permission whose approval people decide'),
    gap: z.object({ expected: z.number(), got: z.number() }).optional().describe('Sequence numbers skipped before this one (logged as attestation.gap_detected)'),
  }),
  receipt: z.string().describe('Witness receipt (compact JWS, iss_role "witness")'),
});

const attestationErrors = ['attestation_conflict', 'attestation_out_of_order', 'legal_basis_invalid', 'evidence_digest_invalid', 'decided_at_invalid', 'decided_at_in_future'] as const;

const storedAttestation = z.object({
  id: z.string(),
  attester_id: z.string(),
  touchpoint_id: z.string(),
  body_hash: z.string(),
  body: attestationSchema.extend({ decision: z.enum(OVERSIGHT_DECISIONS) }),
  received_at: z.string(),
  anchor: z.object({ index: z.number(), leaf_hash: z.string(), at: z.string(), issuer: z.string() }),
  permission_id: z.string().optional(),
});

export const attest = defineRoute({
  method: 'POST',
  path: '/api/v1/oap/attestations',
  summary: "Witness an external engine's decision: checked, logged, answered with a witness receipt",
  auth: ['attester'],
  body: attestationSchema,
  responses: {
    201: { description: 'Recorded', schema: attestationAnswer },
    200: { description: 'The same attestation again: the same receipt, idempotent_replay true', schema: attestationAnswer },
    409: { description: 'The same id with another body, or a sequence number not above the highest seen' },
  },
  errors: attestationErrors,
  async handle({ writ, principal, body }) {
    const result = await writ.oversight.attest(await attesterOf(writ, principal), body);
    return { status: result.replay ? 200 : 201, body: answer(result) };
  },
});

export const escalate = defineRoute({
  method: 'POST',
  path: '/api/v1/oap/escalations',
  summary: 'An escalation on its own: recorded like an attestation with decision "escalate", and sent to the approvers',
  auth: ['attester'],
  body: escalationSchema,
  responses: { 201: { description: 'Recorded; an approval is open', schema: attestationAnswer }, 200: { description: 'Replay', schema: attestationAnswer } },
  errors: attestationErrors,
  async handle({ writ, principal, body }) {
    const result = await writ.oversight.attest(await attesterOf(writ, principal), { ...body, decision: 'escalate' });
    return { status: result.replay ? 200 : 201, body: answer(result) };
  },
});

function answer(result: Awaited<ReturnType<Writ['oversight']['attest']>>) {
  return {
    attestation: {
      id: result.record.id,
      received_at: result.record.received_at,
      sequence_number: result.record.body.sequence_number,
      decision: result.record.body.decision,
      idempotent_replay: result.replay,
      ...(result.record.permission_id ? { permission_id: result.record.permission_id } : {}),
      ...(result.gap ? { gap: result.gap } : {}),
    },
    receipt: result.receipt,
  };
}

export const get = defineRoute({
  method: 'GET',
  path: '/api/v1/oap/attestations/:id',
  summary: "An attestation, its witness receipt and, for escalations, the human outcome and its receipt (attesters see their touchpoint's; admins name one)",
  auth: ['attester', 'admin'],
  query: z.strictObject({ touchpoint_id: z.string().min(1).max(200).optional().describe('Required for admins: attestation ids are scoped to their touchpoint') }),
  responses: {
    200: {
      description: 'The record',
      schema: z.object({
        attestation: storedAttestation,
        receipt: z.string(),
        escalation: z
          .object({
            approval_id: z.string().optional(),
            status: z.string(),
            approvals: z.array(z.object({ approver_id: z.string(), name: z.string(), at: z.string() })),
            decided_by: z.object({ approver_id: z.string(), name: z.string() }).optional(),
            human_receipt: z.string().optional().describe('Witness receipt of the people\'s decision'),
          })
          .optional(),
      }),
    },
  },
  errors: ['not_found'],
  async handle({ writ, principal, params, query }) {
    const touchpoint = principal?.role === 'attester' ? (await attesterOf(writ, principal)).touchpoint_id : query.touchpoint_id;
    if (!touchpoint) throw new WritError('invalid_request', 'touchpoint_id is required: attestation ids are scoped to their touchpoint', { field: 'touchpoint_id' });
    const found = await writ.oversight.get(touchpoint, params.id!);
    return { status: 200, body: { attestation: found.record, receipt: found.receipt, ...(found.escalation ? { escalation: found.escalation } : {}) } };
  },
});

export const heartbeat = defineRoute({
  method: 'POST',
  path: '/api/v1/oap/attestations/heartbeat',
  summary: "Liveness of an attester's touchpoint",
  auth: ['attester'],
  body: heartbeatSchema,
  responses: { 200: { description: 'Recorded', schema: touchpointSchema } },
  async handle({ writ, principal, body }) {
    return { status: 200, body: await writ.oversight.heartbeat(await attesterOf(writ, principal), body.touchpoint_id, body.cadence_seconds) };
  },
});

export const touchpoints = defineRoute({
  method: 'GET',
  path: '/api/v1/oap/touchpoints',
  summary: 'Every touchpoint: last attestation, last heartbeat, gaps; silent after three cadences without either',
  auth: ['admin'],
  responses: {
    200: {
      description: 'Touchpoints',
      schema: z.object({ touchpoints: z.array(touchpointSchema.extend({ silent: z.boolean(), last_seen_at: z.string().optional() })) }),
    },
  },
  async handle({ writ }) {
    return { status: 200, body: { touchpoints: await writ.oversight.touchpoints() } };
  },
});

export const revoke = defineRoute({
  method: 'POST',
  path: '/api/v1/oap/revocations',
  summary: 'Revoke an agent (its keys, tokens and open approvals), one or all of its keys (what they obtained goes too), an approver (its keys and its votes on open approvals), or an attester, at once and in one log entry',
  auth: ['admin'],
  body: revocationSchema,
  responses: {
    200: {
      description: 'Revoked, with what went with it, all in one log entry',
      schema: z.object({
        scope: z.enum(REVOCATION_SCOPES),
        id: z.string(),
        reason: z.string(),
        revoked_keys: z.number(),
        tokens_revoked: z.number().optional(),
        approvals_closed: z.number().optional(),
        votes_voided: z.number().optional(),
        effective_at: z.string(),
        log_index: z.number(),
      }),
    },
    404: { description: 'Nothing to revoke' },
  },
  errors: ['not_found'],
  async handle({ writ, principal, body }) {
    return { status: 200, body: await writ.revocations.revoke(body, principal!) };
  },
});

export const resetSequence = defineRoute({
  method: 'POST',
  path: '/api/v1/oap/touchpoints/:id/reset',
  summary: "Reset a touchpoint's sequence (admin, logged): the next attestation must be above `sequence_number`, or without it may have any number",
  auth: ['admin'],
  body: z.strictObject({ sequence_number: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER - 1).optional() }),
  responses: {
    200: { description: 'The touchpoint after the reset', schema: touchpointSchema },
    404: { description: 'No such touchpoint' },
  },
  errors: ['not_found'],
  async handle({ writ, params, body, principal }) {
    return { status: 200, body: await writ.oversight.resetSequence(params.id!, body.sequence_number, { role: principal!.role, id: principal!.id }) };
  },
});

export const legalBases = defineRoute({
  method: 'GET',
  path: '/api/v1/oap/legal-bases',
  summary: 'How many attestations of each agent class gave each legal basis, for decisions of the last `days` days (read from every attestation)',
  auth: ['admin'],
  query: z.strictObject({ days: wholeNumberParam.pipe(z.number().min(1).max(366)).default(30).describe('The window, in days back from now (default 30)') }),
  responses: {
    200: {
      description: 'Counts per agent class, most attested first',
      schema: z.object({
        days: z.number(),
        since: z.string().describe('Decisions made (decided_at) at or after this time are counted'),
        scanned: z.number().describe('Attestations read'),
        classes: z.array(z.object({ agent_class: z.string(), total: z.number(), legal_bases: z.object(Object.fromEntries(LEGAL_BASES.map((b) => [b, z.number()])) as Record<(typeof LEGAL_BASES)[number], z.ZodNumber>) })),
      }),
    },
  },
  async handle({ writ, query }) {
    const since = new Date(Date.now() - query.days * 86_400_000);
    const { scanned, classes } = await writ.oversight.legalBases(since);
    return { status: 200, body: { days: query.days, since: since.toISOString(), scanned, classes } };
  },
});
