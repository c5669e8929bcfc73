import { z } from 'zod';
import { defineRoute } from '../route.ts';
import { permissionSchema, secondsParam } from '../schemas.ts';
import { permissionView } from './permission-view.ts';

export default defineRoute({
  method: 'GET',
  path: '/api/v1/permissions/:id',
  summary: "A permission's current state; `wait` long-polls while it is pending",
  auth: ['agent', 'admin'],
  longPoll: true,
  query: z.strictObject({ wait: secondsParam.pipe(z.number().max(60)).optional() }),
  responses: {
    200: { description: 'Current state (with the token while approved and unused)', schema: permissionSchema },
    404: { description: 'No such permission for this agent' },
  },
  // Reading may apply a due timeout, which is a write.
  errors: ['not_found', 'overloaded'],
  async handle({ writ, params, query, principal, signal }) {
    const id = params.id!;
    const { record, token, approval } = query.wait
      ? await writ.permissions.waitWhilePending(id, principal!, query.wait, signal)
      : await writ.permissions.get(id, principal!);
    return { status: 200, body: permissionView(record, token, approval) };
  },
});
