import test from 'ava';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs/promises';
import path from 'node:path';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { Faults } from './helpers/faults.ts';
import { agent, approver, caller, eventually, startWrit, tempDir, type TestWrit } from './helpers/writ.ts';

/**
 * Revocation reaches what was issued: at once, in one log entry. Keys rotate without losing
 * history. Tokens are spent only by their agent or the resource server they name.
 */
let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(() => w?.close());

const email = { action: 'email.send', resource: 'email:client@acme.com' };
const transfer = { action: 'bank.transfer', resource: 'account:checking', value: 5, currency: 'EUR' };

async function resourceServer(name = 'mailer') {
  const res = await w.admin('POST', '/api/v1/resource-servers', { name });
  if (res.status !== 201) throw new Error(res.text);
  return { id: res.body.id as string, call: caller(w.url, res.body.api_key) };
}

const revoke = (scope: string, id: string) => w.admin('POST', '/api/v1/oap/revocations', { scope, id, reason: 'compromised' });
const logEntries = async (from: number) => (await w.admin('GET', `/api/v1/log/records?from=${from}`)).body.records as Array<{ type: string; data: any }>;

/** A receiver of outgoing webhooks, to see what revocations announce. */
async function hookReceiver(t: { teardown(fn: () => unknown): void }) {
  const received: any[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const hook = await w.admin('POST', '/api/v1/webhooks', { url, events: ['approval.denied'], secret: crypto.randomBytes(16).toString('hex') });
  t.teardown(() => w.admin('DELETE', `/api/v1/webhooks/${hook.body.id}`));
  return received;
}

test('revoking an agent kills its tokens and closes its open approvals, in the revocation\'s own log entry', async (t) => {
  const received = await hookReceiver(t);
  const a = await agent(w, { trust_tier: 'T2' });
  const alice = await approver(w, 'Alice');
  const rs = await resourceServer();
  const allowed = (await a.call('POST', '/api/v1/permissions', email)).body;
  const pending = (await a.call('POST', '/api/v1/permissions', transfer)).body;
  const before = w.server.writ.log.size;

  const revoked = await revoke('agent', a.id);
  t.is(revoked.status, 200);
  t.like(revoked.body, { scope: 'agent', id: a.id, revoked_keys: 1, tokens_revoked: 1, approvals_closed: 1 });
  // Other tests share this server: look at the entries about this agent only.
  const mentions = (e: { data: unknown }) => [a.id, allowed.id, pending.id].some((id) => JSON.stringify(e.data).includes(id));
  const entries = (await logEntries(before)).filter(mentions);
  t.deepEqual(entries.map((e) => e.type), ['revocation'], 'one log entry carries all of it');

  t.is((await a.call('POST', '/api/v1/permissions', email)).status, 401, 'its key is refused');
  const spent = await rs.call('POST', '/api/v1/tokens/consume', { token: allowed.token, ...email });
  t.is(spent.status, 410);
  t.is(spent.body.error.reason_code, 'token_revoked');
  const vote = await alice.call('POST', `/api/v1/approvals/${pending.approval.id}/approve`, {});
  t.is(vote.status, 409, 'its open approval can no longer be approved into a token');
  t.is((await w.admin('GET', `/api/v1/permissions/${pending.id}`)).body.status, 'denied');
  const announced = await eventually(() => received.find((e) => e.data.approval?.id === pending.approval.id), 'the approval.denied webhook');
  t.is(announced.data.by.vote, 'revoke');
});

test('a rotated key keeps the agent\'s tokens; revoking one key kills what that key obtained, and the agent gets a new one', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const rs = await resourceServer();
  const first = (await a.call('POST', '/api/v1/permissions', email)).body;
  const rotated = await w.admin('POST', `/api/v1/agents/${a.id}/keys`);
  t.is(rotated.status, 201);
  t.is(rotated.body.retired_key_ids.length, 1);
  t.is((await a.call('POST', '/api/v1/permissions', email)).status, 401, 'the old key is retired at once');
  const second = caller(w.url, rotated.body.api_key);
  t.is((await second('POST', '/api/v1/tokens/consume', { token: first.token, ...email })).status, 200, 'rotation is not revocation: the token still spends');

  const obtained = (await second('POST', '/api/v1/permissions', email)).body;
  const waiting = (await second('POST', '/api/v1/permissions', transfer)).body;
  const revoked = await revoke('agent_key', rotated.body.key_id);
  t.like(revoked.body, { revoked_keys: 1, tokens_revoked: 1, approvals_closed: 1 });
  t.is((await second('GET', `/api/v1/permissions/${obtained.id}`)).status, 401);
  t.is((await rs.call('POST', '/api/v1/tokens/consume', { token: obtained.token, ...email })).status, 410);
  t.is((await w.admin('GET', `/api/v1/permissions/${waiting.id}`)).body.status, 'denied');

  const third = caller(w.url, (await w.admin('POST', `/api/v1/agents/${a.id}/keys`)).body.api_key);
  t.is((await third('POST', '/api/v1/permissions', email)).body.status, 'approved', 'the agent itself was not revoked');
});

test("a revoked approver's key is refused and its votes on open approvals no longer count", async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const [alice, bob, carol] = [await approver(w, 'Alice'), await approver(w, 'Bob'), await approver(w, 'Carol')];
  const big = (await a.call('POST', '/api/v1/permissions', { ...transfer, value: 50_000 })).body;
  await alice.call('POST', `/api/v1/approvals/${big.approval.id}/approve`, {});
  t.is((await bob.call('POST', `/api/v1/approvals/${big.approval.id}/approve`, {})).body.status, 'delay');

  const revoked = await revoke('approver', alice.id);
  t.like(revoked.body, { scope: 'approver', revoked_keys: 1, votes_voided: 1 });
  t.is((await alice.call('GET', '/api/v1/approvals')).status, 401);
  const now = (await bob.call('GET', `/api/v1/approvals/${big.approval.id}`)).body;
  t.is(now.status, 'pending', 'without Alice the quorum is not met: the delay is off');
  t.deepEqual(now.votes.map((v: { name: string }) => v.name), ['Bob']);
  t.is((await carol.call('POST', `/api/v1/approvals/${big.approval.id}/approve`, {})).body.status, 'delay');
  t.is((await w.admin('POST', `/api/v1/approvers/${alice.id}/link-code`)).status, 409, 'a revoked approver gets no link code');
});

test('an agent spends only its own tokens; a resource server only those that name it or name none', async (t) => {
  const a = await agent(w);
  const b = await agent(w);
  const mailer = await resourceServer('mailer');
  const other = await resourceServer('other');
  const plain = (await a.call('POST', '/api/v1/permissions', email)).body;
  const stolen = await b.call('POST', '/api/v1/tokens/consume', { token: plain.token, ...email });
  t.is(stolen.status, 403);
  t.is(stolen.body.error.reason_code, 'forbidden');
  t.is((await w.admin('POST', '/api/v1/tokens/consume', { token: plain.token, ...email })).status, 403, 'not even an admin key');
  t.is((await other.call('POST', '/api/v1/tokens/consume', { token: plain.token, ...email })).status, 200, 'a token naming no audience');

  const addressed = (await a.call('POST', '/api/v1/permissions', { ...email, audience: mailer.id })).body;
  const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
  t.is((await verifyReceipt(addressed.receipt, { jwks, audience: mailer.id })).claims.aud, mailer.id);
  t.is((await other.call('POST', '/api/v1/tokens/consume', { token: addressed.token, ...email })).status, 403);
  t.is((await mailer.call('POST', '/api/v1/tokens/consume', { token: addressed.token, ...email })).status, 200);

  const unknown = await a.call('POST', '/api/v1/permissions', { ...email, audience: 'rs_nope' });
  t.is(unknown.status, 422);
  t.is(unknown.body.error.detail.field, 'audience');
});

test('approver and attester keys rotate too, and the old key stops at once', async (t) => {
  const alice = await approver(w, 'Rotating');
  const rotated = await w.admin('POST', `/api/v1/approvers/${alice.id}/keys`);
  t.is(rotated.status, 201);
  t.is((await alice.call('GET', '/api/v1/approvals')).status, 401);
  t.is((await caller(w.url, rotated.body.api_key)('GET', '/api/v1/approvals')).status, 200);
  const att = (await w.admin('POST', '/api/v1/attesters', { name: 'engine', touchpoint_id: 'rot-tp' })).body;
  const next = await w.admin('POST', `/api/v1/attesters/${att.id}/keys`);
  t.is(next.status, 201);
  const heartbeat = { touchpoint_id: 'rot-tp' };
  t.is((await caller(w.url, att.api_key)('POST', '/api/v1/oap/attestations/heartbeat', heartbeat)).status, 401);
  t.is((await caller(w.url, next.body.api_key)('POST', '/api/v1/oap/attestations/heartbeat', heartbeat)).status, 200);
  t.is((await w.admin('POST', '/api/v1/agents/agt_nope/keys')).status, 404);
});

test('requests in flight when their agent is revoked get no token that can be spent', async (t) => {
  const dir = await tempDir('writ-policies-');
  // Slow on purpose (a few million comparisons): revocation lands while decisions are under way.
  await fs.writeFile(
    path.join(dir, 'slow.rego'),
    'package writ\n\nr := numbers.range(1, 1500)\n\ndefault decision := {"allow": false}\n\ndecision := {"allow": true} if {\n\tinput.action == "email.send"\n\tcount([1 | some i in r; some j in r; i == j]) > 0\n}\n',
  );
  const slow = await startWrit({ policies: dir });
  try {
    const a = await agent(slow);
    const rs = caller(slow.url, (await slow.admin('POST', '/api/v1/resource-servers', { name: 'rs' })).body.api_key);
    const asks = Array.from({ length: 8 }, () => a.call('POST', '/api/v1/permissions', email));
    await Promise.race(asks);
    t.is((await slow.admin('POST', '/api/v1/oap/revocations', { scope: 'agent', id: a.id, reason: 'compromised' })).status, 200);
    const answers = await Promise.all(asks);
    t.true(answers.every((r) => r.status === 201 || r.status === 401), answers.map((r) => r.status).join(' '));
    for (const r of answers.filter((x) => x.status === 201 && x.body.token)) {
      t.is((await rs('POST', '/api/v1/tokens/consume', { token: r.body.token, ...email })).status, 410, `${r.body.id} was decided before the revocation and dies with it`);
    }
  } finally {
    await slow.close();
  }
});

test('a rotation racing a revocation never leaves the revoked agent a working key', async (t) => {
  const a = await agent(w);
  const [rotated, revoked] = await Promise.all([w.admin('POST', `/api/v1/agents/${a.id}/keys`), revoke('agent', a.id)]);
  t.is(revoked.status, 200);
  if (rotated.status === 201) t.is((await caller(w.url, rotated.body.api_key)('POST', '/api/v1/permissions', email)).status, 401);
  else t.is(rotated.status, 409);
  t.is((await w.admin('POST', `/api/v1/agents/${a.id}/keys`)).status, 409, 'a revoked agent gets no new key');
});

test('a key retired by a rotation can still be revoked, and what it obtained goes with it', async (t) => {
  const a = await agent(w);
  const rs = await resourceServer();
  const obtained = (await a.call('POST', '/api/v1/permissions', email)).body;
  const oldKeyId = /^writ_agent_([0-9a-f]{16})\./.exec(a.key)![1]!;
  t.is((await w.admin('POST', `/api/v1/agents/${a.id}/keys`)).status, 201);
  const revoked = await revoke('agent_key', oldKeyId);
  t.is(revoked.status, 200);
  t.is(revoked.body.tokens_revoked, 1);
  t.is((await rs.call('POST', '/api/v1/tokens/consume', { token: obtained.token, ...email })).status, 410);
});

test('a rotation that could not be written leaves the old key working', async (t) => {
  const faults = new Faults();
  const own = await startWrit({ hooks: { wrapDriver: faults.wrap } });
  try {
    const a = await agent(own);
    faults.failWrites(1);
    t.is((await own.admin('POST', `/api/v1/agents/${a.id}/keys`)).status, 503);
    await eventually(async () => (await own.call('GET', '/healthz')).status === 200, 'storage to recover');
    t.is((await a.call('POST', '/api/v1/permissions', email)).status, 201, 'nothing changed');
  } finally {
    await own.close();
  }
});
