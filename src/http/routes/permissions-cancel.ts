import { defineRoute } from '../route.ts';
import { permissionSchema, reasonSchema } from '../schemas.ts';
import { permissionView } from './permission-view.ts';

export default defineRoute({
  method: 'POST',
  path: '/api/v1/permissions/:id/cancel',
  summary: 'The agent withdraws its request: a pending one becomes denied, an unused token revoked',
  auth: ['agent', 'admin'],
  body: reasonSchema,
  responses: {
    200: { description: 'Withdrawn', schema: permissionSchema },
    409: { description: 'Already used, denied or expired' },
  },
  errors: ['not_found', 'conflict'],
  async handle({ writ, params, principal, body }) {
    const record = await writ.permissions.revoke(params.id!, principal!, body.reason ?? 'cancelled by agent');
    return { status: 200, body: permissionView(record) };
  },
});
