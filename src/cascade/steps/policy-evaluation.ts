import type { Step } from '../types.ts';

/** The active set is captured once, so a reload mid-request cannot mix two sets. */
export const policyEvaluation: Step = {
  step: 'policy_evaluation',
  async run(ctx) {
    const set = ctx.writ.policies.current;
    const { request, agent } = ctx;
    if (!request || !agent) return { outcome: 'error', code: 'policy_error', reason: 'the request was not validated' };
    ctx.policySet = set;
    const outcome = await ctx.writ.policies.evaluate(set, {
      agent: { id: agent.id, class: agent.class, trust_tier: agent.trust_tier },
      action: request.action,
      resource: request.resource,
      scope: request.scope ?? {},
      context: request.context ?? {},
      ...(request.value !== undefined ? { value: request.value } : {}),
      ...(request.currency !== undefined ? { currency: request.currency } : {}),
      time: ctx.now,
    });
    ctx.policy = outcome;
    if (outcome.outcome === 'error') return { outcome: 'error', code: outcome.code, reason: `${outcome.code}: ${outcome.errors.join('; ')}` };
    if (outcome.outcome === 'deny') {
      const by = outcome.determining.length ? `forbidden by ${outcome.determining.join(', ')}` : outcome.reasons.join('; ');
      return { outcome: 'deny', reason: by };
    }
    ctx.tier = outcome.tier;
    return { outcome: 'pass', reason: `permitted by ${outcome.determining.join(', ')} (tier ${outcome.tier})` };
  },
};
