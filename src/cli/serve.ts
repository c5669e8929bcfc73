import { loadConfig } from '../config.ts';
import { createLogger, reporter } from '../ops/logger.ts';
import { redactUrl } from '../store/postgres.ts';
import { startServer } from '../writ.ts';
import { parseFlags } from './args.ts';
import { SERVE_FLAGS, configFile, serveFlags } from './config-check.ts';

export async function serve(args: string[]): Promise<number> {
  const { values } = parseFlags(args, SERVE_FLAGS, { max: 0 });
  const config = loadConfig(serveFlags(values), process.env, await configFile(values.config));
  const logger = createLogger(config.logLevel);
  const say = reporter(logger);
  // Listening for signals from the very start: one that comes while Writ is starting stops it as
  // soon as it is up, instead of killing it halfway through opening its data directory.
  let signalled: string | undefined;
  let onSignal: ((signal: string) => void) | undefined;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      if (onSignal) return onSignal(signal);
      signalled = signal;
    });
  }
  const server = await startServer(config, say, { logger });
  const { writ } = server;
  const database = config.databaseUrl ? redactUrl(config.databaseUrl) : undefined;
  logger.info({ url: server.url, data: config.data, ...(database ? { database } : {}), policy_set: writ.policies.current.hash, log_size: writ.log.size }, 'listening');
  const lines = [
    `Writ is listening on ${server.url}`,
    ...(database
      ? [`  database:  ${database} (PostgreSQL)`, `  keys:      ${writ.vault.kind === 'database' ? 'sealed in the database under the master key' : config.data}`]
      : [`  data:      ${config.data}`]),
    `  policies:  ${config.policies} (${writ.policies.current.files.join(', ') || 'none: every request is denied'})`,
    `  log:       ${writ.log.origin}, ${writ.log.size} entries`,
    `  verifier:  ${writ.logVerifierKey}`,
    `  discovery: ${writ.baseUrl()}/.well-known/openid-configuration`,
    `  dashboard: ${writ.baseUrl()}/ (sign in with the admin key or an approver key)`,
  ];
  const next = (key: string) => [
    '',
    'Next: keep the admin key in a profile, then register an agent (trust tier T2: the shipped policies let it move money, with an approval):',
    `  npx writ login --url ${writ.baseUrl()} --key ${key}`,
    '  npx writ agents create my-agent --trust-tier T2',
  ];
  if (server.adminKey) {
    lines.push('', 'Admin API key (shown once, stored only as a hash; keep it somewhere safe):', `  ${server.adminKey}`, ...next(server.adminKey));
  } else if (config.adminToken) {
    lines.push('  admin:     the key in WRIT_ADMIN_TOKEN', ...next('"$WRIT_ADMIN_TOKEN"'));
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  // Only now, with the key on the console, does the next start keep it instead of making another.
  if (server.adminKey) await server.adminKeyShown();

  await new Promise<void>((resolve) => {
    onSignal = (signal: string) => {
      say(`${signal}: finishing in-flight requests, flushing the log`, 'info');
      void server.close().then(resolve, (err) => {
        say(`shutdown failed: ${(err as Error).message}`, 'error');
        resolve();
      });
    };
    if (signalled) onSignal(signalled);
  });
  say('stopped', 'info');
  return 0;
}
