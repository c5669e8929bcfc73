import { agentCredential } from './steps/agent-credential.ts';
import { authenticate } from './steps/authenticate.ts';
import { escalationRouting } from './steps/escalation-routing.ts';
import { withoutGrant } from './steps/not-bound.ts';
import { policyEvaluation } from './steps/policy-evaluation.ts';
import { validateBody } from './steps/validate-body.ts';
import { wireVersion } from './steps/wire-version.ts';
import type { CascadeContext, Outcome, Step } from './types.ts';
import type { TraceEntry } from '../domain/permissions.ts';

/** The conductor cascade, in order. The first step that does not pass decides. */
export const CASCADE: readonly Step[] = [
  wireVersion,
  authenticate,
  validateBody,
  withoutGrant('dpop_proof'),
  withoutGrant('grant_status'),
  agentCredential,
  withoutGrant('action_bounds'),
  withoutGrant('scope_check'),
  withoutGrant('rate_limit'),
  withoutGrant('value_bounds'),
  withoutGrant('time_bounds'),
  withoutGrant('sequence_bounds'),
  withoutGrant('reputation_bounds'),
  policyEvaluation,
  escalationRouting,
];

export async function runCascade(steps: readonly Step[], ctx: CascadeContext): Promise<{ verdict: Outcome; trace: TraceEntry[] }> {
  const trace: TraceEntry[] = [];
  for (const step of steps) {
    const started = performance.now();
    const verdict = await step.run(ctx);
    const entry: TraceEntry = { step: step.step, outcome: verdict.outcome, ms: round(performance.now() - started) };
    if ('reason' in verdict && verdict.reason) entry.reason = verdict.reason;
    if (verdict.outcome === 'reject') entry.reason = verdict.error.code;
    if (verdict.outcome === 'error') entry.failure = verdict.code;
    trace.push(entry);
    if (verdict.outcome !== 'pass') return { verdict, trace };
  }
  // A cascade that ends without a decision has not allowed anything.
  return { verdict: { outcome: 'deny', reason: 'no step decided' }, trace };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
