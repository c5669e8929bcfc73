import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN, agent, approver, caller, eventually, startWrit, type TestWrit } from './helpers/writ.ts';
import { Faults } from './helpers/faults.ts';

/**
 * GET /metrics as Prometheus scrapes it: the text format, behind the admin key or a scrape-only
 * token, with decisions, request latency per route, the log, policy evaluation, open approvals,
 * the outboxes and storage health, each matching what the server did.
 */
const SCRAPE_TOKEN = 'a-scrape-only-token-0123456789';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition; throws on any line that is not one (the format is strict). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample with this name whose labels include these (undefined when none). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

async function scrape(w: TestWrit): Promise<Sample[]> {
  const res = await w.admin('GET', '/metrics');
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.text}`);
  return parse(res.text);
}

const email = { action: 'email.send', resource: 'email:client@acme.com', scope: { max_emails: 1 } };

test('metrics need the admin key or the scrape token, and come in the Prometheus text format', async (t) => {
  const w = await startWrit({ config: { metricsToken: SCRAPE_TOKEN } });
  try {
    const anonymous = await w.call('GET', '/metrics');
    t.is(anonymous.status, 401);
    t.is(anonymous.body.error.reason_code, 'unauthenticated');
    t.is((await caller(w.url, 'a-wrong-token-0123456789abcdef')('GET', '/metrics')).status, 401);
    const a = await agent(w);
    t.is((await a.call('GET', '/metrics')).status, 403, 'an agent key is no scrape credential');

    const scraped = await caller(w.url, SCRAPE_TOKEN)('GET', '/metrics');
    t.is(scraped.status, 200);
    t.is(scraped.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const samples = parse(scraped.text);
    for (const family of ['writ_decisions_total', 'writ_log_size', 'writ_approvals_pending', 'writ_webhook_queue_depth', 'writ_telegram_outbox_depth', 'writ_storage_healthy']) {
      t.regex(scraped.text, new RegExp(`^# HELP ${family} .+\\n# TYPE ${family} (counter|gauge)$`, 'm'));
    }
    t.true((value(samples, 'process_cpu_user_seconds_total') ?? -1) >= 0, 'the process metrics are there too');
    t.not(value(samples, 'nodejs_eventloop_lag_seconds'), undefined);
    t.is(value(samples, 'writ_telegram_outbox_depth'), 0, 'no bot, nothing waiting');

    t.is((await w.admin('GET', '/metrics')).status, 200, 'the admin key scrapes too');
    t.is((await caller(w.url, SCRAPE_TOKEN)('GET', '/api/v1/status')).status, 401, 'the scrape token opens nothing else');
  } finally {
    await w.close();
  }
});

test('without a scrape token only the admin key scrapes', async (t) => {
  const w = await startWrit();
  try {
    t.is((await caller(w.url, SCRAPE_TOKEN)('GET', '/metrics')).status, 401);
    t.is((await w.admin('GET', '/metrics')).status, 200);
  } finally {
    await w.close();
  }
});

test('decisions are counted by outcome and tier, and policy evaluations by outcome, once recorded', async (t) => {
  const w = await startWrit();
  try {
    const a = await agent(w, { trust_tier: 'T2' });
    const before = await scrape(w);
    t.is(value(before, 'writ_decisions_total', { outcome: 'allow', tier: 'standard' }), 0, 'every series starts at zero');
    const asks = [
      email,
      email,
      { action: 'shell.execute', resource: 'env:production' },
      { action: 'bank.transfer', resource: 'account:checking', value: 250, currency: 'EUR' },
      { action: 'bank.transfer', resource: 'account:checking' },
    ];
    const answers = [];
    for (const ask of asks) answers.push((await a.call('POST', '/api/v1/permissions', ask)).body);
    t.deepEqual(
      answers.map((p) => `${p.decision}/${p.tier}`),
      ['allow/standard', 'allow/standard', 'deny/standard', 'escalate/sensitive', 'escalate/critical'],
    );
    const after = await scrape(w);
    t.is(value(after, 'writ_decisions_total', { outcome: 'allow', tier: 'standard' }), 2);
    t.is(value(after, 'writ_decisions_total', { outcome: 'deny', tier: 'standard' }), 1);
    t.is(value(after, 'writ_decisions_total', { outcome: 'escalate', tier: 'sensitive' }), 1);
    t.is(value(after, 'writ_decisions_total', { outcome: 'escalate', tier: 'critical' }), 1);
    t.is(value(after, 'writ_decisions_total', { outcome: 'error', tier: 'standard' }), 0);
    // The policy permits what it escalates: four permits, one forbid.
    t.is(value(after, 'writ_policy_evaluation_seconds_count', { outcome: 'allow' }), 4);
    t.is(value(after, 'writ_policy_evaluation_seconds_count', { outcome: 'deny' }), 1);
    t.true(value(after, 'writ_policy_evaluation_seconds_sum', { outcome: 'allow' })! > 0);
  } finally {
    await w.close();
  }
});

test('request latency is observed per route template and status, never per raw path', async (t) => {
  const w = await startWrit();
  try {
    const a = await agent(w);
    const asked = await a.call('POST', '/api/v1/permissions', email);
    await a.call('GET', `/api/v1/permissions/${asked.body.id}`);
    await a.call('GET', `/api/v1/permissions/${asked.body.id}`);
    await w.call('GET', '/no/such/route/with-a-secret-in-it');
    const res = await w.admin('GET', '/metrics');
    const samples = parse(res.text);
    const count = (labels: Record<string, string>) => value(samples, 'writ_http_request_duration_seconds_count', labels);
    t.is(count({ route: '/api/v1/permissions/:id', method: 'GET', status: '200' }), 2);
    t.is(count({ route: '/api/v1/permissions', method: 'POST', status: '201' }), 1);
    t.is(count({ route: 'unmatched', method: 'GET', status: '404' }), 1);
    t.false(res.text.includes(asked.body.id), 'no permission id in a label');
    t.false(res.text.includes('with-a-secret-in-it'));
    t.true(count({ route: '/api/v1/permissions/:id', method: 'GET', status: '200' })! <= value(samples, 'writ_http_request_duration_seconds_bucket', { route: '/api/v1/permissions/:id', status: '200', le: '+Inf' })!);
  } finally {
    await w.close();
  }
});

test('the log: its size, the entries per committed batch and the time of each synced write', async (t) => {
  const w = await startWrit();
  try {
    const a = await agent(w);
    await Promise.all(Array.from({ length: 20 }, () => a.call('POST', '/api/v1/permissions', email)));
    const samples = await scrape(w);
    const size = (await w.call('GET', '/healthz')).body.log_size;
    t.is(value(samples, 'writ_log_size'), size);
    // A fresh data directory: every entry was committed by this server, in some number of batches.
    t.is(value(samples, 'writ_log_commit_batch_size_sum'), size);
    const batches = value(samples, 'writ_log_commit_batch_size_count')!;
    t.true(batches >= 1 && batches <= size);
    t.is(value(samples, 'writ_log_fsync_seconds_count'), batches, 'one synced write per batch');
    t.true(value(samples, 'writ_log_fsync_seconds_sum')! > 0);
  } finally {
    await w.close();
  }
});

test('open approvals are counted as they open and close', async (t) => {
  const w = await startWrit();
  try {
    const a = await agent(w, { trust_tier: 'T2' });
    const alice = await approver(w, 'Alice');
    t.is(value(await scrape(w), 'writ_approvals_pending'), 0);
    const small = (await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 })).body;
    await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:savings', value: 7 });
    t.is(value(await scrape(w), 'writ_approvals_pending'), 2);
    t.is((await alice.call('POST', `/api/v1/approvals/${small.approval.id}/approve`, {})).status, 200);
    t.is(value(await scrape(w), 'writ_approvals_pending'), 1);
  } finally {
    await w.close();
  }
});

test('webhook deliveries waiting for a receiver are counted until it accepts them', async (t) => {
  let accepting = false;
  let attempts = 0;
  const receiver = http.createServer((req, res) => {
    attempts++;
    req.resume();
    req.once('end', () => res.writeHead(accepting ? 200 : 503).end());
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const w = await startWrit({ config: { webhookRetryBaseMs: 50 } });
  try {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    await w.admin('POST', '/api/v1/webhooks', { url, events: ['approval.requested'], secret: 'a-receiver-secret-0123456789' });
    const a = await agent(w, { trust_tier: 'T2' });
    await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 });
    await eventually(() => attempts >= 2, 'the receiver to refuse twice');
    t.is(value(await scrape(w), 'writ_webhook_queue_depth'), 1, 'refused, so still queued');
    accepting = true;
    await eventually(async () => value(await scrape(w), 'writ_webhook_queue_depth') === 0, 'the queue to drain');
  } finally {
    await w.close();
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  }
});

test('storage health is a gauge: 0 while writes are refused, 1 again once re-verified', async (t) => {
  const faults = new Faults();
  const w = await startWrit({ hooks: { wrapDriver: faults.wrap } });
  try {
    const a = await agent(w);
    let samples = await scrape(w);
    t.is(value(samples, 'writ_storage_healthy'), 1);
    t.is(value(samples, 'writ_storage_state', { state: 'ok' }), 1);

    faults.reopenFailures = Number.MAX_SAFE_INTEGER;
    faults.failWrites(1);
    t.is((await a.call('POST', '/api/v1/permissions', email)).status, 503);
    // The admin key still authenticates from the cache while storage refuses writes.
    samples = await eventually(async () => {
      const res = await caller(w.url, ADMIN)('GET', '/metrics');
      return res.status === 200 ? parse(res.text) : undefined;
    }, 'a scrape while storage refuses writes');
    t.is(value(samples, 'writ_storage_healthy'), 0);
    t.is(value(samples, 'writ_storage_state', { state: 'ok' }), 0);
    t.is((value(samples, 'writ_storage_state', { state: 'unsafe' }) ?? 0) + (value(samples, 'writ_storage_state', { state: 'recovering' }) ?? 0), 1);

    faults.reopenFailures = 0;
    await eventually(async () => value(await scrape(w).catch(() => []), 'writ_storage_healthy') === 1, 'storage to recover');
    t.is(value(await scrape(w), 'writ_storage_state', { state: 'ok' }), 1);
  } finally {
    await w.close();
  }
});
