import { z } from 'zod';
import { PERMISSION_STATUSES } from '../../domain/permissions.ts';
import { WritError } from '../../errors.ts';
import { defineRoute } from '../route.ts';
import { cursorParam, limitParam, listedPermissionSchema, pageOf } from '../schemas.ts';
import { nextCursor, positionOf } from './cursor.ts';
import { permissionView } from './permission-view.ts';

export default defineRoute({
  method: 'GET',
  path: '/api/v1/permissions',
  summary: "Permissions, oldest first, without their tokens: an admin's of every agent (or of `agent`), an agent's only its own",
  auth: ['agent', 'admin'],
  query: z.strictObject({
    status: z.enum(PERMISSION_STATUSES, { error: `must be one of ${PERMISSION_STATUSES.join(', ')}` }).optional(),
    agent: z.string().regex(/^agt_[A-Za-z0-9_-]{1,64}$/, 'must be an agent id (agt_…)').optional().describe("Only this agent's; an agent may name only itself"),
    action: z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,63}\.([a-z][a-z0-9_-]{0,63}|\*)$/, 'must be category.operation, or category.* for every operation of a category')
      .optional(),
    since: z.iso.datetime({ offset: true, error: 'must be an RFC 3339 date-time' }).optional().describe('Created at or after'),
    limit: limitParam,
    cursor: cursorParam.optional(),
  }),
  responses: { 200: { description: 'A page of permissions, oldest first', schema: pageOf(listedPermissionSchema) } },
  // A bad `action` is refused as a bad action anywhere is (see validate.ts).
  errors: ['invalid_action'],
  async handle({ writ, query, principal }) {
    const { limit, cursor, ...asked } = query;
    // Naming another agent is refused rather than answered with the caller's own list under that name.
    if (principal!.role === 'agent' && asked.agent !== undefined && asked.agent !== principal!.id) {
      throw new WritError('forbidden', "an agent lists only its own permissions: leave agent out, or name yourself", { field: 'agent' });
    }
    const filter = { ...asked, agent: principal!.role === 'agent' ? principal!.id : asked.agent };
    const page = await writ.permissions.permissionsPage(filter, limit, positionOf(cursor, 'permissions', filter));
    return { status: 200, body: { items: page.items.map((record) => permissionView(record)), ...nextCursor('permissions', filter, page.after) } };
  },
});
