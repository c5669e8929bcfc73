import type { NewPermission, TraceEntry } from '../domain/permissions.ts';
import type { CascadeContext, Outcome } from './types.ts';

/**
 * What the cascade decided, as the permission it becomes: the one place a verdict turns into a
 * decision. A failure (nothing could be decided) denies like a policy's deny, but is recorded as
 * a failure, with the step and its code.
 */
/** How a verdict reads as a decision; a real request's permission and a dry run (POST /api/v1/policies/eval) both say it this way. */
export function decisionFrom(verdict: Exclude<Outcome, { outcome: 'reject' }>, ctx: CascadeContext, trace: TraceEntry[]): Pick<NewPermission, 'decision' | 'tier' | 'reasons' | 'policy' | 'failure'> {
  const { policy } = ctx;
  const decided = policy && policy.outcome !== 'error' ? policy : undefined;
  return {
    decision: verdict.outcome === 'allow' || verdict.outcome === 'escalate' ? verdict.outcome : 'deny',
    tier: verdict.outcome === 'escalate' ? verdict.tier : (ctx.tier ?? 'standard'),
    reasons: verdict.outcome === 'deny' || verdict.outcome === 'error' ? [verdict.reason] : (decided?.reasons ?? []),
    policy: {
      hash: (ctx.policySet ?? ctx.writ.policies.current).hash,
      determining: decided?.determining ?? [],
      languages: decided?.languages ?? [],
    },
    failure: verdict.outcome === 'error' ? { step: trace.at(-1)?.step ?? 'policy_evaluation', code: verdict.code } : undefined,
  };
}

export function permissionFrom(verdict: Exclude<Outcome, { outcome: 'reject' }>, ctx: CascadeContext, trace: TraceEntry[]): NewPermission {
  const { request, agent, principal } = ctx;
  if (!request || !agent || !principal) throw new Error('the cascade decided without a validated request');
  const config = ctx.writ.config;
  return {
    agent,
    keyId: principal.key_id,
    audience: request.audience,
    action: request.action,
    resource: request.resource,
    scope: request.scope ?? {},
    context: request.context ?? {},
    value: request.value,
    currency: request.currency,
    ttl: request.ttl ?? config.tokenTtlDefault,
    approvalTimeout: request.approval_timeout ?? config.approvalTimeout,
    ...decisionFrom(verdict, ctx, trace),
    trace,
  };
}
