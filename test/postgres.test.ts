import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { MIGRATIONS, PostgresStore, SCHEMA_VERSION, redactUrl } from '../src/store/postgres.ts';
import { startPostgres, type TestPostgres } from './helpers/postgres.ts';
import { ADMIN, agent, caller, eventually, spawnWrit, startWrit, tempDir, writCli, writCliWith, type TestWrit } from './helpers/writ.ts';

/**
 * Writ on PostgreSQL (`WRIT_DATABASE_URL`), against a real server this file starts: the schema is
 * migrated at start and never run against a newer one, a decision is acknowledged only once
 * PostgreSQL has committed it, keys are sealed in the database, and an embedded instance moves
 * into PostgreSQL with its log unchanged. Several nodes on one database: test/nodes.test.ts.
 */
let server: Promise<TestPostgres> | undefined;
const postgres = () => (server ??= startPostgres());
test.after.always(async () => (await server)?.stop());

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** A master key for the tests (32 bytes, base64): the keys are then sealed in the database. */
const MASTER = 'q3J7Yk2c0n8v5Xh1Lw9Zt4Rb6Md2Fs7Pa0Ue3Gi5Oj8=';

async function writOn(url: string, data?: string): Promise<TestWrit> {
  return startWrit({ ...(data ? { data } : {}), config: { databaseUrl: url } });
}

const EMAIL = (i: number) => ({ action: 'email.send', resource: `email:r${i}@acme.com`, scope: { max_emails: 1 } });

test('a new database gets the schema at start, each migration once, even when nodes start together', async (t) => {
  const url = await (await postgres()).database();
  const stores = await Promise.all([PostgresStore.open(url), PostgresStore.open(url), PostgresStore.open(url)]);
  const rows = await sql<{ version: number }>(url, 'SELECT version FROM writ_schema ORDER BY version');
  t.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
  t.is(rows.at(-1)!.version, SCHEMA_VERSION);
  for (const store of stores) await store.close();
  // Opening again applies nothing.
  await (await PostgresStore.open(url)).close();
  t.is((await sql(url, 'SELECT version FROM writ_schema')).length, MIGRATIONS.length);
});

test('a database whose schema is newer than this Writ knows is refused, and left as it is', async (t) => {
  const url = await (await postgres()).database();
  await (await PostgresStore.open(url)).close();
  await sql(url, "INSERT INTO writ_schema (version, description) VALUES ($1, 'from the future')", [SCHEMA_VERSION + 1]);
  await t.throwsAsync(PostgresStore.open(url), { message: new RegExp(`schema is version ${SCHEMA_VERSION + 1}, newer than this Writ knows \\(${SCHEMA_VERSION}\\)`) });
  t.is((await sql(url, 'SELECT version FROM writ_schema')).length, MIGRATIONS.length + 1);
});

test('a database that is not UTF-8 is refused before anything is written to it', async (t) => {
  const pgServer = await postgres();
  const base = await pgServer.database();
  const name = `ascii_${process.pid}`;
  await sql(base, `CREATE DATABASE ${name} ENCODING 'SQL_ASCII' TEMPLATE template0`);
  const url = base.replace(/\/writ_[^?]+\?/, `/${name}?`);
  await t.throwsAsync(PostgresStore.open(url), { message: /encoding is SQL_ASCII; Writ needs UTF8/ });
  t.deepEqual(await sql(url, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'writ_%'"), []);
});

test('Writ serves from PostgreSQL: decisions, receipts and the log survive a restart, and `writ log verify --database` checks them', async (t) => {
  const url = await (await postgres()).database();
  const w = await writOn(url);
  let permissionId: string;
  let size: number;
  try {
    const a = await agent(w);
    const answers = await Promise.all([0, 1, 2, 3, 4].map((i) => a.call('POST', '/api/v1/permissions', EMAIL(i))));
    for (const res of answers) t.is(res.status, 201);
    t.is(answers[0]!.body.decision, 'allow');
    permissionId = answers[0]!.body.id;
    const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
    const { claims } = await verifyReceipt(answers[0]!.body.receipt, { jwks });
    t.is(claims.permission_id, permissionId);
    size = (await w.call('GET', '/healthz')).body.log_size;
    t.is((await w.admin('GET', '/api/v1/status')).body.storage.driver, 'postgresql');
    // Nothing of the state went to a LevelDB in the data directory.
    t.false((await import('node:fs')).existsSync(`${w.data}/db`));
  } finally {
    await w.close();
  }
  const rows = await sql<{ n: string }>(url, "SELECT count(*) AS n FROM writ_kv WHERE key LIKE 'log/e/%'");
  t.is(Number(rows[0]!.n), size);

  const again = await writOn(url, w.data);
  try {
    t.is((await again.call('GET', '/healthz')).body.log_size, size);
    const viewed = await again.admin('GET', `/api/v1/permissions/${permissionId}`);
    t.is(viewed.status, 200);
    t.is(viewed.body.decision, 'allow');
    // While it serves, the log can be checked beside it.
    const verified = await writCli('log', 'verify', '--data', w.data, '--database', url);
    t.is(verified.code, 0, verified.out);
    t.regex(verified.out, new RegExp(`OK — ${size} entries`));
  } finally {
    await again.close();
  }
});

test('when PostgreSQL goes away mid-stream nothing unrecorded is acknowledged, and Writ heals once it is back', async (t) => {
  // A server of its own: the other tests' goes on running.
  const pgServer = await startPostgres();
  t.teardown(() => pgServer.stop());
  const url = await pgServer.database();
  const w = await writOn(url);
  try {
    const a = await agent(w);
    const acknowledged: string[] = [];
    const refused: number[] = [];
    let stop = false;
    const stream = (async () => {
      for (let i = 0; !stop; i++) {
        const res = await a.call('POST', '/api/v1/permissions', EMAIL(i)).catch(() => undefined);
        if (!res) continue;
        if (res.status === 201) acknowledged.push(res.body.id);
        else {
          refused.push(res.status);
          t.is(res.status, 503, res.text);
          t.is(res.body.error.reason_code, 'storage_unavailable');
        }
      }
    })();
    await eventually(() => acknowledged.length >= 20, 'decisions before the crash');
    await pgServer.crash();
    await eventually(() => refused.length >= 3, 'refusals while PostgreSQL is down');
    const health = await w.call('GET', '/healthz');
    t.is(health.status, 503);
    t.is(health.body.status, 'unavailable');
    await pgServer.restart();
    const before = acknowledged.length;
    await eventually(() => acknowledged.length >= before + 20, 'decisions after PostgreSQL came back', 60_000);
    stop = true;
    await stream;
    // Every acknowledged decision is there.
    for (const id of acknowledged) t.is((await w.admin('GET', `/api/v1/permissions/${id}`)).status, 200, id);
  } finally {
    await w.close();
  }
  const verified = await writCli('log', 'verify', '--data', w.data, '--database', url);
  t.is(verified.code, 0, verified.out);
});

test('`writ migrate` moves an embedded instance into PostgreSQL with its log unchanged, and it goes on from there', async (t) => {
  const url = await (await postgres()).database();
  const embedded = await startWrit();
  const data = embedded.data;
  let receipt: string;
  let permissionId: string;
  let checkpoint: string;
  try {
    const a = await agent(embedded);
    for (let i = 0; i < 5; i++) t.is((await a.call('POST', '/api/v1/permissions', EMAIL(i))).status, 201);
    const last = await a.call('POST', '/api/v1/permissions', EMAIL(9));
    receipt = last.body.receipt;
    permissionId = last.body.id;
    checkpoint = (await embedded.call('GET', '/api/v1/log/checkpoint')).text;
    t.is((await embedded.admin('GET', '/api/v1/status')).body.storage.driver, 'leveldb');
  } finally {
    await embedded.close();
  }
  // Into a database that holds data already: refused, and that data is left alone.
  const other = await startWrit();
  await other.close();
  const occupied = await (await postgres()).database();
  t.is((await writCli('migrate', '--from-data', other.data, '--to', occupied)).code, 0);
  const refused = await writCli('migrate', '--from-data', data, '--to', occupied);
  t.is(refused.code, 1);
  t.regex(refused.out, /already holds Writ data/);
  t.truthy((await import('node:fs')).existsSync(path.join(data, 'db')));

  // The URL may come from the environment (no password on the command line).
  const migrated = await writCliWith({ WRIT_DATABASE_URL: url }, 'migrate', '--from-data', data, '--json');
  t.is(migrated.code, 0, migrated.out);
  const result = JSON.parse(migrated.out);
  t.true(result.verified);
  // The embedded copy is put aside, so that it cannot be served again by mistake.
  t.false((await import('node:fs')).existsSync(path.join(data, 'db')));
  t.true((await import('node:fs')).existsSync(result.leveldb_moved_to));
  t.is(result.origin, checkpoint.split('\n')[0]);


  const w = await writOn(url, data);
  try {
    const now = await w.call('GET', '/api/v1/log/checkpoint');
    // The same log: its latest checkpoint is the one signed before the move, or one that extends it.
    t.is(now.text.split('\n')[0], checkpoint.split('\n')[0]);
    t.true(Number(now.text.split('\n')[1]) >= Number(checkpoint.split('\n')[1]));
    const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
    t.is((await verifyReceipt(receipt, { jwks })).claims.permission_id, permissionId);
    t.is((await w.admin('GET', `/api/v1/permissions/${permissionId}`)).status, 200);
    const b = await agent(w, { name: 'after-the-move' });
    t.is((await b.call('POST', '/api/v1/permissions', EMAIL(10))).status, 201);
  } finally {
    await w.close();
  }
  const verified = await writCli('log', 'verify', '--data', data, '--database', url);
  t.is(verified.code, 0, verified.out);
});

test('WRIT_DATABASE_URL is a secret in `writ config check`, and a value that is not a postgres:// URL is refused by name', async (t) => {
  const shown = await writCliWith({ WRIT_DATABASE_URL: 'postgres://writ:hunter2hunter2@db.internal:5432/writ' }, 'config', 'check');
  t.is(shown.code, 0, shown.out);
  t.notRegex(shown.out, /hunter2/);
  const bad = await writCliWith({ WRIT_DATABASE_URL: 'mysql://db/writ' }, 'config', 'check');
  t.not(bad.code, 0);
  t.regex(bad.out, /WRIT_DATABASE_URL: must be a postgres:\/\/ URL/);
});

test('inspecting never creates a schema: `writ log verify` on a database Writ never served is refused and leaves it empty', async (t) => {
  const url = await (await postgres()).database();
  const verified = await writCliWith({ WRIT_DATABASE_URL: url }, 'log', 'verify', '--data', await tempDir());
  t.is(verified.code, 1);
  t.regex(verified.out, /holds no Writ schema/);
  t.deepEqual(await sql(url, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'writ_%'"), []);
});

test('a password is never shown, in the URL or as a parameter', (t) => {
  t.is(redactUrl('postgres://writ:hunter2@db:5432/writ'), 'postgres://writ:***@db:5432/writ');
  t.notRegex(redactUrl('postgres://writ@db/writ?password=hunter2&sslmode=require'), /hunter2/);
  t.regex(redactUrl('postgres://writ@db/writ?password=hunter2&sslmode=require'), /sslmode=require/);
  t.is(redactUrl('not a url hunter2'), 'postgres://…');
});

test('a PostgreSQL that stops answering fails the write in bounded time instead of holding it forever', async (t) => {
  // A server of its own: it is frozen.
  const pgServer = await startPostgres();
  t.teardown(() => pgServer.stop());
  const store = await PostgresStore.open(await pgServer.database(), { timeoutMs: 1000 });
  await store.batch([{ type: 'put', key: 'a', value: '1' }]);
  await pgServer.pause();
  try {
    await t.throwsAsync(store.batch([{ type: 'put', key: 'b', value: '2' }]), { message: /timeout/i });
    await t.throwsAsync(store.get('a'), { message: /timeout/i });
    await t.throwsAsync(store.iterate({ gte: 'a', lt: 'z' })[Symbol.asyncIterator]().next(), { message: /timeout/i });
  } finally {
    await pgServer.resume();
  }
  t.is(await eventually(() => store.get('a').catch(() => undefined), 'reads once it answers again'), '1');
  await store.close();
});

test('with a master key the keys live sealed in the database: a node needs no files, and a wrong master key is refused', async (t) => {
  const url = await (await postgres()).database();
  const w = await startWrit({ config: { databaseUrl: url, masterKey: MASTER } });
  let receipt: string;
  let jwks: unknown;
  let verifier: string;
  try {
    const a = await agent(w);
    receipt = (await a.call('POST', '/api/v1/permissions', EMAIL(1))).body.receipt;
    jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
    verifier = (await w.call('GET', '/.well-known/openid-configuration')).body.log_verifier_key;
  } finally {
    await w.close();
  }
  // Nothing of the keys is a file, and what the database holds is sealed.
  t.deepEqual(await fs.readdir(path.join(w.data, 'keys')).catch(() => []), []);
  const sealed = await sql<{ key: string; value: string }>(url, "SELECT key, value FROM writ_kv WHERE key LIKE 'vault/%' ORDER BY key");
  t.deepEqual(sealed.map((r) => r.key).filter((k) => !k.startsWith('vault/receipt-') || k.endsWith('ring.json')), ['vault/data.key', 'vault/log.jwk', 'vault/receipt-ring.json']);
  for (const row of sealed) t.notRegex(row.value, /"d"|kty|current/);

  // Another node, on a fresh directory, with the master key: the same keys.
  const other = await startWrit({ config: { databaseUrl: url, masterKey: MASTER } });
  try {
    t.deepEqual((await other.call('GET', '/.well-known/jwks.json')).body, jwks);
    t.is((await other.call('GET', '/.well-known/openid-configuration')).body.log_verifier_key, verifier);
    t.is((await verifyReceipt(receipt, { jwks: jwks as never })).claims.action, 'email.send');
  } finally {
    await other.close();
  }
  const verified = await writCliWith({ WRIT_DATABASE_URL: url, WRIT_MASTER_KEY: MASTER }, 'log', 'verify', '--data', await tempDir());
  t.is(verified.code, 0, verified.out);

  const wrong = await writCliWith({ WRIT_DATABASE_URL: url, WRIT_MASTER_KEY: 'A'.repeat(43) + '=' }, 'serve', '--port', '0', '--data', await tempDir());
  t.is(wrong.code, 1);
  t.regex(wrong.out, /master key .* does not open the key/);
  t.notRegex(wrong.out, /AAAAAAAAAA/);
});

test('an instance given a master key later seals its key files into the database once, and keeps its log key', async (t) => {
  const url = await (await postgres()).database();
  const first = await writOn(url);
  const verifier = (await first.call('GET', '/.well-known/openid-configuration')).body.log_verifier_key;
  await first.close();
  const again = await startWrit({ data: first.data, config: { databaseUrl: url, masterKey: MASTER } });
  try {
    t.is((await again.call('GET', '/.well-known/openid-configuration')).body.log_verifier_key, verifier);
  } finally {
    await again.close();
  }
  t.is((await sql(url, "SELECT key FROM writ_kv WHERE key = 'vault/log.jwk'")).length, 1);
  // From now on the files are not needed: a node on an empty directory has the same log.
  const fresh = await startWrit({ config: { databaseUrl: url, masterKey: MASTER } });
  try {
    t.is((await fresh.call('GET', '/.well-known/openid-configuration')).body.log_verifier_key, verifier);
  } finally {
    await fresh.close();
  }
});

test('a node of an existing log that finds none of its keys is refused at start, and makes none', async (t) => {
  const url = await (await postgres()).database();
  await (await writOn(url)).close();
  const refused = await writCliWith({ WRIT_DATABASE_URL: url }, 'serve', '--port', '0', '--data', await tempDir());
  t.is(refused.code, 1);
  t.regex(refused.out, /this log was started with keys that are not here/);
  const sealedRefused = await writCliWith({ WRIT_DATABASE_URL: url, WRIT_MASTER_KEY: MASTER }, 'serve', '--port', '0', '--data', await tempDir());
  t.is(sealedRefused.code, 1);
  t.regex(sealedRefused.out, /keys that are not here/);
  t.deepEqual(await sql(url, "SELECT key FROM writ_kv WHERE key LIKE 'vault/%'"), []);
});

test('a master key is only taken with PostgreSQL, one way, and in the right shape', async (t) => {
  const leveldb = await writCliWith({ WRIT_MASTER_KEY: MASTER }, 'config', 'check');
  t.not(leveldb.code, 0);
  t.regex(leveldb.out, /WRIT_MASTER_KEY: seals the keys kept in PostgreSQL, and needs WRIT_DATABASE_URL/);
  const short = await writCliWith({ WRIT_DATABASE_URL: 'postgres://db/writ', WRIT_MASTER_KEY: 'c2hvcnQ=' }, 'config', 'check');
  t.regex(short.out, /WRIT_MASTER_KEY: must be 32 bytes/);
  const ok = await writCliWith({ WRIT_DATABASE_URL: 'postgres://db/writ', WRIT_MASTER_KEY: MASTER }, 'config', 'check');
  t.is(ok.code, 0, ok.out);
  t.notRegex(ok.out, new RegExp(MASTER.slice(0, 12)));
});

test('a backup of a node on PostgreSQL, keys sealed, restores into an embedded directory that serves the same log', async (t) => {
  const url = await (await postgres()).database();
  const w = await startWrit({ config: { databaseUrl: url, masterKey: MASTER } });
  const file = path.join(await tempDir(), 'writ.backup');
  let verifier: string;
  let size: number;
  let permissionId: string;
  try {
    const a = await agent(w);
    permissionId = (await a.call('POST', '/api/v1/permissions', EMAIL(1))).body.id;
    verifier = (await w.call('GET', '/.well-known/openid-configuration')).body.log_verifier_key;
    size = (await w.call('GET', '/healthz')).body.log_size;
    const backedUp = await writCli('backup', '--out', file, '--url', w.url, '--key', ADMIN);
    t.is(backedUp.code, 0, backedUp.out);
  } finally {
    await w.close();
  }
  const restoredDir = path.join(await tempDir(), 'restored');
  const restored = await writCli('restore', file, '--data', restoredDir);
  t.is(restored.code, 0, restored.out);
  // The keys come back as the files an embedded instance reads.
  t.true((await fs.readdir(path.join(restoredDir, 'keys'))).includes('log.jwk'));
  const embedded = await startWrit({ data: restoredDir });
  try {
    t.is((await embedded.call('GET', '/.well-known/openid-configuration')).body.log_verifier_key, verifier);
    t.true((await embedded.call('GET', '/healthz')).body.log_size >= size);
    t.is((await embedded.admin('GET', `/api/v1/permissions/${permissionId}`)).status, 200);
  } finally {
    await embedded.close();
  }
});

test('a receipt key rotated on a node with sealed keys is the current key of the next node, and the old one still verifies', async (t) => {
  const url = await (await postgres()).database();
  const first = await startWrit({ config: { databaseUrl: url, masterKey: MASTER } });
  let before: string;
  let rotated: { retired: string; current: string };
  try {
    const a = await agent(first);
    before = (await a.call('POST', '/api/v1/permissions', EMAIL(1))).body.receipt;
    const res = await first.admin('POST', '/api/v1/keys/rotate');
    t.is(res.status, 200, res.text);
    rotated = res.body;
  } finally {
    await first.close();
  }
  const next = await startWrit({ config: { databaseUrl: url, masterKey: MASTER } });
  try {
    const jwks = (await next.call('GET', '/.well-known/jwks.json')).body;
    t.deepEqual(jwks.keys.map((k: { kid: string }) => k.kid).sort(), [rotated.retired, rotated.current].sort());
    t.is((await verifyReceipt(before, { jwks })).header.kid, rotated.retired);
    const b = await agent(next, { name: 'after-rotation' });
    const after = (await b.call('POST', '/api/v1/permissions', EMAIL(2))).body.receipt;
    t.is((await verifyReceipt(after, { jwks })).header.kid, rotated.current);
  } finally {
    await next.close();
  }
});
