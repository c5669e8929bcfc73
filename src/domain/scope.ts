import type { Json } from '../policy/types.ts';

/**
 * A token is honoured only for a use that stays inside its scope:
 * - `max_X` bounds a numeric `use.X`;
 * - `X_pattern` is a regular expression the whole of a string `use.X` must match;
 * - `X_allowed: false` forbids `use.X` altogether;
 * - any other key K means `use.K`, when given, must equal `scope.K`.
 * A use that does not mention a constrained key is inside the scope.
 */
export type Scope = Record<string, Json>;

export const MAX_PATTERN_LENGTH = 256;
const MAX_MATCHED_LENGTH = 4096;

/** Problems with a scope as requested, each naming its key; empty when it is usable. */
export function scopeProblems(scope: Scope): Array<{ key: string; message: string }> {
  const problems: Array<{ key: string; message: string }> = [];
  for (const [key, value] of Object.entries(scope)) {
    if (key.startsWith('max_') && (typeof value !== 'number' || !Number.isFinite(value))) {
      problems.push({ key, message: 'a max_ bound must be a number' });
    } else if (key.endsWith('_pattern')) {
      if (typeof value !== 'string' || value.length > MAX_PATTERN_LENGTH) {
        problems.push({ key, message: `a _pattern must be a regular expression of at most ${MAX_PATTERN_LENGTH} characters` });
      } else {
        try {
          new RegExp(value, 'u');
        } catch {
          problems.push({ key, message: 'not a valid regular expression' });
        }
      }
    } else if (key.endsWith('_allowed') && typeof value !== 'boolean') {
      problems.push({ key, message: 'an _allowed flag must be true or false' });
    }
  }
  return problems;
}

/** Every way `use` leaves `scope`; empty when the use is inside it. */
export function scopeViolations(scope: Scope, use: Record<string, Json>): string[] {
  const violations: string[] = [];
  for (const [key, bound] of Object.entries(scope)) {
    if (key.startsWith('max_')) {
      const field = key.slice(4);
      const used = use[field];
      if (used === undefined) continue;
      if (typeof used !== 'number' || typeof bound !== 'number' || used > bound) {
        violations.push(`use.${field} must be a number no greater than ${String(bound)}`);
      }
    } else if (key.endsWith('_pattern')) {
      const field = key.slice(0, -'_pattern'.length);
      const used = use[field];
      if (used === undefined) continue;
      if (typeof used !== 'string' || used.length > MAX_MATCHED_LENGTH || !new RegExp(`^(?:${String(bound)})$`, 'u').test(used)) {
        violations.push(`use.${field} must match ${String(bound)}`);
      }
    } else if (key.endsWith('_allowed')) {
      const field = key.slice(0, -'_allowed'.length);
      if (bound === false && use[field] !== undefined) violations.push(`use.${field} is not allowed`);
    } else if (use[key] !== undefined && JSON.stringify(use[key]) !== JSON.stringify(bound)) {
      violations.push(`use.${key} must equal ${JSON.stringify(bound)}`);
    }
  }
  return violations;
}
