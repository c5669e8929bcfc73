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
 * In free text (scope, context, use), characters that hide or reorder what a person reads: C0
 * controls but tab, LF and CR, DEL, C1 controls, and bidi embeddings, overrides and isolates.
 * Bidi marks (U+200E, U+200F, U+061C) stay allowed here: right-to-left text needs them.
 */
const UNSAFE_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const FREE_TEXT = new Set(['scope', 'context', 'use']);
/** Cedar's decimal is an i64 in units of 10^-4, so a fraction must stay below this magnitude. */
const MAX_DECIMAL = 922_337_203_685_477;
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A request body's bytes → its JSON value, refusing what could not be stored as sent: bytes that
 * are not UTF-8 (a lenient decoder would store U+FFFD), text that is not JSON, duplicate keys
 * (JSON.parse keeps the last), and everything `checkJson` refuses.
 */
export function parseJson(bytes: Uint8Array): unknown {
  return decodeJson(bytes, (parsed) => walk(parsed, 'body', 0, false));
}

/**
 * The same for a body whose parts are checked one by one afterwards (an OPA upload, where one
 * bad event must not refuse the others): only the encoding and duplicate keys, for the whole.
 */
export function parseJsonOnly(bytes: Uint8Array): unknown {
  return decodeJson(bytes, countKeys);
}

function decodeJson(bytes: Uint8Array, keysOf: (parsed: unknown) => number): unknown {
  let text: string;
  try {
    text = STRICT_UTF8.decode(bytes);
  } catch {
    throw new WritError('invalid_encoding', 'request body is not valid UTF-8', { field: 'body' });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new WritError('malformed_json', `request body is not valid JSON: ${(err as Error).message}`, { field: 'body' });
  }
  // Fewer keys parsed than written means some were written twice; only then find which.
  if (keysOf(parsed) !== keysInText(text)) {
    const at = duplicateKey(text) ?? 'body';
    throw new WritError('duplicate_key', `${at} is given more than once`, { field: at });
  }
  return parsed;
}

/** Object keys in a parsed value, at any depth (without recursion: the parts are checked for depth later). */
function countKeys(value: unknown): number {
  let n = 0;
  const todo: unknown[] = [value];
  while (todo.length) {
    const next = todo.pop();
    if (Array.isArray(next)) for (const item of next) todo.push(item);
    else if (next !== null && typeof next === 'object') {
      const keys = Object.keys(next);
      n += keys.length;
      for (const key of keys) todo.push((next as Record<string, unknown>)[key]);
    }
  }
  return n;
}

/**
 * What JSON.parse accepts but nothing downstream should see: nesting deep enough to exhaust the
 * stack of a recursive validator, numbers too large to be finite (1e999), strings that are not
 * valid Unicode (RFC 8785 cannot canonicalise either, so they could never be logged); and what
 * would be changed on the way: a `__proto__` key (every `o[key] = value` copy, zod's records
 * included, drops it or sets a prototype instead), integers beyond 2^53 - 1 (JSON.parse has
 * already rounded them), fractions Cedar's decimal cannot hold, and, in scope, context and use,
 * text that displays as something other than what it is (see UNSAFE_TEXT).
 */
export function checkJson(value: unknown, path: string, depth: number, options: { freeText?: boolean } = {}): void {
  walk(value, path, depth, options.freeText ?? false);
}

/** checkJson's walk; answers how many object keys it saw, to compare with the text's. */
function walk(value: unknown, path: string, depth: number, freeText: boolean): number {
  if (depth > MAX_DEPTH) throw new WritError('invalid_request', `${path} is nested deeper than ${MAX_DEPTH} levels`, { field: path });
  if (typeof value === 'number') {
    checkNumber(value, path);
    return 0;
  }
  if (typeof value === 'string') {
    checkText(value, path, freeText);
    return 0;
  }
  let keys = 0;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) keys += walk(value[i], `${path}.${i}`, depth + 1, freeText);
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      const at = path === 'body' ? key : `${path}.${key}`;
      if (key === '__proto__') throw new WritError('invalid_value', `${at}: "__proto__" is not allowed as a key`, { field: at });
      const inFreeText = freeText || (path === 'body' && FREE_TEXT.has(key));
      checkText(key, at, inFreeText);
      keys += 1 + walk((value as Record<string, unknown>)[key], at, depth + 1, inFreeText);
    }
  }
  return keys;
}

function checkNumber(value: number, path: string): void {
  if (!Number.isFinite(value)) throw new WritError('invalid_request', `${path} is not a finite number`, { field: path });
  if (Number.isInteger(value) ? !Number.isSafeInteger(value) : Math.abs(value) >= MAX_DECIMAL) {
    throw new WritError('invalid_value', `${path}: integers must be within ±(2^53 - 1) and fractions below ${MAX_DECIMAL} in magnitude`, { field: path });
  }
}

function checkText(value: string, path: string, freeText: boolean): void {
  if (LONE_SURROGATE.test(value)) throw new WritError('invalid_request', `${path} is not valid Unicode (lone surrogate)`, { field: path });
  if (freeText && UNSAFE_TEXT.test(value)) {
    throw new WritError('invalid_value', `${path} contains a control or bidi override character (only tab, newline and carriage return are allowed)`, { field: path });
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Index of the quote closing the string that opens at `open`; the text is valid JSON. */
function stringEnd(text: string, open: number): number {
  for (let close = text.indexOf('"', open + 1); ; close = text.indexOf('"', close + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(close - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return close;
  }
}

/** Object keys written in valid JSON text: the strings followed by a colon. */
function keysInText(text: string): number {
  let count = 0;
  for (let open = text.indexOf('"'); open !== -1; ) {
    let next = stringEnd(text, open) + 1;
    while (isSpace(text.charCodeAt(next))) next++;
    if (text.charCodeAt(next) === COLON) count++;
    open = text.indexOf('"', next);
  }
  return count;
}

/** The path of the first key that valid JSON text gives twice in one object (after unescaping). */
function duplicateKey(text: string): string | undefined {
  interface Open {
    path: string;
    keys: Set<string> | undefined; // undefined for an array
    key: string;
    index: number;
  }
  const stack: Open[] = [];
  const childPath = (): string => {
    const parent = stack[stack.length - 1];
    if (!parent) return 'body';
    if (!parent.keys) return `${parent.path}.${parent.index}`;
    return parent.path === 'body' ? parent.key : `${parent.path}.${parent.key}`;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      stack.push({ path: childPath(), keys: c === 0x7b ? new Set() : undefined, key: '', index: 0 });
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top && !top.keys) top.index++;
    } else if (c === QUOTE) {
      const close = stringEnd(text, i);
      let next = close + 1;
      while (isSpace(text.charCodeAt(next))) next++;
      const top = stack[stack.length - 1];
      if (top?.keys && text.charCodeAt(next) === COLON) {
        const raw = text.slice(i + 1, close);
        const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        top.key = key;
        if (top.keys.has(key)) return childPath();
        top.keys.add(key);
      }
      i = close;
    }
  }
  return undefined;
}
