import test from 'ava';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { WritError } from '../src/errors.ts';
import { OpaIngest } from '../src/oversight/opa-ingest.ts';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { ADMIN, caller, eventually, spawnWrit, startWrit, tempDir, writCli, type TestWrit } from './helpers/writ.ts';

/**
 * A big OPA decision-log upload (10,000 events, ~30 MiB inflated, within every cap) is decoded
 * off the event loop and sequenced in slices, so the server keeps answering everyone else while
 * it is ingested; the answer still comes only once every entry is durable.
 */
const EVENTS = 10_000;
/** Far above the 100 ms target (see bench/index.ts) and far below the 1.6–3.4 s stall of decoding and sequencing in one go. */
const STALL_BOUND_MS = 750;

/** OPA-shaped events with a realistic input (a 38-line cart): ~3 KiB each, highly compressible. */
function decisionEvents(prefix: string, count: number) {
  const timestamp = new Date().toISOString();
  const cart = Array.from({ length: 38 }, (_, k) => ({ sku: `SKU-${k}`, name: 'Standard widget, blue', qty: 1 + (k % 3), price_cents: 1999 }));
  return Array.from({ length: count }, (_, i) => ({
    decision_id: `${prefix}-${i}`,
    path: 'payments/authz',
    input: { agent: { class: 'billing-bot', id: `agt_${i % 50}` }, amount: i, currency: 'EUR', cart },
    result: { allow: i % 10 !== 0, legal_basis: 'contract', reasons: ['within limits'] },
    timestamp,
    labels: { id: 'opa-1', version: '0.70.0' },
  }));
}

async function attester(w: TestWrit, touchpoint: string) {
  const res = await w.admin('POST', '/api/v1/attesters', { name: `OPA ${touchpoint}`, touchpoint_id: touchpoint });
  return { key: res.body.api_key as string, touchpoint, call: caller(w.url, res.body.api_key) };
}

const upload = (w: TestWrit, key: string, body: Buffer<ArrayBuffer> | string, gzip: boolean) =>
  fetch(`${w.url}/api/v1/adapters/opa/logs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
    body,
  });

// Serial, so no other test's work runs on this event loop while it is measured.
test.serial('a 10,000-event upload inflating to 30 MiB is recorded in full while the server keeps answering other requests', async (t) => {
  t.timeout(180_000);
  const w = await startWrit();
  try {
    const a = await attester(w, 'tp-big');
    // Built in a scope of its own, so the 30 MiB of JSON and its events are not kept alive while the server is measured.
    const { gz, inflated } = (() => {
      const raw = JSON.stringify(decisionEvents('big', EVENTS));
      return { gz: gzipSync(raw), inflated: raw.length };
    })();
    t.true(inflated > 28 * 2 ** 20 && inflated < 32 * 2 ** 20, `the upload inflates to ${inflated} bytes`);
    t.true(gz.length < w.server.writ.config.maxBodyBytes, `the gzip body is ${gz.length} bytes`);
    const sizeBefore = (await w.call('GET', '/healthz')).body.log_size as number;

    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const started = performance.now();
    let answeredAt = Infinity;
    const answer = upload(w, a.key, gz, true).then(async (res) => {
      answeredAt = performance.now();
      return { status: res.status, body: await res.json() };
    });
    // Health checks, a few every second, for as long as the upload is being ingested.
    const probes: Array<{ waited: number; answeredAt: number; logSize: number }> = [];
    await eventually(async () => {
      const sent = performance.now();
      const { log_size } = (await (await fetch(`${w.url}/healthz`)).json()) as { log_size: number };
      probes.push({ waited: performance.now() - sent, answeredAt: performance.now(), logSize: log_size });
      return answeredAt !== Infinity;
    }, "the upload's answer", 170_000);
    const result = await answer;
    delay.disable();

    t.is(result.status, 200, JSON.stringify(result.body).slice(0, 500));
    t.deepEqual(result.body, { recorded: EVENTS, duplicates: 0, rejected: [] });
    const maxDelayMs = delay.max / 1e6;
    t.log(`event loop: max ${maxDelayMs.toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms; ingested in ${(answeredAt - started).toFixed(0)} ms; ${probes.length} health checks during the upload`);
    t.true(maxDelayMs < STALL_BOUND_MS, `the event loop stalled for ${maxDelayMs.toFixed(0)} ms`);
    const during = probes.filter((p) => p.answeredAt < answeredAt);
    t.true(during.length >= 3, `only ${during.length} health checks were answered before the upload's answer`);
    const slowest = Math.max(...probes.map((p) => p.waited));
    t.true(slowest < STALL_BOUND_MS, `a health check waited ${slowest.toFixed(0)} ms`);
    t.true(
      during.some((p) => p.logSize > sizeBefore && p.logSize < sizeBefore + EVENTS),
      'entries become durable batch by batch while later ones are still being sequenced',
    );

    // Every event is an attestation, numbered in upload order, with its receipt in the store.
    const sequences = new Map<string, number>();
    let receipts = 0;
    for await (const [, value] of w.server.writ.store.iterate({ gte: 'oap/att/', lt: 'oap/att/~' })) {
      const record = JSON.parse(value) as { id: string; touchpoint_id: string; body: { sequence_number: number } };
      if (record.touchpoint_id === a.touchpoint) sequences.set(record.id, record.body.sequence_number);
    }
    for await (const _ of w.server.writ.store.iterate({ gte: 'oap/receipt/', lt: 'oap/receipt/~' })) receipts++;
    t.is(sequences.size, EVENTS);
    t.is(receipts, EVENTS);
    t.true(Array.from({ length: EVENTS }, (_, i) => sequences.get(`big-${i}`) === i).every(Boolean), 'sequence numbers follow the upload order without gaps');
    t.true((await w.call('GET', '/healthz')).body.log_size >= sizeBefore + EVENTS);
    const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
    for (const i of [0, 4_999, EVENTS - 1]) {
      const got = await a.call('GET', `/api/v1/oap/attestations/big-${i}`);
      t.is(got.status, 200);
      const { claims } = await verifyReceipt(got.body.receipt, { jwks });
      t.like(claims, { attestation_id: `big-${i}`, sequence_number: i, decision: i % 10 === 0 ? 'deny' : 'allow', agent_class: 'billing-bot' });
    }
  } finally {
    await w.close();
  }
  const verified = await writCli('log', 'verify', '--data', w.data);
  t.is(verified.code, 0, verified.out);
});

test('an upload sent again is dropped as duplicates, and one repeating a decision records it once', async (t) => {
  const w = await startWrit();
  try {
    const a = await attester(w, 'tp-dup');
    const events = decisionEvents('dup', 1_200);
    const first = await upload(w, a.key, gzipSync(JSON.stringify(events)), true);
    t.deepEqual(await first.json(), { recorded: 1_200, duplicates: 0, rejected: [] });
    const again = await upload(w, a.key, gzipSync(JSON.stringify([...events.slice(600), ...decisionEvents('dup-new', 2), events[0]])), true);
    t.deepEqual(await again.json(), { recorded: 2, duplicates: 601, rejected: [] });
    const repeated = await upload(w, a.key, JSON.stringify([...decisionEvents('twice', 1), ...decisionEvents('twice', 1)]), false);
    t.deepEqual(await repeated.json(), { recorded: 1, duplicates: 1, rejected: [] });
    const latest = (await a.call('GET', '/api/v1/oap/attestations/twice-0')).body.attestation.body;
    t.is(latest.sequence_number, 1_202, 'numbering continues where the touchpoint left off');
  } finally {
    await w.close();
  }
});

test('`writ serve`, running the compiled server, decodes OPA uploads on its compiled worker', async (t) => {
  const server = await spawnWrit(await tempDir());
  try {
    const created = (await caller(server.url, ADMIN)('POST', '/api/v1/attesters', { name: 'OPA', touchpoint_id: 'tp-compiled' })).body;
    const res = await fetch(`${server.url}/api/v1/adapters/opa/logs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${created.api_key}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify([...decisionEvents('compiled', 2), { path: 'no/id' }])),
    });
    t.is(res.status, 200);
    t.like(await res.json(), { recorded: 2, duplicates: 0, rejected: [{ decision_id: '' }] });
    t.is((await caller(server.url, created.api_key)('GET', '/api/v1/oap/attestations/compiled-1')).status, 200);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});

test('the configured agent-class path and default legal basis apply to uploads decoded off the event loop', async (t) => {
  const w = await startWrit({ config: { opaAgentClassPath: 'caller.kind', opaDefaultLegalBasis: 'consent' } });
  try {
    const a = await attester(w, 'tp-mapping');
    const events = [{ decision_id: 'mapped-1', path: '/shop/checkout', input: { caller: { kind: 'shopping-bot' } }, result: { allow: true } }];
    const res = await upload(w, a.key, JSON.stringify(events), false);
    t.deepEqual(await res.json(), { recorded: 1, duplicates: 0, rejected: [] });
    const got = (await a.call('GET', '/api/v1/oap/attestations/mapped-1')).body.attestation.body;
    t.like(got, { agent_class: 'shopping-bot', action_class: 'shop.checkout', legal_basis: 'consent', decision: 'allow' });
  } finally {
    await w.close();
  }
});

test('an ingest worker that stalls is replaced: the uploads it held fail with 503 overloaded, and the next upload gets a fresh worker', async (t) => {
  // 480 events of 30,000 numbers each: the worker checks and hashes for seconds before its first message.
  const ingest = new OpaIngest({ stallMs: 1_000 });
  const mapping = { agentClassPath: 'agent.class', defaultLegalBasis: 'contract' } as const;
  const reports: string[] = [];
  const report = (message: string) => reports.push(message);
  const numbers = Array<number>(30_000).fill(1);
  const heavy = decisionEvents('heavy', 480).map((e) => ({ ...e, input: { ...e.input, numbers } }));
  const [stalled, queued] = await Promise.allSettled([
    ingest.decode(gzipSync(JSON.stringify(heavy)), { gzip: true, mapping, report }),
    ingest.decode(gzipSync(JSON.stringify(decisionEvents('queued', 2))), { gzip: true, mapping, report }),
  ]);
  for (const outcome of [stalled, queued]) {
    t.is(outcome.status, 'rejected');
    const err = (outcome as PromiseRejectedResult).reason as unknown;
    t.true(err instanceof WritError && err.code === 'overloaded' && err.status === 503, String(err));
  }
  t.is(reports.length, 2, 'the operator hears of each failed upload');
  t.regex(reports[0]!, /no progress for 1000 ms/);
  const next = await ingest.decode(gzipSync(JSON.stringify(decisionEvents('after', 3))), { gzip: true, mapping, report });
  t.deepEqual(next.inputs.map((i) => i.attestation_id), ['after-0', 'after-1', 'after-2']);
  t.deepEqual(next.rejected, []);
});

const refusals: Array<[string, () => Buffer<ArrayBuffer> | string, boolean, number, string]> = [
  ['a body that is not gzip though it says so', () => 'not gzip at all', true, 400, 'invalid_request'],
  ['gzip that breaks off', () => gzipSync(JSON.stringify(decisionEvents('cut', 10))).subarray(0, 200), true, 400, 'invalid_request'],
  ['gzip inflating past 32 MiB', () => gzipSync(Buffer.alloc(33 * 2 ** 20, 0x20)), true, 413, 'payload_too_large'],
  ['a body that is not JSON', () => '[{"decision_id": "x"', false, 400, 'malformed_json'],
  ['JSON that is not an array', () => JSON.stringify({ decision_id: 'x' }), false, 400, 'invalid_request'],
  ['more than 10,000 events', () => gzipSync(JSON.stringify(Array.from({ length: 10_001 }, (_, i) => ({ decision_id: `many-${i}` })))), true, 400, 'invalid_request'],
  ['bytes that are not UTF-8', () => gzipSync(Buffer.concat([Buffer.from('[{"decision_id":"bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]')])), true, 400, 'invalid_encoding'],
  ['a key given twice', () => '[{"decision_id":"a","decision_id":"b"}]', false, 400, 'duplicate_key'],
];
for (const [name, body, gzip, status, code] of refusals) {
  test(`an upload with ${name} is refused (${status} ${code}) and records nothing`, async (t) => {
    const w = await startWrit();
    try {
      const a = await attester(w, 'tp-refused');
      const sizeBefore = (await w.call('GET', '/healthz')).body.log_size;
      const res = await upload(w, a.key, body(), gzip);
      const answer = (await res.json()) as { error: { reason_code: string; detail?: { field?: string } } };
      t.is(res.status, status, JSON.stringify(answer));
      t.is(answer.error.reason_code, code);
      if (code !== 'duplicate_key' && status === 400) t.is(answer.error.detail?.field, 'body');
      t.is((await w.call('GET', '/healthz')).body.log_size, sizeBefore);
    } finally {
      await w.close();
    }
  });
}

test('an event whose reasons would reach approval cards with a bidi override is rejected on its own', async (t) => {
  const w = await startWrit();
  try {
    const a = await attester(w, 'tp-bidi');
    const events = decisionEvents('bidi', 2);
    (events[1] as { result: { reasons: string[] } }).result.reasons = ['pay \u202eevil'];
    const res = await upload(w, a.key, gzipSync(JSON.stringify(events)), true);
    const answer = (await res.json()) as { recorded: number; rejected: Array<{ decision_id: string; reason: string }> };
    t.is(res.status, 200);
    t.is(answer.recorded, 1);
    t.deepEqual(answer.rejected.map((r) => r.decision_id), ['bidi-1']);
    t.regex(answer.rejected[0]!.reason, /bidi/);
  } finally {
    await w.close();
  }
});
