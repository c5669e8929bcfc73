import test from 'ava';
import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign } from 'jose';
import {
  ReceiptVerificationError,
  clearJwksCache,
  verifyReceipt,
  type Jwks,
  type JwksKey,
  type ReceiptVerificationErrorCode,
  type VerifyOptions,
} from '../packages/writ-verify/src/verify.ts';

// ---------------------------------------------------------------------------------------------
// Helpers

interface TestKey {
  kid: string;
  privateKey: KeyObject;
  jwk: JwksKey;
}

function makeKey(kid: string): TestKey {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const { x } = publicKey.export({ format: 'jwk' });
  return { kid, privateKey, jwk: { kty: 'OKP', crv: 'Ed25519', x: x as string, kid, alg: 'EdDSA', use: 'sig' } };
}

const NOW = 1_750_000_000;
const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: 'https://writ.example',
    iss_role: 'authorizer',
    aud: 'https://shop.example',
    sub: 'agent_123',
    jti: 'rcpt_abc',
    oap_ver: '1.0',
    permission_id: 'perm_1',
    action: 'payments.charge',
    resource: 'card:4242',
    value: 42.5,
    currency: 'EUR',
    decision: 'allow',
    tier: 'sensitive',
    approvals: [{ approver_id: 'user_9', name: 'Ada', at: NOW - 30 }],
    policy: { hash: 'sha256:deadbeef', determining: ['p1'] },
    log: { origin: 'writ.example/log', index: 7, leaf_hash: 'AAAA' },
    iat: NOW - 60,
    exp: NOW + 300,
    x_future_claim: { anything: true },
    ...extra,
  };
}

/** Signs with jose's CompactSign (alg EdDSA). */
async function signJose(key: TestKey, payload: unknown, header: Record<string, unknown> = {}): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'oap-receipt+jwt', ...header })
    .sign(key.privateKey);
}

/** Hand-built JWS signed with node:crypto; the header is taken verbatim. */
function signRaw(key: TestKey, payload: unknown, header: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${crypto.sign(null, Buffer.from(input), key.privateKey).toString('base64url')}`;
}

async function rejects(
  t: import('ava').ExecutionContext,
  promise: Promise<unknown>,
  code: ReceiptVerificationErrorCode,
): Promise<ReceiptVerificationError> {
  const err = await t.throwsAsync(promise, { instanceOf: ReceiptVerificationError });
  t.is(err?.code, code);
  return err as ReceiptVerificationError;
}

const keyA = makeKey('key-a');
const keyB = makeKey('key-b');
const jwksA: Jwks = { keys: [keyA.jwk] };
const opts = (extra: Partial<VerifyOptions> = {}): VerifyOptions => ({ jwks: jwksA, now: NOW, ...extra });

/** Replaces one character in the middle of a segment so the decoded bytes change. */
function flipChar(segment: string, at = Math.floor(segment.length / 2)): string {
  const c = segment[at] === 'A' ? 'B' : 'A';
  return segment.slice(0, at) + c + segment.slice(at + 1);
}

// ---------------------------------------------------------------------------------------------
// Good receipts

test('a receipt signed with jose (alg EdDSA) verifies and returns its header, claims and kid', async (t) => {
  const payload = claims();
  const jws = await signJose(keyA, payload);
  const out = await verifyReceipt(jws, opts({ issuer: 'https://writ.example', audience: 'https://shop.example' }));
  t.deepEqual(out.claims, payload);
  t.is(out.claims.decision, 'allow');
  t.deepEqual(out.claims.x_future_claim, { anything: true }, 'unknown claims pass through');
  t.is(out.kid, 'key-a');
  t.is(out.header.alg, 'EdDSA');
  t.is(out.header.typ, 'oap-receipt+jwt');
  t.false(out.expired);
});

test('a receipt with alg "Ed25519" signed by node:crypto verifies', async (t) => {
  const jws = signRaw(keyA, claims(), { alg: 'Ed25519', kid: 'key-a', typ: 'oap-receipt+jwt' });
  const out = await verifyReceipt(jws, opts());
  t.is(out.header.alg, 'Ed25519');
  t.is(out.claims.jti, 'rcpt_abc');
});

test('a receipt without kid is verified against every Ed25519 key in the set', async (t) => {
  const jws = signRaw(keyB, claims(), { alg: 'EdDSA', typ: 'oap-receipt+jwt' });
  const out = await verifyReceipt(jws, opts({ jwks: { keys: [keyA.jwk, keyB.jwk] } }));
  t.is(out.kid, 'key-b', 'reports the key that actually verified');
  await rejects(t, verifyReceipt(jws, opts({ jwks: { keys: [keyA.jwk] } })), 'bad_signature');
});

test('the audience check accepts an aud array that contains the expected audience', async (t) => {
  const jws = await signJose(keyA, claims({ aud: ['https://other.example', 'https://shop.example'] }));
  const out = await verifyReceipt(jws, opts({ audience: 'https://shop.example' }));
  t.deepEqual(out.claims.aud, ['https://other.example', 'https://shop.example']);
  await rejects(t, verifyReceipt(jws, opts({ audience: 'https://evil.example' })), 'claim_mismatch');
});

// ---------------------------------------------------------------------------------------------
// Forgery and tampering

test('a receipt whose payload was altered fails with bad_signature', async (t) => {
  const jws = await signJose(keyA, claims());
  const [h, , s] = jws.split('.');
  const forged = `${h}.${b64(claims({ decision: 'deny', value: 1_000_000 }))}.${s}`;
  const err = await rejects(t, verifyReceipt(forged, opts()), 'bad_signature');
  t.is(err.message, 'receipt signature does not verify');
});

test('a receipt whose signature was altered fails with bad_signature', async (t) => {
  const jws = await signJose(keyA, claims());
  const [h, p, s] = jws.split('.') as [string, string, string];
  await rejects(t, verifyReceipt(`${h}.${p}.${flipChar(s, 10)}`, opts()), 'bad_signature');
});

test('a receipt signed by a different key under the expected kid fails with bad_signature', async (t) => {
  const impostor = makeKey('key-a');
  const jws = await signJose(impostor, claims());
  await rejects(t, verifyReceipt(jws, opts()), 'bad_signature');
});

test('a receipt whose kid is not in the key set fails with unknown_key, without echoing the kid', async (t) => {
  const jws = await signJose(keyB, claims(), { kid: '<img src=x onerror=alert(1)>' });
  const err = await rejects(t, verifyReceipt(jws, opts()), 'unknown_key');
  t.false(err.message.includes('<img'), 'message must not echo attacker input');
});

test('alg HS256 and alg none are refused with unsupported_alg', async (t) => {
  const payload = b64(claims());
  const hs = `${b64({ alg: 'HS256', kid: 'key-a', typ: 'oap-receipt+jwt' })}.${payload}.${crypto
    .createHmac('sha256', keyA.jwk.x as string)
    .update('x')
    .digest('base64url')}`;
  await rejects(t, verifyReceipt(hs, opts()), 'unsupported_alg');
  const none = `${b64({ alg: 'none', typ: 'oap-receipt+jwt' })}.${payload}.`;
  await rejects(t, verifyReceipt(none, opts()), 'unsupported_alg');
  // Even a genuine Ed25519 signature does not rescue a header that claims another alg.
  const lying = signRaw(keyA, claims(), { alg: 'ES256', kid: 'key-a', typ: 'oap-receipt+jwt' });
  await rejects(t, verifyReceipt(lying, opts()), 'unsupported_alg');
});

test('a token with the wrong typ (e.g. a plain JWT) is refused with bad_typ', async (t) => {
  await rejects(t, verifyReceipt(await signJose(keyA, claims(), { typ: 'JWT' }), opts()), 'bad_typ');
  const noTyp = signRaw(keyA, claims(), { alg: 'EdDSA', kid: 'key-a' });
  await rejects(t, verifyReceipt(noTyp, opts()), 'bad_typ');
});

test('a header carrying crit or b64 is refused as malformed', async (t) => {
  const crit = signRaw(keyA, claims(), { alg: 'EdDSA', kid: 'key-a', typ: 'oap-receipt+jwt', crit: ['exp'], exp: 1 });
  await rejects(t, verifyReceipt(crit, opts()), 'malformed');
  const b64Header = signRaw(keyA, claims(), { alg: 'EdDSA', kid: 'key-a', typ: 'oap-receipt+jwt', b64: true });
  await rejects(t, verifyReceipt(b64Header, opts()), 'malformed');
});

test('malformed strings are refused with malformed', async (t) => {
  const jws = await signJose(keyA, claims());
  const [h, p, s] = jws.split('.') as [string, string, string];
  const cases: Array<[string, string]> = [
    ['two parts', `${h}.${p}`],
    ['four parts', `${jws}.${s}`],
    ['empty string', ''],
    ['standard-base64 characters', `${h}.${p}.${s.slice(0, 40)}+/${s.slice(42)}`],
    ['padding', `${h}.${p}=.${s}`],
    ['header is not JSON', `${b64('not json')}.${p}.${s}`],
    ['header is a JSON array', `${b64([1, 2])}.${p}.${s}`],
    ['payload is not JSON', `${h}.${b64('{')}.${s}`],
    ['signature too short', `${h}.${p}.${s.slice(0, 40)}`],
    // The last char of a 64-byte signature carries 4 unused bits; a non-zero tail is a second
    // spelling of the same bytes and is refused.
    ['non-canonical base64 tail', `${h}.${p}.${s.slice(0, -1)}${s.endsWith('B') ? 'C' : 'B'}`],
  ];
  for (const [name, input] of cases) {
    const err = await t.throwsAsync(verifyReceipt(input, opts()), { instanceOf: ReceiptVerificationError }, name);
    t.is(err?.code, 'malformed', name);
  }
  await rejects(t, verifyReceipt(42 as unknown as string, opts()), 'malformed');
});

test('a validly signed receipt missing required claims is refused as malformed', async (t) => {
  const { exp: _exp, ...noExp } = claims();
  await rejects(t, verifyReceipt(await signJose(keyA, noExp), opts()), 'malformed');
  await rejects(t, verifyReceipt(await signJose(keyA, claims({ iss: 7 })), opts()), 'malformed');
});

// ---------------------------------------------------------------------------------------------
// Claims

test('an expired receipt still verifies as evidence, flagged expired: true', async (t) => {
  const jws = await signJose(keyA, claims({ exp: NOW - 1 }));
  const out = await verifyReceipt(jws, opts());
  t.true(out.expired);
  t.is(out.claims.exp, NOW - 1);
});

test('with checkExpiry an expired receipt fails with expired, honouring clock tolerance', async (t) => {
  const jws = await signJose(keyA, claims({ exp: NOW - 10 }));
  await rejects(t, verifyReceipt(jws, opts({ checkExpiry: true })), 'expired');
  // exp itself is already too late (RFC 7519: "on or after").
  await rejects(t, verifyReceipt(jws, opts({ checkExpiry: true, now: NOW - 10 })), 'expired');
  const lenient = await verifyReceipt(jws, opts({ checkExpiry: true, clockToleranceSeconds: 30 }));
  t.false(lenient.expired);
  const current = await verifyReceipt(jws, opts({ checkExpiry: true, now: NOW - 11 }));
  t.false(current.expired);
});

test('an issuer mismatch fails with claim_mismatch naming iss', async (t) => {
  const jws = await signJose(keyA, claims());
  const err = await rejects(t, verifyReceipt(jws, opts({ issuer: 'https://other-writ.example' })), 'claim_mismatch');
  t.is(err.claim, 'iss');
  t.regex(err.message, /"iss"/);
});

test('an audience mismatch or a missing aud fails with claim_mismatch naming aud', async (t) => {
  const jws = await signJose(keyA, claims());
  const err = await rejects(t, verifyReceipt(jws, opts({ audience: 'https://evil.example' })), 'claim_mismatch');
  t.is(err.claim, 'aud');
  const noAud = await signJose(keyA, claims({ aud: undefined }));
  await rejects(t, verifyReceipt(noAud, opts({ audience: 'https://shop.example' })), 'claim_mismatch');
});

// ---------------------------------------------------------------------------------------------
// Key sets

test('JWKS keys that are not OKP/Ed25519 with a 32-byte x are never used', async (t) => {
  const jws = await signJose(keyA, claims());
  const raw = Buffer.from(keyA.jwk.x as string, 'base64url');
  const bad: JwksKey[] = [
    { ...keyA.jwk, kty: 'EC' },
    { ...keyA.jwk, crv: 'X25519' },
    { ...keyA.jwk, x: raw.subarray(0, 31).toString('base64url') },
    { ...keyA.jwk, x: Buffer.concat([raw, Buffer.of(0)]).toString('base64url') },
    { ...keyA.jwk, alg: 'RS256' },
    { ...keyA.jwk, use: 'enc' },
  ];
  for (const key of bad) {
    const err = await t.throwsAsync(verifyReceipt(jws, opts({ jwks: { keys: [key] } })), {
      instanceOf: ReceiptVerificationError,
    });
    t.is(err?.code, 'unknown_key', JSON.stringify(key));
  }
  // The same key, well-formed, does verify: the rejections above are about the key entry.
  t.is((await verifyReceipt(jws, opts({ jwks: { keys: [...bad, keyA.jwk] } }))).kid, 'key-a');
});

test('a small-order (weak) JWKS key cannot make an all-zero forged signature verify', async (t) => {
  // With the identity point as public key, R = identity and S = 0 satisfy the cofactored ZIP-215
  // equation for every message; RFC 8032 strict verification refuses small-order keys.
  const identity = new Uint8Array(32);
  identity[0] = 1;
  const weak: JwksKey = { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(identity).toString('base64url'), kid: 'weak' };
  const sig = new Uint8Array(64);
  sig[0] = 1;
  const forged = `${b64({ alg: 'EdDSA', kid: 'weak', typ: 'oap-receipt+jwt' })}.${b64(claims())}.${Buffer.from(sig).toString('base64url')}`;
  await rejects(t, verifyReceipt(forged, opts({ jwks: { keys: [weak] } })), 'bad_signature');
});

test('options must name exactly one key source', async (t) => {
  const jws = await signJose(keyA, claims());
  await t.throwsAsync(verifyReceipt(jws, { now: NOW }), { instanceOf: TypeError });
  await t.throwsAsync(verifyReceipt(jws, { jwks: jwksA, jwksUrl: 'http://127.0.0.1:1/jwks', now: NOW }), {
    instanceOf: TypeError,
  });
});

/** A real JWKS endpoint on 127.0.0.1 whose key set and status can be changed, counting hits. */
async function jwksServer(initial: Jwks): Promise<{
  url: string;
  hits: () => number;
  set: (jwks: Jwks) => void;
  fail: (status: number | null) => void;
  close: () => Promise<void>;
}> {
  let current = initial;
  let hits = 0;
  let status: number | null = null;
  const server = http.createServer((_req, res) => {
    hits++;
    if (status !== null) {
      res.writeHead(status).end('nope');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify(current));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    set: (jwks) => (current = jwks),
    fail: (s) => (status = s),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test('a JWKS fetched from jwksUrl verifies receipts and is cached rather than refetched', async (t) => {
  const srv = await jwksServer(jwksA);
  t.teardown(srv.close);
  const jws = await signJose(keyA, claims());
  t.is((await verifyReceipt(jws, { jwksUrl: srv.url, now: NOW })).kid, 'key-a');
  t.is((await verifyReceipt(jws, { jwksUrl: srv.url, now: NOW })).kid, 'key-a');
  t.is(srv.hits(), 1, 'second verification is served from the cache');
});

test('after key rotation a receipt with the new kid triggers one refetch and verifies', async (t) => {
  const srv = await jwksServer(jwksA);
  t.teardown(srv.close);
  await verifyReceipt(await signJose(keyA, claims()), { jwksUrl: srv.url, now: NOW });
  t.is(srv.hits(), 1);

  srv.set({ keys: [keyB.jwk, keyA.jwk] });
  const rotated = await signJose(keyB, claims());
  t.is((await verifyReceipt(rotated, { jwksUrl: srv.url, now: NOW })).kid, 'key-b');
  t.is(srv.hits(), 2, 'unknown kid caused exactly one refetch');
  t.is((await verifyReceipt(rotated, { jwksUrl: srv.url, now: NOW })).kid, 'key-b');
  t.is(srv.hits(), 2, 'the refreshed set is cached');

  const stranger = await signJose(makeKey('key-z'), claims());
  await rejects(t, verifyReceipt(stranger, { jwksUrl: srv.url, now: NOW }), 'unknown_key');
  t.is(srv.hits(), 3, 'a kid missing after the refetch is not retried again');
});

test('an unreachable or broken JWKS endpoint fails with jwks_unavailable', async (t) => {
  const srv = await jwksServer(jwksA);
  t.teardown(srv.close);
  const jws = await signJose(keyA, claims());
  srv.fail(500);
  await rejects(t, verifyReceipt(jws, { jwksUrl: srv.url, now: NOW }), 'jwks_unavailable');
  srv.fail(null);
  srv.set({ nokeys: true } as unknown as Jwks);
  await rejects(t, verifyReceipt(jws, { jwksUrl: srv.url, now: NOW }), 'jwks_unavailable');
  await rejects(
    t,
    verifyReceipt(jws, {
      jwksUrl: 'https://jwks.invalid/',
      now: NOW,
      fetch: async () => {
        throw new Error('network down');
      },
    }),
    'jwks_unavailable',
  );
  srv.set(jwksA);
  t.is((await verifyReceipt(jws, { jwksUrl: srv.url, now: NOW })).kid, 'key-a', 'recovers once the endpoint does');
});

test.serial('a cached JWKS expires after 5 minutes and the injected fetch is used', async (t) => {
  clearJwksCache();
  const url = 'https://writ.example/.well-known/jwks.json';
  let calls = 0;
  const fakeFetch = (async (input: string | URL | Request) => {
    calls++;
    t.is(String(input), url);
    return new Response(JSON.stringify(jwksA), { headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  const jws = await signJose(keyA, claims());
  const realNow = Date.now;
  let clock = realNow();
  Date.now = () => clock;
  try {
    await verifyReceipt(jws, { jwksUrl: url, fetch: fakeFetch, now: NOW });
    clock += 4 * 60 * 1000;
    await verifyReceipt(jws, { jwksUrl: url, fetch: fakeFetch, now: NOW });
    t.is(calls, 1, 'still cached after 4 minutes');
    clock += 2 * 60 * 1000;
    await verifyReceipt(jws, { jwksUrl: url, fetch: fakeFetch, now: NOW });
    t.is(calls, 2, 'refetched after 6 minutes');
  } finally {
    Date.now = realNow;
  }
});

test('the verifier uses no Node-only APIs, so it runs in browsers, Deno and Workers', async (t) => {
  // Its source and what the package ships (the built JavaScript and declarations, from npm run build).
  const pkg = new URL('../packages/writ-verify/', import.meta.url);
  const files = [
    ...(await fs.readdir(new URL('src/', pkg))).map((file) => `src/${file}`),
    ...(await fs.readdir(new URL('dist/', pkg))).map((file) => `dist/${file}`),
  ];
  t.true(files.includes('dist/verify.js'), 'the package is built');
  for (const file of files) {
    const source = await fs.readFile(new URL(file, pkg), 'utf8');
    const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    t.notRegex(code, /\bBuffer\b/, file);
    t.notRegex(code, /\bprocess\./, file);
    t.notRegex(code, /\brequire\(/, file);
    t.notRegex(code, /\batob\b/, file);
    const imported = [...code.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
    for (const specifier of imported) {
      t.true(specifier.startsWith('./') || specifier === '@noble/ed25519', `${file} imports only its own files and @noble/ed25519, not ${specifier}`);
    }
    if (file === 'dist/verify.js') t.deepEqual(imported, ['@noble/ed25519', './receipt-claims.js']);
  }
});
