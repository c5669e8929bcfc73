import { WritError } from '../../errors.ts';
import type { Step } from '../types.ts';

/** The path carries v1; an explicit `Writ-Version` header must agree with it. */
export const wireVersion: Step = {
  step: 'wire_version',
  run({ headers }) {
    const version = headers['writ-version'];
    if (version === undefined || version === '1' || version === '1.0') return { outcome: 'pass' };
    return {
      outcome: 'reject',
      error: new WritError('unsupported_version', `Writ-Version ${String(version)} is not supported; this endpoint speaks 1`, { field: 'Writ-Version', supported: ['1'] }),
    };
  },
};
