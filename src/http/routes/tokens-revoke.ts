import { defineRoute } from '../route.ts';
import { permissionSchema, revokeSchema } from '../schemas.ts';
import { permissionView } from './permission-view.ts';

export default defineRoute({
  method: 'POST',
  path: '/api/v1/tokens/revoke',
  summary: "Revoke a permission's token at once (its agent or an admin)",
  auth: ['agent', 'admin'],
  body: revokeSchema,
  responses: {
    200: { description: 'Revoked (revoking twice is harmless)', schema: permissionSchema },
    404: { description: 'No such permission for this caller' },
    409: { description: 'Already used, denied or expired' },
  },
  errors: ['not_found', 'conflict'],
  async handle({ writ, body, principal }) {
    const record = await writ.permissions.revoke(body.permission_id, principal!, body.reason ?? 'revoked');
    return { status: 200, body: permissionView(record) };
  },
});
