import fs from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { backupStream, restoreBackup } from '../backup.ts';
import { fileVault } from '../crypto/vault.ts';
import { openDataDir } from '../data-dir.ts';
import { UsageError, parseFlags } from './args.ts';
import { REMOTE_FLAGS, UnreachableError, targetOf } from './remote.ts';

/**
 * `writ backup --out FILE`: from a running server (--url, admin key), which is how a live instance
 * is copied; or, with the server stopped, straight from its data directory (--data).
 * `writ restore FILE --data DIR`: into a new directory, verified before it is put in place.
 */
export async function backup(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { out: { type: 'string' }, data: { type: 'string' }, ...REMOTE_FLAGS, 'admin-key': { type: 'string' } }, { max: 0 });
  if (!values.out) throw new UsageError('--out FILE is required');
  const out = path.resolve(values.out);
  if (await fs.stat(out).catch(() => undefined)) throw new UsageError(`${out} exists; choose a new file`);
  const tmp = `${out}.partial`;
  let source: Readable;
  let close = async () => {};
  if (!values.data) {
    // A running server, reached as every remote command reaches it (--url, WRIT_URL, a profile).
    const target = await targetOf({ ...values, key: values.key ?? values['admin-key'] });
    if (!target.key) throw new UsageError('a backup through a server needs an admin key: --key, WRIT_KEY, writ login or WRIT_ADMIN_TOKEN');
    const res = await fetch(`${target.url}/api/v1/backup`, { headers: { authorization: `Bearer ${target.key}` } }).catch((err: Error & { cause?: { code?: string } }) => {
      throw new UnreachableError(`cannot reach Writ at ${target.url}: ${err.cause?.code ?? err.message}; is it running (writ serve), and is --url right?`);
    });
    if (!res.ok || !res.body) {
      const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
      process.stderr.write(`writ: backup refused (${res.status}): ${body.error?.message ?? res.statusText}\n`);
      return 1;
    }
    source = Readable.fromWeb(res.body as never);
  } else {
    const data = path.resolve(values.data!);
    // A directory found damaged can still be copied: that is what one does before trying anything.
    const { store, meta } = await openDataDir(data, { create: false, inspect: true });
    if (!meta) {
      await store.close();
      throw new Error(`${data} holds no Writ data`);
    }
    source = backupStream(store, fileVault(data), meta.origin);
    close = () => store.close();
  }
  try {
    await pipeline(source, createWriteStream(tmp, { mode: 0o600 }));
    await fs.rename(tmp, out);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  } finally {
    await close();
  }
  const { size } = await fs.stat(out);
  process.stdout.write(`backup written to ${out} (${size} bytes; it holds the keys: keep it as safe as the data directory)\n  restore with: writ restore ${values.out} --data NEWDIR\n`);
  return 0;
}

export async function restore(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { data: { type: 'string' }, json: { type: 'boolean' } }, { max: 1 });
  if (positionals.length !== 1) throw new UsageError('name the backup file: writ restore FILE --data DIR');
  if (!values.data) throw new UsageError('--data DIR is required: the new data directory to restore into');
  const data = path.resolve(values.data);
  const restored = await restoreBackup(path.resolve(positionals[0]!), data);
  process.stdout.write(
    values.json
      ? `${JSON.stringify({ data, ...restored }, null, 2)}\n`
      : `restored ${restored.entries} database entries into ${data}: log ${restored.origin}, ${restored.log_size} entries and ${restored.checkpoints} checkpoints verified\n  start it with: writ serve --data ${values.data}\n`,
  );
  return 0;
}
