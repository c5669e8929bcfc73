import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Conflict } from '../store/store.ts';
import type { Store } from '../store/store.ts';

/**
 * Where Writ's own keys live (the receipt key ring, the log key, the data key), by file name:
 * - in the data directory, as files of mode 0600 under `keys/` (the default);
 * - in the database, each sealed with AES-256-GCM under the key-encryption key every node is given
 *   (`WRIT_MASTER_KEY` or `WRIT_MASTER_KEY_FILE`), which is never stored there: a node then needs
 *   nothing of its own but its configuration.
 */
export interface KeyVault {
  /** Files in the data directory, or sealed in the database. */
  readonly kind: 'files' | 'database';
  read(name: string): Promise<string | undefined>;
  /** Durable once it resolves: the log, which is synced, must never point at a key a crash could take away. */
  write(name: string, content: string): Promise<void>;
  /**
   * Writes a key that does not exist yet and returns it, or returns the one that does: nodes
   * starting together on a new database all end up with the key the first of them made.
   */
  create(name: string, content: string): Promise<string>;
  list(): Promise<string[]>;
  /** Where a key is, for messages. */
  where(name: string): string;
}

export const keysDir = (data: string) => path.join(data, 'keys');

/** The key files under `<data>/keys`. */
export function fileVault(data: string): KeyVault {
  const dir = keysDir(data);
  return {
    kind: 'files',
    async read(name) {
      try {
        return await fs.readFile(path.join(dir, name), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    async write(name, content) {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await writeSecretFile(path.join(dir, name), content);
    },
    async create(name, content) {
      // One process holds a data directory (LevelDB's lock), so nothing races this.
      const existing = await this.read(name);
      if (existing !== undefined) return existing;
      await this.write(name, content);
      return content;
    },
    async list() {
      const names = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [] as string[];
        throw err;
      });
      return names.filter((name) => !name.endsWith('.tmp')).sort();
    },
    where: (name) => path.join(dir, name),
  };
}

/** Raised when the key-encryption key does not open what the database holds. */
export class VaultLocked extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultLocked';
  }
}

const VAULT_PREFIX = 'vault/';

/** The keys in the store, each sealed under `kek`, bound to its name (a sealed key moved to another name does not open). */
export function sealedVault(store: Store, kek: Buffer): KeyVault {
  if (kek.length !== 32) throw new Error('the key-encryption key must be 32 bytes');
  return {
    kind: 'database',
    async read(name) {
      const raw = await store.get(VAULT_PREFIX + name);
      if (raw === undefined) return undefined;
      try {
        return unseal(kek, name, raw);
      } catch {
        throw new VaultLocked(`the master key (WRIT_MASTER_KEY or WRIT_MASTER_KEY_FILE) does not open the key ${name} in the database: it is not the key these were sealed with`);
      }
    },
    async write(name, content) {
      await store.batch([{ type: 'put', key: VAULT_PREFIX + name, value: seal(kek, name, content) }], { sync: true });
    },
    async create(name, content) {
      try {
        await store.batch([{ type: 'put', key: VAULT_PREFIX + name, value: seal(kek, name, content) }], { sync: true, expect: [{ key: VAULT_PREFIX + name, value: undefined }] });
        return content;
      } catch (err) {
        if (!(err instanceof Conflict)) throw err;
        return (await this.read(name))!;
      }
    },
    async list() {
      const names: string[] = [];
      for await (const [key] of store.iterate({ gte: VAULT_PREFIX, lt: `${VAULT_PREFIX}~` })) names.push(key.slice(VAULT_PREFIX.length));
      return names;
    },
    where: (name) => `the database (sealed: ${VAULT_PREFIX}${name})`,
  };
}

function seal(kek: Buffer, name: string, content: string): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(Buffer.from(`writ vault v1 ${name}`));
  const body = Buffer.concat([cipher.update(content, 'utf8'), cipher.final()]);
  return JSON.stringify({ v: 1, sealed: Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64') });
}

function unseal(kek: Buffer, name: string, raw: string): string {
  const { v, sealed } = JSON.parse(raw) as { v: number; sealed: string };
  if (v !== 1) throw new Error(`unknown vault format ${v}`);
  const bytes = Buffer.from(sealed, 'base64');
  const decipher = crypto.createDecipheriv('aes-256-gcm', kek, bytes.subarray(0, 12));
  decipher.setAAD(Buffer.from(`writ vault v1 ${name}`));
  decipher.setAuthTag(bytes.subarray(12, 28));
  return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
}

/**
 * A database vault that is still empty takes the keys of the data directory, once, so that an
 * instance given a master key later (or migrated from LevelDB) keeps its log key and receipt keys.
 * Returns the names it took.
 */
export async function adoptKeyFiles(vault: KeyVault, files: KeyVault): Promise<string[]> {
  if ((await vault.list()).length > 0) return [];
  const names = await files.list();
  // The ring last: a vault that has the ring has every key it names.
  const ordered = [...names.filter((n) => n !== 'receipt-ring.json'), ...names.filter((n) => n === 'receipt-ring.json')];
  for (const name of ordered) await vault.write(name, (await files.read(name))!);
  return ordered;
}

/** The key-encryption key from its text (WRIT_MASTER_KEY, or a key file's content): 32 bytes as base64, base64url or hex. */
export function parseMasterKey(text: string): Buffer {
  const trimmed = text.trim();
  const bytes = /^[0-9a-f]{64}$/i.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (bytes.length !== 32) throw new Error('must be 32 bytes, as base64 or hex (openssl rand -base64 32)');
  return bytes;
}

/** The master key as configured (WRIT_MASTER_KEY, or the content of WRIT_MASTER_KEY_FILE); undefined when neither is set. */
export async function masterKeyOf(settings: { masterKey?: string | undefined; masterKeyFile?: string | undefined }): Promise<Buffer | undefined> {
  if (settings.masterKey) return parseMasterKey(settings.masterKey);
  if (!settings.masterKeyFile) return undefined;
  let text: string;
  try {
    text = await fs.readFile(settings.masterKeyFile, 'utf8');
  } catch (err) {
    throw new VaultLocked(`WRIT_MASTER_KEY_FILE ${settings.masterKeyFile} cannot be read: ${(err as Error).message}`);
  }
  try {
    return parseMasterKey(text);
  } catch (err) {
    throw new VaultLocked(`WRIT_MASTER_KEY_FILE ${settings.masterKeyFile}: ${(err as Error).message}`);
  }
}

/**
 * Writes a file atomically and durably (file and directory fsynced).
 */
export async function writeSecretFile(file: string, content: string): Promise<void> {
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
