import { z } from 'zod';
import { WritError } from '../../errors.ts';
import { defineRoute } from '../route.ts';
import { approvalSchema, wholeNumberParam } from '../schemas.ts';
import { approvalView } from './approval-view.ts';

export const list = defineRoute({
  method: 'GET',
  path: '/api/v1/approvals',
  summary: 'The approval queue, each with the request it decides; `status=pending` (default) lists every open approval, including critical ones in their delay',
  auth: ['approver', 'admin'],
  query: z.strictObject({
    status: z.enum(['pending', 'approved', 'denied', 'expired', 'cancelled', 'delay', 'all']).default('pending'),
    limit: wholeNumberParam.pipe(z.number().min(1).max(500)).default(100),
  }),
  responses: { 200: { description: 'Approvals, oldest open first', schema: z.object({ approvals: z.array(approvalSchema) }) } },
  async handle({ writ, query }) {
    return { status: 200, body: { approvals: (await writ.permissions.listApprovals(query.status, query.limit)).map(approvalView) } };
  },
});

export const get = defineRoute({
  method: 'GET',
  path: '/api/v1/approvals/:id',
  summary: 'One approval with the request it decides: agent, action, resource, value, scope, context, its digest and the policies that escalated it',
  auth: ['approver', 'admin'],
  responses: { 200: { description: 'The approval', schema: approvalSchema }, 404: { description: 'No such approval' } },
  errors: ['not_found'],
  async handle({ writ, params }) {
    const found = await writ.permissions.approvalWithPermission(params.id!);
    if (!found) throw new WritError('not_found', `no approval ${params.id}`, { field: 'id' });
    return { status: 200, body: approvalView(found) };
  },
});
