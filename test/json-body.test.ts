import test from 'ava';
import { WritError } from '../src/errors.ts';
import { parseJson } from '../src/http/validate.ts';

/**
 * Request bodies are taken as written or refused: every body every route reads goes through
 * parseJson, so what it refuses here no route ever sees, and what it accepts reaches the route
 * exactly as sent.
 */
const bytes = (text: string) => new TextEncoder().encode(text);

function refusal(body: Uint8Array | string): { code: string; field: unknown; status: number } {
  try {
    parseJson(typeof body === 'string' ? bytes(body) : body);
  } catch (err) {
    if (!(err instanceof WritError)) throw err;
    return { code: err.code, field: err.detail?.field, status: err.status };
  }
  throw new Error('accepted');
}

const duplicates: Array<[string, string, string]> = [
  ['two values', '{"a":1,"a":2}', 'a'],
  ['the same value twice', '{"a":1,"a":1}', 'a'],
  ['the same object twice', '{"a":{"x":1},"a":{"x":1}}', 'a'],
  ['inside scope', '{"scope":{"max_emails":1,"max_emails":1000}}', 'scope.max_emails'],
  ['once escaped', '{"a":1,"\\u0061":2}', 'a'],
  ['in an object inside an array', '{"x":[{"k":1},{"k":1,"k":2}]}', 'x.1.k'],
  ['in a body that is an array', '[[{"a":1}],[{"b":1,"b":2}]]', 'body.1.0.b'],
  ['ending in an escaped backslash', '{"a\\\\":1,"a\\\\":2}', 'a\\'],
  ['with space around the colon', '{"a" : 1,\n"a"\t:2}', 'a'],
  ['after a nested object closes', '{"o":{"p":{"q":1}},"o":2}', 'o'],
  ['the empty key', '{"":1,"":2}', ''],
];
for (const [name, body, field] of duplicates) {
  test(`a key given twice (${name}) is refused as duplicate_key naming its path`, (t) => {
    t.deepEqual(refusal(body), { code: 'duplicate_key', field, status: 400 });
  });
}

test('the same key in different objects, and key-like text inside strings, are not duplicates', (t) => {
  const bodies = [
    '{"a":{"k":1},"b":{"k":1}}',
    '{"a":"\\"a\\": 1","b":"x"}',
    '{"a":"\\\\","b":"\\\\\\\\","c":"\\\\\\""}',
    '{"k":["a","k",":"],"l":"k"}',
    '[{"a":1},{"a":1}]',
    '{"a":[{"a":{"a":1}}]}',
  ];
  for (const body of bodies) t.deepEqual(parseJson(bytes(body)), JSON.parse(body), body);
});

test('bytes that are not UTF-8 are refused as invalid_encoding, never replaced with U+FFFD', (t) => {
  const cases = [
    [0xff], // never valid
    [0xc0, 0xaf], // overlong "/"
    [0xed, 0xa0, 0x80], // a UTF-16 surrogate encoded as UTF-8
    [0xe2, 0x82], // truncated
  ];
  for (const bad of cases) {
    const body = Uint8Array.from([...bytes('{"reason":"'), ...bad, ...bytes('"}')]);
    t.deepEqual(refusal(body), { code: 'invalid_encoding', field: 'body', status: 400 }, bad.join(' '));
  }
  t.deepEqual(parseJson(bytes('{"reason":"café ✓ 🎉"}')), { reason: 'café ✓ 🎉' });
});

test('a __proto__ key is refused at any depth, naming its path; constructor and prototype are kept as data', (t) => {
  t.deepEqual(refusal('{"__proto__":{"admin":true}}'), { code: 'invalid_value', field: '__proto__', status: 422 });
  t.deepEqual(refusal('{"scope":{"__proto__":{"max_emails":1}}}'), { code: 'invalid_value', field: 'scope.__proto__', status: 422 });
  t.deepEqual(refusal('{"a":[{"b":{"__proto__":1}}]}'), { code: 'invalid_value', field: 'a.0.b.__proto__', status: 422 });
  const kept = parseJson(bytes('{"constructor":1,"prototype":{"x":2}}')) as object;
  t.deepEqual(Object.keys(kept), ['constructor', 'prototype']);
  t.is(JSON.stringify(kept), '{"constructor":1,"prototype":{"x":2}}');
});

test('numbers that would be rounded, or that Cedar cannot hold, are refused naming the field', (t) => {
  for (const n of ['1e21', '12345678901234567890', '9007199254740992', '-9007199254740993', '1e300', '922337203685477.5', '-922337203685478.25']) {
    t.deepEqual(refusal(`{"scope":{"big":${n}}}`), { code: 'invalid_value', field: 'scope.big', status: 422 }, n);
  }
  t.deepEqual(refusal('{"value":1e21}'), { code: 'invalid_value', field: 'value', status: 422 });
  t.deepEqual(parseJson(bytes('{"a":9007199254740991,"b":-9007199254740991,"c":922337203685476.5,"d":1e15,"e":0.0001}')), {
    a: 9007199254740991,
    b: -9007199254740991,
    c: 922337203685476.5,
    d: 1e15,
    e: 0.0001,
  });
});

test('in scope, context and use, text with controls or bidi overrides is refused; tab, newlines and bidi marks are kept', (t) => {
  const refused: Array<[string, string]> = [
    ['{"context":{"reason":"pay \\u202eevil"}}', 'context.reason'],
    ['{"context":{"nested":["ok","\\u2066x\\u2069"]}}', 'context.nested.1'],
    ['{"scope":{"subject":"a\\u0000b"}}', 'scope.subject'],
    ['{"use":{"note":"x\\u0090"}}', 'use.note'],
    ['{"use":{"note":"x\\u007f"}}', 'use.note'],
    ['{"context":{"a\\u0007":1}}', 'context.a\u0007'],
  ];
  for (const [body, field] of refused) t.deepEqual(refusal(body), { code: 'invalid_value', field, status: 422 }, body);
  const kept = '{"context":{"reason":"line one\\n\\tline two\\r\\n","hebrew":"\\u05e9\\u05dc\\u05d5\\u05dd\\u200f!"}}';
  t.deepEqual(parseJson(bytes(kept)), JSON.parse(kept));
});

test('bodies too deep, not finite or not valid Unicode are still refused as before', (t) => {
  t.is(refusal(`${'['.repeat(40)}${']'.repeat(40)}`).code, 'invalid_request');
  t.deepEqual(refusal('{"n":1e999}'), { code: 'invalid_request', field: 'n', status: 400 });
  t.deepEqual(refusal('{"name":"\\udfff"}'), { code: 'invalid_request', field: 'name', status: 400 });
  t.deepEqual(refusal('{"name":'), { code: 'malformed_json', field: 'body', status: 400 });
});

/** A small seeded generator, so a failure names a seed that reproduces it. */
function random(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => ((s = (s * 1103515245 + 12345) >>> 0), s / 2 ** 32);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  return { next, pick };
}

const KEY_PARTS = ['a', 'k', '"', '\\', ':', ',', '{', ']', ' ', 'é', '\u2028', '\\"', 'x:y'];

/** Writes `value` as JSON, repeating the first key of the object at `twice` (a path) if given. */
function write(value: unknown, path: string, twice: string | undefined): string {
  if (Array.isArray(value)) return `[${value.map((v, i) => write(v, `${path}.${i}`, twice)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)} : ${write(v, path === 'body' ? k : `${path}.${k}`, twice)}`);
    if (path === twice) entries.push(entries[0]!);
    return `{ ${entries.join(' ,\n')} }`;
  }
  return JSON.stringify(value);
}

test('the duplicate-key check agrees with JSON.parse on generated bodies and names each planted duplicate', (t) => {
  let planted = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const { next, pick } = random(seed);
    const objects: string[] = [];
    const make = (depth: number, path: string): unknown => {
      const roll = next();
      if (depth > 4 || roll < 0.3) return pick(['s"t\\r', 1.5, -3, true, null, 'a:b', '{"k":1}', '\\', ''] as const);
      if (roll < 0.5) return Array.from({ length: Math.floor(next() * 3) }, (_, i) => make(depth + 1, `${path}.${i}`));
      const o: Record<string, unknown> = {};
      for (let n = Math.floor(next() * 4); n > 0; n--) {
        const key = Array.from({ length: 1 + Math.floor(next() * 3) }, () => pick(KEY_PARTS)).join('');
        if (Object.hasOwn(o, key)) continue;
        o[key] = make(depth + 1, path === 'body' ? key : `${path}.${key}`);
      }
      if (Object.keys(o).length > 0) objects.push(path);
      return o;
    };
    const value = make(0, 'body');
    const clean = write(value, 'body', undefined);
    t.deepEqual(parseJson(bytes(clean)), JSON.parse(clean), `seed ${seed}`);
    if (objects.length === 0) continue;
    const twice = pick(objects);
    const first = Object.keys(twice === 'body' ? (value as object) : at(value, twice))[0]!;
    const expected = twice === 'body' ? first : `${twice}.${first}`;
    t.deepEqual(refusal(write(value, 'body', twice)), { code: 'duplicate_key', field: expected, status: 400 }, `seed ${seed}`);
    planted++;
  }
  t.true(planted > 100, `only ${planted} bodies had an object to plant a duplicate in`);
});

/** The object at a path written the way parseJson names paths. */
function at(value: unknown, path: string): object {
  const found = { value };
  const walk = (v: unknown, p: string): void => {
    if (p === path) found.value = v;
    if (Array.isArray(v)) v.forEach((item, i) => walk(item, `${p}.${i}`));
    else if (v !== null && typeof v === 'object') for (const [k, item] of Object.entries(v)) walk(item, p === 'body' ? k : `${p}.${k}`);
  };
  walk(value, 'body');
  return found.value as object;
}
