/** What a policy engine sees of one request, and what it answers. Engine-neutral. */
export const TIERS = ['standard', 'sensitive', 'critical'] as const;
export type Tier = (typeof TIERS)[number];

export const tierRank = (tier: Tier): number => TIERS.indexOf(tier);
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

/**
 * "Could not evaluate" is kept apart from "evaluated to deny": an `error` outcome carries the
 * reasons and is always treated as deny by the caller.
 */
export type PolicyOutcome =
  | { outcome: 'allow'; tier: Tier; determining: string[]; reasons: string[] }
  | { outcome: 'deny'; determining: string[]; reasons: string[] }
  | { outcome: 'error'; errors: string[] };

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
