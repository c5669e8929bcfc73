import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type ConfigInput } from '../../src/config.ts';
import { openApiDocument } from '../../src/http/openapi.ts';
import { ROUTES } from '../../src/http/routes/index.ts';
import { startServer, type RunningServer, type ServerHooks } from '../../src/writ.ts';
import { Contract, type Exchange } from './contract.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ADMIN = 'test-admin-token-0123456789abcdef';

/** Temporary directories, removed when the test file's process exits. */
const temporary = new Set<string>();
process.once('exit', () => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});
export async function tempDir(prefix = 'writ-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  temporary.add(dir);
  return dir;
}

export interface TestWrit {
  url: string;
  data: string;
  server: RunningServer;
  call: Caller;
  admin: Caller;
  close(): Promise<void>;
}

export interface Answer<T = any> {
  status: number;
  body: T;
  headers: Headers;
  text: string;
}

export type Caller = <T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Answer<T>>;

/** The published contract; every answer a test gets is checked against it. */
let published: Contract | undefined;
const contract = () => (published ??= new Contract(openApiDocument(ROUTES, 'http://127.0.0.1') as never));
/** Writ servers of other processes, whose answers the caller checks. */
const spawnedWrit = new Set<string>();

/**
 * Starts the real server on an ephemeral port over a real LevelDB in a temp dir. Every answer it
 * gives is checked against /openapi.json; `close` fails if any did not match.
 */
export async function startWrit(options: { data?: string; policies?: string; config?: Partial<ConfigInput>; hooks?: ServerHooks } = {}): Promise<TestWrit> {
  const data = options.data ?? (await tempDir());
  const config = loadConfig(
    // A generous policy budget: these tests are about behaviour, and must hold on a loaded machine
    // (the budget itself is tested with its own small value).
    { port: 0, data, policies: options.policies ?? path.join(ROOT, 'policies'), adminToken: ADMIN, policyTimeoutMs: 10_000, ...options.config },
    {},
  );
  const violations: string[] = [];
  const observe = (exchange: Exchange) => {
    options.hooks?.observe?.(exchange);
    try {
      const problem = contract().check(exchange);
      if (problem) violations.push(problem);
    } catch (err) {
      violations.push(`${exchange.method} ${exchange.path}: the contract check failed: ${(err as Error).message}`);
    }
  };
  const server = await startServer(config, () => {}, { ...options.hooks, observe });
  const url = server.url;
  return {
    url,
    data,
    server,
    call: caller(url),
    admin: caller(url, ADMIN),
    close: async () => {
      await server.close();
      if (violations.length) throw new Error(`answers that do not match /openapi.json:\n  ${[...new Set(violations)].join('\n  ')}`);
    },
  };
}

export function caller(url: string, key?: string): Caller {
  return async (method, path, body, headers = {}) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    // A Writ in another process (spawnWrit) is checked here, on the client's side.
    if (spawnedWrit.has(url)) {
      const type = text === '' ? '' : (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
      const problem = contract().check({ method, path: new URL(path, url).pathname, status: res.status, type, body: type === 'application/json' ? parsed : text, headers: Object.fromEntries(res.headers) });
      if (problem) throw new Error(`an answer that does not match /openapi.json: ${problem}`);
    }
    return { status: res.status, body: parsed as any, headers: res.headers, text };
  };
}

/** Registers an agent and returns a caller with its key. */
export async function agent(w: TestWrit, input: { name?: string; class?: string; trust_tier?: string } = {}) {
  const res = await w.admin('POST', '/api/v1/agents', { name: input.name ?? 'agent', ...input });
  if (res.status !== 201) throw new Error(`agent: ${res.status} ${res.text}`);
  return { id: res.body.id as string, key: res.body.api_key as string, call: caller(w.url, res.body.api_key) };
}

export async function approver(w: TestWrit, name = 'approver') {
  const res = await w.admin('POST', '/api/v1/approvers', { name });
  if (res.status !== 201) throw new Error(`approver: ${res.status} ${res.text}`);
  return { id: res.body.id as string, key: res.body.api_key as string, call: caller(w.url, res.body.api_key) };
}

const pauseFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it returns something truthy, and returns that. Tests wait on conditions
 * like this, never on fixed sleeps: the suite must pass on a loaded machine.
 */
export async function eventually<T>(check: () => T | Promise<T>, what: string, ms = 15_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (let pause = 10; ; pause = Math.min(pause * 2, 100)) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await pauseFor(pause);
  }
}

/** Servers a test started and might not stop when it fails: stopped when the test file exits. */
const spawned = new Set<import('node:child_process').ChildProcess>();
process.once('exit', () => {
  for (const child of spawned) child.kill('SIGKILL');
});

/** Runs `writ serve` as its own process on a free port, as a user would, and waits until it answers. */
export async function spawnWrit(
  data: string,
  env: Record<string, string | undefined> = {},
  { root = ROOT, bannerMs = 30_000, spawned: onSpawn }: { root?: string; bannerMs?: number; spawned?: (output: () => string, child: import('node:child_process').ChildProcess) => void } = {},
) {
  const { spawn } = await import('node:child_process');
  const policies = env.WRIT_POLICIES ? [] : ['--policies', path.join(ROOT, 'policies')];
  const child = spawn(process.execPath, [path.join(root, 'bin/writ.js'), 'serve', '--port', '0', '--data', data, ...policies], {
    cwd: root,
    env: { ...process.env, WRIT_ADMIN_TOKEN: ADMIN, WRIT_POLICY_TIMEOUT_MS: '10000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  // What it prints before it listens (a standby's wait) is the caller's to watch.
  onSpawn?.(() => output, child);
  let code: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (c) => {
      spawned.delete(child);
      code = c;
      resolve(c);
    }),
  );
  // Up once it has printed its banner, which names the port it listens on.
  const url = await eventually(() => {
    if (code !== undefined) throw new Error(`server exited with ${code} before it listened:\n${output}`);
    return /Writ is listening on (http:\/\/\S+)/.exec(output)?.[1];
  }, `the server's banner:\n${output}`, bannerMs).catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
  spawnedWrit.add(url);
  void exited.then(() => spawnedWrit.delete(url));
  return { child, url, exited, output: () => output };
}

/** Runs the `writ` CLI as a user would; resolves with its exit code and everything it printed. */
export function writCli(...args: string[]): Promise<{ code: number; out: string }> {
  return writCliWith({}, ...args);
}

/** The same, with more environment (an empty value removes a variable). */
export function writCliWith(env: Record<string, string>, ...args: string[]): Promise<{ code: number; out: string }> {
  return writCliFed(undefined, env, ...args);
}

/** The same, with `input` on its standard input (none: an empty one). */
export async function writCliFed(input: string | undefined, env: Record<string, string>, ...args: string[]): Promise<{ code: number; out: string }> {
  const { execFile } = await import('node:child_process');
  const merged: Record<string, string | undefined> = { ...process.env, WRIT_ADMIN_TOKEN: ADMIN, ...env };
  for (const [name, value] of Object.entries(env)) if (value === '') delete merged[name];
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [path.join(ROOT, 'bin/writ.js'), ...args], { env: merged }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
    child.stdin?.end(input ?? '');
  });
}
