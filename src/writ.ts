import crypto from 'node:crypto';
import { setMaxListeners } from 'node:events';
import fs from 'node:fs/promises';
import http from 'node:http';
import { publicBaseUrl, type Config } from './config.ts';
import { Signer } from './crypto/signer.ts';
import { KeyRing, openDataKey, openLogKey } from './crypto/keys.ts';
import { adoptKeyFiles, fileVault, keysDir, masterKeyOf, sealedVault, VaultLocked, type KeyVault } from './crypto/vault.ts';
import { logCurrentReceiptKey, rotateReceiptKey } from './crypto/rotation.ts';
import { Permissions } from './domain/permissions.ts';
import { Principals } from './domain/principals.ts';
import { Passkeys } from './domain/passkeys.ts';
import { Sessions } from './domain/sessions.ts';
import { Webhooks } from './domain/webhooks.ts';
import { Oversight } from './domain/oversight.ts';
import { Revocations } from './domain/revocations.ts';
import { startTelegram, type TelegramBot } from '../bot/index.ts';
import { createApp, type Exchange } from './http/server.ts';
import { TransparencyLog, type LogOptions } from './log/log.ts';
import { verifierKeyString } from './log/note.ts';
import { PolicyStore } from './policy/policies.ts';
import { openDataDir, StartupError, type Meta } from './data-dir.ts';
import { LogDamage } from './log/verify.ts';
import { silentLogger, type Logger } from './ops/logger.ts';
import { Metrics } from './ops/metrics.ts';
import type { GuardedStore } from './store/guarded.ts';
import { Conflict, getJson, put, type Store } from './store/store.ts';
import { redactUrl } from './store/postgres.ts';
import { localBus, postgresBus, type Bus } from './store/bus.ts';
import { Nodes } from './ops/nodes.ts';
import { Lease } from './store/lease.ts';
import { retrying } from './domain/reads.ts';
import type { Report } from './report.ts';

/**
 * One Writ instance: its stores, keys, log, policies and services, wired once at start and passed
 * to every route through its context (no singletons).
 */
export interface Writ {
  config: Config;
  store: GuardedStore;
  /** Where the keys are: the data directory's files, or sealed in the database. */
  vault: KeyVault;
  log: TransparencyLog;
  keys: KeyRing;
  /** Signs decisions' receipts off the event loop. */
  signer: Signer;
  principals: Principals;
  sessions: Sessions;
  passkeys: Passkeys;
  permissions: Permissions;
  policies: PolicyStore;
  webhooks: Webhooks;
  oversight: Oversight;
  revocations: Revocations;
  /** The Telegram bot, when WRIT_TELEGRAM_BOT_TOKEN is set. */
  telegram?: TelegramBot;
  /** Nodes sharing a database: held while this node signs the interval's checkpoints. */
  checkpointLease?: Lease;
  /** The webhook's secret token: derived from the data key, so every node of a database accepts Telegram's calls. */
  telegramWebhookSecret: string;
  metrics: Metrics;
  /** Word between the nodes sharing a database (nothing to say for one process alone). */
  bus: Bus;
  /** The nodes serving this store, with their policy sets. */
  nodes: Nodes;
  /** Start-up is finished once every service runs (`serving`); `stopping` from the first shutdown step. */
  phase: 'starting' | 'serving' | 'stopping';
  logVerifierKey: string;
  baseUrl(): string;
  rotateKeys(): Promise<{ retired: string; current: string }>;
  report: Report;
}

export interface ServerHooks {
  /** Wraps the storage driver each time it is opened (tests inject faults around the real LevelDB). */
  wrapDriver?: (driver: Store) => Store;
  /** Sees every answer as it goes out (the test suite checks each against /openapi.json). */
  observe?: (exchange: Exchange) => void;
  /** Where the access log goes (`writ serve` passes its logger); without one, nowhere. */
  logger?: Logger;
}

/** Opens (and on first start initialises) everything under the data directory. */
export async function openWrit(
  config: Config,
  report: Report,
  hooks: ServerHooks = {},
): Promise<{ writ: Writ; adminKey?: string; setPort(port: number): void }> {
  const policiesDir = await fs.stat(config.policies).catch(() => undefined);
  if (!policiesDir?.isDirectory()) throw new StartupError(`the policies directory ${config.policies} does not exist (set --policies or WRIT_POLICIES)`);
  const { store, meta: existing } = await openDataDir(config.data, {
    create: true,
    report,
    ...(hooks.wrapDriver ? { wrapDriver: hooks.wrapDriver } : {}),
    ...(config.databaseUrl ? { database: config.databaseUrl } : {}),
  });
  // Everything opened so far is closed again if a later step fails, so a failed start holds nothing.
  const opened: Array<() => Promise<unknown>> = [() => store.close()];
  try {
    let meta: Meta | undefined = existing;
    if (!meta) {
      const instance = crypto.randomBytes(6).toString('hex');
      const made: Meta = { instance_id: instance, origin: config.logOrigin ?? `writ.local/${instance}`, created_at: new Date().toISOString() };
      // Nodes starting together on a new database: the first one's instance is everyone's.
      try {
        await store.batch([put('meta/instance', made)], { sync: true, expect: [{ key: 'meta/instance', value: undefined }] });
        meta = made;
        report(`initialised a new ${config.databaseUrl ? 'database' : 'data directory'} at ${config.databaseUrl ? redactUrl(config.databaseUrl) : config.data}`, 'info');
      } catch (err) {
        if (!(err instanceof Conflict)) throw err;
        meta = (await getJson<Meta>(store, 'meta/instance'))!;
      }
    }
    if (config.logOrigin && config.logOrigin !== meta.origin) {
      throw new StartupError(`WRIT_LOG_ORIGIN is ${config.logOrigin} but this log's origin is ${meta.origin}; a log's origin never changes`);
    }
    const vault = await openVault(config, store, report, existing !== undefined);
    const keys = await KeyRing.open(vault);
    const logKey = await openLogKey(vault);
    const dataKey = await openDataKey(vault);
    const metrics = new Metrics({ token: config.metricsToken });
    const log = await openLog(store, { origin: meta.origin, key: logKey, commitWindowMs: config.commitWindowMs, onCommit: metrics.committed }, config.data);
    opened.push(() => log.close());
    let port = config.port;
    const baseUrl = () => publicBaseUrl(config, port);
    // With PostgreSQL other nodes may serve the same database: nothing correct may rest on this
    // process's memory alone, and the nodes tell each other what changed.
    const shared = config.databaseUrl !== undefined;
    const bus = config.databaseUrl ? await postgresBus(config.databaseUrl, report) : localBus();
    opened.push(() => bus.close());
    const principals = new Principals(store, log, derivedKey(dataKey, 'writ admin token'), shared);
    const signer = new Signer();
    opened.push(() => signer.close());
    const permissions = new Permissions({
      store,
      log,
      keys,
      signer,
      dataKey,
      issuer: baseUrl,
      criticalDelaySeconds: config.criticalDelay,
      principals,
      ...(shared ? { bus } : {}),
    });
    const webhooks = new Webhooks({ store, log, dataKey, retryBaseMs: config.webhookRetryBaseMs, report, ...(shared ? { bus } : {}) });
    // A receipt key rotated on another node becomes this one's current key too.
    bus.subscribe((message) => {
      if (message.t === 'keys') void keys.reload().catch((err) => report(`keys: could not read the rotated key ring: ${(err as Error).message}`, 'error'));
    });
    permissions.events.add(webhooks);
    const oversight = new Oversight({
      store,
      log,
      keys,
      signer,
      permissions,
      issuer: baseUrl,
      approvalTimeout: config.approvalTimeout,
      ttl: config.tokenTtlDefault,
      listAttesters: () => principals.listAttesters(),
      shared,
    });
    permissions.events.add(oversight);
    // After a failed write the database is reopened: the log re-verifies its tail before anything
    // is written again, and caches read through once more.
    store.afterReopen(() => log.reload());
    store.afterReopen(async () => {
      principals.forgetCached();
      oversight.forgetCached();
    });
    const policies = await PolicyStore.open(config.policies, {
      report,
      timeoutMs: config.policyTimeoutMs,
      onEvaluated: metrics.evaluated,
      atRest: () => log.idle,
      onChange: async (before, after) => {
        await log.append('policy.activated', { hash_before: before.hash, hash_after: after.hash, files: after.files }, [
          { type: 'put', key: POLICY_HASH_KEY, value: after.hash },
        ]);
      },
    });
    opened.push(() => policies.close());
    const writ: Writ = {
      config,
      vault,
      store,
      log,
      keys,
      signer,
      principals,
      sessions: new Sessions(store, log, principals, config.sessionTtl),
      passkeys: new Passkeys(store, log, baseUrl),
      permissions,
      policies,
      webhooks,
      oversight,
      revocations: new Revocations({ principals, permissions, log }),
      metrics,
      bus,
      telegramWebhookSecret: derivedKey(dataKey, 'telegram webhook secret').toString('base64url'),
      nodes: new Nodes(store, bus.node, () => ({ policy_hash: policies.current.hash, url: baseUrl() }), report),
      phase: 'starting',
      logVerifierKey: verifierKeyString(meta.origin, logKey.publicRaw),
      baseUrl,
      report,
      rotateKeys: async () => {
        const rotated = await rotateReceiptKey(keys, log);
        bus.publish({ t: 'keys' });
        return rotated;
      },
    };
    metrics.watch(writ);
    await logCurrentReceiptKey(keys, log, store);
    const admin = await principals.bootstrapAdmin(config.adminToken);
    if (admin.notice) report(admin.notice, 'warn');
    await logPolicySetIfNew(writ);
    return { writ, ...(admin.key ? { adminKey: admin.key } : {}), setPort: (p) => (port = p) };
  } catch (err) {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    throw err;
  }
}

/** The log, opened after its tail was checked; damage is a start-up refusal that says what to do. */
/**
 * Where the keys are: sealed in the database when it is PostgreSQL and a master key is given
 * (adopting the data directory's key files the first time), else the data directory's files. An
 * instance that has a log already must find its keys: new ones would sign a different log.
 */
async function openVault(config: Config, store: GuardedStore, report: Report, existing: boolean): Promise<KeyVault> {
  const files = fileVault(config.data);
  let vault = files;
  try {
    const kek = config.databaseUrl ? await masterKeyOf(config) : undefined;
    if (kek) {
      vault = sealedVault(store, kek);
      const adopted = await adoptKeyFiles(vault, files);
      if (adopted.length) report(`keys: sealed the ${adopted.length} key files of ${keysDir(config.data)} into the database under the master key; the files are no longer read and can be deleted`, 'info');
    }
    if (existing && (await vault.read('log.jwk')) === undefined) {
      throw new StartupError(
        `this log was started with keys that are not here (no log key in ${vault.where('log.jwk')}): ` +
          (kek ? 'give this node the master key that sealed them, or the data directory\'s keys/ to adopt' : 'give this node the data directory\'s keys/ (or, on PostgreSQL, the master key that sealed them)'),
      );
    }
  } catch (err) {
    if (err instanceof VaultLocked) throw new StartupError(err.message);
    throw err;
  }
  return vault;
}

async function openLog(store: GuardedStore, options: Omit<LogOptions, 'writeRefusal'>, data: string): Promise<TransparencyLog> {
  try {
    return await TransparencyLog.open(store, { ...options, writeRefusal: () => store.writeRefusal() });
  } catch (err) {
    if (!(err instanceof LogDamage)) throw err;
    throw new StartupError(
      `the log in ${data} is damaged: ${err.message}.\n  Run \`writ log verify --data ${data}\` for the first bad index, then restore the latest backup into a new directory (\`writ restore FILE --data NEWDIR\`).`,
    );
  }
}

const derivedKey = (dataKey: Buffer, purpose: string) => Buffer.from(crypto.hkdfSync('sha256', dataKey, Buffer.alloc(0), purpose, 32));

/** The hash of the policy set the log last recorded as active. */
const POLICY_HASH_KEY = 'meta/policy-hash';

/** The log records which policy set is active whenever it differs from the last one recorded. */
async function logPolicySetIfNew(writ: Writ): Promise<void> {
  // Nodes starting together with the same policies log them once.
  await retrying(async () => {
    const last = await writ.store.get(POLICY_HASH_KEY);
    const current = writ.policies.current;
    if (last === current.hash) return;
    await writ.log.append('policy.activated', { hash_before: last ?? '', hash_after: current.hash, files: current.files }, [{ type: 'put', key: POLICY_HASH_KEY, value: current.hash }], {
      expect: [{ key: POLICY_HASH_KEY, value: last }],
    });
  });
}

const SHUTDOWN_GRACE_MS = 10_000;
/** Nodes sharing a database look again this often at what another node may have changed (keys, approvals' timers). */
const CATCH_UP_MS = 5_000;

export interface RunningServer {
  writ: Writ;
  url: string;
  port: number;
  /** A generated admin key, to print once; call `adminKeyShown` when it has been. */
  adminKey?: string;
  adminKeyShown(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the HTTP server; `close` stops accepting, finishes in-flight requests, flushes and closes. */
export async function startServer(config: Config, report: Report = () => {}, hooks: ServerHooks = {}): Promise<RunningServer> {
  const opened = await openWrit(config, report, hooks);
  const { writ } = opened;
  const shutdown = new AbortController();
  // Every in-flight request listens for shutdown; that is many listeners by design.
  setMaxListeners(0, shutdown.signal);
  const app = createApp(writ, shutdown.signal, { logger: hooks.logger ?? silentLogger(), ...(hooks.observe ? { observe: hooks.observe } : {}) });
  const server = http.createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 120_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    await closeWrit(writ);
    throw new StartupError(listenProblem(err as NodeJS.ErrnoException, config));
  }
  const port = (server.address() as { port: number }).port;
  opened.setPort(port);
  await writ.permissions.start();
  await writ.webhooks.start();
  await writ.nodes.start();
  writ.policies.watch();
  let telegramLease: Lease | undefined;
  if (config.telegramBotToken) {
    const bot = await startTelegram(writ, writ.telegramWebhookSecret);
    writ.telegram = bot;
    if (config.databaseUrl) {
      // One node at a time polls (or registers the webhook) and keeps the cards; another takes over within seconds of its end.
      telegramLease = new Lease(writ.store, 'telegram', writ.bus.node, {
        onAcquired: async () => {
          report('telegram: this node now leads the bot (polls or holds the webhook, keeps the cards)', 'info');
          await bot.lead(true);
        },
        onLost: () => bot.lead(false),
        report,
      });
      await telegramLease.start();
    } else await bot.lead(true);
    report(`telegram: ${config.telegramMode} mode via ${config.telegramApiRoot}`, 'info');
  } else {
    report('telegram: no WRIT_TELEGRAM_BOT_TOKEN, running without the bot (approvals over REST only)', 'info');
  }
  // Of nodes sharing a database, the one holding this lease signs the checkpoints of the interval;
  // another takes over within seconds of its end. (A proof's checkpoint is signed by the node
  // asked, over the tree as stored and never below the newest stored one.)
  writ.checkpointLease = config.databaseUrl ? new Lease(writ.store, 'checkpoints', writ.bus.node, { onAcquired: () => undefined, onLost: () => undefined, report }) : undefined;
  await writ.checkpointLease?.start();
  const checkpoints = setInterval(() => {
    if (writ.checkpointLease && !writ.checkpointLease.held) return;
    void writ.log.checkpoint().catch((err) => report(`checkpoint failed: ${(err as Error).message}`, 'error'));
  }, config.checkpointInterval * 1000);
  checkpoints.unref();
  // With other nodes sharing the store, what their word (the bus) carries is also looked at again
  // on a timer, so a message lost while a connection was down is caught up within seconds.
  const catchUp = config.databaseUrl
    ? setInterval(() => {
        void writ.keys.reload().catch(() => undefined);
        void writ.permissions.armOpen().catch(() => undefined);
      }, CATCH_UP_MS)
    : undefined;
  catchUp?.unref();
  writ.phase = 'serving';

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      writ.phase = 'stopping';
      clearInterval(checkpoints);
      clearInterval(catchUp);
      shutdown.abort();
      writ.permissions.stop();
      // Keep-alive connections would hold close() open: close each as soon as it is idle, and
      // cut whatever is still running after the grace period.
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        const cut = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        server.once('close', () => (clearInterval(idle), clearTimeout(cut)));
        server.closeIdleConnections();
      });
      await telegramLease?.stop();
      await writ.checkpointLease?.stop();
      await writ.telegram?.stop();
      await writ.webhooks.stop();
      await writ.nodes.stop();
      await closeWrit(writ);
    })());
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    writ,
    url: `http://${host}:${port}`,
    port,
    ...(opened.adminKey ? { adminKey: opened.adminKey } : {}),
    adminKeyShown: () => writ.principals.adminKeyShown(),
    close,
  };
}

/** Flushes the log, signs a last checkpoint over what it holds, and releases the policy worker and the database. */
async function closeWrit(writ: Writ): Promise<void> {
  await writ.policies.close();
  await writ.log.close();
  await writ.signer.close();
  if (writ.log.size > (writ.log.latestCheckpoint()?.size ?? 0)) await writ.log.checkpoint().catch(() => undefined);
  await writ.store.close();
  await writ.bus.close();
}

function listenProblem(err: NodeJS.ErrnoException, config: Config): string {
  const where = `${config.host}:${config.port}`;
  if (err.code === 'EADDRINUSE') return `cannot listen on ${where}: the port is already in use (choose another with --port or WRIT_PORT)`;
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return `cannot listen on ${where}: the host name ${config.host} does not resolve (check --host or WRIT_HOST)`;
  if (err.code === 'EADDRNOTAVAIL') return `cannot listen on ${where}: ${config.host} is not an address of this machine (check --host or WRIT_HOST)`;
  if (err.code === 'EACCES') return `cannot listen on ${where}: permission denied (ports below 1024 need privileges)`;
  return `cannot listen on ${where}: ${err.message}`;
}
