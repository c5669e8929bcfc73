import { loadConfig } from '../config.ts';
import { createLogger, reporter } from '../ops/logger.ts';
import { startServer } from '../writ.ts';
import { UsageError, parseFlags } from './args.ts';

export async function serve(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    port: { type: 'string' },
    host: { type: 'string' },
    data: { type: 'string' },
    policies: { type: 'string' },
  });
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
  const config = loadConfig(values);
  const logger = createLogger(config.logLevel);
  const say = reporter(logger);
  // Listening for signals from the very start: one that comes while Writ is starting stops it as
  // soon as it is up, instead of killing it halfway through opening its data directory.
  let signalled: string | undefined;
  let onSignal: ((signal: string) => void) | undefined;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => (onSignal ? onSignal(signal) : (signalled = signal)));
  }
  const server = await startServer(config, say, { logger });
  const { writ } = server;
  logger.info({ url: server.url, data: config.data, policy_set: writ.policies.current.hash, log_size: writ.log.size }, 'listening');
  const lines = [
    `Writ is listening on ${server.url}`,
    `  data:      ${config.data}`,
    `  policies:  ${config.policies} (${writ.policies.current.files.join(', ') || 'none: every request is denied'})`,
    `  log:       ${writ.log.origin}, ${writ.log.size} entries`,
    `  verifier:  ${writ.logVerifierKey}`,
    `  discovery: ${writ.baseUrl()}/.well-known/openid-configuration`,
  ];
  if (server.adminKey) {
    lines.push(
      '',
      'Admin API key (shown once, stored only as a hash; keep it somewhere safe):',
      `  ${server.adminKey}`,
      '',
      'Next: register an agent',
      `  curl -s -X POST ${writ.baseUrl()}/api/v1/agents -H "Authorization: Bearer <admin key>" \\`,
      `    -H 'Content-Type: application/json' -d '{"name":"my-agent"}'`,
    );
  } else if (config.adminToken) {
    lines.push('  admin:     the key in WRIT_ADMIN_TOKEN');
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  // Only now, with the key on the console, does the next start keep it instead of making another.
  if (server.adminKey) await server.adminKeyShown();

  await new Promise<void>((resolve) => {
    onSignal = (signal: string) => {
      say(`${signal}: finishing in-flight requests, flushing the log`);
      void server.close().then(resolve, (err) => {
        say(`shutdown failed: ${(err as Error).message}`);
        resolve();
      });
    };
    if (signalled) onSignal(signalled);
  });
  say('stopped');
  return 0;
}
