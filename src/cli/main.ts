import { ConfigError } from '../config.ts';
import { StartupError } from '../data-dir.ts';
import { UsageError } from './args.ts';
import { PolicyLoadError } from '../policy/policies.ts';
import { RestoreError } from '../backup.ts';
import { backup, restore } from './backup.ts';
import { keysRotate } from './keys.ts';
import { logVerify } from './log-verify.ts';
import { policy } from './policy.ts';
import { serve } from './serve.ts';
import { verify } from './verify.ts';

const USAGE = `writ — authorization for AI agents

usage:
  writ serve [--port 8080] [--host 127.0.0.1] [--data ./data] [--policies ./policies]
  writ log verify [--data ./data]
  writ backup --out FILE (--url http://127.0.0.1:8080 [--admin-key KEY] | --data ./data)
  writ restore FILE --data NEWDIR            into a new directory; the whole log is verified first
  writ keys rotate [--data ./data] | --url http://127.0.0.1:8080 (with WRIT_ADMIN_TOKEN or --admin-key)
  writ verify <receipt | file | -> --jwks <url | file> [--issuer URL] [--check-expiry]
  writ policy check [--policies DIR]          parse, validate, compile; file:line:col on error
  writ policy test [--policies DIR] [FILE…]   run *.test.json cases against the set
  writ policy fmt [--policies DIR] [--check]  format Cedar (cedar-wasm) and Rego (opa fmt)
  writ policy eval --request FILE [--policies DIR]

environment: WRIT_PORT, WRIT_HOST, WRIT_DATA, WRIT_POLICIES, WRIT_ADMIN_TOKEN, WRIT_PUBLIC_URL,
  WRIT_TOKEN_TTL_DEFAULT, WRIT_TOKEN_TTL_MAX, WRIT_APPROVAL_TIMEOUT_SECONDS,
  WRIT_CRITICAL_DELAY_SECONDS, WRIT_CHECKPOINT_INTERVAL, WRIT_LOG_ORIGIN, WRIT_POLICY_TIMEOUT_MS,
  WRIT_OPA (an opa binary; default adapters/opa/bin/opa, built by npm run build:opa)
`;

async function main(argv: string[]): Promise<number> {
  const [command, sub] = argv;
  const rest = argv.slice(command === 'log' || command === 'keys' ? 2 : 1);
  switch (command === 'log' || command === 'keys' ? `${command} ${sub}` : command) {
    case 'serve':
      return serve(rest);
    case 'log verify':
      return logVerify(rest);
    case 'keys rotate':
      return keysRotate(rest);
    case 'verify':
      return verify(rest);
    case 'backup':
      return backup(rest);
    case 'restore':
      return restore(rest);
    case 'policy':
      return policy(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${argv.slice(0, 2).join(' ')}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) process.stderr.write(`writ: ${err.message}\n\n${USAGE}`);
    else if (err instanceof ConfigError || err instanceof PolicyLoadError || err instanceof StartupError || err instanceof RestoreError) process.stderr.write(`writ: ${err.message}\n`);
    else process.stderr.write(`writ: ${(err as Error).message ?? String(err)}\n`);
    // Whatever a failed command opened has been closed; exit now rather than wait on stray handles.
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
