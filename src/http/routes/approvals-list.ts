import { z } from 'zod';
import { defineRoute } from '../route.ts';
import { approvalSchema, wholeNumberParam } from '../schemas.ts';

export default defineRoute({
  method: 'GET',
  path: '/api/v1/approvals',
  summary: 'The approval queue; `status=pending` (default) lists every open approval, including critical ones in their delay',
  auth: ['approver', 'admin'],
  query: z.strictObject({
    status: z.enum(['pending', 'approved', 'denied', 'expired', 'cancelled', 'delay', 'all']).default('pending'),
    limit: wholeNumberParam.pipe(z.number().min(1).max(500)).default(100),
  }),
  responses: { 200: { description: 'Approvals, oldest open first', schema: z.object({ approvals: z.array(approvalSchema) }) } },
  async handle({ writ, query }) {
    return { status: 200, body: { approvals: await writ.permissions.listApprovals(query.status, query.limit) } };
  },
});
