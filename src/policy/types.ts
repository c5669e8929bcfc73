/** What a policy engine sees of one request, and what it answers. Engine-neutral. */
export const TIERS = ['standard', 'sensitive', 'critical'] as const;
export type Tier = (typeof TIERS)[number];

export const tierRank = (tier: Tier): number => TIERS.indexOf(tier);

/** The one place a permitted request's tier becomes a decision: standard is auto-approved, the rest asks people. */
export const autoApproved = (tier: Tier): tier is 'standard' => tier === 'standard';
export const decisionForTier = (tier: Tier): 'allow' | 'escalate' => (autoApproved(tier) ? 'allow' : 'escalate');
export const maxTier = (tiers: Tier[]): Tier =>
  tiers.reduce<Tier>((a, b) => (tierRank(b) > tierRank(a) ? b : a), 'standard');

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** The one action an agent asks to do, as policies, records and receipts all describe it. */
export interface ActionRequest {
  action: string;
  resource: string;
  scope: Record<string, Json>;
  context: Record<string, Json>;
  value?: number;
  currency?: string;
}

export interface PolicyRequest extends ActionRequest {
  agent: { id: string; class: string; trust_tier: string };
  /** Decision time; policies see its UTC hour and ISO weekday (1 = Monday … 7 = Sunday). */
  time: Date;
}

export type PolicyLanguage = 'cedar' | 'rego';
export type PolicyFailureCode = 'policy_error' | 'policy_timeout' | 'policy_not_loaded';

/**
 * What one engine, or a whole set, answers. "Could not evaluate" (`error`, with a stable code) is
 * kept apart from "evaluated to deny"; the caller treats it as deny and records it as a failure.
 * `languages` names the languages that determined the outcome.
 */
export type PolicyOutcome =
  | { outcome: 'allow'; tier: Tier; determining: string[]; reasons: string[]; languages: PolicyLanguage[] }
  | { outcome: 'deny'; determining: string[]; reasons: string[]; languages: PolicyLanguage[] }
  | { outcome: 'not_applicable'; reasons: string[] } // per-engine only; combine() never returns it
  | { outcome: 'error'; code: PolicyFailureCode; errors: string[] };

/** A whole set's answer: a language may abstain, the set never does (no policy applies means deny). */
export type PolicyDecision = Exclude<PolicyOutcome, { outcome: 'not_applicable' }>;

export const failure = (code: PolicyFailureCode, error: string): PolicyDecision => ({ outcome: 'error', code, errors: [error] });

export interface PolicyProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

export function formatProblem(p: PolicyProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message}`;
}

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < Math.min(offset, text.length); i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, column: offset - last };
}
