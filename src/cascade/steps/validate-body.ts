import { WritError } from '../../errors.ts';
import { scopeProblems } from '../../domain/scope.ts';
import { parseWith } from '../../http/validate.ts';
import { permissionRequestSchema } from '../../http/schemas.ts';
import type { Step } from '../types.ts';

/** Shape from the shared zod schema; then the limits that depend on configuration. */
export const validateBody: Step = {
  step: 'validate_body',
  async run(ctx) {
    try {
      const request = parseWith(permissionRequestSchema, (await ctx.readBody()) ?? {}, 'body');
      const { tokenTtlMax, approvalTimeout } = ctx.writ.config;
      if (request.ttl !== undefined && request.ttl > tokenTtlMax) {
        throw new WritError('ttl_out_of_range', `ttl must be between 1 and ${tokenTtlMax} seconds`, { field: 'ttl', max: tokenTtlMax });
      }
      if (request.approval_timeout !== undefined && request.approval_timeout > approvalTimeout * 8) {
        throw new WritError('invalid_value', `approval_timeout must be at most ${approvalTimeout * 8} seconds`, { field: 'approval_timeout' });
      }
      const [problem] = scopeProblems(request.scope ?? {});
      if (problem) throw new WritError('invalid_value', `scope.${problem.key}: ${problem.message}`, { field: `scope.${problem.key}` });
      // The token is bound to the request's currency; a scope naming another could never be used.
      const scoped = request.scope?.currency;
      if (scoped !== undefined && request.currency !== undefined && scoped !== request.currency) {
        throw new WritError('invalid_value', `scope.currency (${JSON.stringify(scoped)}) disagrees with currency (${request.currency})`, { field: 'scope.currency' });
      }
      if (request.audience !== undefined) {
        const server = await ctx.writ.principals.getResourceServer(request.audience);
        if (!server || server.revoked) throw new WritError('invalid_value', `audience: no resource server ${request.audience}`, { field: 'audience' });
      }
      ctx.request = request;
      return { outcome: 'pass' };
    } catch (err) {
      if (err instanceof WritError) return { outcome: 'reject', error: err };
      throw err;
    }
  },
};
