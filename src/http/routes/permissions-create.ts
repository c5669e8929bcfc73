import { runCascade, CASCADE } from '../../cascade/index.ts';
import { permissionFrom } from '../../cascade/record.ts';
import type { CascadeContext } from '../../cascade/types.ts';
import { WritError } from '../../errors.ts';
import { defineRoute } from '../route.ts';
import { permissionRequestSchema, permissionSchema } from '../schemas.ts';
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
  },
  errors: ['invalid_action', 'invalid_resource', 'ttl_out_of_range'],
  async handle(call) {
    // `call.signal` is asked for only when the request waits: making one costs every request.
    const { writ, headers, readBody, identified } = call;
    const ctx: CascadeContext = { writ, headers, readBody, now: new Date() };
    const { verdict, trace } = await runCascade(CASCADE, ctx);
    if (ctx.principal) identified(ctx.principal);
    if (verdict.outcome === 'reject') {
      throw new WritError(verdict.error.code, verdict.error.message, { ...verdict.error.detail, trace });
    }
    const created = await writ.permissions.create(permissionFrom(verdict, ctx, trace));
    const { request, principal } = ctx;
    if (created.record.status === 'pending' && request?.wait && principal) {
      const settled = await writ.permissions.waitWhilePending(created.record.id, principal, request.wait, call.signal);
      return { status: 201, body: permissionView(settled.record, settled.token, settled.approval) };
    }
    return { status: 201, body: permissionView(created.record, created.token, created.approval) };
  },
});
