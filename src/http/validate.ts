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
};

export function parseWith<S extends z.ZodType>(schema: S, input: unknown, where: 'body' | 'query' | 'params'): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (path ? `${path}.${k}` : k));
    return fail('invalid_request', `unknown field${keys.length > 1 ? 's' : ''} in ${where}: ${keys.join(', ')}`, keys[0]!);
  }
  if (issue.code === 'invalid_type' && issue.input === undefined && path) {
    return fail('invalid_request', `${path} is required`, path);
  }
  if (issue.code === 'invalid_type' || issue.code === 'invalid_union' || !path) {
    return fail('invalid_request', path ? `${path}: ${issue.message}` : `${where}: ${issue.message}`, path || where);
  }
  return fail(VALUE_CODES[path] ?? 'invalid_value', `${path}: ${issue.message}`, path);
}

function fail(code: ReasonCode, message: string, field: string): never {
  throw new WritError(code, message, { field });
}
