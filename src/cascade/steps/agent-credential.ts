import { WritError } from '../../errors.ts';
import type { Step } from '../types.ts';

/** The key's agent must still exist; its class and trust tier feed the policies. */
export const agentCredential: Step = {
  step: 'agent_credential',
  async run(ctx) {
    const agent = ctx.principal ? await ctx.writ.principals.getAgent(ctx.principal.id) : undefined;
    if (!agent || agent.revoked) return { outcome: 'reject', error: new WritError('unauthenticated', 'the agent of this key is revoked or no longer exists', { field: 'authorization' }) };
    ctx.agent = agent;
    return { outcome: 'pass', reason: `trust tier ${agent.trust_tier}` };
  },
};
