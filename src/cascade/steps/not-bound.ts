import type { Step } from '../types.ts';

/**
 * Steps that apply only to requests made under a standing grant (DPoP binding, grant status and its
 * bounds). A plain permission request has no grant, so they pass; grants fill them in.
 */
export const withoutGrant = (step: string): Step => ({
  step,
  run: () => ({ outcome: 'pass', reason: 'no grant' }),
});
