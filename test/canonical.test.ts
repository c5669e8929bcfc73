import test from 'ava';
import { canonicalBytes, canonicalize } from '../src/log/canonical.ts';

// Builds a double from its IEEE 754 bit pattern, the way RFC 8785 Appendix B lists its number vectors.
function fromBits(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

test('sorts object keys by UTF-16 code units, as in the RFC 8785 §3.2.3 example', (t) => {
  const input = JSON.parse(`{
    "\\u20ac": "Euro Sign",
    "\\r": "Carriage Return",
    "\\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\\ud83d\\ude00": "Emoji: Grinning Face",
    "\\u0080": "Control",
    "\\u00f6": "Latin Small Letter O With Diaeresis"
  }`);
  t.is(
    canonicalize(input),
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
  );
});

test('orders a surrogate pair before a BMP character above U+D800, i.e. by code unit not code point', (t) => {
  t.is(canonicalize({ '\ufb33': 1, '\ud83d\ude00': 2 }), '{"\ud83d\ude00":2,"\ufb33":1}');
});

test('reproduces the RFC 8785 §3.2.2 sample output byte for byte', (t) => {
  const input = JSON.parse(String.raw`{
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  }`);
  const expected = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`;
  t.is(canonicalize(input), expected);
  t.deepEqual(canonicalBytes(input), Buffer.from(expected, 'utf8'));
});

test('serializes numbers the ECMAScript way', (t) => {
  const cases: Array<[number, string]> = [
    [1e30, '1e+30'],
    [4.5, '4.5'],
    [2e-3, '0.002'],
    [0.000001, '0.000001'],
    [1e-7, '1e-7'],
    [-0, '0'],
    [0, '0'],
    [-1.5, '-1.5'],
    [1e21, '1e+21'],
    [1e20, '100000000000000000000'],
    [Number.MAX_SAFE_INTEGER, '9007199254740991'],
  ];
  for (const [value, expected] of cases) t.is(canonicalize(value), expected, `for ${value}`);
});

test('matches RFC 8785 Appendix B number vectors given as IEEE 754 bit patterns', (t) => {
  const cases: Array<[string, string]> = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
  ];
  for (const [bits, expected] of cases) t.is(canonicalize(fromBits(bits)), expected, `for bits ${bits}`);
});

test('rejects NaN and infinities with a TypeError', (t) => {
  for (const value of [NaN, Infinity, -Infinity, fromBits('7ff0000000000000')]) {
    t.throws(() => canonicalize(value), { instanceOf: TypeError });
    t.throws(() => canonicalize({ nested: [value] }), { instanceOf: TypeError });
  }
});

test('escapes strings exactly as JSON.stringify does', (t) => {
  const s = 'quote" backslash\\ tab\t nl\n bell\u0007 del\u007f nbsp\u00a0 emoji\ud83d\ude00 ls\u2028';
  t.is(canonicalize(s), JSON.stringify(s));
  t.is(canonicalize('\u001f'), '"\\u001f"');
});

test('rejects strings and keys containing lone surrogates', (t) => {
  t.throws(() => canonicalize('a\ud800b'), { instanceOf: TypeError });
  t.throws(() => canonicalize({ '\udc00': 1 }), { instanceOf: TypeError });
});

test('omits undefined object members and keeps array order', (t) => {
  t.is(canonicalize({ b: undefined, a: [3, 1, 2], c: null }), '{"a":[3,1,2],"c":null}');
});

test('canonicalizes nested structures recursively with no whitespace', (t) => {
  const value = { z: { y: [{ b: 2, a: 1 }, []], x: {} }, a: 'A' };
  t.is(canonicalize(value), '{"a":"A","z":{"x":{},"y":[{"a":1,"b":2},[]]}}');
});

test('gives the same output for objects that differ only in insertion order', (t) => {
  t.is(canonicalize({ a: 1, b: { c: 2, d: 3 } }), canonicalize({ b: { d: 3, c: 2 }, a: 1 }));
});

test('accepts null-prototype objects', (t) => {
  const value = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 2 });
  t.is(canonicalize(value), '{"a":2,"b":1}');
});

test('rejects functions, bigints and symbols anywhere in the value with a TypeError', (t) => {
  for (const value of [() => 1, 10n, Symbol('s')]) {
    t.throws(() => canonicalize(value), { instanceOf: TypeError });
    t.throws(() => canonicalize({ other: 1, nested: { key: value } }), { instanceOf: TypeError });
    t.throws(() => canonicalize([1, [value]]), { instanceOf: TypeError });
  }
});

test('rejects a top-level undefined, which has no JSON text', (t) => {
  t.throws(() => canonicalize(undefined), { instanceOf: TypeError });
});

test('rejects undefined and missing array elements instead of turning them into null', (t) => {
  t.throws(() => canonicalize([1, undefined]), { instanceOf: TypeError });
  t.throws(() => canonicalize([1, , 3]), { instanceOf: TypeError });
});

test('rejects non-plain objects such as Date, Map and Buffer', (t) => {
  class Point {
    x = 1;
  }
  for (const value of [new Date(0), new Map(), Buffer.from('x'), new Point()]) {
    t.throws(() => canonicalize(value), { instanceOf: TypeError });
  }
});

test('rejects circular structures with a TypeError instead of overflowing the stack', (t) => {
  const cycle: Record<string, unknown> = { a: 1 };
  cycle.self = cycle;
  t.throws(() => canonicalize(cycle), { instanceOf: TypeError, message: /circular/ });
});

test('allows the same object to appear twice when it is not its own ancestor', (t) => {
  const shared = { v: 1 };
  t.is(canonicalize({ a: shared, b: [shared] }), '{"a":{"v":1},"b":[{"v":1}]}');
});

test('encodes canonical bytes as UTF-8 without escaping non-ASCII characters', (t) => {
  t.deepEqual(canonicalBytes({ k: '\u20ac' }), Buffer.from([0x7b, 0x22, 0x6b, 0x22, 0x3a, 0x22, 0xe2, 0x82, 0xac, 0x22, 0x7d]));
});
