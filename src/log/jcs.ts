// RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value, so hashes and signatures over it are reproducible.
// Portable (no Node APIs): the server and the dashboard's log verifier canonicalize with this one function.

/** Serializes `value` as RFC 8785 canonical JSON; throws TypeError on anything JSON cannot represent exactly. */
export function canonicalize(value: unknown): string {
  // Every log append and every verification canonicalizes, so the common case takes a walk that
  // keeps no paths or ancestors; anything unusual is left to the checked walk, which names it.
  const fast = quick(value, 0);
  return fast ?? serialize(value, new Set<object>(), '$');
}

/**
 * Whether `raw` is exactly the canonical form of `parsed` (what JSON.parse made of it). The engine's
 * JSON.stringify already writes numbers and escapes strings the way RFC 8785 does, so when it gives
 * `raw` back with every object's keys in order, `raw` is canonical; anything else (text with a \\u
 * escape, which may be a lone surrogate; integer-like keys, which objects keep in numeric order)
 * is settled by canonicalizing.
 */
export function isCanonical(raw: string, parsed: unknown): boolean {
  if (!raw.includes('\\u') && JSON.stringify(parsed) === raw && keysInOrder(parsed)) return true;
  try {
    return canonicalize(parsed) === raw;
  } catch {
    return false;
  }
}

function keysInOrder(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (Array.isArray(value)) return value.every(keysInOrder);
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && !(keys[i - 1]! < keys[i]!)) return false;
    if (!keysInOrder((value as Record<string, unknown>)[keys[i]!])) return false;
  }
  return true;
}

/** Deeper than this, the fast walk hands over to the checked one, which detects cycles. */
const QUICK_DEPTH = 64;

/** The canonical text of an ordinary JSON value, or undefined for anything the checked walk must judge. */
function quick(value: unknown, depth: number): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : undefined;
    case 'string':
      return LONE_SURROGATE.test(value) ? undefined : JSON.stringify(value);
    case 'object': {
      if (depth >= QUICK_DEPTH) return undefined;
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) return undefined;
          const member = quick(value[i], depth + 1);
          if (member === undefined) return undefined;
          out += i === 0 ? member : `,${member}`;
        }
        return `${out}]`;
      }
      if (!isPlainObject(value)) return undefined;
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const raw = record[key];
        if (raw === undefined) continue;
        if (LONE_SURROGATE.test(key)) return undefined;
        const member = quick(raw, depth + 1);
        if (member === undefined) return undefined;
        out += `${first ? '' : ','}${JSON.stringify(key)}:${member}`;
        first = false;
      }
      return `${out}}`;
    }
    default:
      return undefined;
  }
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

/**
 * The top-level members of `raw` (each member's value as its JSON text) when `raw` is certainly
 * an object in RFC 8785 canonical form: one pass over the text, without parsing it into values or
 * serializing it again, which is what lets `writ log verify` check a million entries in seconds.
 * Undefined means "not certainly": the text is not canonical, or it uses something this scan
 * leaves to the full comparison (an escaped object key, nesting deeper than 64).
 */
export function canonicalMembers(raw: string): Record<string, string> | undefined {
  const scan = new CanonicalScan(raw);
  const members: Record<string, string> = {};
  return scan.object(0, members) && scan.at === raw.length ? members : undefined;
}

/** The text of a JSON string member (as canonicalMembers gives it) as the string it stands for. */
export function memberString(text: string): string | undefined {
  if (text.charCodeAt(0) !== 0x22) return undefined;
  return text.includes('\\') ? (JSON.parse(text) as string) : text.slice(1, -1);
}

/** Control characters with a short escape in JSON.stringify (\b \t \n \f \r), which RFC 8785 uses. */
const SHORT_ESCAPED = new Set([0x08, 0x09, 0x0a, 0x0c, 0x0d]);

class CanonicalScan {
  at = 0;
  constructor(private readonly s: string) {}

  private value(depth: number): boolean {
    const c = this.s.charCodeAt(this.at);
    if (c === 0x7b) return this.object(depth + 1);
    if (c === 0x5b) return this.array(depth + 1);
    if (c === 0x22) return this.string() !== undefined;
    if (c === 0x74) return this.literal('true');
    if (c === 0x66) return this.literal('false');
    if (c === 0x6e) return this.literal('null');
    return this.number();
  }

  object(depth: number, members?: Record<string, string>): boolean {
    const s = this.s;
    if (depth > QUICK_DEPTH || s.charCodeAt(this.at) !== 0x7b) return false;
    this.at++;
    if (s.charCodeAt(this.at) === 0x7d) {
      this.at++;
      return true;
    }
    let previous: string | undefined;
    for (;;) {
      const start = this.at;
      // An escaped key would have to be compared decoded: the full comparison does that.
      if (this.string() !== false) return false;
      const key = s.slice(start + 1, this.at - 1);
      if (previous !== undefined && !(previous < key)) return false;
      previous = key;
      if (s.charCodeAt(this.at) !== 0x3a) return false;
      this.at++;
      const valueStart = this.at;
      if (!this.value(depth)) return false;
      if (members) members[key] = s.slice(valueStart, this.at);
      const next = s.charCodeAt(this.at++);
      if (next === 0x7d) return true;
      if (next !== 0x2c) return false;
    }
  }

  private array(depth: number): boolean {
    if (depth > QUICK_DEPTH) return false;
    this.at++;
    if (this.s.charCodeAt(this.at) === 0x5d) {
      this.at++;
      return true;
    }
    for (;;) {
      if (!this.value(depth)) return false;
      const next = this.s.charCodeAt(this.at++);
      if (next === 0x5d) return true;
      if (next !== 0x2c) return false;
    }
  }

  /** Scans a string written exactly as JSON.stringify writes it: whether it had an escape, or undefined if it is not such a string. */
  private string(): boolean | undefined {
    const s = this.s;
    if (s.charCodeAt(this.at) !== 0x22) return undefined;
    let escaped = false;
    for (let i = this.at + 1; i < s.length; ) {
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        this.at = i + 1;
        return escaped;
      }
      if (c === 0x5c) {
        escaped = true;
        const e = s.charCodeAt(i + 1);
        if (e === 0x22 || e === 0x5c || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
          i += 2;
          continue;
        }
        // \u00xx, lowercase, only for control characters without a short escape.
        if (e !== 0x75 || !/^00[01][0-9a-f]$/.test(s.slice(i + 2, i + 6))) return undefined;
        if (SHORT_ESCAPED.has(parseInt(s.slice(i + 4, i + 6), 16))) return undefined;
        i += 6;
        continue;
      }
      if (c < 0x20) return undefined;
      if (c >= 0xd800 && c <= 0xdfff) {
        // Only a high surrogate followed by a low one: RFC 8785 has no lone surrogates.
        const low = s.charCodeAt(i + 1);
        if (c > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) return undefined;
        i += 2;
        continue;
      }
      i++;
    }
    return undefined;
  }

  private literal(word: string): boolean {
    if (!this.s.startsWith(word, this.at)) return false;
    this.at += word.length;
    return true;
  }

  /** A number exactly as ECMAScript writes it (RFC 8785 §3.2.2.3): its text must be what String gives back. */
  private number(): boolean {
    const s = this.s;
    const start = this.at;
    let i = start;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (!((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45)) break;
    }
    if (i === start) return false;
    const text = s.slice(start, i);
    const n = Number(text);
    if (!Number.isFinite(n) || String(n) !== text) return false;
    this.at = i;
    return true;
  }
}
