import type { z } from 'zod';
import { WritError, type ReasonCode } from '../errors.ts';

/**
 * zod issues → one WritError naming the field. Shape problems (missing, unknown, wrong type) are
 * 400 `invalid_request`; a well-typed value that is out of range or malformed is 422, and so is
 * any bad value of a query or path parameter.
 */
const VALUE_CODES: Record<string, ReasonCode> = {
  action: 'invalid_action',
  resource: 'invalid_resource',
  ttl: 'ttl_out_of_range',
  legal_basis: 'legal_basis_invalid',
  evidence_digest: 'evidence_digest_invalid',
  decided_at: 'decided_at_invalid',
};

const TYPED_AS_VALUE = new Set(['legal_basis', 'evidence_digest', 'decided_at']);

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
  // Fields whose own reason code covers every wrong value, whatever its type.
  if (issue.code === 'invalid_type' && path && TYPED_AS_VALUE.has(path)) return fail(VALUE_CODES[path]!, `${path}: ${issue.message}`, path);
  // A fraction where a whole number belongs is a bad value, not a bad shape.
  if (issue.code === 'invalid_type' && issue.expected === 'int' && path) return fail(VALUE_CODES[path] ?? 'invalid_value', `${path}: must be a whole number`, path);
  // A parameter is always present as text (or, given twice, a list): a wrong type is a bad value.
  if (issue.code === 'invalid_type' && path && where !== 'body') {
    const given = (input as Record<string, unknown>)[path];
    return fail(VALUE_CODES[path] ?? 'invalid_value', Array.isArray(given) ? `${path} is given more than once` : `${path}: ${issue.message}`, path);
  }
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

const MAX_DEPTH = 32;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * What JSON.parse accepts but nothing downstream should see: nesting deep enough to exhaust the
 * stack of a recursive validator, numbers too large to be finite (1e999), and strings that are
 * not valid Unicode (RFC 8785 cannot canonicalise either, so they could never be logged).
 */
export function checkJson(value: unknown, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new WritError('invalid_request', `${path} is nested deeper than ${MAX_DEPTH} levels`, { field: path });
  if (typeof value === 'number' && !Number.isFinite(value)) throw new WritError('invalid_request', `${path} is not a finite number`, { field: path });
  if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) throw new WritError('invalid_request', `${path} is not valid Unicode (lone surrogate)`, { field: path });
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => checkJson(item, `${path}.${i}`, depth + 1));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const at = path === 'body' ? key : `${path}.${key}`;
      if (LONE_SURROGATE.test(key)) throw new WritError('invalid_request', `${at} is not valid Unicode (lone surrogate)`, { field: at });
      checkJson(item, at, depth + 1);
    }
  }
}
