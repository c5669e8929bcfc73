import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { dbPath } from './data-dir.ts';
import { KEYS } from './log/log.ts';
import { verifyLog } from './log/verify.ts';
import { LevelStore } from './store/level.ts';
import type { BatchOp, Store } from './store/store.ts';
import { openLogKey } from './crypto/keys.ts';
import type { KeyVault } from './crypto/vault.ts';

/**
 * Backups: a consistent snapshot of a live instance, and the way back from a damaged disk.
 *
 * A backup is gzipped JSON lines: a header (origin, log size, latest checkpoint), the key files,
 * every database entry read through one LevelDB iterator (which reads one snapshot, so the copy is
 * consistent while the server goes on writing), and a trailer with the number of entries and a
 * SHA-256 over every line before it, so a truncated or altered file is refused. It holds the keys:
 * protect it like the data directory. Restore writes into a new directory, checks the trailer,
 * then re-derives and checks the whole log before the directory takes its final name.
 */
export const BACKUP_FORMAT = 'writ-backup';
const VERSION = 1;

interface Header {
  format: typeof BACKUP_FORMAT;
  version: number;
  created_at: string;
  origin: string;
}

/** Closes the file: what the snapshot held, and a SHA-256 over every line before this one. */
interface Trailer {
  end: true;
  entries: number;
  log_size: number;
  checkpoint_size: number;
  sha256: string;
}

type Line = Header | { file: string; content: string } | { k: string; v: string } | Trailer;

/** The backup of an open store and its key files, as a gzipped stream. */
export function backupStream(store: Store, vault: KeyVault, origin: string): Readable {
  return Readable.from(backupLines(store, vault, origin)).pipe(createGzip());
}

async function* backupLines(store: Store, vault: KeyVault, origin: string): AsyncGenerator<string> {
  const hash = crypto.createHash('sha256');
  const emit = (line: Line) => {
    const text = `${JSON.stringify(line)}\n`;
    hash.update(text);
    return text;
  };
  // The iterator is made first: its snapshot fixes what the copy holds.
  const entries = store.iterate({ snapshot: true })[Symbol.asyncIterator]();
  try {
    const first = await entries.next();
    yield emit({ format: BACKUP_FORMAT, version: VERSION, created_at: new Date().toISOString(), origin });
    // The keys as files, wherever they are kept: a backup restores into a data directory.
    for (const name of await vault.list()) yield emit({ file: `keys/${name}`, content: (await vault.read(name))! });
    let count = 0;
    let logSize = 0;
    let checkpointSize = 0;
    for (let next = first; !next.done; next = await entries.next()) {
      const [k, v] = next.value;
      count++;
      if (k === KEYS.meta) logSize = (JSON.parse(v) as { size: number }).size;
      if (k.startsWith(KEYS.checkpointRange.gte)) checkpointSize = Number(k.slice(KEYS.checkpointRange.gte.length));
      yield emit({ k, v });
    }
    const trailer: Trailer = { end: true, entries: count, log_size: logSize, checkpoint_size: checkpointSize, sha256: hash.digest('hex') };
    yield `${JSON.stringify(trailer)}\n`;
  } finally {
    // A reader that stops early (a client that went away) ends the snapshot too.
    await entries.return?.();
  }
}

export class RestoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreError';
  }
}

/** Restores a backup into `data`, which must not exist yet (or be empty); the log is verified before it is put in place. */
export async function restoreBackup(file: string, data: string): Promise<{ origin: string; entries: number; log_size: number; checkpoints: number }> {
  if (!(await fs.stat(file).catch(() => undefined))?.isFile()) throw new RestoreError(`no backup file at ${file}`);
  const existing = await fs.readdir(data).catch(() => undefined);
  if (existing && existing.length > 0) throw new RestoreError(`${data} is not empty; restore into a new directory`);
  const staging = `${data}.restoring-${crypto.randomBytes(4).toString('hex')}`;
  await fs.mkdir(path.join(staging, 'keys'), { recursive: true, mode: 0o700 });
  try {
    const result = await restoreInto(file, staging);
    await fs.rm(data, { recursive: true, force: true });
    await fs.rename(staging, data);
    return result;
  } catch (err) {
    await fs.rm(staging, { recursive: true, force: true });
    throw err;
  }
}

/** The file's lines, decompressed; a read or gzip error rejects (readline would swallow it). */
async function* linesOf(file: string): AsyncGenerator<string> {
  const input = createReadStream(file);
  const gunzip = createGunzip();
  input.once('error', (err) => gunzip.destroy(err));
  // Decoded by the stream, so a character split across two chunks stays whole.
  gunzip.setEncoding('utf8');
  let rest = '';
  for await (const chunk of input.pipe(gunzip) as AsyncIterable<string>) {
    const text = rest + chunk;
    const lines = text.split('\n');
    rest = lines.pop()!;
    yield* lines;
  }
  if (rest) yield rest;
}

async function restoreInto(file: string, staging: string) {
  const lines = linesOf(file);
  const hash = crypto.createHash('sha256');
  const store = await LevelStore.open(dbPath(staging));
  let header: Header | undefined;
  let trailer: Trailer | undefined;
  let entries = 0;
  let ops: BatchOp[] = [];
  try {
    for await (const text of lines) {
      if (trailer) throw new RestoreError('the backup has data after its trailer');
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        throw new RestoreError(`line ${entries + 1} of the backup is not JSON: the file is damaged`);
      }
      if ('end' in line) {
        trailer = line;
        continue;
      }
      hash.update(`${text}\n`);
      if (!header) {
        if (!('format' in line) || line.format !== BACKUP_FORMAT) throw new RestoreError(`${file} is not a Writ backup`);
        if (line.version !== VERSION) throw new RestoreError(`backup format version ${line.version} is not supported (this Writ reads ${VERSION})`);
        header = line;
      } else if ('file' in line) {
        if (!/^keys\/[\w.-]+$/.test(line.file)) throw new RestoreError(`the backup names an unexpected file ${line.file}`);
        await fs.writeFile(path.join(staging, line.file), line.content, { mode: 0o600 });
      } else if ('k' in line) {
        entries++;
        ops.push({ type: 'put', key: line.k, value: line.v });
        if (ops.length >= 1000) {
          await store.batch(ops);
          ops = [];
        }
      }
    }
    if (!header) throw new RestoreError(`${file} is empty`);
    if (!trailer) throw new RestoreError('the backup ends without its trailer: it is truncated');
    if (trailer.entries !== entries || trailer.sha256 !== hash.digest('hex')) throw new RestoreError('the backup does not match its own checksum: it is damaged');
    await store.batch(ops, { sync: true });
    const key = await openLogKey(staging, { create: false });
    const verified = await verifyLog(store, { name: header.origin, publicKeyRaw: key.publicRaw });
    if (!verified.ok) throw new RestoreError(`the restored log does not verify: ${verified.problem?.message} (index ${verified.problem?.index ?? verified.problem?.checkpoint_size})`);
    if (verified.size !== trailer.log_size) throw new RestoreError(`the restored log holds ${verified.size} entries but the backup recorded ${trailer.log_size}`);
    return { origin: header.origin, entries, log_size: verified.size, checkpoints: verified.checkpoints };
  } finally {
    await store.close();
  }
}
