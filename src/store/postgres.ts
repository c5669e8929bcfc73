import pg from 'pg';
import { Conflict, type BatchOp, type BatchOptions, type Range, type Store, type Transaction } from './store.ts';

/**
 * PostgreSQL as the store, selected by `WRIT_DATABASE_URL` (node-postgres, `pg`: the most used
 * PostgreSQL client for Node, with a pool, LISTEN/NOTIFY and plain parameterised queries, and
 * nothing it does on its own behind our back).
 *
 * The store is the same ordered map of strings as LevelDB's: one table, its key in the "C"
 * collation, so that a range is in byte order exactly as LevelDB's is, and values kept as
 * written. A batch is one transaction; a commit in PostgreSQL is durable once it returns (the
 * connection insists on `synchronous_commit = on`), so `sync` costs nothing extra here.
 *
 * Any number of nodes share a database. A conditional batch takes a transaction-scoped advisory
 * lock per key it expects (in one order, so two never deadlock) before it reads them, so its check
 * and its write are atomic against every other conditional batch on any node: the log's flush is
 * one, expecting `log/meta`, and that lock is the log's sequencing lock.
 *
 * The schema is versioned: migrations run at open, each in its own transaction under an advisory
 * lock (nodes starting together apply each once), and a database whose schema is newer than this
 * Writ knows is refused rather than written with an older idea of it.
 */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'the ordered key-value table, and the fence of the node that serves it',
    sql: `CREATE TABLE writ_kv (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
      CREATE TABLE writ_fence (id integer PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL);
      INSERT INTO writ_fence VALUES (1, 0)`,
  },
  {
    version: 2,
    description: 'no fence: nodes serve together, each batch of the log sequenced under its lock',
    sql: 'DROP TABLE writ_fence',
  },
  {
    version: 3,
    description: 'a batch, its conditions and their locks in one statement (one round trip)',
    // Locks each expected key (advisory locks on its hash, taken in hash order so two batches
    // never deadlock, held to the commit; they also cover a key that holds nothing yet, which a
    // row lock cannot), then returns each key that does not hold what was expected, with what it
    // holds; only when there is none does it write. Called alone, it is its own transaction.
    sql: `CREATE FUNCTION writ_batch(expect_keys text[], expect_values text[], del_keys text[], put_keys text[], put_values text[])
      RETURNS TABLE (found_key text, found_value text) LANGUAGE plpgsql AS $fn$
      BEGIN
        IF cardinality(expect_keys) > 0 THEN
          PERFORM pg_advisory_xact_lock(l.h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(expect_keys) AS k ORDER BY 1) AS l;
          RETURN QUERY SELECT e.k, kv.value FROM unnest(expect_keys, expect_values) AS e(k, v) LEFT JOIN writ_kv AS kv ON kv.key = e.k WHERE kv.value IS DISTINCT FROM e.v;
          IF FOUND THEN RETURN; END IF;
        END IF;
        DELETE FROM writ_kv WHERE writ_kv.key = ANY(del_keys);
        INSERT INTO writ_kv (key, value) SELECT * FROM unnest(put_keys, put_values) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
      END
      $fn$`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Taken by migrations (per transaction); arbitrary, fixed. */
const MIGRATION_LOCK = 0x77726974_01;

/** Why a database cannot be used as it is; the message is for the operator. */
export class DatabaseRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseRefused';
  }
}


const CONNECT_TIMEOUT_MS = 10_000;
const QUERY_TIMEOUT_MS = 30_000;

/** Rows read per round trip while iterating a range. */
const PAGE = 512;

export interface PostgresOptions {
  /** Connections in the pool. */
  max?: number;
  /** Inspecting: check the schema is this Writ's, and never create or migrate it. */
  migrate?: boolean;
  /** A query with no answer within this long fails (default 30 s), a connection not made within it or 10 s. */
  timeoutMs?: number;
}

export class PostgresStore implements Store {
  /** Connections of snapshot iterations in progress, ended by close. */
  private readonly snapshots = new Set<pg.Client>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly clientConfig: pg.ClientConfig,
  ) {}

  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresStore> {
    const timeout = options.timeoutMs ?? QUERY_TIMEOUT_MS;
    const clientConfig: pg.ClientConfig = {
      connectionString: url,
      // A commit returns only once it is durable, whatever the server's default says. The server
      // gives up on a statement (a batch waiting on a lock) before the client does: a write the
      // client stopped waiting for is then never committed behind its back.
      options: `-c synchronous_commit=on -c statement_timeout=${serverTimeout(timeout)}`,
      // Nothing waits forever on a server that stopped answering: a call that times out is a failed
      // read or write, and a failed write makes the store's guard reconnect and re-verify.
      connectionTimeoutMillis: Math.min(CONNECT_TIMEOUT_MS, options.timeoutMs ?? CONNECT_TIMEOUT_MS),
      query_timeout: options.timeoutMs ?? QUERY_TIMEOUT_MS,
      keepAlive: true,
    };
    const pool = new pg.Pool({ ...clientConfig, max: options.max ?? 8 });
    // A connection that breaks fails the query it was running (and the store's guard takes over);
    // the error its socket also emits, unheard, would end the process.
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    try {
      if (options.migrate === false) await checkSchema(pool);
      else await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PostgresStore(pool, clientConfig);
  }

  async get(key: string): Promise<string | undefined> {
    // No stored key holds text PostgreSQL cannot (see storable), so such a key is simply absent.
    if (UNSTORABLE.test(key)) return undefined;
    const { rows } = await this.pool.query<{ value: string }>({ name: 'writ_get', text: 'SELECT value FROM writ_kv WHERE key = $1', values: [key] });
    return rows[0]?.value;
  }

  getMany(keys: string[]): Promise<Array<string | undefined>> {
    return this.getManyOn(this.pool, keys);
  }

  private async getManyOn(db: pg.Pool | pg.ClientBase, keys: string[]): Promise<Array<string | undefined>> {
    const asked = keys.filter((k) => !UNSTORABLE.test(k));
    if (asked.length === 0) return keys.map(() => undefined);
    const { rows } = await db.query<{ key: string; value: string }>({
      name: 'writ_get_many',
      text: 'SELECT key, value FROM writ_kv WHERE key = ANY($1::text[])',
      values: [asked],
    });
    const found = new Map(rows.map((r) => [r.key, r.value]));
    return keys.map((k) => found.get(k));
  }

  /**
   * One statement, `writ_batch`, in its own transaction: the conditions' locks and check, then the
   * writes, in a single round trip. A batch leaves each key as its last op says.
   */
  batch(ops: BatchOp[], options: BatchOptions = {}): Promise<void> {
    return this.batchOn(this.pool, ops, options);
  }

  /** Holds `key`'s advisory lock (the one `writ_batch` takes for it) to the end of one transaction on one connection. */
  async exclusive<T>(key: string, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.withClient((client) =>
      transaction(client, async () => {
        await client.query({ name: 'writ_lock_key', text: 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', values: [storable(key, 'key')] });
        return fn({
          get: async (k) => (await this.getManyOn(client, [k]))[0],
          getMany: (keys) => this.getManyOn(client, keys),
          batch: (ops, options) => this.batchOn(client, ops, options ?? {}),
        });
      }),
    );
  }

  private async batchOn(db: pg.Pool | pg.ClientBase, ops: BatchOp[], options: BatchOptions): Promise<void> {
    const expect = options.expect ?? [];
    if (ops.length === 0 && expect.length === 0) return;
    const last = new Map<string, BatchOp>();
    for (const op of ops) last.set(storable(op.key, 'key'), op);
    const putKeys: string[] = [];
    const putValues: string[] = [];
    const delKeys: string[] = [];
    for (const [key, op] of last) {
      if (op.type === 'put') {
        putKeys.push(key);
        putValues.push(storable(op.value, 'value'));
      } else delKeys.push(key);
    }
    const { rows } = await db.query<{ found_key: string; found_value: string | null }>({
      name: 'writ_batch',
      text: 'SELECT found_key, found_value FROM writ_batch($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])',
      values: [expect.map((e) => storable(e.key, 'key')), expect.map((e) => (e.value === undefined ? null : storable(e.value, 'value'))), delKeys, putKeys, putValues],
    });
    if (rows.length > 0) throw new Conflict(rows.map((r) => ({ key: r.found_key, value: r.found_value ?? undefined })));
  }

  /** A pooled connection for `run`; one that failed mid-transaction is not handed to the next caller. */
  private async withClient<T>(run: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      return await run(client);
    } catch (err) {
      if (!(err instanceof DatabaseRefused) && !(err instanceof Conflict)) broken = err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * A range in key order, a page per round trip through the pool: a reader that makes other store
   * calls while it reads never waits for a connection it holds itself. With `snapshot`, the pages
   * are read in one read-only REPEATABLE READ transaction on a connection of its own (outside the
   * pool), as a LevelDB iterator reads.
   */
  async *iterate(range: Range): AsyncIterable<[string, string]> {
    if (!range.snapshot) {
      yield* this.pages(this.pool, range);
      return;
    }
    const client = new pg.Client(this.clientConfig);
    client.on('error', () => undefined);
    await client.connect();
    this.snapshots.add(client);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      yield* this.pages(client, range);
    } finally {
      // Also when the reader stops early: the connection, and its transaction, end.
      this.snapshots.delete(client);
      await client.end().catch(() => undefined);
    }
  }

  private async *pages(db: pg.Pool | pg.Client, range: Range): AsyncIterable<[string, string]> {
    let left = range.limit !== undefined && range.limit >= 0 ? range.limit : Infinity;
    let after: string | undefined;
    while (left > 0) {
      const size = Math.min(PAGE, left);
      const rows = await this.page(db, range, size, after);
      for (const row of rows) yield [row.key, row.value];
      if (rows.length < size) return;
      left -= rows.length;
      after = rows[rows.length - 1]!.key;
    }
  }

  async readValues(range: Range): Promise<string[]> {
    const limit = range.limit !== undefined && range.limit >= 0 ? range.limit : null;
    return (await this.page(this.pool, range, limit)).map((r) => r.value);
  }

  /** One page of a range in key order; `after` is the last key of the page before (exclusive). */
  private async page(db: pg.Pool | pg.Client, range: Range, limit: number | null, after?: string): Promise<Array<{ key: string; value: string }>> {
    const reverse = range.reverse === true;
    const bounds: Array<[string, string]> = [];
    if (range.gte !== undefined) bounds.push(lowerBound(range.gte));
    if (range.lt !== undefined) bounds.push(upperBound(range.lt));
    if (after !== undefined) bounds.push([reverse ? '<' : '>', after]);
    // One prepared statement per shape of range, each a plain index range scan.
    const where = bounds.map(([op], i) => `key ${op} $${i + 1}`).join(' AND ');
    const shape = bounds.map(([op]) => op).join('');
    const { rows } = await db.query<{ key: string; value: string }>({
      name: `writ_range_${reverse ? 'd' : 'a'}_${shape.replace(/>=/g, 'ge').replace(/<=/g, 'le').replace(/</g, 'lt').replace(/>/g, 'gt')}`,
      text: `SELECT key, value FROM writ_kv ${where ? `WHERE ${where}` : ''} ORDER BY key ${reverse ? 'DESC' : 'ASC'} LIMIT $${bounds.length + 1}`,
      values: [...bounds.map(([, v]) => v), limit],
    });
    return rows;
  }

  /**
   * Copies a whole store into this one, which must be empty, in one transaction: a migration that
   * stops halfway leaves the database as empty as it found it. Returns how many pairs it copied.
   */
  async importAll(source: AsyncIterable<[string, string]>): Promise<number> {
    return this.withClient((client) =>
      transaction(client, async () => {
        const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM (SELECT 1 FROM writ_kv LIMIT 1) AS any_row');
        if (rows[0]?.n !== '0') throw new DatabaseRefused('the database already holds Writ data; a migration goes into an empty one');
        let copied = 0;
        let keys: string[] = [];
        let values: string[] = [];
        const flush = async () => {
          await client.query({ name: 'writ_import', text: 'INSERT INTO writ_kv (key, value) SELECT * FROM unnest($1::text[], $2::text[])', values: [keys, values] });
          copied += keys.length;
          keys = [];
          values = [];
        };
        for await (const [key, value] of source) {
          keys.push(storable(key, 'key'));
          values.push(storable(value, 'value'));
          if (keys.length >= 2000) await flush();
        }
        if (keys.length) await flush();
        return copied;
      }),
    );
  }

  /** PostgreSQL's own write-ahead log is checksummed and replayed whole: there is nothing to move. */
  async settle(): Promise<void> {}

  /** Once: snapshot readers are ended, then the pool drains. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const client of this.snapshots) await client.end().catch(() => undefined);
      await this.pool.end().catch(() => undefined);
    })();
    return this.closing;
  }
}

/** The server's own limit on a statement: well inside the client's, so the server always ends it first. */
function serverTimeout(clientMs: number): number {
  return Math.max(50, Math.floor(clientMs - Math.min(5_000, clientMs / 4)));
}

/**
 * Text that PostgreSQL keeps exactly: no NUL (its text type cannot hold one) and no lone surrogate
 * (which UTF-8 cannot encode, and the client would replace). Input is refused long before it gets
 * here; this guards against storing anything other than what was written.
 */
const UNSTORABLE = /\u0000|\p{Cs}/u;

/**
 * Range bounds may hold a NUL (`after + '\u0000'`, the first key after `after`), which PostgreSQL's
 * text cannot. No stored key holds one, so a bound is cut at its first NUL: every key at or above
 * `P\u0000…` is above P, and every key below it is at most P.
 */
function lowerBound(bound: string): [string, string] {
  const nul = bound.indexOf('\u0000');
  return nul < 0 ? ['>=', bound] : ['>', bound.slice(0, nul)];
}

function upperBound(bound: string): [string, string] {
  const nul = bound.indexOf('\u0000');
  return nul < 0 ? ['<', bound] : ['<=', bound.slice(0, nul)];
}

function storable(text: string, what: string): string {
  if (UNSTORABLE.test(text)) throw new Error(`a ${what} holds text PostgreSQL cannot store as written (NUL or a lone surrogate)`);
  return text;
}

/** Applies the migrations this database lacks, each in its own transaction, one node at a time. */
export async function migrate(pool: pg.Pool): Promise<number> {
  const client = await pool.connect();
  try {
    const { rows: enc } = await client.query<{ server_encoding: string }>('SHOW server_encoding');
    if (enc[0]?.server_encoding !== 'UTF8') {
      throw new DatabaseRefused(`the database's encoding is ${enc[0]?.server_encoding}; Writ needs UTF8 (CREATE DATABASE … ENCODING 'UTF8')`);
    }
    for (;;) {
      const applied = await transaction(client, async () => {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        await client.query('CREATE TABLE IF NOT EXISTS writ_schema (version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), description text NOT NULL)');
        const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM writ_schema');
        const current = rows[0]?.version ?? 0;
        if (current > SCHEMA_VERSION) {
          throw new DatabaseRefused(`the database's schema is version ${current}, newer than this Writ knows (${SCHEMA_VERSION}): run the Writ that migrated it, or a newer one`);
        }
        const next = MIGRATIONS.find((m) => m.version > current);
        if (!next) return { done: current };
        await client.query(next.sql);
        await client.query('INSERT INTO writ_schema (version, description) VALUES ($1, $2)', [next.version, next.description]);
        return undefined;
      });
      if (applied) return applied.done;
    }
  } finally {
    client.release();
  }
}

/** `run` inside BEGIN … COMMIT on `client`, rolled back if it throws. */
async function transaction<T>(client: pg.ClientBase, run: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await run();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** An inspecting open: the schema must be there, and be this Writ's. */
async function checkSchema(pool: pg.Pool): Promise<void> {
  const { rows: table } = await pool.query<{ present: boolean }>("SELECT to_regclass('writ_schema') IS NOT NULL AS present");
  const version = table[0]?.present ? ((await pool.query<{ version: number | null }>('SELECT max(version) AS version FROM writ_schema')).rows[0]?.version ?? null) : null;
  if (version === null) throw new DatabaseRefused('the database holds no Writ schema (nothing has been served from it)');
  if (version !== SCHEMA_VERSION) throw new DatabaseRefused(`the database's schema is version ${version}, this Writ reads version ${SCHEMA_VERSION}`);
}

/** The URL without its secrets (the password, in the userinfo or as a parameter), for messages and the console. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const name of ['password', 'sslpassword', 'sslkey']) if (parsed.searchParams.has(name)) parsed.searchParams.set(name, '***');
    return parsed.toString();
  } catch {
    return 'postgres://…';
  }
}
