import { autoApproved } from '../../policy/types.ts';
import type { Step } from '../types.ts';

/** Standard tier is auto-approved; sensitive and critical wait for humans. */
export const escalationRouting: Step = {
  step: 'escalation_routing',
  run({ tier = 'standard' }) {
    if (autoApproved(tier)) return { outcome: 'allow', reason: 'standard tier: auto-approved' };
    return { outcome: 'escalate', tier, reason: `${tier} tier: needs ${tier === 'critical' ? 'two approvals and a delay' : 'one approval'}` };
  },
};
