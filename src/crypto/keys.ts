import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { exportJWK, importJWK, type JWK } from 'jose';
import { b64url, randomBytes, sha256 } from './encoding.ts';

/**
 * Ed25519 keys kept as JWK files (mode 0600) under `<data>/keys`. Receipt keys rotate; a retired
 * key stays published in the JWKS for 90 days so receipts it signed keep verifying.
 */
export const RETIRED_KEY_GRACE_SECONDS = 90 * 86_400;

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

const keysDir = (data: string) => path.join(data, 'keys');

/**
 * Writes a key file atomically and durably (file and directory fsynced): the log, which is synced,
 * must never point at a key that a power cut could take away.
 */
async function writeSecretFile(file: string, content: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await fs.open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  const dir = await fs.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
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

async function load(file: string): Promise<SigningKey> {
  const jwk = JSON.parse(await fs.readFile(file, 'utf8')) as JWK;
  const privateKey = (await importJWK(jwk, 'EdDSA', { extractable: true })) as unknown;
  // jose may hand back a WebCrypto key; node:crypto signs with a KeyObject.
  const priv = privateKey instanceof crypto.KeyObject ? privateKey : crypto.KeyObject.from(privateKey as CryptoKey);
  const pub = crypto.createPublicKey(priv);
  const { d: _d, ...publicJwk } = jwk;
  return toSigningKey(jwk.kid ?? '', priv, pub, publicJwk);
}

/** The receipt key ring: the current key plus retired ones still inside their grace period. */
export class KeyRing {
  private constructor(
    private readonly dir: string,
    private ring: RingFile,
    private keys: Map<string, SigningKey>,
  ) {}

  static async open(data: string): Promise<KeyRing> {
    const dir = keysDir(data);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const ringFile = path.join(dir, 'receipt-ring.json');
    let ring: RingFile;
    try {
      ring = JSON.parse(await fs.readFile(ringFile, 'utf8')) as RingFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const { privateJwk, key } = await generate();
      await writeSecretFile(path.join(dir, `receipt-${key.kid}.jwk`), JSON.stringify(privateJwk));
      ring = { current: key.kid, keys: [{ kid: key.kid, created_at: Math.floor(Date.now() / 1000) }] };
      await writeSecretFile(ringFile, JSON.stringify(ring, null, 2));
    }
    const keys = new Map<string, SigningKey>();
    for (const entry of ring.keys) keys.set(entry.kid, await load(path.join(dir, `receipt-${entry.kid}.jwk`)));
    return new KeyRing(dir, ring, keys);
  }

  get current(): SigningKey {
    const key = this.keys.get(this.ring.current);
    if (!key) throw new Error(`receipt key ${this.ring.current} is missing from ${this.dir}`);
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
    await writeSecretFile(path.join(this.dir, `receipt-${key.kid}.jwk`), JSON.stringify(privateJwk));
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
    await writeSecretFile(path.join(this.dir, 'receipt-ring.json'), JSON.stringify(ring, null, 2));
    this.ring = ring;
    this.keys.set(key.kid, key);
  }
}

/**
 * The log's checkpoint key: one per log, never rotated in v1 (its verifier key is the log's
 * identity). Made on first start; commands that only inspect a data directory pass `create: false`.
 */
export async function openLogKey(data: string, options: { create?: boolean } = {}): Promise<SigningKey> {
  const dir = keysDir(data);
  const file = path.join(dir, 'log.jwk');
  try {
    return await load(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (options.create === false) throw new Error(`the log key ${file} is missing`);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const { privateJwk, key } = await generate();
    await writeSecretFile(file, JSON.stringify(privateJwk));
    return key;
  }
}

/** A 32-byte data-encryption key for secrets kept at rest (AES-256-GCM). */
export async function openDataKey(data: string): Promise<Buffer> {
  const dir = keysDir(data);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'data.key');
  try {
    const key = Buffer.from((await fs.readFile(file, 'utf8')).trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte key`);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const key = crypto.randomBytes(32);
    await writeSecretFile(file, key.toString('base64'));
    return key;
  }
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
