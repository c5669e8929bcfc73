import { z } from 'zod';
import { WritError } from '../../errors.ts';
import { defineRoute } from '../route.ts';
import { approvalSchema, cursorParam, limitParam, nextCursorSchema } from '../schemas.ts';
import { approvalView } from './approval-view.ts';
import { nextCursor, positionOf } from './cursor.ts';

export const list = defineRoute({
  method: 'GET',
  path: '/api/v1/approvals',
  summary: 'The approval queue, each with the request it decides; `status=pending` (default) lists every open approval, including critical ones in their delay',
  auth: ['approver', 'admin'],
  query: z.strictObject({
    status: z.enum(['pending', 'approved', 'denied', 'expired', 'cancelled', 'delay', 'all']).default('pending'),
    limit: limitParam,
    cursor: cursorParam.optional(),
  }),
  responses: {
    200: {
      description: '`pending`: oldest open first; any other status newest first. `next_cursor` as in every list (the envelope keeps its name `approvals`)',
      schema: z.object({ approvals: z.array(approvalSchema), next_cursor: nextCursorSchema }),
    },
  },
  async handle({ writ, query }) {
    const filters = { status: query.status };
    const page = await writ.permissions.approvalsPage(query.status, query.limit, positionOf(query.cursor, 'approvals', filters));
    return { status: 200, body: { approvals: page.items.map(approvalView), ...nextCursor('approvals', filters, page.after) } };
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
