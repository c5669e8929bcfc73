import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { eventually, tempDir } from './writ.ts';

/**
 * A real PostgreSQL server for one test file: Debian's `postgresql` package (installed by
 * `.ci/run`), a fresh cluster in a temporary directory, listening only on a Unix socket there (no
 * port to collide with another file's server). PostgreSQL refuses to run as root, so under root
 * (CI) the cluster belongs to the `postgres` user the package creates. Each test takes a database
 * of its own with `database()`.
 */
const run = promisify(execFile);

export interface TestPostgres {
  /** A new, empty database on this server, as a connection URL. */
  database(): Promise<string>;
  /** Stops the server at once (kill -9): connections break, nothing is flushed. */
  crash(): Promise<void>;
  /** Freezes the server and every backend (SIGSTOP): connections stay open, nothing answers. */
  pause(): Promise<void>;
  /** Lets a paused server go on. */
  resume(): Promise<void>;
  /** Starts it again on the same cluster and socket. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** initdb, pg_ctl and postgres: on PATH, or where Debian puts them (the newest version). */
function binary(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const candidate = path.join(root, version, 'bin', name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`PostgreSQL's ${name} was not found (on PATH or in /usr/lib/postgresql/*/bin): install Debian's postgresql package (bash .ci/run does)`);
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a PostgreSQL program as the user that owns the cluster. */
function command(name: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', binary(name), ...args]] : [binary(name), args];
}

let databases = 0;

export async function startPostgres(): Promise<TestPostgres> {
  const dir = await tempDir('writ-pg-');
  const cluster = path.join(dir, 'cluster');
  const socket = path.join(dir, 'socket');
  await fs.mkdir(socket);
  if (asRoot) await run('chown', ['-R', 'postgres:', dir]);
  await run(...command('initdb', ['-D', cluster, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-instructions']));
  let server: ChildProcess | undefined;
  /** The postmaster's pid (under runuser it is not our child's). */
  let postmaster = 0;
  let exited: Promise<void> = Promise.resolve();
  const admin = (db = 'postgres') => new pg.Client({ host: socket, user: 'postgres', database: db });

  const spawnServer = () => {
    const [cmd, args] = command('postgres', ['-D', cluster, '-k', socket, '-c', 'listen_addresses=', '-c', 'max_connections=200', '-c', 'fsync=on']);
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    server = child;
    return child;
  };
  let stderr = '';
  const start = async () => {
    let child = spawnServer();
    postmaster = await eventually(async () => {
      // After a kill -9 the old backends may still hold the shared memory for a moment: start again.
      if (child.exitCode !== null) {
        child = spawnServer();
        return undefined;
      }
      const client = admin();
      try {
        await client.connect();
        await client.end();
        return Number(readFileSync(path.join(cluster, 'postmaster.pid'), 'utf8').split('\n')[0]);
      } catch {
        await client.end().catch(() => undefined);
        return undefined;
      }
    }, 'postgres to accept connections', 60_000).catch((err: Error) => {
      throw new Error(`${err.message}:\n${stderr}`);
    });
  };
  await start();
  const kill = async (signal: NodeJS.Signals) => {
    const child = server;
    if (!child || child.exitCode !== null) return;
    signalPostmaster(postmaster, signal);
    child.kill(signal);
    await exited;
    server = undefined;
  };
  // The server goes with the test process, however that ends.
  process.once('exit', () => signalPostmaster(postmaster, 'SIGKILL'));
  return {
    async database() {
      const name = `writ_${process.pid}_${++databases}`;
      const client = admin();
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@localhost/${name}?host=${encodeURIComponent(socket)}`;
    },
    crash: () => kill('SIGKILL'),
    pause: () => signalAll(postmaster, 'SIGSTOP'),
    async resume() {
      await signalAll(postmaster, 'SIGCONT');
      // runuser stops itself when its child is stopped (as su does), and stays stopped until told.
      server?.kill('SIGCONT');
    },
    async restart() {
      await kill('SIGKILL');
      // A killed postmaster leaves its shared memory and pid file; the next start cleans up.
      await start();
    },
    stop: () => kill('SIGINT'),
  };
}

/** The postmaster and its backends. */
async function signalAll(pid: number, signal: NodeJS.Signals): Promise<void> {
  const children = await run('pgrep', ['-P', String(pid)]).then(
    ({ stdout }) => stdout.split('\n').filter(Boolean).map(Number),
    () => [] as number[],
  );
  for (const child of [pid, ...children]) signalPostmaster(child, signal);
}

function signalPostmaster(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
