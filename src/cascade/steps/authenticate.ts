import { WritError } from '../../errors.ts';
import { requireRole } from '../../domain/principals.ts';
import type { Step } from '../types.ts';

export const authenticate: Step = {
  step: 'authenticate',
  async run(ctx) {
    try {
      const header = ctx.headers.authorization;
      ctx.principal = await ctx.writ.principals.authenticate(Array.isArray(header) ? header[0] : header);
      requireRole(ctx.principal, ['agent']);
      return { outcome: 'pass' };
    } catch (err) {
      if (err instanceof WritError) return { outcome: 'reject', error: err };
      throw err;
    }
  },
};
