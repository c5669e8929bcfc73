import type { z } from 'zod';
import { WritError, type ReasonCode } from '../errors.ts';

/**
 * zod issues → one WritError naming the field. Shape problems (missing, unknown, wrong type) are
 * 400 `invalid_request`; a well-typed value that is out of range or malformed is 422.
 */
const VALUE_CODES: Record<string, ReasonCode> = {
  action: 'invalid_action',
  resource: 'invalid_resource',
  ttl: 'ttl_out_of_range',
  legal_basis: 'legal_basis_invalid',
  evidence_digest: 'evidence_digest_invalid',
  decided_at: 'decided_at_invalid',
};

export function parseWith<S extends z.ZodType>(schema: S, input: unknown, where: 'body' | 'query' | 'params'): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = deepest(parsed.error.issues[0]!);
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (path ? `${path}.${k}` : k));
    return fail('invalid_request', `unknown field${keys.length > 1 ? 's' : ''} in ${where}: ${keys.join(', ')}`, keys[0]!);
  }
  if (issue.code === 'invalid_type' && path && !present(input, issue.path)) {
    return fail('invalid_request', `${path} is required`, path);
  }
  // A fraction where a whole number belongs is a bad value, not a bad shape.
  if (issue.code === 'invalid_type' && issue.expected === 'int' && path) return fail(VALUE_CODES[path] ?? 'invalid_value', `${path}: must be a whole number`, path);
  if (issue.code === 'invalid_type' || issue.code === 'invalid_union' || !path) {
    return fail('invalid_request', path ? `${path}: ${issue.message}` : `${where}: ${issue.message}`, path || where);
  }
  return fail(VALUE_CODES[path] ?? 'invalid_value', `${path}: ${issue.message}`, path);
}

/**
 * A union (such as a JSON value) reports only "invalid input"; the branch that got furthest into
 * the value says what is actually wrong, so report that one, with the full path.
 */
function deepest(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return issue;
  let best: z.core.$ZodIssue | undefined;
  for (const branch of issue.errors) {
    const first = branch[0];
    if (first && first.path.length > 0 && (!best || first.path.length > best.path.length)) best = first;
  }
  return best ? deepest({ ...best, path: [...issue.path, ...best.path] } as z.core.$ZodIssue) : issue;
}

function present(input: unknown, path: readonly PropertyKey[]): boolean {
  let at: unknown = input;
  for (const key of path) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return false;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at !== undefined;
}

function fail(code: ReasonCode, message: string, field: string): never {
  throw new WritError(code, message, { field });
}
