import type { WritError } from '../errors.ts';
import type { Agent, Principal } from '../domain/principals.ts';
import type { PermissionRequest } from '../http/schemas.ts';
import type { PolicySet } from '../policy/set.ts';
import type { PolicyDecision, PolicyFailureCode, Tier } from '../policy/types.ts';
import type { Writ } from '../writ.ts';

/**
 * What the cascade steps read and add to. Steps are small functions from this context to a
 * verdict; a decision is a return value, and only infrastructure failures throw.
 */
export interface CascadeContext {
  writ: Writ;
  headers: Record<string, string | string[] | undefined>;
  /** Reads and parses the body; called by validate_body, after authentication. */
  readBody: () => Promise<unknown>;
  now: Date;
  principal?: Principal;
  agent?: Agent;
  request?: PermissionRequest;
  policySet?: PolicySet;
  policy?: PolicyDecision;
  tier?: Tier;
}

export type Verdict =
  | { outcome: 'pass'; reason?: string }
  | { outcome: 'allow'; reason?: string }
  | { outcome: 'deny'; reason: string }
  | { outcome: 'escalate'; tier: Exclude<Tier, 'standard'>; reason?: string }
  /** Could not be decided (a policy engine failed, timed out, was not loaded): denies, and is recorded as a failure, not as a policy's deny. */
  | { outcome: 'error'; code: PolicyFailureCode; reason: string }
  /** The request itself is unacceptable (auth, validation): answered with this error, nothing stored. */
  | { outcome: 'reject'; error: WritError };

/** How a cascade ends: the verdict of the first step that did not pass. */
export type Outcome = Exclude<Verdict, { outcome: 'pass' }>;

export interface Step {
  step: string;
  run(ctx: CascadeContext): Verdict | Promise<Verdict>;
}
