import { z } from 'zod';
import { defineRoute } from '../route.ts';
import { consumeSchema } from '../schemas.ts';

export default defineRoute({
  method: 'POST',
  path: '/api/v1/tokens/consume',
  summary: 'Spend a one-time token for one use inside its scope: by its agent, or by the resource server it names (any, when it names none)',
  auth: ['agent', 'resource_server'],
  body: consumeSchema,
  responses: {
    200: {
      description: 'Valid: the use is recorded and the token is spent',
      schema: z.object({ valid: z.literal(true), permission_id: z.string(), receipt: z.string() }),
    },
    403: { description: "Outside the scope, another action or resource, or not this token's agent or audience" },
    404: { description: 'Unknown token' },
    409: { description: 'Already used' },
    410: { description: 'Expired or revoked' },
  },
  errors: ['token_invalid', 'token_used', 'token_expired', 'token_revoked', 'scope_violation', 'action_mismatch', 'resource_mismatch', 'invalid_action', 'invalid_resource'],
  async handle({ writ, body, principal }) {
    const result = await writ.permissions.consume({ token: body.token, action: body.action, resource: body.resource, use: body.use ?? {} }, principal!);
    return { status: 200, body: { valid: true, ...result } };
  },
});
