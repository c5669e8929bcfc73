import { z } from 'zod';
import path from 'node:path';
import { LineCounter, isMap, isScalar, parseDocument, type Scalar } from 'yaml';
import { LEGAL_BASES } from './domain/oversight.ts';

/**
 * Configuration is parsed once, from flags, the environment, a configuration file and defaults,
 * and checked before anything starts; every bad or unknown key is reported at once with the name
 * a user typed.
 */
const integer = (min: number, max: number) =>
  // Text (the environment, a flag, a file) is a whole number only in decimal digits: an empty or
  // blank value, 0x1F90, 1e3 or 8080.0 is refused, never read as some other number.
  z.preprocess(
    (value) => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value),
    z.number({ error: 'must be a whole number, in decimal digits' }).int().min(min).max(max),
  );
const seconds = integer;

export const ConfigSchema = z
  .object({
    port: integer(0, 65535).default(8080),
    host: z.string().min(1).default('127.0.0.1'),
    data: z.string().min(1).default('./data'),
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// URL (postgres://user:password@host:5432/writ)')
      .optional(),
    masterKey: z
      .string()
      .regex(/^([0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)$/, 'must be 32 bytes as base64 or hex (openssl rand -base64 32)')
      .optional(),
    masterKeyFile: z.string().min(1).optional(),
    policies: z.string().min(1).default('./policies'),
    adminToken: z.string().min(16, 'must be at least 16 characters').optional(),
    publicUrl: z.url().optional(),
    logOrigin: z
      .string()
      .regex(/^[^\s+—]+$/, 'must be a schema-less URL without spaces or "+"')
      .optional(),
    tokenTtlDefault: seconds(1, 86_400).default(300),
    tokenTtlMax: seconds(1, 86_400 * 30).default(3600),
    approvalTimeout: seconds(1, 86_400 * 7).default(900),
    sessionTtl: seconds(60, 86_400 * 7).default(43_200),
    criticalDelay: seconds(0, 86_400).default(300),
    checkpointInterval: seconds(1, 86_400).default(900),
    policyTimeoutMs: integer(1, 10_000).default(250),
    commitWindowMs: integer(0, 100).default(0),
    maxBodyBytes: integer(1024, 16 * 1024 * 1024).default(1024 * 1024),
    opaAgentClassPath: z.string().max(200).default('agent.class'),
    opaDefaultLegalBasis: z.enum(LEGAL_BASES).default('legitimate_interests'),
    webhookRetryBaseMs: integer(1, 600_000).default(1000),
    telegramBotToken: z.string().regex(/^\d+:[\w-]+$/, 'must look like 123456:ABC-DEF… (from @BotFather)').optional(),
    telegramApiRoot: z.url().default('https://api.telegram.org'),
    telegramMode: z.enum(['polling', 'webhook']).default('polling'),
    telegramWebhookUrl: z.url().optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    metricsToken: z.string().min(16, 'must be at least 16 characters').optional(),
  })
  .strict()
  .refine((c) => c.tokenTtlDefault <= c.tokenTtlMax, {
    path: ['tokenTtlDefault'],
    message: 'must not exceed tokenTtlMax (WRIT_TOKEN_TTL_MAX)',
  })
  .refine((c) => !(c.masterKey && c.masterKeyFile), {
    path: ['masterKeyFile'],
    message: 'give the master key one way: WRIT_MASTER_KEY or WRIT_MASTER_KEY_FILE, not both',
  })
  .refine((c) => c.databaseUrl || !(c.masterKey || c.masterKeyFile), {
    path: ['masterKey'],
    message: 'seals the keys kept in PostgreSQL, and needs WRIT_DATABASE_URL (with LevelDB the keys are files in the data directory)',
  })
  .refine((c) => c.telegramMode !== 'webhook' || !c.telegramBotToken || c.telegramWebhookUrl, {
    path: ['telegramWebhookUrl'],
    message: 'is required when WRIT_TELEGRAM_MODE is webhook (the public URL Telegram posts updates to)',
  });

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Environment variable → config key. Any other WRIT_* variable is a typo and is refused. */
export const ENV_KEYS: Record<string, keyof Config> = {
  WRIT_PORT: 'port',
  WRIT_HOST: 'host',
  WRIT_DATA: 'data',
  WRIT_DATABASE_URL: 'databaseUrl',
  WRIT_MASTER_KEY: 'masterKey',
  WRIT_MASTER_KEY_FILE: 'masterKeyFile',
  WRIT_POLICIES: 'policies',
  WRIT_ADMIN_TOKEN: 'adminToken',
  WRIT_PUBLIC_URL: 'publicUrl',
  WRIT_LOG_ORIGIN: 'logOrigin',
  WRIT_TOKEN_TTL_DEFAULT: 'tokenTtlDefault',
  WRIT_TOKEN_TTL_MAX: 'tokenTtlMax',
  WRIT_APPROVAL_TIMEOUT_SECONDS: 'approvalTimeout',
  WRIT_SESSION_TTL_SECONDS: 'sessionTtl',
  WRIT_CRITICAL_DELAY_SECONDS: 'criticalDelay',
  WRIT_CHECKPOINT_INTERVAL: 'checkpointInterval',
  WRIT_COMMIT_WINDOW_MS: 'commitWindowMs',
  WRIT_POLICY_TIMEOUT_MS: 'policyTimeoutMs',
  WRIT_WEBHOOK_RETRY_BASE_MS: 'webhookRetryBaseMs',
  WRIT_OPA_AGENT_CLASS_PATH: 'opaAgentClassPath',
  WRIT_OPA_DEFAULT_LEGAL_BASIS: 'opaDefaultLegalBasis',
  WRIT_TELEGRAM_BOT_TOKEN: 'telegramBotToken',
  WRIT_TELEGRAM_API_ROOT: 'telegramApiRoot',
  WRIT_TELEGRAM_MODE: 'telegramMode',
  WRIT_TELEGRAM_WEBHOOK_URL: 'telegramWebhookUrl',
  WRIT_MAX_BODY_BYTES: 'maxBodyBytes',
  WRIT_LOG_LEVEL: 'logLevel',
  WRIT_METRICS_TOKEN: 'metricsToken',
};

/** What each setting does, for `writ --help`, `writ config check` and the README (one line each). */
export const SETTING_HELP: Record<keyof Config, string> = {
  port: 'listen port (0 = any free port)',
  host: 'listen address',
  data: 'data directory: LevelDB and key files (0700/0600)',
  databaseUrl: 'PostgreSQL instead of LevelDB: the state lives there, the data directory keeps the key files (unset: LevelDB)',
  masterKey: 'PostgreSQL: the key-encryption key (32 bytes, base64 or hex) that seals Writ\'s keys in the database, never stored there (unset: key files)',
  masterKeyFile: 'PostgreSQL: a file holding the master key instead (a mounted secret)',
  policies: 'policy directory (must exist), reloaded on change',
  adminToken: 'admin key, at least 16 characters, stored as an HMAC (default: a generated key, printed once)',
  publicUrl: 'the URL clients use (issuer, discovery); default: from the listen address',
  logOrigin: 'the log\'s origin line, fixed at first start (default writ.local/<random>)',
  tokenTtlDefault: 'token lifetime when a request gives no ttl (s)',
  tokenTtlMax: 'largest ttl accepted (s)',
  approvalTimeout: 'a pending request expires after this (s)',
  sessionTtl: 'a dashboard sign-in lasts this long (s); signing out or revoking the key ends it sooner',
  criticalDelay: 'delay after a critical quorum, cancellable (s)',
  checkpointInterval: 'a checkpoint is signed this often when the log grew (s)',
  commitWindowMs: 'how long an idle log waits to group appends into one fsync; 0 commits at once and batches only behind a commit in flight (ms)',
  policyTimeoutMs: 'an evaluation slower than this is a deny, and the policy worker restarts (ms)',
  webhookRetryBaseMs: 'first retry delay of outgoing webhooks, doubling up to 10 min (ms)',
  opaAgentClassPath: 'OPA decision logs: where in input the agent class is',
  opaDefaultLegalBasis: 'OPA decision logs: the legal basis when result.legal_basis is absent',
  telegramBotToken: 'the bot\'s token from @BotFather (unset: no bot)',
  telegramApiRoot: 'Bot API server',
  telegramMode: 'polling or webhook',
  telegramWebhookUrl: 'webhook mode: the public URL of /api/v1/telegram/webhook',
  maxBodyBytes: 'larger request bodies get 413',
  logLevel: 'the log threshold: fatal, error, warn, info, debug, trace or silent',
  metricsToken: 'a credential that can only scrape GET /metrics, at least 16 characters (default: the admin key only)',
};

/** Settings whose values are never printed (config check, logs). */
export const SECRET_SETTINGS = new Set<keyof Config>(['adminToken', 'telegramBotToken', 'metricsToken', 'databaseUrl', 'masterKey']);

const KEY_TO_ENV = Object.fromEntries(Object.entries(ENV_KEYS).map(([env, key]) => [key, env])) as Record<keyof Config, string>;

/** A setting's name in a configuration file: its variable without WRIT_, in lower case (`approval_timeout_seconds`). */
export const fileKeyOf = (key: keyof Config): string => KEY_TO_ENV[key]!.slice('WRIT_'.length).toLowerCase();
const FILE_KEYS = new Map(Object.values(ENV_KEYS).map((key) => [fileKeyOf(key), key]));

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export type ConfigSource = 'flag' | 'environment' | 'file' | 'default';

/** A configuration file: YAML (what deployment tools around Writ speak), settings by their file names. */
export interface ConfigFile {
  path: string;
  text: string;
}

/**
 * Flags win over the environment, which wins over the configuration file, which wins over the
 * defaults. Every problem is reported at once, named as the user wrote it: `--port`, `WRIT_PORT`,
 * or `writ.yaml:3: port`.
 */
export function resolveConfig(
  flags: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
  file?: ConfigFile,
): { config: Config; sources: Record<string, ConfigSource> } {
  const problems: string[] = [];
  const input: Record<string, unknown> = {};
  const sources: Record<string, ConfigSource> = {};
  const fileLines = new Map<string, number>();
  if (file) {
    for (const { key, value, line } of readConfigFile(file, problems)) {
      input[key] = value;
      sources[key] = 'file';
      fileLines.set(key, line);
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('WRIT_') || value === undefined || value === '') continue;
    const key = ENV_KEYS[name];
    if (key) {
      input[key] = value;
      sources[key] = 'environment';
    } else if (!IGNORED_ENV.has(name)) problems.push(`${name}: unknown setting${suggest(name, Object.keys(ENV_KEYS))}`);
  }
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    input[key] = value;
    sources[key] = 'flag';
  }
  const parsed = ConfigSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? '');
      const label =
        sources[key] === 'flag' || !KEY_TO_ENV[key as keyof Config]
          ? `--${kebab(key)}`
          : sources[key] === 'file'
            ? `${file!.path}:${fileLines.get(key)}: ${fileKeyOf(key as keyof Config)}`
            : KEY_TO_ENV[key as keyof Config];
      problems.push(issue.code === 'unrecognized_keys' ? `unknown setting(s): ${issue.keys.map((k) => `--${kebab(k)}`).join(', ')}` : `${label}: ${issue.message}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const config = parsed.data!;
  for (const key of Object.keys(config)) sources[key] ??= 'default';
  return { config: { ...config, data: path.resolve(config.data), policies: path.resolve(config.policies) }, sources };
}

export function loadConfig(flags: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = process.env, file?: ConfigFile): Config {
  return resolveConfig(flags, env, file).config;
}

/** The settings of a YAML file, each with its line; problems (syntax, unknown keys, nesting) are collected with file:line. */
function readConfigFile(file: ConfigFile, problems: string[]): Array<{ key: keyof Config; value: unknown; line: number }> {
  const lines = new LineCounter();
  const doc = parseDocument(file.text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number | undefined) => `${file.path}:${offset === undefined ? 1 : lines.linePos(offset).line}`;
  for (const error of doc.errors) problems.push(`${at(error.pos[0])}: ${error.message.split('\n')[0]}`);
  if (doc.errors.length) return [];
  if (doc.contents === null) return [];
  if (!isMap(doc.contents)) {
    problems.push(`${at(doc.contents.range?.[0])}: a configuration file is a mapping of settings (port: 8080)`);
    return [];
  }
  const out: Array<{ key: keyof Config; value: unknown; line: number }> = [];
  for (const pair of doc.contents.items) {
    const node = pair.key as Scalar | null;
    const name = node && isScalar(node) ? String(node.value) : '';
    const line = lines.linePos(node?.range?.[0] ?? 0).line;
    const key = FILE_KEYS.get(name);
    if (!key) {
      problems.push(`${file.path}:${line}: unknown setting "${name}"${suggest(name, [...FILE_KEYS.keys()])}`);
      continue;
    }
    if (!isScalar(pair.value)) {
      problems.push(`${file.path}:${line}: ${name} must be a single value`);
      continue;
    }
    if (pair.value.value === null) {
      problems.push(`${file.path}:${line}: ${name} has no value (leave the line out for the default)`);
      continue;
    }
    // Values are taken as the environment gives them: the text as written, checked and converted
    // by the same schema. Not YAML's reading of it, which would turn admin_token: 1234567890123456789
    // into 1234567890123456800, log_origin: 1.50 into 1.5, and port: 0x1F90 into 8080.
    out.push({ key, value: pair.value.source ?? String(pair.value.value), line });
  }
  return out;
}

/** `did you mean …?` for a name close to a known one (edit distance of at most a third of its length). */
export function suggest(name: string, known: Iterable<string>): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? ` (did you mean ${best}?)` : '';
}

/** Edits (insert, delete, replace, swap two neighbours) from a to b: typos are mostly one of these. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** Variables the CLI and SDK read, not settings of the server: known, so not refused as mistyped. */
export const IGNORED_ENV = new Set(['WRIT_URL', 'WRIT_KEY', 'WRIT_API_KEY', 'WRIT_OPA', 'WRIT_CONFIG', 'WRIT_PROFILE']);

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The base URL clients use to reach this server, without a trailing slash. */
export function publicBaseUrl(config: Config, boundPort: number): string {
  if (config.publicUrl) return config.publicUrl.replace(/\/+$/, '');
  // A wildcard listen address is no address a client can use: advertise loopback instead.
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' ? '::1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
}
