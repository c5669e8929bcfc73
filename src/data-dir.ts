import fs from 'node:fs/promises';
import path from 'node:path';
import { getJson } from './store/store.ts';
import type { Store } from './store/store.ts';
import { GuardedStore } from './store/guarded.ts';
import { LevelStore, recoveryWarnings } from './store/level.ts';
import { DatabaseRefused, PostgresStore, redactUrl } from './store/postgres.ts';
import type { Report } from './report.ts';

/**
 * The data directory: `db/` (LevelDB), `keys/` (key files), and a `DAMAGED` note when a start found
 * damage that the database itself no longer shows. Opening it checks, in order: that it exists
 * (read-only commands never create it), that no earlier start found damage, that LevelDB opens,
 * and that LevelDB's own recovery dropped nothing. Every refusal names the damage and the way back.
 * With a PostgreSQL URL the state lives in that database instead of `db/`, and the directory
 * keeps the key files.
 */
export interface Meta {
  instance_id: string;
  origin: string;
  created_at: string;
}

/** A start that cannot go on; the message is for the operator, as it is. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

export const DAMAGED_FILE = 'DAMAGED';

export const dbPath = (data: string) => path.join(data, 'db');

const RESTORE_HINT = 'Restore the latest backup into a new directory (`writ restore FILE --data NEWDIR`) and start Writ there';

export interface OpenedDataDir {
  store: GuardedStore;
  meta: Meta | undefined;
  /** What an inspecting command must tell its user although it went on (damage found at this open). */
  warnings: string[];
}

export async function openDataDir(
  data: string,
  options: {
    /** Serving creates a missing directory; inspecting (log verify, backup) never does. */
    create: boolean;
    /** Inspecting a directory found damaged earlier is how an operator decides what to do. */
    inspect?: boolean;
    report?: Report;
    wrapDriver?: (driver: Store) => Store;
    /** PostgreSQL instead of LevelDB (`WRIT_DATABASE_URL`). */
    database?: string;
  },
): Promise<OpenedDataDir> {
  if (options.create) {
    await fs.mkdir(data, { recursive: true, mode: 0o700 });
    // New files (LevelDB's tables and logs, key files) are for this user only.
    process.umask(0o077);
  } else {
    const stat = await fs.stat(data).catch(() => undefined);
    if (!stat?.isDirectory()) throw new StartupError(`no Writ data directory at ${data}`);
    if (!options.database && !(await fs.stat(path.join(dbPath(data), 'CURRENT')).catch(() => undefined))) {
      throw new StartupError(`${data} holds no Writ database (no db/ inside)`);
    }
  }
  const note = await fs.readFile(path.join(data, DAMAGED_FILE), 'utf8').catch(() => undefined);
  if (note !== undefined && !options.inspect) {
    throw new StartupError(`${data} was found damaged at an earlier start and is refused until that is resolved:\n  ${note.trim().replace(/\n/g, '\n  ')}`);
  }
  if (options.database) return openWithPostgres(data, options.database, options);
  const open = async () => {
    const driver = await openLevel(data, options.create);
    return options.wrapDriver ? options.wrapDriver(driver) : driver;
  };
  // LevelDB replaces a damaged write-ahead log as it opens the database: the log as it was is
  // copied first, and kept if LevelDB dropped anything from it.
  const walCopy = await copyWriteAheadLogs(data);
  const driver = await open();
  const dropped = await recoveryWarnings(dbPath(data));
  const warnings: string[] = [];
  if (dropped.length > 0) {
    const kept = walCopy && path.join(data, `wal-damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    if (walCopy && kept) await fs.rename(walCopy, kept);
    const message = [
      `LevelDB found its write-ahead log damaged when it opened ${dbPath(data)} and dropped records:`,
      ...dropped.map((line) => `  ${line}`),
      ...(kept ? [`The write-ahead log as it was before is kept in ${kept}.`] : []),
      'Records acknowledged to clients may be lost. If Writ stopped while its disk was full or failing, the dropped bytes may be only writes it refused to acknowledge:',
      `check with \`writ log verify --data ${data}\`, and if that passes and you accept the risk, delete ${path.join(data, DAMAGED_FILE)} to start.`,
      `Otherwise: ${RESTORE_HINT}.`,
    ].join('\n');
    // LevelDB has already replaced the damaged log, so the next start would not see this: keep it.
    await writeDamageNote(data, message);
    if (!options.inspect) {
      await driver.close();
      throw new StartupError(message);
    }
    warnings.push(message);
  } else if (walCopy) {
    await fs.rm(walCopy, { recursive: true, force: true });
  }
  await securePermissions(data);
  const store = new GuardedStore(driver, open, options.report, (reason) => writeDamageNote(data, `while Writ ran: ${reason}.\n${RESTORE_HINT}.`));
  return { store, meta: await getJson<Meta>(store, 'meta/instance'), warnings };
}

async function openWithPostgres(
  data: string,
  url: string,
  options: { inspect?: boolean; report?: Report; wrapDriver?: (driver: Store) => Store },
): Promise<OpenedDataDir> {
  // Any number of nodes serve one database, and inspecting commands read beside them.
  const open = async () => {
    // Inspecting never creates or migrates a schema (a mistyped URL stays untouched).
    const driver = await PostgresStore.open(url, options.inspect ? { migrate: false } : {});
    return options.wrapDriver ? options.wrapDriver(driver) : driver;
  };
  let driver: Store;
  try {
    driver = await open();
  } catch (err) {
    if (err instanceof DatabaseRefused) throw new StartupError(`${redactUrl(url)}: ${err.message}`);
    throw new StartupError(`cannot open the PostgreSQL database ${redactUrl(url)}: ${(err as Error).message}`);
  }
  await securePermissions(data);
  const store = new GuardedStore(driver, open, options.report, (reason) => writeDamageNote(data, `while Writ ran: ${reason}.\n${RESTORE_HINT}.`), 'postgresql');
  return { store, meta: await getJson<Meta>(store, 'meta/instance'), warnings: [] };
}

/** Copies LevelDB's write-ahead log files (a few MB at most) aside; undefined when there are none. */
async function copyWriteAheadLogs(data: string): Promise<string | undefined> {
  const logs = (await fs.readdir(dbPath(data)).catch(() => [] as string[])).filter((f) => f.endsWith('.log'));
  if (logs.length === 0) return undefined;
  const copy = path.join(data, 'wal-at-open');
  await fs.rm(copy, { recursive: true, force: true });
  await fs.mkdir(copy, { mode: 0o700 });
  for (const file of logs) await fs.copyFile(path.join(dbPath(data), file), path.join(copy, file));
  return copy;
}

/** Damage found once is kept beside the database, where every later start sees it. */
async function writeDamageNote(data: string, message: string): Promise<void> {
  await fs.writeFile(path.join(data, DAMAGED_FILE), `${new Date().toISOString()}\n${message}\n`, { mode: 0o600 });
}

async function openLevel(data: string, create: boolean): Promise<LevelStore> {
  try {
    return await LevelStore.open(dbPath(data), { createIfMissing: create });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = `${cause?.message ?? ''} ${(err as Error).message}`;
    if (/lock/i.test(detail)) throw new StartupError(`the data directory ${data} is in use by another Writ process (LevelDB lock held)`);
    if (cause?.code === 'LEVEL_CORRUPTION') {
      throw new StartupError(`the database in ${dbPath(data)} is damaged and cannot be opened (${cause.message}). ${RESTORE_HINT}.`);
    }
    throw new StartupError(`cannot open the database in ${dbPath(data)}: ${cause?.message ?? (err as Error).message}`);
  }
}

/** 0700 for the directories, 0600 for every file, at every start: the database holds request context. */
async function securePermissions(data: string): Promise<void> {
  for (const dir of [data, dbPath(data), path.join(data, 'keys')]) {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => undefined);
    if (!entries) continue;
    await fs.chmod(dir, 0o700);
    for (const entry of entries) if (entry.isFile()) await fs.chmod(path.join(dir, entry.name), 0o600);
  }
}
