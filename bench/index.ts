/**
 * `npm run bench`: prints figures, asserts nothing. Targets (issue 2) on a 2-core machine:
 *   HTTP auto-approved path ≥ 3,000 decisions/s, p99 < 25 ms, server RSS < 300 MB after 100k;
 *   in-process Cedar evaluation p50 < 60 µs.
 * Each HTTP decision is the whole path: cascade, Cedar, token, durable log append, signed receipt.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPolicySet, evaluate, readPolicySources } from '../src/policy/set.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ADMIN = 'bench-admin-token-0123456789abcdef';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const TOTAL_FOR_RSS = Number(process.env.BENCH_TOTAL ?? 100_000);

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const fmt = (n: number, digits = 1) => n.toFixed(digits);

async function cedarInProcess(): Promise<void> {
  const { set } = await buildPolicySet(await readPolicySources(path.join(ROOT, 'policies')));
  if (!set) throw new Error('shipped policies do not compile');
  const requests = [
    { action: 'email.send', resource: 'email:client@acme.com', value: undefined },
    { action: 'bank.transfer', resource: 'account:checking', value: 20_000 },
    { action: 'shell.execute', resource: 'env:production', value: undefined },
  ];
  const samples: number[] = [];
  for (let i = 0; i < 30_000; i++) {
    const r = requests[i % requests.length]!;
    const started = process.hrtime.bigint();
    evaluate(set, {
      agent: { id: 'agt_bench', class: 'assistant', trust_tier: 'T2' },
      action: r.action,
      resource: r.resource,
      scope: { max_emails: 1 },
      context: { reason: 'bench' },
      ...(r.value !== undefined ? { value: r.value, currency: 'EUR' } : {}),
      time: new Date(),
    });
    if (i >= 5_000) samples.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  samples.sort((a, b) => a - b);
  console.log(`cedar in-process: p50 ${fmt(pct(samples, 50))} µs, p99 ${fmt(pct(samples, 99))} µs over ${samples.length} evaluations (target p50 < 60 µs)`);
}

function request(agent: http.Agent, port: number, method: string, p: string, key: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { host: '127.0.0.1', port, method, path: p, agent, headers: { authorization: `Bearer ${key}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function readRss(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

async function httpPath(): Promise<void> {
  const data = await fs.mkdtemp(path.join(os.tmpdir(), 'writ-bench-'));
  const port = 30000 + Math.floor(Math.random() * 20000);
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/writ.js'), 'serve', '--port', String(port), '--data', data, '--policies', path.join(ROOT, 'policies')], {
    env: { ...process.env, WRIT_ADMIN_TOKEN: ADMIN },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await request(agent, port, 'GET', '/healthz', '')).status === 200) break;
      } catch {
        if (i > 200) throw new Error('server did not start');
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const created = JSON.parse((await request(agent, port, 'POST', '/api/v1/agents', ADMIN, { name: 'bench' })).body) as { api_key: string };
    const body = { action: 'email.send', resource: 'email:client@acme.com', scope: { max_emails: 1 }, context: { reason: 'bench' } };
    let done = 0;
    let failed = 0;
    const run = async (until: () => boolean, latencies?: number[]) => {
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (until()) {
            const started = performance.now();
            const res = await request(agent, port, 'POST', '/api/v1/permissions', created.api_key, body);
            if (res.status === 201) done++;
            else failed++;
            latencies?.push(performance.now() - started);
          }
        }),
      );
    };
    const warmEnd = Date.now() + 2000;
    await run(() => Date.now() < warmEnd);
    const latencies: number[] = [];
    const startDone = done;
    const started = performance.now();
    const end = Date.now() + SECONDS * 1000;
    await run(() => Date.now() < end, latencies);
    const elapsed = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const measured = done - startDone;
    console.log(
      `http auto-approved path: ${fmt(measured / elapsed, 0)} decisions/s over ${fmt(elapsed)} s with ${CONCURRENCY} keep-alive clients; ` +
        `p50 ${fmt(pct(latencies, 50), 2)} ms, p90 ${fmt(pct(latencies, 90), 2)} ms, p99 ${fmt(pct(latencies, 99), 2)} ms, max ${fmt(latencies.at(-1) ?? NaN, 1)} ms, failures ${failed} (target ≥ 3000/s, p99 < 25 ms)`,
    );
    const atTen = await readRss(child.pid!);
    console.log(`server memory after ${done} decisions: rss ${fmt(atTen.rss)} MB, peak ${fmt(atTen.peak)} MB`);
    if (TOTAL_FOR_RSS > done) {
      await run(() => done < TOTAL_FOR_RSS);
      const after = await readRss(child.pid!);
      console.log(`server memory after ${done} decisions: rss ${fmt(after.rss)} MB, peak ${fmt(after.peak)} MB (target < 300 MB after 100k)`);
    }
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await fs.rm(data, { recursive: true, force: true });
  }
}

console.log(`writ bench on ${os.cpus().length} cores, node ${process.version}`);
await cedarInProcess();
await httpPath();
