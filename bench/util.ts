import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import { openSync, closeSync, writeSync, fdatasyncSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

/** What the bench phases share: a spawned server, the load generator, and the machine's own figures. */

export const pct = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : String(n));

/** Every figure of the run, by name, for `--json`. */
export const figures: Record<string, number | string> = {};
export function figure(name: string, value: number | string): void {
  figures[name] = typeof value === 'number' && Number.isFinite(value) ? Math.round(value * 1000) / 1000 : value;
}

export function request(agent: http.Agent, url: string, method: string, p: string, key?: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = {};
    if (key) headers.authorization = `Bearer ${key}`;
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
    const req = http.request(new URL(p, url), { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Resident memory in MB: all of it, its peak, and the part that is the process's own (heap, stacks) rather than mapped files. */
export async function readRss(pid: number): Promise<{ rss: number; peak: number; anon: number }> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const mb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
  return { rss: mb('VmRSS'), peak: mb('VmHWM'), anon: mb('RssAnon') };
}

/** CPU seconds (user + system) a process has used so far, all its threads. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export interface Server {
  url: string;
  pid: number;
  agent: http.Agent;
  stop(): Promise<void>;
}

/** `writ serve` on port 0 (its URL read from its banner), with the access log off; `/healthz` is polled every `pollMs` (20) until it answers. */
export async function spawnWrit(root: string, options: { data: string; policies: string; env?: Record<string, string>; pollMs?: number }): Promise<Server & { startedMs: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [path.join(root, 'bin/writ.js'), 'serve', '--port', '0', '--data', options.data, '--policies', options.policies], {
    env: { ...process.env, WRIT_LOG_LEVEL: 'silent', ...options.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const found = /Writ is listening on (http:\/\/\S+)/.exec(out);
      if (found) resolve(found[1]!);
    });
    child.once('exit', (code) => reject(new Error(`writ exited with ${code}: ${out}`)));
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  await waitUp(agent, url, '/healthz', options.pollMs);
  return { url, pid: child.pid!, agent, startedMs: performance.now() - started, stop: () => stop(child, agent) };
}

export async function stop(child: ChildProcess, agent?: http.Agent): Promise<void> {
  agent?.destroy();
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

export async function waitUp(agent: http.Agent, url: string, p: string, pollMs = 20): Promise<void> {
  const started = performance.now();
  for (;;) {
    try {
      if ((await request(agent, url, 'GET', p)).status === 200) return;
    } catch {
      if (performance.now() - started > 120_000) throw new Error(`nothing answered at ${url}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * fdatasync of 4 KiB appended to a file in `dir`: the floor of one durable answer on that
 * filesystem (a LevelDB sync write is one such append to its write-ahead log).
 */
export function fsyncFloor(dir: string, rounds = 2000): { p50: number; p99: number } {
  const file = path.join(dir, `fsync-probe-${process.pid}`);
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(4096, 7);
  const samples: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      writeSync(fd, block);
      fdatasyncSync(fd);
      if (i >= 100) samples.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
  samples.sort((a, b) => a - b);
  return { p50: pct(samples, 50), p99: pct(samples, 99) };
}

/** wrk, from the PATH or installed from Debian's packages when missing and we may (root, apt-get). */
export async function ensureWrk(): Promise<string | undefined> {
  const which = () => spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).stdout.trim() || undefined;
  const found = which();
  if (found) return found;
  if (process.getuid?.() !== 0 || !spawnSync('sh', ['-c', 'command -v apt-get']).stdout.length) return undefined;
  console.log('installing wrk (apt-get install -y wrk) for the load phases…');
  await new Promise<void>((resolve) => execFile('sh', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1)'], () => resolve()));
  return which();
}

export interface Load {
  perSecond: number;
  p50: number;
  p99: number;
  count: number;
  /** Answers that were not 2xx, and socket errors. */
  failures: number;
  /** CPU the load generator itself used, as a share of one core. */
  generatorCpu: number;
  /** CPU the server used per answer, in µs (all its threads). */
  serverCpuUs?: number;
}

const toMs = (value: string): number => {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value);
  if (!m) return NaN;
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
};

/**
 * wrk against `url` for `seconds`, `connections` keep-alive connections over `threads` threads,
 * each request made by the Lua `script` (environment in `env`). The server's CPU is read from
 * /proc around the run when its pid is given.
 */
export async function wrk(
  bin: string,
  url: string,
  options: { connections: number; threads?: number; seconds: number; script: string; env?: Record<string, string>; serverPid?: number },
): Promise<Load> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'writ-wrk-'));
  const script = path.join(dir, 'script.lua');
  await fs.writeFile(script, options.script);
  const threads = options.threads ?? 1;
  const before = options.serverPid ? await cpuSeconds(options.serverPid) : 0;
  // The shell reports what its finished child used (cutime, cstime of /proc/$$/stat).
  const args = ['-t', String(threads), '-c', String(options.connections), '-d', `${options.seconds}s`, '--latency', '-s', script, url];
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      'sh',
      ['-c', '"$0" "$@"; s=$(cat /proc/$$/stat); set -- ${s##*) }; echo "GENERATOR_CPU_TICKS $((${14} + ${15}))"', bin, ...args],
      { env: { ...process.env, ...options.env }, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => (err ? reject(new Error(`wrk failed: ${err.message} ${stderr}`)) : resolve(stdout)),
    ),
  );
  const after = options.serverPid ? await cpuSeconds(options.serverPid) : 0;
  await fs.rm(dir, { recursive: true, force: true });
  const line = (re: RegExp) => re.exec(out)?.slice(1) ?? [];
  const count = Number(line(/(\d+) requests in/)[0] ?? 0);
  const elapsed = toMs(line(/requests in ([\d.]+\w+),/)[0] ?? '') / 1000;
  const non2xx = Number(line(/Non-2xx or 3xx responses: (\d+)/)[0] ?? 0);
  const socket = line(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/).reduce((n, x) => n + Number(x), 0);
  const ticks = Number(line(/GENERATOR_CPU_TICKS (\d+)/)[0] ?? NaN);
  return {
    perSecond: Number(line(/Requests\/sec:\s+([\d.]+)/)[0]),
    p50: toMs(line(/ 50%\s+(\S+)/)[0] ?? ''),
    p99: toMs(line(/ 99%\s+(\S+)/)[0] ?? ''),
    count,
    failures: non2xx + socket,
    generatorCpu: ticks / CLOCK_TICKS / elapsed,
    ...(options.serverPid && count > 0 ? { serverCpuUs: ((after - before) / count) * 1e6 } : {}),
  };
}

/** A Lua script for wrk: the same JSON POST every time, with a bearer key when given. */
export function postScript(body: unknown, key?: string): string {
  return [
    'wrk.method = "POST"',
    `wrk.body = ${luaString(JSON.stringify(body))}`,
    'wrk.headers["Content-Type"] = "application/json"',
    ...(key ? [`wrk.headers["Authorization"] = ${luaString(`Bearer ${key}`)}`] : []),
    '',
  ].join('\n');
}

export const luaString = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export const describe = (l: Load): string =>
  `${fmt(l.perSecond, 0)}/s, p50 ${fmt(l.p50, 2)} ms, p99 ${fmt(l.p99, 2)} ms, failures ${l.failures}` +
  (l.serverCpuUs !== undefined ? `, server CPU ${fmt(l.serverCpuUs, 0)} µs per answer` : '') +
  `, wrk used ${fmt(l.generatorCpu * 100, 0)} % of a core`;
