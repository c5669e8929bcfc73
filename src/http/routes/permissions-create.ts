import { runCascade, CASCADE } from '../../cascade/index.ts';
import type { CascadeContext } from '../../cascade/types.ts';
import { WritError } from '../../errors.ts';
import { defineRoute } from '../route.ts';
import { errorSchema, permissionRequestSchema, permissionSchema } from '../schemas.ts';
import { permissionView } from './permission-view.ts';

export default defineRoute({
  method: 'POST',
  path: '/api/v1/permissions',
  summary: 'Ask permission for one action; runs the cascade and answers with the decision and its trace',
  auth: 'cascade',
  longPoll: true,
  body: permissionRequestSchema,
  responses: {
    201: { description: 'Decided (allow, deny) or pending human approval', schema: permissionSchema },
    400: { description: 'Malformed request', schema: errorSchema },
    401: { description: 'Missing or bad agent key', schema: errorSchema },
    422: { description: 'Bad action, resource, ttl or scope', schema: errorSchema },
  },
  async handle({ writ, headers, readBody, signal }) {
    const ctx: CascadeContext = { writ, headers, readBody, now: new Date() };
    const { verdict, trace } = await runCascade(CASCADE, ctx);
    if (verdict.outcome === 'reject') {
      throw new WritError(verdict.error.code, verdict.error.message, { ...verdict.error.detail, trace });
    }
    const { request, agent, principal } = ctx;
    if (!request || !agent || !principal) throw new Error('cascade decided without a validated request');
    const policy = ctx.policy;
    const created = await writ.permissions.create({
      agent,
      keyId: principal.key_id,
      audience: request.audience,
      action: request.action,
      resource: request.resource,
      scope: request.scope ?? {},
      context: request.context ?? {},
      value: request.value,
      currency: request.currency,
      ttl: request.ttl ?? writ.config.tokenTtlDefault,
      approvalTimeout: request.approval_timeout ?? writ.config.approvalTimeout,
      decision: verdict.outcome === 'allow' ? 'allow' : verdict.outcome === 'escalate' ? 'escalate' : 'deny',
      tier: verdict.outcome === 'escalate' ? verdict.tier : (ctx.tier ?? 'standard'),
      reasons: verdict.outcome === 'deny' ? [verdict.reason] : policy && policy.outcome !== 'error' ? policy.reasons : [],
      policy: {
        hash: (ctx.policySet ?? writ.policies.current).hash,
        determining: policy && policy.outcome !== 'error' ? policy.determining : [],
      },
      trace,
    });
    if (created.record.status === 'pending' && request.wait) {
      const settled = await writ.permissions.waitWhilePending(created.record.id, principal, request.wait, signal);
      return { status: 201, body: permissionView(settled.record, settled.token, settled.approval) };
    }
    return { status: 201, body: permissionView(created.record, created.token, created.approval) };
  },
});
