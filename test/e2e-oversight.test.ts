import test from 'ava';
import crypto from 'node:crypto';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { LevelStore } from '../src/store/level.ts';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { attestationFromCedar, submitAttestation } from '../adapters/cedar/attest.ts';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { ADMIN, agent, approver, caller, eventually, spawnWrit, startWrit, tempDir, writCli, type TestWrit } from './helpers/writ.ts';

/** Oversight mode: the caller's engine decided; Writ checks, witnesses, logs and signs. */
let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(() => w?.close());

let n = 0;
async function attester(on: TestWrit = w, touchpoint = `tp-${++n}`) {
  const res = await on.admin('POST', '/api/v1/attesters', { name: `engine ${touchpoint}`, touchpoint_id: touchpoint });
  return { id: res.body.id as string, key: res.body.api_key as string, touchpoint, call: caller(on.url, res.body.api_key) };
}

const digest = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
const body = (touchpoint: string, seq: number, over: Record<string, unknown> = {}) => ({
  attestation_id: `att-${touchpoint}-${seq}`,
  touchpoint_id: touchpoint,
  agent_class: 'support-bot',
  action_class: 'refund.issue',
  decision: 'allow',
  decided_at: new Date().toISOString(),
  sequence_number: seq,
  legal_basis: 'contract',
  evidence_digest: digest(`${touchpoint}${seq}`),
  context: { ticket: 'T-1' },
  ...over,
});
const jwks = async (on: TestWrit = w) => (await on.call('GET', '/.well-known/jwks.json')).body;
/** Log entries about one attestation (the suite shares one server, so the log's size says nothing). */
const entriesAbout = async (id: string) =>
  (await w.admin('GET', '/api/v1/log/records')).body.records.filter((r: { data: { attestation_id?: string } }) => r.data.attestation_id === id).length;

test('discovery advertises the oversight endpoints as absolute URLs, the decisions and the legal bases', async (t) => {
  const d = (await w.call('GET', '/.well-known/openid-configuration')).body;
  t.deepEqual(d.oap_protocol_versions_supported, ['1.0']);
  t.is(d.oversight_attestation_endpoint, `${w.url}/api/v1/oap/attestations`);
  t.is(d.oversight_attestation_heartbeat_endpoint, `${w.url}/api/v1/oap/attestations/heartbeat`);
  t.is(d.oversight_escalation_endpoint, `${w.url}/api/v1/oap/escalations`);
  t.is(d.oversight_revocation_endpoint, `${w.url}/api/v1/oap/revocations`);
  t.deepEqual(d.oversight_attestation_decisions_supported, ['allow', 'deny', 'escalate']);
  t.deepEqual(d.oversight_attestation_legal_bases_supported, ['consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests']);
});

test('an attestation is recorded and answered with a witness receipt anyone can verify', async (t) => {
  const a = await attester();
  const sent = body(a.touchpoint, 1);
  const res = await a.call('POST', '/api/v1/oap/attestations', sent);
  t.is(res.status, 201);
  t.like(res.body.attestation, { id: sent.attestation_id, sequence_number: 1, decision: 'allow', idempotent_replay: false });
  t.truthy(res.body.attestation.received_at);
  const { claims } = await verifyReceipt(res.body.receipt, { jwks: await jwks() });
  t.like(claims, {
    iss_role: 'witness',
    attestation_id: sent.attestation_id,
    touchpoint_id: a.touchpoint,
    agent_class: 'support-bot',
    action_class: 'refund.issue',
    decision: 'allow',
    legal_basis: 'contract',
    evidence_digest: sent.evidence_digest,
  });
  const entry = (await w.admin('GET', `/api/v1/log/records?from=${claims.log!.index}&to=${claims.log!.index + 1}`)).body.records[0];
  t.is(entry.type, 'attestation.received');
  const got = await a.call('GET', `/api/v1/oap/attestations/${sent.attestation_id}`);
  t.is(got.body.receipt, res.body.receipt);
});

test('the same attestation again answers 200 with the same receipt; the same id with another body is 409', async (t) => {
  const a = await attester();
  const sent = body(a.touchpoint, 1);
  const first = await a.call('POST', '/api/v1/oap/attestations', sent);
  t.is(await entriesAbout(sent.attestation_id), 1);
  const again = await a.call('POST', '/api/v1/oap/attestations', sent);
  t.is(again.status, 200);
  t.is(again.body.attestation.idempotent_replay, true);
  t.is(again.body.receipt, first.body.receipt);
  t.is(await entriesAbout(sent.attestation_id), 1, 'a replay writes nothing');
  const changed = await a.call('POST', '/api/v1/oap/attestations', { ...sent, decision: 'deny' });
  t.is(changed.status, 409);
  t.is(changed.body.error.reason_code, 'attestation_conflict');
});

const refusals: Array<[string, Record<string, unknown>, number, string, string]> = [
  ['a legal basis outside the six', { legal_basis: 'because' }, 422, 'legal_basis_invalid', 'legal_basis'],
  ['an evidence digest in uppercase hex', { evidence_digest: 'A'.repeat(64) }, 422, 'evidence_digest_invalid', 'evidence_digest'],
  ['an evidence digest of the wrong length', { evidence_digest: 'ab' }, 422, 'evidence_digest_invalid', 'evidence_digest'],
  ['decided_at more than 5 minutes ahead', { decided_at: new Date(Date.now() + 10 * 60_000).toISOString() }, 422, 'decided_at_in_future', 'decided_at'],
  ['decided_at that is no date', { decided_at: 'yesterday' }, 422, 'decided_at_invalid', 'decided_at'],
  ['an unknown decision', { decision: 'maybe' }, 422, 'invalid_value', 'decision'],
  ['a missing sequence number', { sequence_number: undefined }, 400, 'invalid_request', 'sequence_number'],
  ['an evidence digest that is a number', { evidence_digest: 5 }, 422, 'evidence_digest_invalid', 'evidence_digest'],
];
for (const [name, over, status, code, field] of refusals) {
  test(`an attestation with ${name} is refused (${status} ${code}) and nothing is recorded`, async (t) => {
    const a = await attester();
    const res = await a.call('POST', '/api/v1/oap/attestations', body(a.touchpoint, 1, over));
    t.is(res.status, status, res.text);
    t.is(res.body.error.reason_code, code);
    t.is(res.body.error.detail.field, field);
    t.is(await entriesAbout(`att-${a.touchpoint}-1`), 0);
    t.is((await a.call('GET', `/api/v1/oap/attestations/att-${a.touchpoint}-1`)).status, 404);
  });
}

test('sequence numbers only go up per touchpoint: lower or equal is 409, a gap is accepted and logged', async (t) => {
  const a = await attester();
  t.is((await a.call('POST', '/api/v1/oap/attestations', body(a.touchpoint, 5))).status, 201);
  const lower = await a.call('POST', '/api/v1/oap/attestations', body(a.touchpoint, 4));
  t.is(lower.status, 409);
  t.is(lower.body.error.reason_code, 'attestation_out_of_order');
  t.is(lower.body.error.detail.highest_seen, 5);
  const equal = await a.call('POST', '/api/v1/oap/attestations', { ...body(a.touchpoint, 5), attestation_id: 'another-id' });
  t.is(equal.body.error.reason_code, 'attestation_out_of_order');
  const gap = await a.call('POST', '/api/v1/oap/attestations', body(a.touchpoint, 9));
  t.is(gap.status, 201);
  t.deepEqual(gap.body.attestation.gap, { expected: 6, got: 9 });
  const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
  t.like(records.find((r: { type: string; data: { touchpoint_id?: string } }) => r.type === 'attestation.gap_detected' && r.data.touchpoint_id === a.touchpoint)?.data, { expected: 6, got: 9 });
  const tp = (await w.admin('GET', '/api/v1/oap/touchpoints')).body.touchpoints.find((x: { touchpoint_id: string }) => x.touchpoint_id === a.touchpoint);
  t.like(tp, { last_sequence: 9, gaps: 1, attestations: 2 });
});

test("an attester reports only for its own touchpoint, and reads only its own attestations", async (t) => {
  const a = await attester();
  const b = await attester();
  const res = await a.call('POST', '/api/v1/oap/attestations', body(b.touchpoint, 1));
  t.is(res.status, 403);
  t.is(res.body.error.detail.field, 'touchpoint_id');
  await b.call('POST', '/api/v1/oap/attestations', body(b.touchpoint, 1));
  t.is((await a.call('GET', `/api/v1/oap/attestations/att-${b.touchpoint}-1`)).status, 404);
  const agentKey = (await agent(w)).key;
  t.is((await caller(w.url, agentKey)('POST', '/api/v1/oap/attestations', body(a.touchpoint, 1))).status, 403);
});

test('an escalation opens an approval for the same approvers; the human decision gets a second receipt', async (t) => {
  const a = await attester();
  const alice = await approver(w, 'Alice');
  const sent = body(a.touchpoint, 1, { decision: 'escalate', context: { reason: 'refund above the limit', amount: 900 } });
  const res = await a.call('POST', '/api/v1/oap/attestations', sent);
  t.is(res.status, 201);
  const queue = (await alice.call('GET', '/api/v1/approvals')).body.approvals;
  const open = queue.find((x: { resource: string }) => x.resource === `touchpoint:${a.touchpoint}`);
  t.truthy(open);
  t.is(open.action, 'refund.issue');
  let got = (await a.call('GET', `/api/v1/oap/attestations/${sent.attestation_id}`)).body;
  t.is(got.escalation.status, 'pending');
  t.is(got.escalation.human_receipt, undefined);
  await alice.call('POST', `/api/v1/approvals/${open.id}/approve`, { comment: 'ok' });
  got = (await a.call('GET', `/api/v1/oap/attestations/${sent.attestation_id}`)).body;
  t.is(got.escalation.status, 'approved');
  const { claims } = await verifyReceipt(got.escalation.human_receipt, { jwks: await jwks() });
  t.like(claims, { iss_role: 'witness', attestation_id: sent.attestation_id, decision: 'allow' });
  t.is((claims.human_decision as { approvals: Array<{ approver_id: string }> }).approvals[0]!.approver_id, alice.id);
  const first = (await verifyReceipt(res.body.receipt, { jwks: await jwks() })).claims;
  t.not(claims.log!.index, first.log!.index, 'the human decision is its own log entry');
  const permission = await w.admin('GET', `/api/v1/permissions/${res.body.attestation.permission_id}`);
  t.is(permission.body.token, undefined, 'oversight approvals issue no token');
});

test('POST /oap/escalations takes an escalation on its own; a deny by a human is witnessed too', async (t) => {
  const a = await attester();
  const bob = await approver(w, 'Bob');
  const { decision: _d, ...rest } = body(a.touchpoint, 1);
  const res = await a.call('POST', '/api/v1/oap/escalations', rest);
  t.is(res.status, 201);
  t.is(res.body.attestation.decision, 'escalate');
  const open = (await bob.call('GET', '/api/v1/approvals')).body.approvals.find((x: { resource: string }) => x.resource === `touchpoint:${a.touchpoint}`);
  await bob.call('POST', `/api/v1/approvals/${open.id}/deny`, { reason: 'no' });
  const got = (await a.call('GET', `/api/v1/oap/attestations/${rest.attestation_id}`)).body;
  const { claims } = await verifyReceipt(got.escalation.human_receipt, { jwks: await jwks() });
  t.is(claims.decision, 'deny');
});

test('heartbeats record liveness; a touchpoint quiet for three cadences is flagged silent', async (t) => {
  const a = await attester();
  const beat = await a.call('POST', '/api/v1/oap/attestations/heartbeat', { touchpoint_id: a.touchpoint, cadence_seconds: 1 });
  t.is(beat.status, 200);
  const find = async () => (await w.admin('GET', '/api/v1/oap/touchpoints')).body.touchpoints.find((x: { touchpoint_id: string }) => x.touchpoint_id === a.touchpoint);
  t.like(await find(), { silent: false, cadence_seconds: 1 });
  t.like(await eventually(async () => ((await find()).silent ? find() : undefined), 'three quiet cadences'), { silent: true });
  await a.call('POST', '/api/v1/oap/attestations/heartbeat', { touchpoint_id: a.touchpoint });
  t.like(await find(), { silent: false });
  t.is((await a.call('POST', '/api/v1/oap/attestations/heartbeat', { touchpoint_id: 'someone-else' })).status, 403);
});

test('revocations (admin) take effect at once and are logged; scopes and reasons come from the advertised lists', async (t) => {
  const victim = await agent(w);
  t.is((await victim.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:a@b.c' })).status, 201);
  const a = await attester();
  t.is((await a.call('POST', '/api/v1/oap/revocations', { scope: 'agent_key', id: victim.id, reason: 'compromised' })).status, 403, 'an attester cannot lock agents out');
  const res = await w.admin('POST', '/api/v1/oap/revocations', { scope: 'agent_key', id: victim.id, reason: 'compromised' });
  t.is(res.status, 200);
  t.is(res.body.revoked_keys, 1);
  t.is((await victim.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:a@b.c' })).status, 401);
  t.is((await w.admin('POST', '/api/v1/oap/revocations', { scope: 'agent_key', id: victim.id, reason: 'because' })).status, 422);
  t.is((await w.admin('POST', '/api/v1/oap/revocations', { scope: 'grant', id: 'grt_x', reason: 'other' })).status, 404);
  const other = await attester();
  t.is((await w.admin('POST', '/api/v1/oap/revocations', { scope: 'attester', id: other.id, reason: 'decommissioned' })).status, 200);
  t.is((await other.call('POST', '/api/v1/oap/attestations', body(other.touchpoint, 1))).status, 401);
  const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
  t.true(records.some((r: { type: string; data: { id?: string } }) => r.type === 'revocation' && r.data.id === victim.id));
});

test('attestation ids are scoped to their touchpoint: two engines may use the same id', async (t) => {
  const a = await attester();
  const b = await attester();
  const id = 'shared-id-1';
  const [ra, rb] = await Promise.all([
    a.call('POST', '/api/v1/oap/attestations', { ...body(a.touchpoint, 1), attestation_id: id }),
    b.call('POST', '/api/v1/oap/attestations', { ...body(b.touchpoint, 1), attestation_id: id, decision: 'deny' }),
  ]);
  t.is(ra.status, 201);
  t.is(rb.status, 201);
  t.is((await a.call('GET', `/api/v1/oap/attestations/${id}`)).body.attestation.body.decision, 'allow');
  t.is((await b.call('GET', `/api/v1/oap/attestations/${id}`)).body.attestation.body.decision, 'deny');
  t.is((await w.admin('GET', `/api/v1/oap/attestations/${id}?touchpoint_id=${b.touchpoint}`)).body.attestation.body.decision, 'deny');
  t.is((await w.admin('GET', `/api/v1/oap/attestations/${id}`)).status, 400, 'admins name the touchpoint');
});

test('a touchpoint whose engine never reported is listed as silent', async (t) => {
  const a = await attester();
  const tp = (await w.admin('GET', '/api/v1/oap/touchpoints')).body.touchpoints.find((x: { touchpoint_id: string }) => x.touchpoint_id === a.touchpoint);
  t.like(tp, { silent: true, attestations: 0 });
});

test('an admin cannot revoke an escalation from an external engine: its approvers decide it', async (t) => {
  const a = await attester();
  const res = await a.call('POST', '/api/v1/oap/attestations', body(a.touchpoint, 1, { decision: 'escalate' }));
  const revoke = await w.admin('POST', '/api/v1/tokens/revoke', { permission_id: res.body.attestation.permission_id });
  t.is(revoke.status, 409);
});

test('OPA decision logs, gzip or plain: mapped to attestations, duplicates dropped, 413 over the limit', async (t) => {
  const a = await attester();
  const events = [
    { decision_id: `d-${a.touchpoint}-1`, path: 'payments/authz', input: { agent: { class: 'billing' }, amount: 5 }, result: { allow: true, legal_basis: 'contract' }, timestamp: new Date().toISOString() },
    { decision_id: `d-${a.touchpoint}-2`, path: 'payments/authz', input: { agent: { class: 'billing' } }, result: { allow: false }, timestamp: new Date().toISOString() },
    { decision_id: `d-${a.touchpoint}-3`, path: 'payments/authz', input: { agent: { class: 'billing' } }, result: { escalate: true, reasons: ['over the limit'] }, timestamp: new Date().toISOString() },
  ];
  const gz = await fetch(`${w.url}/api/v1/adapters/opa/logs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
    body: gzipSync(JSON.stringify(events)),
  });
  t.is(gz.status, 200);
  t.deepEqual(await gz.json(), { recorded: 3, duplicates: 0, rejected: [] });
  const again = await a.call('POST', '/api/v1/adapters/opa/logs', events);
  t.deepEqual(again.body, { recorded: 0, duplicates: 3, rejected: [] });
  const first = (await a.call('GET', `/api/v1/oap/attestations/d-${a.touchpoint}-1`)).body;
  t.like(first.attestation.body, { agent_class: 'billing', action_class: 'payments.authz', decision: 'allow', legal_basis: 'contract', sequence_number: 0 });
  t.is((await a.call('GET', `/api/v1/oap/attestations/d-${a.touchpoint}-2`)).body.attestation.body.legal_basis, 'legitimate_interests', 'the configured default');
  const third = (await a.call('GET', `/api/v1/oap/attestations/d-${a.touchpoint}-3`)).body;
  t.is(third.attestation.body.decision, 'escalate');
  t.is(third.escalation.status, 'pending');
  const big = await a.call('POST', '/api/v1/adapters/opa/logs', `[${'"x",'.repeat(300_000)}"x"]`);
  t.is(big.status, 413);
  const bomb = await fetch(`${w.url}/api/v1/adapters/opa/logs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
    body: gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20)),
  });
  t.is(bomb.status, 413, 'a small gzip that inflates past the cap');
});

test('an OPA upload with bad events records the good ones and rejects the rest one by one, so OPA is not stuck re-sending', async (t) => {
  const a = await attester();
  const now = new Date().toISOString();
  const good = { decision_id: `ok-${a.touchpoint}`, path: 'x/y', input: {}, result: { allow: true }, timestamp: now };
  const raw = `[${JSON.stringify(good)},
    {"decision_id": "deep", "path": "x/y", "input": ${'{"a":'.repeat(100)}1${'}'.repeat(100)}, "result": true},
    {"decision_id": "surrogate", "path": "x/\\ud800", "result": true},
    {"decision_id": "infinite", "path": "x/y", "input": {"n": 1e999}, "result": true},
    {"decision_id": "future", "path": "x/y", "result": true, "timestamp": "2099-01-01T00:00:00Z"},
    {"decision_id": "basis", "path": "x/y", "result": {"allow": true, "legal_basis": "because"}},
    {"path": "no id"}]`;
  const res = await a.call('POST', '/api/v1/adapters/opa/logs', raw);
  t.is(res.status, 200, res.text);
  t.is(res.body.recorded, 1, res.text);
  t.deepEqual(res.body.rejected.map((r: { decision_id: string }) => r.decision_id), ['deep', 'surrogate', 'infinite', 'future', 'basis', '']);
  t.is((await a.call('GET', `/api/v1/oap/attestations/ok-${a.touchpoint}`)).status, 200);
  const again = await a.call('POST', '/api/v1/adapters/opa/logs', raw);
  t.like(again.body, { recorded: 0, duplicates: 1 });
  const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
  t.true(records.some((r: { type: string; data: { touchpoint_id?: string } }) => r.type === 'attestation.rejected' && r.data.touchpoint_id === a.touchpoint));
});

test('discovery follows WRIT_PUBLIC_URL, path included', async (t) => {
  const other = await startWrit({ config: { publicUrl: 'https://writ.example.com/base' } });
  try {
    const d = (await other.call('GET', '/.well-known/openid-configuration')).body;
    t.is(d.issuer, 'https://writ.example.com/base');
    t.is(d.oversight_attestation_endpoint, 'https://writ.example.com/base/api/v1/oap/attestations');
  } finally {
    await other.close();
  }
});

test('the Cedar adapter turns a cedar-wasm decision into an attestation that Writ witnesses', async (t) => {
  const a = await attester();
  const request = { principal: { type: 'User', id: 'alice' }, action: { type: 'Action', id: 'view' }, resource: { type: 'Doc', id: 'd1' }, context: {} };
  const answer = cedar.isAuthorized({ ...request, policies: { staticPolicies: 'permit(principal, action, resource);' }, entities: [] });
  const attestation = attestationFromCedar({ request, answer, touchpointId: a.touchpoint, agentClass: 'reader', legalBasis: 'contract', sequenceNumber: 1 });
  t.is(attestation.decision, 'allow');
  t.regex(attestation.evidence_digest, /^[0-9a-f]{64}$/);
  const res = await submitAttestation(w.url, a.key, attestation);
  t.is(res.status, 201);
  const replay = await submitAttestation(w.url, a.key, attestation);
  t.is(replay.status, 200);
  t.is(replay.body.receipt, res.body.receipt);
  const { claims } = await verifyReceipt(res.body.receipt!, { jwks: await jwks() });
  t.is(claims.evidence_digest, attestation.evidence_digest);
  t.is(claims.action_class, 'view');
});

test('a retry after a crash between the write and the answer gets the first receipt back', async (t) => {
  const data = await tempDir();
  let server = await spawnWrit(data);
  const admin = caller(server.url, ADMIN);
  const created = (await admin('POST', '/api/v1/attesters', { name: 'crashy', touchpoint_id: 'tp-crash' })).body;
  const sent = body('tp-crash', 1);
  const first = await caller(server.url, created.api_key)('POST', '/api/v1/oap/attestations', sent);
  t.is(first.status, 201);
  server.child.kill('SIGKILL');
  await server.exited;
  // The receipt was written in the attestation's own batch: after the crash it is on disk with it.
  const store = await LevelStore.open(path.join(data, 'db'));
  const kept: string[] = [];
  for await (const [, value] of store.iterate({ gte: 'oap/receipt/', lt: 'oap/receipt/~' })) kept.push(value);
  await store.close();
  t.deepEqual(kept, [first.body.receipt]);
  server = await spawnWrit(data);
  try {
    const retry = await caller(server.url, created.api_key)('POST', '/api/v1/oap/attestations', sent);
    t.is(retry.status, 200);
    t.true(retry.body.attestation.idempotent_replay);
    t.is(retry.body.receipt, first.body.receipt, 'the very receipt first issued');
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  t.is((await writCli('log', 'verify', '--data', data)).code, 0);
});

test('the sample OPA upload in fixtures/ is accepted as OPA sends it', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const { ROOT } = await import('./helpers/writ.ts');
  const a = await attester();
  const upload = await readFile(path.join(ROOT, 'fixtures/opa/decision-log.json'), 'utf8');
  const res = await a.call('POST', '/api/v1/adapters/opa/logs', upload);
  t.is(res.status, 200);
  t.like(res.body, { recorded: 2, duplicates: 0 });
  const escalated = (await a.call('GET', '/api/v1/oap/attestations/7b1ac6c2-9b55-4c0f-9d0e-3a6d1a8b2f11')).body;
  t.is(escalated.escalation.status, 'pending');
});

test("an admin can reset a touchpoint's sequence, and the reset is logged", async (t) => {
  const a = await attester();
  t.is((await a.call('POST', '/api/v1/oap/attestations', body(a.touchpoint, 10))).status, 201);
  t.is((await a.call('POST', '/api/v1/oap/attestations', body(a.touchpoint, 3))).status, 409);
  t.is((await a.call('POST', `/api/v1/oap/touchpoints/${a.touchpoint}/reset`, {})).status, 403, 'not by the attester itself');
  const reset = await w.admin('POST', `/api/v1/oap/touchpoints/${a.touchpoint}/reset`, {});
  t.is(reset.status, 200);
  t.is(reset.body.last_sequence, -1);
  const after = await a.call('POST', '/api/v1/oap/attestations', body(a.touchpoint, 3));
  t.is(after.status, 201);
  t.is(after.body.attestation.gap, undefined, 'a reset sequence expects nothing, so no gap');
  const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
  t.like(records.find((r: { type: string; data: { touchpoint_id?: string } }) => r.type === 'touchpoint.sequence_reset' && r.data.touchpoint_id === a.touchpoint)?.data, { previous: 10, next: -1, by: { role: 'admin' } });
  t.is((await w.admin('POST', '/api/v1/oap/touchpoints/never-seen/reset', {})).status, 404);
});

test('a sequence number must stay below 2^53 − 1, so the next one is still exact', async (t) => {
  const a = await attester();
  const top = await a.call('POST', '/api/v1/oap/attestations', body(a.touchpoint, Number.MAX_SAFE_INTEGER));
  t.is(top.status, 422);
  t.is(top.body.error.detail.field, 'sequence_number');
  t.is((await a.call('POST', '/api/v1/oap/attestations', body(a.touchpoint, Number.MAX_SAFE_INTEGER - 1))).status, 201);
});
