/**
 * Issue 11, target 3: what Writ costs as its history grows. Two data directories, each with
 * 10,000 agents and 10,000 pending approvals, one with 1,000 more decisions in its log and one with
 * 1,000,000 more; for each, a `writ serve` is started on it and measured:
 *   - decision p50 (one client, sequential, auto-approved path) within 1.2× between the two;
 *   - server RSS growth (1M vs 1k, after the same work) under 50 MB;
 *   - GET /api/v1/log/proof/:i p50 under 1 ms at 1M entries (random i);
 *   - `writ log verify` at least 200,000 entries/s (spawn to exit);
 *   - start-up (spawn to /healthz 200) under 2 s at 1M entries.
 * The directories are generated in this process with Writ's own modules (not over HTTP) and kept
 * under os.tmpdir(), keyed by FORMAT, for the next run; delete them to start from nothing.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { startServer } from '../src/writ.ts';
import type { Agent } from '../src/domain/principals.ts';
import { fmt, pct, readRss, request, spawnWrit } from './util.ts';

/** Bump when what a generated directory holds changes: older ones are then made again. */
const FORMAT = 1;
const AGENTS = 10_000;
const PENDING = 10_000;
/** Pending approvals expire after this; a kept directory is made again well before. */
const APPROVAL_TIMEOUT_S = 30 * 86_400;
const MAX_AGE_MS = 20 * 86_400_000;
const DECISIONS = Number(process.env.BENCH_SCALE_DECISIONS ?? 2_000);
const PROOFS = Number(process.env.BENCH_SCALE_PROOFS ?? 2_000);
const STARTS = 3;

const BODY = { action: 'email.send', resource: 'email:client@acme.com', scope: { max_emails: 1 }, context: { reason: 'bench' } };

const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);

interface Generated {
  format: number;
  bulk: number;
  size: number;
  created_at: string;
  /** An agent's key for the decisions the bench makes. */
  agent_key: string;
}

/** A data directory with the agents, the pending approvals and `bulk` decisions in its log, made once and kept. */
async function dataDir(root: string, adminToken: string, bulk: number): Promise<{ dir: string; generated: Generated }> {
  const dir = path.join(os.tmpdir(), `writ-scale-v${FORMAT}-${bulk}`);
  const marker = path.join(dir, 'bench-generated.json');
  const kept = await fs
    .readFile(marker, 'utf8')
    .then((text) => JSON.parse(text) as Generated)
    .catch(() => undefined);
  if (kept && kept.format === FORMAT && Date.now() - Date.parse(kept.created_at) < MAX_AGE_MS) return { dir, generated: kept };
  await fs.rm(dir, { recursive: true, force: true });
  const started = performance.now();
  const generated = await generate(root, adminToken, dir, bulk);
  await fs.writeFile(marker, JSON.stringify(generated));
  console.log(`scale: generated ${dir} (${generated.size} log entries) in ${fmt((performance.now() - started) / 1000)} s`);
  return { dir, generated };
}

/**
 * Writ's own start, then its own services: agents through Principals, pending approvals through
 * Permissions.create (decision escalate), one real decision over HTTP, and `bulk` copies of that
 * decision's entry appended straight to the log (group-committed as the server does), with a
 * checkpoint signed every 100,000 entries and the last one at close, as a server's would be.
 */
async function generate(root: string, adminToken: string, dir: string, bulk: number): Promise<Generated> {
  const config = loadConfig({ port: 0, host: '127.0.0.1', data: dir, policies: path.join(root, 'policies'), adminToken }, {});
  const server = await startServer(config);
  const { writ } = server;
  const client = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const agents: Array<{ agent: Agent; api_key: string }> = [];
    for (let i = 0; i < AGENTS; i += 500) {
      agents.push(...(await Promise.all(Array.from({ length: Math.min(500, AGENTS - i) }, (_, k) => writ.principals.createAgent({ name: `bench agent ${i + k}`, class: 'assistant', trust_tier: 'T2' })))));
    }
    const keyId = (apiKey: string) => /^writ_agent_([0-9a-f]{16})\./.exec(apiKey)![1]!;
    const policyHash = writ.policies.current.hash;
    for (let i = 0; i < PENDING; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, PENDING - i) }, (_, k) => {
          const { agent, api_key } = agents[(i + k) % agents.length]!;
          return writ.permissions.create({
            agent,
            keyId: keyId(api_key),
            action: 'bank.transfer',
            resource: 'account:checking',
            scope: {},
            context: { reason: `bench pending ${i + k}` },
            value: 20_000,
            currency: 'EUR',
            ttl: 300,
            approvalTimeout: APPROVAL_TIMEOUT_S,
            decision: 'escalate',
            tier: 'sensitive',
            reasons: ['transfers above 10,000 EUR need a person'],
            policy: { hash: policyHash, determining: ['bench-escalate'] },
            trace: [],
          });
        }),
      );
    }
    // One real decision, through the whole cascade: its entry is the template of the bulk.
    const decided = await request(client, server.url, 'POST', '/api/v1/permissions', agents[0]!.api_key, BODY);
    if (decided.status !== 201) throw new Error(`the template decision failed: ${decided.status} ${decided.body.slice(0, 300)}`);
    let template: Record<string, unknown> | undefined;
    for await (const { entry } of writ.log.entries(writ.log.size - 1)) template = entry.data;
    if (template?.permission_id === undefined) throw new Error('the template decision left no permission.decided entry');
    let last: Promise<unknown> = Promise.resolve();
    const now = Date.now();
    for (let i = 0; i < bulk; i++) {
      const agent = agents[i % agents.length]!.agent;
      last = writ.log.append('permission.decided', {
        ...template,
        permission_id: `perm_${(now + i).toString(16).padStart(12, '0')}${i.toString(36).padStart(14, '0')}`,
        agent_id: agent.id,
        expires_at: new Date(now + i + 300_000).toISOString(),
      });
      // Below the log's push-back limit (20,000 undurable entries), a group commit's worth at a time.
      if (i % 5_000 === 4_999) await last;
      if (i % 100_000 === 99_999) await writ.log.checkpoint();
    }
    await last;
    return { format: FORMAT, bulk, size: writ.log.size, created_at: new Date().toISOString(), agent_key: agents[0]!.api_key };
  } finally {
    client.destroy();
    await server.close();
  }
}

interface Served {
  startupMs: number;
  decisionP50: number;
  decisionP99: number;
  proofP50: number;
  proofP99: number;
  rssMb: number;
  anonMb: number;
  size: number;
}

/** `writ serve` on `dir`: its start-up, then sequential decisions, then random proofs, then its RSS. */
async function serve(root: string, dir: string, adminToken: string, agentKey: string, work: boolean): Promise<Served> {
  // On port 0: a port picked here could be taken by the time the server binds it.
  // Polled often: start-up is the figure, so the poll's own interval must not dominate it.
  const server = await spawnWrit(root, { data: dir, policies: path.join(root, 'policies'), env: { WRIT_ADMIN_TOKEN: adminToken }, pollMs: 2 });
  const { agent, url } = server;
  try {
    const startupMs = server.startedMs;
    const result: Served = { startupMs, decisionP50: NaN, decisionP99: NaN, proofP50: NaN, proofP99: NaN, rssMb: NaN, anonMb: NaN, size: NaN };
    if (!work) return result;
    const decisions: number[] = [];
    for (let i = 0; i < DECISIONS + 200; i++) {
      const t0 = performance.now();
      const res = await request(agent, url, 'POST', '/api/v1/permissions', agentKey, BODY);
      if (res.status !== 201) throw new Error(`a decision failed: ${res.status} ${res.body.slice(0, 300)}`);
      if (i >= 200) decisions.push(performance.now() - t0);
    }
    // Proofs of entries the latest checkpoint (signed when the generator closed) covers.
    const checkpoint = (await request(agent, url, 'GET', '/api/v1/log/checkpoint')).body;
    const covered = Number(checkpoint.split('\n')[1]);
    const proofs: number[] = [];
    for (let i = 0; i < PROOFS + 100; i++) {
      const index = Math.floor(Math.random() * covered);
      const t0 = performance.now();
      const res = await request(agent, url, 'GET', `/api/v1/log/proof/${index}`);
      if (res.status !== 200) throw new Error(`a proof failed: ${res.status} ${res.body.slice(0, 300)}`);
      if (i >= 100) proofs.push(performance.now() - t0);
    }
    decisions.sort((a, b) => a - b);
    proofs.sort((a, b) => a - b);
    const memory = await readRss(server.pid);
    return { startupMs, decisionP50: pct(decisions, 50), decisionP99: pct(decisions, 99), proofP50: pct(proofs, 50), proofP99: pct(proofs, 99), rssMb: memory.rss, anonMb: memory.anon, size: covered };
  } finally {
    await server.stop();
  }
}

/** `writ log verify --data DIR`, spawn to exit, as an operator runs it. */
async function logVerify(root: string, dir: string): Promise<{ ms: number; size: number }> {
  const started = performance.now();
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(root, 'bin/writ.js'), 'log', 'verify', '--data', dir, '--json'], { maxBuffer: 1 << 20 });
  const ms = performance.now() - started;
  const result = JSON.parse(stdout) as { ok: boolean; size: number; problem?: unknown };
  if (!result.ok) throw new Error(`writ log verify failed on ${dir}: ${JSON.stringify(result.problem)}`);
  return { ms, size: result.size };
}

export async function scaleFigures(root: string, adminToken: string): Promise<Record<string, number>> {
  const small = await dataDir(root, adminToken, 1_000);
  const big = await dataDir(root, adminToken, 1_000_000);
  const figures: Record<string, number> = {};
  const measured: Record<'1k' | '1m', Served> = {} as never;
  for (const [label, d] of [['1k', small], ['1m', big]] as const) {
    const first = await serve(root, d.dir, adminToken, d.generated.agent_key, true);
    const starts = [first.startupMs];
    for (let i = 1; i < STARTS; i++) starts.push((await serve(root, d.dir, adminToken, d.generated.agent_key, false)).startupMs);
    measured[label] = { ...first, startupMs: median(starts) };
    const m = measured[label];
    figures[`scale_decision_p50_ms_${label}`] = m.decisionP50;
    figures[`scale_proof_p50_ms_${label}`] = m.proofP50;
    figures[`scale_rss_mb_${label}`] = m.rssMb;
    figures[`scale_rss_anon_mb_${label}`] = m.anonMb;
    figures[`scale_startup_ms_${label}`] = m.startupMs;
    console.log(
      `scale ${label} (${m.size} log entries, ${AGENTS} agents, ${PENDING} pending approvals): decision p50 ${fmt(m.decisionP50, 2)} ms, p99 ${fmt(m.decisionP99, 2)} ms over ${DECISIONS}; ` +
        `proof p50 ${fmt(m.proofP50, 2)} ms, p99 ${fmt(m.proofP99, 2)} ms over ${PROOFS}; rss ${fmt(m.rssMb)} MB (${fmt(m.anonMb)} MB anonymous); start-up ${fmt(m.startupMs, 0)} ms (median of ${STARTS})`,
    );
  }
  const ratio = measured['1m'].decisionP50 / measured['1k'].decisionP50;
  figures.scale_decision_p50_ratio = ratio;
  console.log(`scale, decision p50 at 1M entries to 1k: ${fmt(ratio, 2)}× (target ≤ 1.2×)`);
  figures.scale_rss_growth_mb = measured['1m'].rssMb - measured['1k'].rssMb;
  figures.scale_rss_anon_growth_mb = measured['1m'].anonMb - measured['1k'].anonMb;
  console.log(
    `scale, server RSS growth from 1k to 1M entries: ${fmt(figures.scale_rss_growth_mb)} MB (target < 50 MB), of which anonymous (heap, not mapped database files) ${fmt(figures.scale_rss_anon_growth_mb)} MB`,
  );
  figures.scale_proof_p50_ms_1m = measured['1m'].proofP50;
  console.log(`scale, GET /api/v1/log/proof/:i at 1M entries: p50 ${fmt(measured['1m'].proofP50, 3)} ms (target < 1 ms)`);
  figures.scale_startup_ms_1m = measured['1m'].startupMs;
  console.log(`scale, start-up (spawn to /healthz 200) at 1M entries: ${fmt(measured['1m'].startupMs, 0)} ms (target < 2000 ms)`);
  const verified = await logVerify(root, big.dir);
  figures.scale_log_verify_entries_per_s = verified.size / (verified.ms / 1000);
  console.log(`scale, writ log verify of ${verified.size} entries: ${fmt(verified.ms / 1000, 2)} s, ${fmt(figures.scale_log_verify_entries_per_s, 0)} entries/s (target ≥ 200000/s)`);
  return figures;
}
