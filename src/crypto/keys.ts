import crypto, { type KeyObject } from 'node:crypto';
import { exportJWK, importJWK, type JWK } from 'jose';
import { b64url, randomBytes, sha256 } from './encoding.ts';
import { fileVault, type KeyVault } from './vault.ts';

/**
 * Ed25519 keys kept as JWKs in a key vault (files of mode 0600 under `<data>/keys`, or sealed in
 * the database: see vault.ts). Receipt keys rotate; a retired
 * key stays published in the JWKS for 90 days so receipts it signed keep verifying.
 */
export const RETIRED_KEY_GRACE_SECONDS = 90 * 86_400;

const RING = 'receipt-ring.json';
const LOG_KEY = 'log.jwk';
const DATA_KEY = 'data.key';

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
  /** The 32 raw public key bytes. */
  publicRaw: Buffer;
}

interface RingFile {
  current: string;
  keys: Array<{ kid: string; created_at: number; retired_at?: number }>;
}

async function generate(): Promise<{ privateJwk: JWK; key: SigningKey }> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const publicJwk = await exportJWK(publicKey);
  const kid = b64url(sha256(`${publicJwk.crv}:${publicJwk.x}`)).slice(0, 16);
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid },
    key: toSigningKey(kid, privateKey, publicKey, { ...publicJwk, kid }),
  };
}

function toSigningKey(kid: string, privateKey: KeyObject, publicKey: KeyObject, publicJwk: JWK): SigningKey {
  return {
    kid,
    privateKey,
    publicKey,
    publicJwk: { ...publicJwk, kid, alg: 'EdDSA', use: 'sig' },
    publicRaw: Buffer.from(publicJwk.x ?? '', 'base64url'),
  };
}

async function load(vault: KeyVault, name: string): Promise<SigningKey> {
  const text = await vault.read(name);
  if (text === undefined) throw new Error(`the key ${vault.where(name)} is missing`);
  const jwk = JSON.parse(text) as JWK;
  const privateKey = (await importJWK(jwk, 'EdDSA', { extractable: true })) as unknown;
  // jose may hand back a WebCrypto key; node:crypto signs with a KeyObject.
  const priv = privateKey instanceof crypto.KeyObject ? privateKey : crypto.KeyObject.from(privateKey as CryptoKey);
  const pub = crypto.createPublicKey(priv);
  const { d: _d, ...publicJwk } = jwk;
  return toSigningKey(jwk.kid ?? '', priv, pub, publicJwk);
}

/** A data directory's key files, or a vault as it is. */
const vaultOf = (where: string | KeyVault): KeyVault => (typeof where === 'string' ? fileVault(where) : where);

async function loadRing(vault: KeyVault, ring: RingFile, loaded: Map<string, SigningKey>): Promise<Map<string, SigningKey>> {
  const keys = new Map<string, SigningKey>();
  for (const entry of ring.keys) keys.set(entry.kid, loaded.get(entry.kid) ?? (await load(vault, `receipt-${entry.kid}.jwk`)));
  return keys;
}

/** The receipt key ring: the current key plus retired ones still inside their grace period. */
export class KeyRing {
  private constructor(
    private readonly vault: KeyVault,
    private ring: RingFile,
    private keys: Map<string, SigningKey>,
  ) {}

  static async open(where: string | KeyVault): Promise<KeyRing> {
    const vault = vaultOf(where);
    let text = await vault.read(RING);
    if (text === undefined) {
      const { privateJwk, key } = await generate();
      await vault.write(`receipt-${key.kid}.jwk`, JSON.stringify(privateJwk));
      text = await vault.create(RING, JSON.stringify({ current: key.kid, keys: [{ kid: key.kid, created_at: Math.floor(Date.now() / 1000) }] } satisfies RingFile, null, 2));
    }
    const ring = JSON.parse(text) as RingFile;
    return new KeyRing(vault, ring, await loadRing(vault, ring, new Map()));
  }

  /**
   * Reads the ring again, for a key rotated by another node sharing the vault: its new key becomes
   * this ring's current one (keys already loaded are kept). Says whether anything changed.
   */
  async reload(): Promise<boolean> {
    const text = await this.vault.read(RING);
    if (text === undefined) return false;
    const ring = JSON.parse(text) as RingFile;
    if (ring.current === this.ring.current && ring.keys.length === this.ring.keys.length) return false;
    this.keys = await loadRing(this.vault, ring, this.keys);
    this.ring = ring;
    return true;
  }

  get current(): SigningKey {
    const key = this.keys.get(this.ring.current);
    if (!key) throw new Error(`receipt key ${this.ring.current} is missing from ${this.vault.where(RING)}`);
    return key;
  }

  /** Published keys: current and retired within the grace period (retired keys never sign). */
  jwks(now = Math.floor(Date.now() / 1000)): { keys: JWK[] } {
    const keys: JWK[] = [];
    for (const entry of this.ring.keys) {
      if (entry.retired_at !== undefined && now - entry.retired_at > RETIRED_KEY_GRACE_SECONDS) continue;
      const key = this.keys.get(entry.kid);
      if (key) keys.push(key.publicJwk);
    }
    return { keys };
  }

  /** A new key, written to disk but not yet used: the caller logs it, then activates it. */
  async prepare(): Promise<SigningKey> {
    const { privateJwk, key } = await generate();
    await this.vault.write(`receipt-${key.kid}.jwk`, JSON.stringify(privateJwk));
    return key;
  }

  /** Makes a prepared key current and retires the old one (it stays published for 90 days). */
  async activate(key: SigningKey): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    const retired = this.ring.current;
    const ring: RingFile = {
      current: key.kid,
      keys: [
        ...this.ring.keys
          .filter((k) => k.retired_at === undefined || now - k.retired_at <= RETIRED_KEY_GRACE_SECONDS)
          .map((k) => (k.kid === retired ? { ...k, retired_at: now } : k)),
        { kid: key.kid, created_at: now },
      ],
    };
    await this.vault.write(RING, JSON.stringify(ring, null, 2));
    this.ring = ring;
    this.keys.set(key.kid, key);
  }
}

/**
 * The log's checkpoint key: one per log, never rotated in v1 (its verifier key is the log's
 * identity). Made on first start; commands that only inspect a data directory pass `create: false`.
 */
export async function openLogKey(where: string | KeyVault, options: { create?: boolean } = {}): Promise<SigningKey> {
  const vault = vaultOf(where);
  if ((await vault.read(LOG_KEY)) === undefined) {
    if (options.create === false) throw new Error(`the log key ${vault.where(LOG_KEY)} is missing`);
    const { privateJwk } = await generate();
    await vault.create(LOG_KEY, JSON.stringify(privateJwk));
  }
  return load(vault, LOG_KEY);
}

/** A 32-byte data-encryption key for secrets kept at rest (AES-256-GCM). */
export async function openDataKey(where: string | KeyVault): Promise<Buffer> {
  const vault = vaultOf(where);
  const text = (await vault.read(DATA_KEY)) ?? (await vault.create(DATA_KEY, crypto.randomBytes(32).toString('base64')));
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32) throw new Error(`${vault.where(DATA_KEY)} does not hold a 32-byte key`);
  return key;
}

export function encrypt(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

export function decrypt(key: Buffer, sealed: string): string {
  const raw = Buffer.from(sealed, 'base64');
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
}
