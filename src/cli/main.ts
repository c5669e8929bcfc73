import { createRequire } from 'node:module';
import { ConfigError, ConfigSchema, ENV_KEYS, SETTING_HELP, suggest } from '../config.ts';
import { StartupError } from '../data-dir.ts';
import { RestoreError } from '../backup.ts';
import { PolicyLoadError } from '../policy/policies.ts';
import { ADMIN_COMMANDS, type Command } from './admin.ts';
import { UsageError } from './args.ts';
import { backup, restore } from './backup.ts';
import { configCheck } from './config-check.ts';
import { keysRotate } from './keys.ts';
import { logProof } from './log-proof.ts';
import { logVerify } from './log-verify.ts';
import { migrate } from './migrate.ts';
import { POLICY_HELP, policy } from './policy.ts';
import { login, logout } from './profile.ts';
import { ProfileError, RemoteError, UnreachableError } from './remote.ts';
import { serve } from './serve.ts';
import { verify } from './verify.ts';

/**
 * `writ`: one table of commands (a command is one or two words: `serve`, `agents create`), each
 * with its usage and a line saying what it does. `writ --help`, `writ <group> --help` and
 * `writ <command> --help` are drawn from it, and so is "did you mean" for a mistyped command.
 *
 * Exit codes: 0 done; 1 it failed (a check did not pass, the server refused); 2 the command was
 * called wrongly; 3 the server could not be reached.
 */
const REMOTE = '[--url URL] [--key KEY] [--profile NAME] [--json]';
const local = (name: string, usage: string, summary: string, run: (args: string[]) => Promise<number>): Command => ({ name, usage: `writ ${usage}`, summary, run });

/** `writ policy <sub>`: its usage and flags are the section of POLICY_HELP that names it. */
function policyCommand(sub: string, summary: string): Command {
  const sections = POLICY_HELP.split(/\n(?=  writ policy )/);
  const section = sections.find((s) => s.startsWith(`  writ policy ${sub} `));
  if (!section) throw new Error(`POLICY_HELP has no section for policy ${sub}`);
  const [first, ...more] = section.trimEnd().split('\n');
  const continued = more.findIndex((l) => !/^\s{8,}\[/.test(l));
  const usageLines = [first!, ...more.slice(0, continued < 0 ? more.length : continued)].map((l) => l.trim());
  const help = more.slice(continued < 0 ? more.length : continued).map((l) => l.replace(/^ {6}/, '')).join('\n');
  const dir = /\((DIR: [^)]*)\)/.exec(sections[0]!)?.[1];
  return { name: `policy ${sub}`, usage: usageLines.join(' ').replace(/\s+/g, ' '), summary, help: `${help}${dir ? `\n${dir}` : ''}`, run: (a) => policy([sub, ...a]) };
}

const COMMANDS: Command[] = [
  local('serve', 'serve [--config writ.yaml] [--port 8080] [--host 127.0.0.1] [--data ./data] [--policies ./policies]', 'Run the server (settings: flags > WRIT_* > the --config file > defaults)', serve),
  local('config check', 'config check [--config writ.yaml] [--port …] [--host …] [--data …] [--policies …] [--json]', 'Print the configuration serve would use, where each value comes from, secrets redacted', configCheck),
  local('log verify', 'log verify [--data ./data] [--database URL] [--json]', 'Re-derive every hash and check every checkpoint (LevelDB: of a stopped server; PostgreSQL: also while it serves); names the first bad index', logVerify),
  local('log proof', `log proof INDEX [--verify] [--log-key VERIFIER_KEY] ${REMOTE}`, "An entry's inclusion proof; --verify checks it here, offline, against the log key", logProof),
  local('keys rotate', `keys rotate [--data ./data] | ${REMOTE}`, 'A new receipt key (the old one stays in the JWKS for 90 days); logged', keysRotate),
  local('verify', 'verify RECEIPT|FILE|- --jwks URL|FILE [--issuer URL] [--audience AUD] [--check-expiry] [--json]', 'Check a receipt offline and print its claims', verify),
  local('backup', `backup --out FILE (--data ./data | ${REMOTE})`, 'A consistent snapshot of a live server (or a stopped one\'s directory); it holds the keys', backup),
  local('restore', 'restore FILE --data NEWDIR [--json]', 'Restore a backup into a new directory, verifying the whole log first', restore),
  local('migrate', 'migrate --from-data DIR --to postgres://… [--json]', 'Move a stopped embedded instance into an empty PostgreSQL database; the log is verified before and after', migrate),
  policyCommand('check', 'Parse, validate against the Cedar schema and compile Rego, as steps; file:line:col for every problem'),
  policyCommand('test', 'Run *.test.json cases against the policy set: text, JSON or JUnit, traces, coverage'),
  policyCommand('fmt', 'Format Cedar and Rego in place, or list what would change'),
  policyCommand('eval', 'Decide one request: decision, tier, determining policies, each engine'),
  local('login', 'login --key KEY|- [--url http://127.0.0.1:8080] [--profile NAME]', 'Keep a server URL and key as a profile (~/.config/writ/profiles.json, mode 0600); --key - reads it from standard input', login),
  local('logout', 'logout [--profile NAME]', 'Forget a profile', logout),
  ...ADMIN_COMMANDS,
];

const GROUPS: Record<string, string> = {
  config: 'the server configuration',
  log: 'the tamper-evident log',
  keys: 'receipt keys',
  policy: 'the policy author\'s toolchain',
  agents: 'agents (admin)',
  approvers: 'approvers (admin)',
  attesters: 'attesters, the external engines of oversight mode (admin)',
  'resource-servers': 'resource servers, which spend tokens (admin)',
  approvals: 'the approval queue (approvers)',
  permissions: 'permissions (agents see their own, admins any)',
  sessions: 'dashboard sign-ins (admin)',
};

/** This package's version: the nearest package.json above this file (dist/src/cli or src/cli). */
function version(): string {
  const require = createRequire(import.meta.url);
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = require(up) as { name?: string; version: string };
      if (pkg.name === 'writ') return pkg.version;
    } catch {
      // not there
    }
  }
  return 'unknown';
}

/** Every WRIT_* variable, drawn from the configuration schema so this list cannot fall behind. */
function environmentHelp(): string {
  const defaults = ConfigSchema.safeParse({}).data as Record<string, unknown> | undefined;
  const rows = Object.entries(ENV_KEYS).map(([env, key]) => {
    const fallback = defaults?.[key];
    return `  ${env.padEnd(32)} ${SETTING_HELP[key] ?? ''}${fallback !== undefined ? ` (default ${String(fallback)})` : ''}`;
  });
  const tools = [
    '  WRIT_CONFIG                      a configuration file for serve and config check (as --config)',
    '  WRIT_URL, WRIT_KEY, WRIT_PROFILE the server, key and profile for the commands that call a server',
    '  WRIT_OPA                         the opa binary that compiles Rego (default adapters/opa/bin/opa)',
  ];
  return `environment (a configuration file takes the same names in lower case without WRIT_: port, approval_timeout_seconds):\n${[...rows, ...tools].join('\n')}\n`;
}

function usage(): string {
  const groups = new Map<string, Command[]>();
  for (const c of COMMANDS) {
    const group = c.name.includes(' ') ? c.name.split(' ')[0]! : '';
    groups.set(group, [...(groups.get(group) ?? []), c]);
  }
  const lines = [`writ ${version()} — authorization for AI agents`, '', 'usage: writ <command> [flags]   (writ <command> --help for its flags)', ''];
  for (const [group, commands] of groups) {
    if (group) lines.push(`${group}: ${GROUPS[group] ?? ''}`);
    for (const c of commands) lines.push(`  ${c.name.padEnd(24)} ${c.summary}`);
    lines.push('');
  }
  lines.push('exit codes: 0 done; 1 failed (a check, or the server refused); 2 called wrongly; 3 the server could not be reached', '');
  return `${lines.join('\n')}${environmentHelp()}`;
}

const commandHelp = (c: Command) => `usage: ${c.usage}\n\n${c.help ?? `${c.summary}.`}\n`;
const groupHelp = (group: string) =>
  `${group}: ${GROUPS[group] ?? ''}\n\n${COMMANDS.filter((c) => c.name.startsWith(`${group} `))
    .map((c) => `  ${c.usage}\n      ${c.summary}`)
    .join('\n')}\n`;

async function main(argv: string[]): Promise<number> {
  const [first, second] = argv;
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    process.stdout.write(usage());
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-v' || first === 'version') {
    process.stdout.write(`writ ${version()}\n`);
    return 0;
  }
  const two = COMMANDS.find((c) => c.name === `${first} ${second}`);
  const one = COMMANDS.find((c) => c.name === first);
  const command = two ?? one;
  const rest = argv.slice(two ? 2 : 1);
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (!command) {
    if (first in GROUPS) {
      if (second === undefined || second === '--help' || second === '-h') {
        process.stdout.write(groupHelp(first));
        return second === undefined ? 2 : 0;
      }
      const subs = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.split(' ')[1]!);
      throw new UsageError(`unknown command "${first} ${second}"${suggest(second, subs)}; ${first} has: ${subs.join(', ')}`);
    }
    const names = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]!))];
    throw new UsageError(`unknown command "${first}"${suggest(first, names)}`);
  }
  if (wantsHelp) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  current = command;
  return command.run(rest);
}

/** The command that was running, for the usage line printed with a usage error. */
let current: Command | undefined;

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    let code = 1;
    if (err instanceof UsageError) {
      process.stderr.write(`writ: ${err.message}\n${current ? `usage: ${current.usage}\n` : 'run writ --help for the commands\n'}`);
      code = 2;
    } else if (err instanceof UnreachableError) {
      process.stderr.write(`writ: ${err.message}\n`);
      code = 3;
    } else if (err instanceof RemoteError || err instanceof ProfileError || err instanceof ConfigError || err instanceof PolicyLoadError || err instanceof StartupError || err instanceof RestoreError) {
      process.stderr.write(`writ: ${err.message}\n`);
    } else {
      process.stderr.write(`writ: ${(err as Error).message ?? String(err)}\n`);
    }
    // Whatever a failed command opened has been closed; exit now rather than wait on stray handles.
    process.exit(code);
  },
);
