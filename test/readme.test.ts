import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ENV_KEYS, IGNORED_ENV } from '../src/config.ts';
import { ensureOpa } from './helpers/opa.ts';
import { README, Shell, blocks, steps } from './helpers/readme.ts';
import { ROOT, eventually, spawnWrit, tempDir } from './helpers/writ.ts';

// The README is a script: every `sh` block runs, in order, in one shell against a fresh server,
// and each `# →` line under a command says the shape of what it prints. A README that drifts
// from the product fails here.

const TOUR_ADMIN_KEY = 'change-me-to-a-long-secret';

/** Values the reader pastes from what an earlier command printed: the latest one seen wins. */
const PASTED: Array<{ placeholder: RegExp; seen: RegExp; wrap?: (v: string) => string }> = [
  { placeholder: /writ_agent_…/g, seen: /writ_agent_[0-9a-f]+\.[A-Za-z0-9_-]+/g },
  { placeholder: /writ_approver_…/g, seen: /writ_approver_[0-9a-f]+\.[A-Za-z0-9_-]+/g },
  { placeholder: /writ_attester_…/g, seen: /writ_attester_[0-9a-f]+\.[A-Za-z0-9_-]+/g },
  { placeholder: /\bperm_…/g, seen: /\bperm_[A-Za-z0-9_-]+/g },
  { placeholder: /\bappr_…/g, seen: /\bappr_[A-Za-z0-9_-]+/g },
  { placeholder: /\bwtk_…/g, seen: /\bwtk_[A-Za-z0-9_-]+/g },
  { placeholder: /\beyJ…/g, seen: /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g },
  { placeholder: /--digest …/g, seen: /(?<="request_digest":"|digest:\s+)[A-Za-z0-9+/]{43}=/g, wrap: (v) => `--digest ${v}` },
];

class Paste {
  private latest = new Map<RegExp, string>();
  saw(output: string): void {
    for (const p of PASTED) {
      const all = output.match(p.seen);
      if (all?.length) this.latest.set(p.placeholder, all.at(-1)!);
    }
  }
  into(command: string, where: string): string {
    let text = command;
    for (const p of PASTED) {
      if (text.search(p.placeholder) < 0) continue;
      const value = this.latest.get(p.placeholder);
      if (value === undefined) throw new Error(`${where}: ${p.placeholder.source} is to be pasted from an earlier output, and none printed one`);
      text = text.replace(p.placeholder, p.wrap ? p.wrap(value) : value);
    }
    return text;
  }
}

const ELLIPSIS = /…/g;

/** A JSON expectation lists keys the answer must have (anywhere) and literal values they must hold. */
function checkJson(expect: string, output: string): string | undefined {
  let answer: unknown;
  try {
    answer = JSON.parse(output);
  } catch {
    return `expected JSON, got:\n${output}`;
  }
  const pairs = new Map<string, unknown[]>();
  const collect = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(collect);
    else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        pairs.set(k, [...(pairs.get(k) ?? []), v]);
        collect(v);
      }
    }
  };
  collect(answer);
  if (!/"error"/.test(expect) && answer && typeof answer === 'object' && 'error' in answer) return `an error where the README shows none:\n${output}`;
  for (const m of expect.matchAll(/"([\w.-]+)"\s*:\s*("(?:[^"\\…]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)?(?=\s*[,}\]…])?/g)) {
    const [, key, literal] = m;
    const values = pairs.get(key!);
    if (!values) return `no "${key}" in:\n${output}`;
    if (literal !== undefined && !/…/.test(literal)) {
      const want = JSON.parse(literal) as unknown;
      if (!values.some((v) => v === want)) return `"${key}" is ${values.map((v) => JSON.stringify(v)).join(' / ')}, the README says ${literal}`;
    }
  }
  return undefined;
}

/** A text expectation is a line pattern: `…` stands for anything, runs of spaces for any spacing. */
function checkText(expect: string, output: string): string | undefined {
  const pattern = expect
    .split(ELLIPSIS)
    .map((part) => part.trim().split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('\\s+'))
    .join('[\\s\\S]*?');
  return new RegExp(pattern).test(output) ? undefined : `expected a line like "${expect}", got:\n${output}`;
}

function check(expect: string, output: string): string | undefined {
  return /^\s*[{[]/.test(expect) ? checkJson(expect, output.trim()) : checkText(expect, output);
}

/** What a reader types, made to reach this server: its port, and the CLI of this checkout. */
function localize(command: string, url: string): string {
  const port = new URL(url).port;
  return command
    .replace(/\b(localhost|127\.0\.0\.1):8080\b/g, `127.0.0.1:${port}`)
    .replace(/\bnpx writ\b/g, `'${process.execPath}' '${path.join(ROOT, 'bin/writ.js')}'`);
}

/** A shell environment like a new user's: no WRIT_ variable, a home and config directory of its own. */
async function userEnv(): Promise<NodeJS.ProcessEnv> {
  const home = await tempDir('writ-readme-home-');
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('WRIT_')) env[name] = value;
  return { ...env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') };
}

const all = blocks();

test('the README opens with the two commands: start with the embedded defaults, run the whole suite', (t) => {
  const first = all[0]!;
  t.is(first.lang, 'sh');
  const commands = steps(first).map((s) => s.command.replace(/\s+#.*$/, '').trim());
  t.deepEqual(commands, ['npm ci && npm start', 'npm ci && npm test']);
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.truthy(pkg.scripts.start);
  t.truthy(pkg.scripts.test);
  // CI runs exactly the README's test command.
  t.regex(fs.readFileSync(path.join(ROOT, '.ci/run'), 'utf8'), /npm test/);
});

test('every sh block of the README runs, in order, against a fresh server and prints what the README shows', async (t) => {
  t.timeout(300_000);
  ensureOpa();
  const data = await tempDir();
  const server = await spawnWrit(data, { WRIT_ADMIN_TOKEN: TOUR_ADMIN_KEY });
  const shell = Shell.start(await userEnv());
  const paste = new Paste();
  try {
    let ran = 0;
    for (const block of all.slice(1).filter((b) => b.lang === 'sh' && !b.runBy)) {
      for (const step of steps(block)) {
        const where = `README line ${step.line}`;
        const command = localize(paste.into(step.command, where), server.url);
        const { code, output } = await shell.run(command);
        t.is(code, 0, `${where}: \`${step.command}\` exited ${code}:\n${output}`);
        for (const expect of step.expect) {
          const problem = check(localize(expect, server.url), output);
          t.is(problem, undefined, `${where}: \`${step.command}\`: ${problem}`);
        }
        paste.saw(output);
        ran++;
      }
    }
    t.true(ran > 10, `only ${ran} README commands found`);
  } finally {
    shell.close();
    server.child.kill('SIGTERM');
    await server.exited;
  }
});

test('the configuration table lists every WRIT_ setting, and the README names no WRIT_ variable that does not exist', (t) => {
  const table = README.slice(README.indexOf('## Configuration'), README.indexOf('\n## ', README.indexOf('## Configuration') + 1));
  for (const name of Object.keys(ENV_KEYS)) t.regex(table, new RegExp(`\\| \`${name}\` \\|`), `${name} has a row`);
  for (const [name] of README.matchAll(/\bWRIT_[A-Z][A-Z_]*[A-Z]\b/g)) t.true(name in ENV_KEYS || IGNORED_ENV.has(name), `${name} is a real variable`);
});

test('a block another test runs names a test file that runs it', (t) => {
  const delegated = all.filter((b) => b.runBy);
  for (const block of delegated) {
    t.is(block.lang, 'sh', `README line ${block.line}`);
    const file = path.join(ROOT, block.runBy!);
    t.true(fs.existsSync(file), `README line ${block.line}: ${block.runBy} exists`);
    t.regex(fs.readFileSync(file, 'utf8'), new RegExp(`blocksRunBy\\('${block.runBy!.replace(/[.]/g, '\\.')}'\\)`), `${block.runBy} runs the README's blocks`);
  }
});

test('the README shows the banner a server started with WRIT_ADMIN_TOKEN prints, line for line', async (t) => {
  const shown = all.find((b) => b.lang === 'console' && /^\$ .*npm start/m.test(b.body));
  t.truthy(shown, 'a console block of `npm start`');
  const server = await spawnWrit(await tempDir(), { WRIT_ADMIN_TOKEN: TOUR_ADMIN_KEY });
  await eventually(() => server.output().includes('writ agents create'), 'the whole banner');
  server.child.kill('SIGTERM');
  await server.exited;
  // Paths, names and keys differ by machine; each line's words before the first value must not.
  const shape = (text: string) =>
    text
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('$ ') && !/^\{/.test(l))
      .map((l) => l.replace(/https?:\/\/\S+/g, 'URL').replace(/(^\s*\w+:)\s+.*$/, '$1').replace(/\s+/g, ' ').trim());
  // From its first line on, leaving out log lines the server writes meanwhile.
  const printed = server.output();
  const banner = printed
    .slice(printed.indexOf('Writ is listening'))
    .split('\n')
    .filter((l) => !/^(\{|\d{4}-\d\d-\d\dT|\[\d\d:\d\d)/.test(l))
    .join('\n');
  const want = shape(shown!.body);
  t.deepEqual(shape(banner).slice(0, want.length), want);
});

test("the banner's Next: lines work as printed on a first start, with the key it made", async (t) => {
  const server = await spawnWrit(await tempDir(), { WRIT_ADMIN_TOKEN: '' });
  const shell = Shell.start(await userEnv());
  try {
    const printed = await eventually(() => (/npx writ agents create/.test(server.output()) ? server.output() : undefined), 'the whole banner');
    const next = printed.slice(printed.indexOf('Next:')).split('\n').slice(1).filter((l) => /^\s+npx writ /.test(l));
    t.is(next.length, 2, printed);
    let last = '';
    for (const line of next) {
      const { code, output } = await shell.run(localize(line.trim(), server.url));
      t.is(code, 0, `${line.trim()}:\n${output}`);
      last = output;
    }
    t.regex(last, /agent agt_\S+: my-agent \(class default, trust tier T2\)/);
    t.regex(last, /key:\s+writ_agent_/);
  } finally {
    shell.close();
    server.child.kill('SIGTERM');
    await server.exited;
  }
});
