import crypto from 'node:crypto';
import { setMaxListeners } from 'node:events';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { publicBaseUrl, type Config } from './config.ts';
import { KeyRing, openDataKey, openLogKey } from './crypto/keys.ts';
import { logCurrentReceiptKey, rotateReceiptKey } from './crypto/rotation.ts';
import { Permissions } from './domain/permissions.ts';
import { Principals } from './domain/principals.ts';
import { Webhooks } from './domain/webhooks.ts';
import { Oversight } from './domain/oversight.ts';
import { startTelegram, type TelegramBot } from '../bot/index.ts';
import { createApp } from './http/server.ts';
import { TransparencyLog } from './log/log.ts';
import { verifierKeyString } from './log/note.ts';
import { PolicyStore } from './policy/policies.ts';
import { LevelStore } from './store/level.ts';
import { getJson, put, type Store } from './store/store.ts';

/**
 * One Writ instance: its stores, keys, log, policies and services, wired once at start and passed
 * to every route through its context (no singletons).
 */
export interface Writ {
  config: Config;
  store: Store;
  log: TransparencyLog;
  keys: KeyRing;
  principals: Principals;
  permissions: Permissions;
  policies: PolicyStore;
  webhooks: Webhooks;
  oversight: Oversight;
  /** The Telegram bot, when WRIT_TELEGRAM_BOT_TOKEN is set. */
  telegram?: TelegramBot;
  logVerifierKey: string;
  baseUrl(): string;
  rotateKeys(): Promise<{ retired: string; current: string }>;
  report(message: string): void;
}

interface Meta {
  instance_id: string;
  origin: string;
  created_at: string;
}

export async function openDataDir(dataDir: string): Promise<{ store: Store; meta: Meta | undefined }> {
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  try {
    const store = await LevelStore.open(path.join(dataDir, 'db'));
    return { store, meta: await getJson<Meta>(store, 'meta/instance') };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if ((err as { code?: string }).code === 'LEVEL_DATABASE_NOT_OPEN' && /lock/i.test(String(cause ?? (err as Error).message) + JSON.stringify(cause ?? {}))) {
      throw new Error(`the data directory ${dataDir} is in use by another Writ process (LevelDB lock held)`);
    }
    throw err;
  }
}

/** Opens (and on first start initialises) everything under the data directory. */
export async function openWrit(config: Config, report: (m: string) => void): Promise<{ writ: Writ; adminKey?: string; setPort(port: number): void }> {
  const { store, meta: existing } = await openDataDir(config.data);
  let meta = existing;
  if (!meta) {
    const instance = crypto.randomBytes(6).toString('hex');
    meta = { instance_id: instance, origin: config.logOrigin ?? `writ.local/${instance}`, created_at: new Date().toISOString() };
    await store.batch([put('meta/instance', meta)], { sync: true });
    report(`initialised a new data directory at ${config.data}`);
  } else if (config.logOrigin && config.logOrigin !== meta.origin) {
    await store.close();
    throw new Error(`WRIT_LOG_ORIGIN is ${config.logOrigin} but this log's origin is ${meta.origin}; a log's origin never changes`);
  }
  const keys = await KeyRing.open(config.data);
  const logKey = await openLogKey(config.data);
  const dataKey = await openDataKey(config.data);
  const log = await TransparencyLog.open(store, { origin: meta.origin, key: logKey, commitWindowMs: config.commitWindowMs });
  let port = config.port;
  const baseUrl = () => publicBaseUrl(config, port);
  const principals = new Principals(store, log);
  const permissions = new Permissions({ store, log, keys, dataKey, issuer: baseUrl, criticalDelaySeconds: config.criticalDelay });
  const webhooks = new Webhooks({ store, log, dataKey, retryBaseMs: config.webhookRetryBaseMs, report });
  permissions.events.add(webhooks);
  const oversight = new Oversight({
    store,
    log,
    keys,
    permissions,
    issuer: baseUrl,
    approvalTimeout: config.approvalTimeout,
    ttl: config.tokenTtlDefault,
    listAttesters: () => principals.listAttesters(),
  });
  permissions.events.add(oversight);
  let policies: PolicyStore;
  try {
    policies = await PolicyStore.open(config.policies, {
      report,
      timeoutMs: config.policyTimeoutMs,
      onChange: async (before, after) => {
        await log.append('policy.activated', { hash_before: before.hash, hash_after: after.hash, files: after.files }, [
          { type: 'put', key: POLICY_HASH_KEY, value: after.hash },
        ]);
      },
    });
  } catch (err) {
    await log.close();
    await store.close();
    throw err;
  }
  const writ: Writ = {
    config,
    store,
    log,
    keys,
    principals,
    permissions,
    policies,
    webhooks,
    oversight,
    logVerifierKey: verifierKeyString(meta.origin, logKey.publicRaw),
    baseUrl,
    report,
    rotateKeys: () => rotateReceiptKey(keys, log),
  };
  await logCurrentReceiptKey(keys, log, store);
  const adminKey = await principals.bootstrapAdmin(config.adminToken);
  await logPolicySetIfNew(writ);
  return { writ, ...(adminKey ? { adminKey } : {}), setPort: (p) => (port = p) };
}

/** The hash of the policy set the log last recorded as active. */
const POLICY_HASH_KEY = 'meta/policy-hash';

/** The log records which policy set is active whenever it differs from the last one recorded. */
async function logPolicySetIfNew(writ: Writ): Promise<void> {
  const last = await writ.store.get(POLICY_HASH_KEY);
  const current = writ.policies.current;
  if (last === current.hash) return;
  await writ.log.append('policy.activated', { hash_before: last ?? '', hash_after: current.hash, files: current.files }, [
    { type: 'put', key: POLICY_HASH_KEY, value: current.hash },
  ]);
}

const SHUTDOWN_GRACE_MS = 10_000;

export interface RunningServer {
  writ: Writ;
  url: string;
  port: number;
  adminKey?: string;
  close(): Promise<void>;
}

/** Starts the HTTP server; `close` stops accepting, finishes in-flight requests, flushes and closes. */
export async function startServer(config: Config, report: (m: string) => void = () => {}): Promise<RunningServer> {
  const opened = await openWrit(config, report);
  const { writ } = opened;
  const shutdown = new AbortController();
  // Every in-flight request listens for shutdown; that is many listeners by design.
  setMaxListeners(0, shutdown.signal);
  const app = createApp(writ, shutdown.signal);
  const server = http.createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  opened.setPort(port);
  await writ.permissions.start();
  await writ.webhooks.start();
  writ.policies.watch();
  if (config.telegramBotToken) {
    writ.telegram = await startTelegram(writ);
    report(`telegram: ${config.telegramMode} mode via ${config.telegramApiRoot}`);
  } else {
    report('telegram: no WRIT_TELEGRAM_BOT_TOKEN, running without the bot (approvals over REST only)');
  }
  const checkpoints = setInterval(() => {
    void writ.log.checkpoint().catch((err) => report(`checkpoint failed: ${(err as Error).message}`));
  }, config.checkpointInterval * 1000);
  checkpoints.unref();

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      clearInterval(checkpoints);
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
      await writ.telegram?.stop();
      await writ.webhooks.stop();
      await writ.policies.close();
      await writ.log.close();
      if (writ.log.size > (writ.log.latestCheckpoint()?.size ?? 0)) await writ.log.checkpoint().catch(() => undefined);
      await writ.store.close();
    })());
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return { writ, url: `http://${host}:${port}`, port, ...(opened.adminKey ? { adminKey: opened.adminKey } : {}), close };
}
