import { RE2JS } from 're2js';
import type { Json } from '../policy/types.ts';

/**
 * A token is honoured only for a use that stays inside its scope:
 * - `max_X` bounds `use.X`, a number from 0 up to the bound;
 * - `X_pattern` is a regular expression (RE2 syntax) the whole of the string `use.X` must match;
 * - `X_allowed: false` forbids `use.X` altogether;
 * - any other key K means `use.K` must equal `scope.K`.
 * A constrained key the use leaves out is a violation: the use must say what it does.
 * Patterns come from agents, so they run on RE2 (linear time): no pattern can stall the server.
 */
export type Scope = Record<string, Json>;

export const MAX_PATTERN_LENGTH = 256;
const MAX_MATCHED_LENGTH = 4096;

const compiled = new Map<string, RE2JS>();
function pattern(source: string): RE2JS {
  let re = compiled.get(source);
  if (!re) {
    re = RE2JS.compile(source);
    if (compiled.size > 1000) compiled.clear();
    compiled.set(source, re);
  }
  return re;
}

/** Problems with a scope as requested, each naming its key; empty when it is usable. */
export function scopeProblems(scope: Scope): Array<{ key: string; message: string }> {
  const problems: Array<{ key: string; message: string }> = [];
  for (const [key, value] of Object.entries(scope)) {
    if (key.startsWith('max_') && (typeof value !== 'number' || !Number.isFinite(value) || value < 0)) {
      problems.push({ key, message: 'a max_ bound must be a number of at least 0' });
    } else if (key.endsWith('_pattern')) {
      if (typeof value !== 'string' || value.length > MAX_PATTERN_LENGTH) {
        problems.push({ key, message: `a _pattern must be a regular expression of at most ${MAX_PATTERN_LENGTH} characters` });
      } else {
        try {
          pattern(value);
        } catch (err) {
          problems.push({ key, message: `not a valid RE2 regular expression: ${(err as Error).message}` });
        }
      }
    } else if (key.endsWith('_allowed') && typeof value !== 'boolean') {
      problems.push({ key, message: 'an _allowed flag must be true or false' });
    }
  }
  return problems;
}

/**
 * What a token is bound to: its scope, and what was decided on — the request's value as a ceiling
 * (`max_value`, or the lower of the two when the scope has one) and its currency (exactly). A use
 * must then say how much it spends, in which currency, like any other bound.
 */
export function tokenBounds(request: { scope: Scope; value?: number | undefined; currency?: string | undefined }): Scope {
  const bounds: Scope = { ...request.scope };
  if (request.value !== undefined) {
    const scoped = bounds.max_value;
    bounds.max_value = typeof scoped === 'number' ? Math.min(scoped, request.value) : request.value;
  }
  if (request.currency !== undefined) bounds.currency = request.currency;
  // A value decided without a currency binds the use to none: it cannot become a value in another unit.
  else if (request.value !== undefined && bounds.currency === undefined) bounds.currency_allowed = false;
  return bounds;
}

/** Every way `use` leaves `scope`; empty when the use is inside it. */
export function scopeViolations(scope: Scope, use: Record<string, Json>): string[] {
  const violations: string[] = [];
  for (const [key, bound] of Object.entries(scope)) {
    if (key.startsWith('max_')) {
      const field = key.slice(4);
      const used = use[field];
      if (typeof used !== 'number' || typeof bound !== 'number' || used < 0 || used > bound) {
        violations.push(`use.${field} must be a number from 0 to ${String(bound)}`);
      }
    } else if (key.endsWith('_pattern')) {
      const field = key.slice(0, -'_pattern'.length);
      const used = use[field];
      if (typeof used !== 'string' || used.length > MAX_MATCHED_LENGTH || !pattern(String(bound)).matches(used)) {
        violations.push(`use.${field} must be a string matching ${String(bound)}`);
      }
    } else if (key.endsWith('_allowed')) {
      const field = key.slice(0, -'_allowed'.length);
      if (bound === false && use[field] !== undefined) violations.push(`use.${field} is not allowed`);
    } else if (JSON.stringify(use[key]) !== JSON.stringify(bound)) {
      violations.push(`use.${key} must equal ${JSON.stringify(bound)}`);
    }
  }
  return violations;
}
