// RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value, so hashes and signatures over it are reproducible.
// Portable (no Node APIs): the server and the dashboard's log verifier canonicalize with this one function.

/** Serializes `value` as RFC 8785 canonical JSON; throws TypeError on anything JSON cannot represent exactly. */
export function canonicalize(value: unknown): string {
  return serialize(value, new Set<object>(), '$');
}

// In a /u regex a paired surrogate is one code point, so \p{Cs} matches only lone (unpaired) surrogates.
const LONE_SURROGATE = /\p{Cs}/u;

function serialize(value: unknown, ancestors: Set<object>, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return serializeNumber(value, path);
    case 'string':
      return serializeString(value, path);
    case 'object':
      return serializeContainer(value, ancestors, path);
    default:
      // undefined, bigint, symbol and function have no exact JSON form; silently dropping them would sign something other than what the caller holds.
      throw new TypeError(`canonicalize: ${typeof value} at ${path} is not a JSON value`);
  }
}

function serializeNumber(value: number, path: string): string {
  if (!Number.isFinite(value)) {
    throw new TypeError(`canonicalize: non-finite number ${String(value)} at ${path}`);
  }
  // ES Number-to-String is exactly the serialization RFC 8785 §3.2.2.3 mandates, and JSON.stringify(-0) already yields "0".
  return JSON.stringify(value);
}

function serializeString(value: string, path: string): string {
  // RFC 8785 requires I-JSON input, which forbids lone surrogates; other implementations would encode them differently.
  if (LONE_SURROGATE.test(value)) {
    throw new TypeError(`canonicalize: string with a lone surrogate at ${path}`);
  }
  // Well-formed JSON.stringify escapes exactly the characters RFC 8785 §3.2.2.2 requires, with lowercase \u00XX.
  return JSON.stringify(value);
}

function serializeContainer(value: object, ancestors: Set<object>, path: string): string {
  if (ancestors.has(value)) {
    throw new TypeError(`canonicalize: circular reference at ${path}`);
  }
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return serializeArray(value, ancestors, path);
    if (!isPlainObject(value)) {
      // Dates, Maps, Buffers and class instances would serialize through toJSON or lose data; callers must convert them explicitly.
      throw new TypeError(`canonicalize: non-plain object (${value.constructor?.name ?? 'unknown'}) at ${path}`);
    }
    return serializeObject(value as Record<string, unknown>, ancestors, path);
  } finally {
    ancestors.delete(value);
  }
}

function serializeArray(value: readonly unknown[], ancestors: Set<object>, path: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i++) {
    // Holes and undefined elements are rejected rather than turned into null, which would change the data's meaning.
    if (!(i in value) || value[i] === undefined) {
      throw new TypeError(`canonicalize: undefined array element at ${path}[${i}]`);
    }
    parts.push(serialize(value[i], ancestors, `${path}[${i}]`));
  }
  return `[${parts.join(',')}]`;
}

function serializeObject(value: Record<string, unknown>, ancestors: Set<object>, path: string): string {
  // Array.prototype.sort without a comparator orders strings by UTF-16 code units, which is the order RFC 8785 §3.2.3 specifies.
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const key of keys) {
    const member = value[key];
    // Omitting undefined members matches JSON.stringify, so optional fields that are absent and unset hash the same.
    if (member === undefined) continue;
    const memberPath = `${path}.${key}`;
    parts.push(`${serializeString(key, memberPath)}:${serialize(member, ancestors, memberPath)}`);
  }
  return `{${parts.join(',')}}`;
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
