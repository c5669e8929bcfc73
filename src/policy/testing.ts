import { z } from 'zod';
import { TRUST_TIERS } from '../domain/principals.ts';
import { action, resource } from '../http/schemas.ts';
import type { Evaluator } from './set.ts';
import { decisionForTier, TIERS, type Json, type PolicyOutcome, type PolicyRequest, type Tier } from './types.ts';

/**
 * Policy tests as policy authors write them: `*.test.json` files holding
 * `[{name, request, expect: {decision, tier?}}]`, run against a policy set in-process.
 */
export const requestDocumentSchema = z.strictObject({
  action,
  resource,
  scope: z.record(z.string(), z.unknown()).optional(),
  context: z.record(z.string(), z.unknown()).optional(),
  value: z.number().min(0).optional(),
  currency: z.string().optional(),
  agent: z.strictObject({ id: z.string().optional(), class: z.string().optional(), trust_tier: z.enum(TRUST_TIERS).optional() }).optional(),
  time: z.iso.datetime({ offset: true }).optional().describe('Decision time (default: now)'),
});
export type RequestDocument = z.infer<typeof requestDocumentSchema>;

export const testFileSchema = z.array(
  z.strictObject({
    name: z.string().min(1),
    request: requestDocumentSchema,
    expect: z.strictObject({ decision: z.enum(['allow', 'deny', 'escalate']), tier: z.enum(TIERS).optional() }),
  }),
);

/** Defaults match a freshly registered agent. */
export function toPolicyRequest(doc: RequestDocument): PolicyRequest {
  return {
    agent: { id: doc.agent?.id ?? 'agt_test', class: doc.agent?.class ?? 'default', trust_tier: doc.agent?.trust_tier ?? 'unregistered' },
    action: doc.action,
    resource: doc.resource,
    scope: (doc.scope ?? {}) as Record<string, Json>,
    context: (doc.context ?? {}) as Record<string, Json>,
    ...(doc.value !== undefined ? { value: doc.value } : {}),
    ...(doc.currency !== undefined ? { currency: doc.currency } : {}),
    time: doc.time ? new Date(doc.time) : new Date(),
  };
}

/** What the cascade makes of a policy outcome: standard is auto-approved, higher tiers escalate. */
export function decisionOf(outcome: PolicyOutcome): { decision: 'allow' | 'deny' | 'escalate'; tier: Tier } {
  if (outcome.outcome !== 'allow') return { decision: 'deny', tier: 'standard' };
  return { decision: decisionForTier(outcome.tier), tier: outcome.tier };
}

export interface CaseResult {
  name: string;
  passed: boolean;
  expected: { decision: string; tier?: string | undefined };
  actual: { decision: string; tier: Tier };
  explanation: ReturnType<Evaluator['explain']>;
}

export function runCases(evaluator: Evaluator, cases: z.infer<typeof testFileSchema>): CaseResult[] {
  return cases.map((c) => {
    const explanation = evaluator.explain(toPolicyRequest(c.request));
    const actual = decisionOf(explanation.outcome);
    const passed = actual.decision === c.expect.decision && (c.expect.tier === undefined || c.expect.tier === actual.tier);
    return { name: c.name, passed, expected: c.expect, actual, explanation };
  });
}

/** One line per engine: what it decided and why. */
export function describeOutcome(outcome: PolicyOutcome): string {
  if (outcome.outcome === 'error') return `error (${outcome.code}): ${outcome.errors.join('; ')}`;
  if (outcome.outcome === 'not_applicable') return `not applicable (${outcome.reasons.join('; ')})`;
  const by = outcome.determining.length ? ` by ${outcome.determining.join(', ')}` : '';
  const why = outcome.reasons.length ? ` (${outcome.reasons.join('; ')})` : '';
  return outcome.outcome === 'allow' ? `allow at ${outcome.tier}${by}${why}` : `deny${by}${why}`;
}
