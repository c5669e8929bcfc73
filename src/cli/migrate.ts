import fs from 'node:fs/promises';
import path from 'node:path';
import { openLogKey } from '../crypto/keys.ts';
import { dbPath, openDataDir, StartupError } from '../data-dir.ts';
import { verifyLog } from '../log/verify.ts';
import { DatabaseRefused, PostgresStore, redactUrl } from '../store/postgres.ts';
import { UsageError, parseFlags } from './args.ts';

/**
 * `writ migrate --from-data DIR --to URL`: an embedded instance (stopped) moves into an empty
 * PostgreSQL database. The log is verified before and after: the same origin, every entry and
 * every hash as they were, the same size and root. The key files stay in DIR, which the nodes on
 * PostgreSQL then use as their data directory.
 */
export async function migrate(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { 'from-data': { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } }, { max: 0 });
  if (!values['from-data']) throw new UsageError('--from-data DIR is required (the data directory of a stopped embedded Writ)');
  // From the environment too, so that a password need not be on the command line.
  const url = values.to ?? (process.env.WRIT_DATABASE_URL || undefined);
  if (!url || !/^postgres(ql)?:\/\//.test(url)) throw new UsageError('--to postgres://… (or WRIT_DATABASE_URL) is required: an empty PostgreSQL database');
  const data = path.resolve(values['from-data']);
  // The LevelDB lock refuses a directory a running server holds.
  const { store: source, meta } = await openDataDir(data, { create: false });
  let target: PostgresStore | undefined;
  let closed = false;
  try {
    if (!meta) throw new StartupError(`${data} holds no Writ data`);
    const key = await openLogKey(data, { create: false });
    const logKey = { name: meta.origin, publicKeyRaw: key.publicRaw };
    const before = await verifyLog(source, logKey);
    if (!before.ok) throw new StartupError(`the log in ${data} does not verify (${before.problem?.message}); it is not migrated. Run \`writ log verify --data ${data}\``);
    try {
      target = await PostgresStore.open(url);
    } catch (err) {
      throw new StartupError(`${redactUrl(url)}: ${err instanceof DatabaseRefused ? err.message : `cannot open it: ${(err as Error).message}`}`);
    }
    let copied: number;
    try {
      copied = await target.importAll(source.iterate({}));
    } catch (err) {
      if (err instanceof DatabaseRefused) throw new StartupError(`${redactUrl(url)}: ${err.message}`);
      throw err;
    }
    const after = await verifyLog(target, logKey);
    const same = after.ok && after.size === before.size && after.root === before.root && after.checkpoints === before.checkpoints;
    // The embedded copy is put aside: served again by mistake, it would fork the log under the same key.
    const asideAt = same ? `${dbPath(data)}.migrated-${new Date().toISOString().replace(/[:.]/g, '-')}` : undefined;
    if (asideAt) {
      await source.close();
      closed = true;
      await fs.rename(dbPath(data), asideAt);
    }
    const result = { origin: meta.origin, copied, entries: after.size, checkpoints: after.checkpoints, root: after.root, verified: same, ...(asideAt ? { leveldb_moved_to: asideAt } : {}) };
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else if (same) {
      process.stdout.write(
        `migrated ${meta.origin} into ${redactUrl(url)}: ${copied} records, ${after.size} log entries and ${after.checkpoints} checkpoints verified, root ${after.root}\n` +
          `  the LevelDB it came from is now ${asideAt} (never serve it again: it would fork the log)\n` +
          `  serve it with: WRIT_DATABASE_URL=… writ serve --data ${data}   (the key files stay in ${data})\n`,
      );
    } else process.stdout.write(`migrated, but the log in PostgreSQL does not verify as the one in ${data} did: ${after.problem?.message ?? `size ${after.size}, root ${after.root}`}\n`);
    return same ? 0 : 1;
  } finally {
    await target?.close();
    if (!closed) await source.close();
  }
}
