/**
 * Offline verifier for Writ receipts (compact JWS, EdDSA over Ed25519).
 *
 * Portable on purpose: no Node-only APIs. It needs only `TextEncoder`/`TextDecoder`, WebCrypto's
 * SHA-512 (through `@noble/ed25519`'s `verifyAsync`), timers, and `fetch` when the keys come from
 * a JWKS URL, so it runs unchanged in browsers, Deno, Cloudflare Workers, Bun and Node.
 *
 * Error messages are fixed strings: nothing from the receipt or the key set is echoed back, except
 * the name of a claim that failed an issuer/audience check. A JWKS that could not be fetched names
 * the caller's own `jwksUrl`, and carries the failure in `cause`.
 */
import { verifyAsync } from '@noble/ed25519';
// `.js` rather than this repository's `.ts`: declarations keep the specifier, and TypeScript before 5.0 cannot follow a `.ts` one.
import { RECEIPT_TYP, type ReceiptClaims } from './receipt-claims.js';

// ---------------------------------------------------------------------------------------------
// Public types

export interface JwksKey {
  kty: string;
  crv?: string;
  x?: string;
  kid?: string;
  alg?: string;
  use?: string;
}

export interface Jwks {
  keys: JwksKey[];
}

export interface VerifyOptions {
  /** The issuer's key set. Pass exactly one of `jwks` / `jwksUrl`. */
  jwks?: Jwks;
  /** Where to fetch the issuer's key set. Cached per URL for 5 minutes; refetched once on an unknown kid. */
  jwksUrl?: string;
  /** Injectable fetch; defaults to `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** When given, `iss` must equal it. */
  issuer?: string;
  /** When given, `aud` must equal it, or contain it when `aud` is an array. */
  audience?: string;
  /**
   * Default false: an expired receipt still verifies (it is evidence of what was decided) and comes
   * back with `expired: true`. When true, an expired receipt fails with code `expired`.
   */
  checkExpiry?: boolean;
  /** Leeway for the expiry check, in seconds. Default 0. */
  clockToleranceSeconds?: number;
  /** Current time in unix seconds (for tests). Defaults to the system clock. */
  now?: number;
}

export type ReceiptAlg = 'EdDSA' | 'Ed25519';
export { RECEIPT_TYP };

export interface ReceiptHeader {
  alg: ReceiptAlg;
  typ: typeof RECEIPT_TYP;
  kid?: string;
  [name: string]: unknown;
}

export type { AuthorizerClaims, IssuerRole, LogAnchor, ReceiptApproval, ReceiptClaims, WitnessClaims } from './receipt-claims.js';

export interface VerifiedReceipt {
  header: ReceiptHeader;
  claims: ReceiptClaims;
  /** True when `exp` has passed (only possible when `checkExpiry` is off). */
  expired: boolean;
  /** The kid of the JWKS key whose signature verified ('' if that key has no kid). */
  kid: string;
}

export type ReceiptVerificationErrorCode =
  | 'malformed'
  | 'unsupported_alg'
  | 'bad_typ'
  | 'unknown_key'
  | 'bad_signature'
  | 'claim_mismatch'
  | 'expired'
  | 'jwks_unavailable';

export class ReceiptVerificationError extends Error {
  readonly code: ReceiptVerificationErrorCode;
  /** For `claim_mismatch`: which claim (`iss` or `aud`). */
  readonly claim?: string;
  /** For `jwks_unavailable` from a `jwksUrl`: that URL (`cause` says what went wrong there). */
  readonly url?: string;

  constructor(code: ReceiptVerificationErrorCode, message: string, extra: { claim?: string; url?: string; cause?: unknown } = {}) {
    super(message, 'cause' in extra ? { cause: extra.cause } : undefined);
    this.name = 'ReceiptVerificationError';
    this.code = code;
    if (extra.claim !== undefined) this.claim = extra.claim;
    if (extra.url !== undefined) this.url = extra.url;
  }
}

// ---------------------------------------------------------------------------------------------
// base64url (strict: URL alphabet only, no padding, canonical trailing bits)

const B64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_LOOKUP = new Int8Array(128).fill(-1);
for (let i = 0; i < B64URL_ALPHABET.length; i++) B64URL_LOOKUP[B64URL_ALPHABET.charCodeAt(i)] = i;

/** Decodes unpadded base64url; returns null on any character outside the alphabet or a non-canonical tail. */
function decodeBase64Url(input: string): Uint8Array | null {
  const n = input.length;
  if (n % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((n * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i);
    const v = c < 128 ? (B64URL_LOOKUP[c] ?? -1) : -1;
    if (v < 0) return null;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  // Leftover bits must be zero, so each byte string has exactly one accepted encoding.
  if (acc !== 0) return null;
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

function decodeJsonObject(segment: string): Record<string, unknown> | null {
  const bytes = decodeBase64Url(segment);
  if (!bytes) return null;
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch {
    return null;
  }
  return isPlainObject(value) ? value : null;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const has = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);

// ---------------------------------------------------------------------------------------------
// Keys

interface UsableKey {
  kid: string | undefined;
  publicKey: Uint8Array;
}

/** Keeps only keys a receipt may be verified with: OKP / Ed25519, 32-byte x, EdDSA-compatible alg, use sig. */
function usableKeys(jwks: Jwks): UsableKey[] {
  const out: UsableKey[] = [];
  for (const k of jwks.keys) {
    if (!isPlainObject(k)) continue;
    if (k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string') continue;
    if (k.alg !== undefined && k.alg !== 'EdDSA' && k.alg !== 'Ed25519') continue;
    if (k.use !== undefined && k.use !== 'sig') continue;
    if (k.kid !== undefined && typeof k.kid !== 'string') continue;
    const publicKey = decodeBase64Url(k.x);
    if (!publicKey || publicKey.length !== 32) continue;
    out.push({ kid: k.kid, publicKey });
  }
  return out;
}

const isJwks = (v: unknown): v is Jwks => isPlainObject(v) && Array.isArray(v.keys);

function select(keys: UsableKey[], kid: string | undefined): UsableKey[] {
  return kid === undefined ? keys : keys.filter((k) => k.kid === kid);
}

// ---------------------------------------------------------------------------------------------
// Remote JWKS: per-URL cache, 5-minute TTL, concurrent fetches of one URL share a request.

const JWKS_TTL_MS = 5 * 60 * 1000;
const JWKS_FETCH_TIMEOUT_MS = 10_000;

interface CacheEntry {
  keys: UsableKey[];
  fetchedAt: number;
}

const jwksCache = new Map<string, CacheEntry>();
const inflight = new Map<string, Promise<CacheEntry>>();

/** Drops every cached JWKS (all URLs). Mostly for tests and for forcing a reload. */
export function clearJwksCache(): void {
  jwksCache.clear();
}

async function fetchJwks(url: string, fetchImpl: typeof fetch): Promise<CacheEntry> {
  const running = inflight.get(url);
  if (running) return running;
  const job = (async (): Promise<CacheEntry> => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), JWKS_FETCH_TIMEOUT_MS);
    const unavailable = (why: string, cause: unknown) =>
      new ReceiptVerificationError('jwks_unavailable', `JWKS could not be fetched from ${url} (${why})`, { url, cause });
    let body: unknown;
    try {
      const res = await fetchImpl(url, {
        headers: { accept: 'application/jwk-set+json, application/json' },
        signal: controller.signal,
      });
      if (!res.ok) throw unavailable(`HTTP ${res.status}`, new Error(`HTTP ${res.status} ${res.statusText}`.trim()));
      body = await res.json();
    } catch (err) {
      if (err instanceof ReceiptVerificationError) throw err;
      const why = controller.signal.aborted ? 'no answer in time' : err instanceof SyntaxError ? 'the answer is not JSON' : 'the request failed';
      throw unavailable(why, err);
    } finally {
      clearTimeout(timer);
    }
    if (!isJwks(body)) throw new ReceiptVerificationError('jwks_unavailable', 'JWKS is not a valid key set', { url });
    const entry: CacheEntry = { keys: usableKeys(body), fetchedAt: Date.now() };
    jwksCache.set(url, entry);
    return entry;
  })();
  inflight.set(url, job);
  try {
    return await job;
  } finally {
    inflight.delete(url);
  }
}

async function remoteCandidates(url: string, fetchImpl: typeof fetch, kid: string | undefined): Promise<UsableKey[]> {
  const cached = jwksCache.get(url);
  const fresh = cached !== undefined && Date.now() - cached.fetchedAt < JWKS_TTL_MS;
  if (fresh) {
    const hit = select(cached.keys, kid);
    if (hit.length > 0) return hit;
    // Unknown kid (or an empty set): the issuer may have rotated keys since we cached. Refetch once.
  }
  const entry = await fetchJwks(url, fetchImpl);
  return select(entry.keys, kid);
}

// ---------------------------------------------------------------------------------------------
// Verification

function fail(code: ReceiptVerificationErrorCode, message: string, extra?: { claim: string }): never {
  throw new ReceiptVerificationError(code, message, extra);
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export async function verifyReceipt(jws: string, options: VerifyOptions): Promise<VerifiedReceipt> {
  if (typeof options !== 'object' || options === null) throw new TypeError('verifyReceipt: options are required');
  const hasJwks = options.jwks !== undefined;
  const hasUrl = options.jwksUrl !== undefined;
  if (hasJwks === hasUrl) throw new TypeError('verifyReceipt: pass exactly one of jwks or jwksUrl');
  const tolerance = options.clockToleranceSeconds ?? 0;
  if (!isFiniteNumber(tolerance) || tolerance < 0) {
    throw new TypeError('verifyReceipt: clockToleranceSeconds must be a non-negative number');
  }
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (!isFiniteNumber(now)) throw new TypeError('verifyReceipt: now must be a number of unix seconds');

  // --- structure
  if (typeof jws !== 'string') fail('malformed', 'receipt is not a string');
  const parts = jws.split('.');
  if (parts.length !== 3) fail('malformed', 'receipt is not a compact JWS');
  const [headerB64, payloadB64, signatureB64] = parts as [string, string, string];

  const header = decodeJsonObject(headerB64);
  if (!header) fail('malformed', 'receipt header is not valid base64url JSON');
  if (has(header, 'crit') || has(header, 'b64')) fail('malformed', 'receipt header uses unsupported JWS extensions');
  if (header.alg !== 'EdDSA' && header.alg !== 'Ed25519') fail('unsupported_alg', 'receipt alg is not EdDSA');
  if (header.typ !== RECEIPT_TYP) fail('bad_typ', 'receipt typ is not oap-receipt+jwt');
  if (header.kid !== undefined && typeof header.kid !== 'string') fail('malformed', 'receipt kid is not a string');
  const kid = header.kid as string | undefined;

  const payload = decodeJsonObject(payloadB64);
  if (!payload) fail('malformed', 'receipt payload is not valid base64url JSON');

  const signature = decodeBase64Url(signatureB64);
  if (!signature || signature.length !== 64) fail('malformed', 'receipt signature is not 64 base64url bytes');

  // --- keys
  let candidates: UsableKey[];
  if (hasJwks) {
    if (!isJwks(options.jwks)) fail('jwks_unavailable', 'JWKS is not a valid key set');
    candidates = select(usableKeys(options.jwks), kid);
  } else {
    if (typeof options.jwksUrl !== 'string') throw new TypeError('verifyReceipt: jwksUrl must be a string');
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (!fetchImpl) fail('jwks_unavailable', 'no fetch implementation is available');
    candidates = await remoteCandidates(options.jwksUrl, fetchImpl, kid);
  }
  if (candidates.length === 0) fail('unknown_key', 'no usable key matches the receipt');

  // --- signature (RFC 8032 strict decoding rather than noble's ZIP-215 default, matching OpenSSL/jose)
  const signingInput = encoder.encode(`${headerB64}.${payloadB64}`);
  let verifiedBy: UsableKey | undefined;
  for (const key of candidates) {
    let ok = false;
    try {
      ok = await verifyAsync(signature, signingInput, key.publicKey, { zip215: false });
    } catch {
      ok = false;
    }
    if (ok) {
      verifiedBy = key;
      break;
    }
  }
  if (!verifiedBy) fail('bad_signature', 'receipt signature does not verify');

  // --- claims (signed by the issuer from here on; shape-check what the types promise)
  if (
    typeof payload.iss !== 'string' ||
    typeof payload.sub !== 'string' ||
    typeof payload.jti !== 'string' ||
    typeof payload.decision !== 'string' ||
    !isFiniteNumber(payload.iat) ||
    !isFiniteNumber(payload.exp)
  ) {
    fail('malformed', 'receipt claims are missing or mistyped');
  }
  const aud = payload.aud;
  if (aud !== undefined && typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) {
    fail('malformed', 'receipt aud claim is mistyped');
  }
  const claims = payload as ReceiptClaims;

  if (options.issuer !== undefined && claims.iss !== options.issuer) {
    fail('claim_mismatch', 'receipt claim "iss" does not match', { claim: 'iss' });
  }
  if (options.audience !== undefined) {
    const ok = Array.isArray(aud) ? aud.includes(options.audience) : aud === options.audience;
    if (!ok) fail('claim_mismatch', 'receipt claim "aud" does not match', { claim: 'aud' });
  }

  // exp is the first instant the receipt is no longer current (RFC 7519 §4.1.4).
  const expired = now - tolerance >= claims.exp;
  if (expired && options.checkExpiry === true) fail('expired', 'receipt has expired');

  return { header: header as ReceiptHeader, claims, expired, kid: verifiedBy.kid ?? '' };
}
