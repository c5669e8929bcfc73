import { z } from 'zod';
import path from 'node:path';
import { LEGAL_BASES } from './domain/oversight.ts';

/**
 * Configuration is parsed once, from flags then environment then defaults, and checked before
 * anything starts; every bad or unknown key is reported at once with the name a user typed.
 */
const seconds = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const ConfigSchema = z
  .object({
    port: z.coerce.number().int().min(0).max(65535).default(8080),
    host: z.string().min(1).default('127.0.0.1'),
    data: z.string().min(1).default('./data'),
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
    criticalDelay: seconds(0, 86_400).default(300),
    checkpointInterval: seconds(1, 86_400).default(900),
    policyTimeoutMs: z.coerce.number().int().min(1).max(10_000).default(250),
    commitWindowMs: z.coerce.number().int().min(0).max(100).default(2),
    maxBodyBytes: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024),
    opaAgentClassPath: z.string().max(200).default('agent.class'),
    opaDefaultLegalBasis: z.enum(LEGAL_BASES).default('legitimate_interests'),
    webhookRetryBaseMs: z.coerce.number().int().min(1).max(600_000).default(1000),
    telegramBotToken: z.string().regex(/^\d+:[\w-]+$/, 'must look like 123456:ABC-DEF… (from @BotFather)').optional(),
    telegramApiRoot: z.url().default('https://api.telegram.org'),
    telegramMode: z.enum(['polling', 'webhook']).default('polling'),
    telegramWebhookUrl: z.url().optional(),
    quiet: z.boolean().default(false),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    metricsToken: z.string().min(16, 'must be at least 16 characters').optional(),
  })
  .strict()
  .refine((c) => c.tokenTtlDefault <= c.tokenTtlMax, {
    path: ['tokenTtlDefault'],
    message: 'must not exceed tokenTtlMax (WRIT_TOKEN_TTL_MAX)',
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
  WRIT_POLICIES: 'policies',
  WRIT_ADMIN_TOKEN: 'adminToken',
  WRIT_PUBLIC_URL: 'publicUrl',
  WRIT_LOG_ORIGIN: 'logOrigin',
  WRIT_TOKEN_TTL_DEFAULT: 'tokenTtlDefault',
  WRIT_TOKEN_TTL_MAX: 'tokenTtlMax',
  WRIT_APPROVAL_TIMEOUT_SECONDS: 'approvalTimeout',
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

const KEY_TO_ENV = Object.fromEntries(Object.entries(ENV_KEYS).map(([env, key]) => [key, env]));

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Flags win over the environment, which wins over defaults. */
export function loadConfig(
  flags: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const problems: string[] = [];
  const input: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('WRIT_') || value === undefined || value === '') continue;
    const key = ENV_KEYS[name];
    if (key) input[key] = value;
    else if (!IGNORED_ENV.has(name)) problems.push(`${name}: unknown setting`);
  }
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) input[key] = value;
  const parsed = ConfigSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0] ?? '');
      const label = KEY_TO_ENV[key] && !(key in flags) ? KEY_TO_ENV[key] : `--${kebab(key)}`;
      problems.push(
        issue.code === 'unrecognized_keys'
          ? `unknown setting(s): ${issue.keys.map((k) => `--${kebab(k)}`).join(', ')}`
          : `${label}: ${issue.message}`,
      );
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const config = parsed.data!;
  return { ...config, data: path.resolve(config.data), policies: path.resolve(config.policies) };
}

/** Variables read by later features or by the tooling, not by the server's config. */
const IGNORED_ENV = new Set(['WRIT_URL', 'WRIT_API_KEY', 'WRIT_OPA']);

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
