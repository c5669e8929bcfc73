import { z } from 'zod';
import { runCascade } from '../../cascade/index.ts';
import { decisionFrom } from '../../cascade/record.ts';
import { escalationRouting } from '../../cascade/steps/escalation-routing.ts';
import { policyEvaluation } from '../../cascade/steps/policy-evaluation.ts';
import { validateBody } from '../../cascade/steps/validate-body.ts';
import type { CascadeContext } from '../../cascade/types.ts';
import { TRUST_TIERS, type Agent } from '../../domain/principals.ts';
import { WritError } from '../../errors.ts';
import { TIERS } from '../../policy/types.ts';
import { defineRoute } from '../route.ts';
import { createAgentSchema, permissionRequestSchema, traceSchema } from '../schemas.ts';

/**
 * "Try a request": what the active policy set makes of a request, decided by the cascade's own
 * steps — the body's checks (validate_body), the policy evaluation on the policy worker, and the
 * routing by tier — so the answer is the one a real request of that agent would get now. Nothing
 * is stored or logged, no permission or approval is opened, no token is minted: the steps that
 * authenticate an agent (it is named here instead) and the one that records are left out.
 */
const asked = permissionRequestSchema.pick({ action: true, resource: true, scope: true, context: true, value: true, currency: true });

const evalRequestSchema = asked
  .extend({
    agent_id: z.string().min(1).max(128).optional().describe("A registered agent: its class and trust tier are used, as in that agent's own request"),
    agent: z
      .strictObject({ class: createAgentSchema.shape.class, trust_tier: z.enum(TRUST_TIERS).optional() })
      .optional()
      .describe('An agent that need not exist (defaults: class "default", trust tier "unregistered", as a newly registered agent)'),
    time: z.iso.datetime({ offset: true }).optional().describe('Decision time (default: now); policies see its UTC hour and weekday'),
  })
  .meta({ id: 'PolicyEvalRequest' });

const evalAnswerSchema = z
  .object({
    decision: z.enum(['allow', 'deny', 'escalate']).describe('What a real request would get: allow (standard tier), escalate (sensitive or critical: people decide) or deny'),
    tier: z.enum(TIERS),
    reasons: z.array(z.string()),
    policy: z.object({ hash: z.string().describe('The active set that decided'), determining: z.array(z.string()), languages: z.array(z.enum(['cedar', 'rego'])).optional() }),
    failure: z.object({ step: z.string(), code: z.enum(['policy_error', 'policy_timeout', 'policy_not_loaded']) }).optional().describe('Nothing could be decided: a real request would be denied and recorded as a failure'),
    agent: z.object({ id: z.string().optional(), class: z.string(), trust_tier: z.string() }),
    trace: traceSchema.describe('The cascade steps this evaluation ran, as a real request\'s trace shows them'),
  })
  .meta({ id: 'PolicyEvalAnswer' });

export default defineRoute({
  method: 'POST',
  path: '/api/v1/policies/eval',
  summary: 'Evaluate a request against the active policy set, as the cascade would, with no side effects (nothing logged, no permission, no token)',
  auth: ['admin'],
  body: evalRequestSchema,
  responses: { 200: { description: 'The decision a real request would get', schema: evalAnswerSchema } },
  errors: ['invalid_action', 'invalid_resource'],
  async handle({ writ, body }) {
    const { agent_id, agent: given, time, ...request } = body;
    if (agent_id !== undefined && given !== undefined) throw new WritError('invalid_request', 'name a registered agent (agent_id) or describe one (agent), not both', { field: 'agent' });
    const agent = agent_id !== undefined ? await registered(writ, agent_id) : described(given);
    const ctx: CascadeContext = { writ, headers: {}, readBody: async () => request, now: time ? new Date(time) : new Date(), agent };
    const { verdict, trace } = await runCascade([validateBody, policyEvaluation, escalationRouting], ctx);
    if (verdict.outcome === 'reject') throw verdict.error;
    const { decision, tier, reasons, policy, failure } = decisionFrom(verdict, ctx, trace);
    return {
      status: 200,
      body: {
        decision,
        tier,
        reasons,
        policy,
        ...(failure ? { failure } : {}),
        agent: { ...(agent_id !== undefined ? { id: agent.id } : {}), class: agent.class, trust_tier: agent.trust_tier },
        trace,
      },
    };
  },
});

async function registered(writ: CascadeContext['writ'], id: string): Promise<Agent> {
  const agent = await writ.principals.getAgent(id);
  if (!agent) throw new WritError('invalid_value', `agent_id: no agent ${id}`, { field: 'agent_id' });
  // A revoked agent's request never reaches the policies: it is refused at agent_credential.
  if (agent.revoked) throw new WritError('invalid_value', `agent_id: agent ${id} is revoked; its requests are refused before any policy sees them`, { field: 'agent_id' });
  return agent;
}

/** An agent as the policies see it; the id is a placeholder no policy should name. */
const described = (given: { class?: string | undefined; trust_tier?: Agent['trust_tier'] | undefined } | undefined): Agent => ({
  id: 'agt_eval',
  name: 'policy evaluation',
  class: given?.class ?? 'default',
  trust_tier: given?.trust_tier ?? 'unregistered',
  created_at: new Date(0).toISOString(),
});
