import test from 'ava';
import crypto from 'node:crypto';
import { KEYS, TransparencyLog } from '../src/log/log.ts';
import { LogDamage, verifyLog } from '../src/log/verify.ts';
import { canonicalize, canonicalMembers, isCanonical } from '../src/log/jcs.ts';
import { MemoryStore } from '../src/store/memory.ts';
import type { SigningKey } from '../src/crypto/keys.ts';

/**
 * `writ log verify` and the start-up check read the log a chunk of entries (and their tree nodes)
 * at a time: damage on either side of a chunk's edge, and at the log's end, is named at its index.
 */
function key(): SigningKey {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return { kid: 'k', privateKey, publicKey, publicJwk: {}, publicRaw: Buffer.from(raw) };
}

/** Past two chunks of 4096, so checks cross chunk edges. */
const SIZE = 8_300;
const EDGES = [0, 4095, 4096, 8191, 8192, SIZE - 1];

async function storedLog(): Promise<{ store: MemoryStore; logKey: { name: string; publicKeyRaw: Buffer }; signingKey: SigningKey; root: string }> {
  const store = new MemoryStore();
  const signingKey = key();
  const log = await TransparencyLog.open(store, { origin: 'test/chunks', key: signingKey, commitWindowMs: 0 });
  await Promise.all(Array.from({ length: SIZE }, (_, i) => log.append('e', { i, text: `entry ${i}`, nested: { b: [1, 2.5, 'x'], a: null } })));
  const checkpoint = await log.checkpoint();
  await log.close();
  return { store, logKey: { name: 'test/chunks', publicKeyRaw: signingKey.publicRaw }, signingKey, root: checkpoint.root };
}

const fixture = storedLog();

/** A copy of the stored log to damage. */
async function copy(): Promise<{ store: MemoryStore; logKey: { name: string; publicKeyRaw: Buffer }; signingKey: SigningKey }> {
  const { store, logKey, signingKey } = await fixture;
  const fresh = new MemoryStore();
  const ops = [];
  for await (const [k, value] of store.iterate({})) ops.push({ type: 'put' as const, key: k, value });
  await fresh.batch(ops);
  return { store: fresh, logKey, signingKey };
}

/** Checked on the calling thread, and on verification threads (what a long log gets). */
const MODES = [
  { name: 'on one thread', threads: 0, victims: EDGES },
  { name: 'on verification threads', threads: 2, victims: [4095, 4096, SIZE - 1] },
];

for (const { name, threads, victims } of MODES) {
  test(`an undamaged log of several chunks verifies ${name}, with every entry and checkpoint counted`, async (t) => {
    const { store, logKey } = await copy();
    const result = await verifyLog(store, logKey, { threads });
    t.true(result.ok, JSON.stringify(result.problem));
    t.is(result.size, SIZE);
    t.is(result.checkpoints, 1);
    t.is(result.root, (await fixture).root);
  });

  for (const victim of victims) {
    test(`a missing entry at ${victim} is named at its index (${name})`, async (t) => {
      const { store, logKey } = await copy();
      await store.batch([{ type: 'del', key: KEYS.entry(victim) }]);
      const result = await verifyLog(store, logKey, { threads });
      t.false(result.ok);
      t.is(result.problem?.index, victim);
      t.regex(result.problem?.message ?? '', /is missing|claims/);
    });

    test(`an entry at ${victim} rewritten out of canonical form is named at its index (${name})`, async (t) => {
      const { store, logKey } = await copy();
      const raw = (await store.get(KEYS.entry(victim)))!;
      await store.batch([{ type: 'put', key: KEYS.entry(victim), value: raw.replace('{', '{ ') }]);
      const result = await verifyLog(store, logKey, { threads });
      t.is(result.problem?.index, victim);
      t.is(result.problem?.message, 'entry is not in canonical (RFC 8785) form');
    });

    test(`a stored leaf hash at ${victim} that does not match its entry is named at its index (${name})`, async (t) => {
      const { store, logKey } = await copy();
      await store.batch([{ type: 'put', key: KEYS.node(0, victim), value: Buffer.alloc(32, 7).toString('base64') }]);
      const result = await verifyLog(store, logKey, { threads });
      t.is(result.problem?.index, victim);
      t.is(result.problem?.message, 'entry does not hash to its stored leaf hash');
    });

    test(`an entry at ${victim} that links to another than the entry before it is named at its index (${name})`, async (t) => {
      const { store, logKey } = await copy();
      const entry = JSON.parse((await store.get(KEYS.entry(victim)))!) as { prev: string };
      entry.prev = Buffer.alloc(32, 9).toString('base64');
      await store.batch([{ type: 'put', key: KEYS.entry(victim), value: canonicalize(entry) }]);
      const result = await verifyLog(store, logKey, { threads });
      t.is(result.problem?.index, victim);
      t.is(result.problem?.message, "prev does not match the previous entry's hash");
    });
  }

  test(`entries stored past the size the log records are counted and named (${name})`, async (t) => {
    const { store, logKey } = await copy();
    // The recorded size says 8,000: the 300 entries after it are read (past where the log says it ends) and still checked.
    await store.batch([{ type: 'put', key: KEYS.meta, value: JSON.stringify({ size: 8_000 }) }]);
    const result = await verifyLog(store, logKey, { threads });
    t.false(result.ok);
    t.is(result.problem?.index, SIZE);
    t.is(result.problem?.message, `the log claims 8000 entries but holds ${SIZE}`);
  });

  test(`a stored interior node that does not match is named at the entry that completes it (${name})`, async (t) => {
    const { store, logKey } = await copy();
    // Node 3/511 covers entries 4088..4095; entry 4095 completes it, the last of the first chunk.
    await store.batch([{ type: 'del', key: KEYS.node(3, 511) }]);
    const result = await verifyLog(store, logKey, { threads });
    t.is(result.problem?.index, 4095);
    t.is(result.problem?.message, 'stored tree node 3/511 does not match');
  });

  test(`a stored node above a chunk that does not match is named at the entry that completes it (${name})`, async (t) => {
    const { store, logKey } = await copy();
    // Node 13/0 covers entries 0..8191: two whole chunks, completed by entry 8191.
    await store.batch([{ type: 'put', key: KEYS.node(13, 0), value: Buffer.alloc(32, 3).toString('base64') }]);
    const result = await verifyLog(store, logKey, { threads });
    t.is(result.problem?.index, 8191);
    t.is(result.problem?.message, 'stored tree node 13/0 does not match');
  });
}

test('entries lost from the end of the log are named at the first lost index', async (t) => {
  const { store, logKey } = await copy();
  await store.batch([8200, 8201, 8202].map((i) => ({ type: 'del' as const, key: KEYS.entry(i) })).concat(Array.from({ length: SIZE - 8203 }, (_, k) => ({ type: 'del' as const, key: KEYS.entry(8203 + k) }))));
  const result = await verifyLog(store, logKey);
  t.false(result.ok);
  t.is(result.problem?.index, 8200);
});

test('opening a log whose tail lost an entry after the latest checkpoint names that index', async (t) => {
  const { store, signingKey } = await copy();
  const log = await TransparencyLog.open(store, { origin: 'test/chunks', key: signingKey, commitWindowMs: 0 });
  await Promise.all(Array.from({ length: 5000 }, (_, i) => log.append('more', { i })));
  await log.close();
  await store.batch([{ type: 'del', key: KEYS.entry(SIZE + 4100) }]);
  const error = await t.throwsAsync(TransparencyLog.open(store, { origin: 'test/chunks', key: signingKey }), { instanceOf: LogDamage });
  t.is(error?.index, SIZE + 4100);
  t.regex(error?.message ?? '', new RegExp(`entry ${SIZE + 4100} is missing`));
});

test('an entry is canonical exactly when canonicalizing what it parses to gives it back', (t) => {
  const texts = [
    '{"a":1,"b":[true,false,null],"c":{"d":"x"}}',
    '{"b":1,"a":2}',
    '{"a":1.0}',
    '{"a":1e21}',
    '{"a":1e+21}',
    '{"a":-0}',
    '{"a":"\\u0007"}',
    '{"a":"\\u00e9"}',
    '{"a":"é"}',
    '{"a":"\\ud800"}',
    '{"a":"\\/"}',
    '{"a":1,"a":1}',
    '{"10":1,"9":2}',
    '{"9":2,"10":1}',
    '{"a":[{"z":1,"y":2}]}',
    '{"a":[{"y":2,"z":1}]}',
    '{ "a":1}',
    '{"__proto__":1}',
    '{"a":"\\n","b":"\\u000a"}',
    '{"a":"\\u001f","b":"\\u001F"}',
    '{"a":"😀","b":"\\ud83d\\ude00"}',
    '{"a":[],"b":{},"c":[[],{}]}',
    '{"a":1,}',
    '{"a":tru}',
    '{"a":0.1,"b":1.5e-7,"c":1e+21,"d":-5}',
    '{"a":0.10}',
    '{"a":"x"} ',
    '{"a":"\\/"}',
  ];
  for (const text of texts) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      t.is(canonicalMembers(text), undefined, text);
      continue;
    }
    let expected: boolean;
    try {
      expected = canonicalize(parsed) === text;
    } catch {
      expected = false;
    }
    t.is(isCanonical(text, parsed), expected, text);
    // The one-pass scan may leave a canonical text to the full check, but never accepts another.
    if (canonicalMembers(text) !== undefined) t.true(expected, text);
  }
});

test('the one-pass scan accepts what canonicalize writes and names each top-level member', (t) => {
  const value = { v: 1, index: 7, prev: 'abc+/=', data: { z: [1, 'two', null, true, { y: -0.5 }], a: 'line\nbreak \u0001 é 😀' }, time: 'now', type: 't' };
  const text = canonicalize(value);
  const members = canonicalMembers(text);
  t.truthy(members);
  t.is(members?.index, '7');
  t.is(members?.prev, '"abc+/="');
  t.deepEqual(JSON.parse(members?.data ?? 'null'), value.data);
  // Out of order, or with a space: not canonical.
  t.is(canonicalMembers(text.replace('{"data"', '{ "data"')), undefined);
  t.is(canonicalMembers(JSON.stringify(value)), undefined);
});

test('canonicalizing deeply nested values gives the same text as the checked walk would', (t) => {
  let deep: unknown = { z: 1, a: 'end' };
  for (let i = 0; i < 200; i++) deep = { k: [deep], j: i };
  const text = canonicalize(deep);
  t.true(isCanonical(text, JSON.parse(text)));
  t.true(text.startsWith('{"j":199,"k":[{"j":198,'));
});
