import test from 'ava';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { agent, approver, eventually, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * The full lifecycle of a permission for each tier, against the real server: decision, token,
 * receipt, approvals, consumption.
 */
let w: TestWrit;
test.before(async () => {
  w = await startWrit({ config: { criticalDelay: 1 } });
});
test.after.always(() => w?.close());

const jwksOf = async () => (await w.call('GET', '/.well-known/jwks.json')).body;

test('standard tier: an allowed action gets a one-time token and a receipt that verifies offline', async (t) => {
  const a = await agent(w);
  const res = await a.call('POST', '/api/v1/permissions', {
    action: 'email.send',
    resource: 'email:client@acme.com',
    scope: { max_emails: 1 },
    context: { reason: 'send the invoice' },
  });
  t.is(res.status, 201);
  t.is(res.body.status, 'approved');
  t.is(res.body.decision, 'allow');
  t.is(res.body.tier, 'standard');
  t.regex(res.body.token, /^wtk_[A-Za-z0-9_-]{43}$/);
  t.deepEqual(res.body.policy.determining, ['email-standard']);
  t.deepEqual(
    res.body.trace.map((s: { step: string }) => s.step),
    ['wire_version', 'authenticate', 'validate_body', 'dpop_proof', 'grant_status', 'agent_credential', 'action_bounds', 'scope_check', 'rate_limit', 'value_bounds', 'time_bounds', 'sequence_bounds', 'reputation_bounds', 'policy_evaluation', 'escalation_routing'],
  );

  const verified = await verifyReceipt(res.body.receipt, { jwks: await jwksOf(), issuer: w.url });
  t.is(verified.header.typ, 'oap-receipt+jwt');
  t.like(verified.claims, {
    iss_role: 'authorizer',
    sub: a.id,
    oap_ver: '1.0',
    permission_id: res.body.id,
    action: 'email.send',
    resource: 'email:client@acme.com',
    decision: 'allow',
    tier: 'standard',
    single_use: true,
    scope: { max_emails: 1 },
  });
  t.is(verified.claims.policy?.hash, res.body.policy.hash);
  t.is(typeof verified.claims.log?.index, 'number');

  const used = await a.call('POST', '/api/v1/tokens/consume', { token: res.body.token, action: 'email.send', resource: 'email:client@acme.com', use: { emails: 1 } });
  t.is(used.status, 200);
  t.like(used.body, { valid: true, permission_id: res.body.id });
  const again = await a.call('POST', '/api/v1/tokens/consume', { token: res.body.token, action: 'email.send', resource: 'email:client@acme.com' });
  t.is(again.status, 409);
  t.is(again.body.error.reason_code, 'token_used');
  const after = await a.call('GET', `/api/v1/permissions/${res.body.id}`);
  t.is(after.body.status, 'used');
  t.is(after.body.token, undefined);
});

test('a forbidden action is denied with the forbidding policy named, and gets no token', async (t) => {
  const a = await agent(w, { trust_tier: 'T3' });
  const res = await a.call('POST', '/api/v1/permissions', { action: 'shell.execute', resource: 'env:production' });
  t.is(res.status, 201);
  t.is(res.body.status, 'denied');
  t.is(res.body.decision, 'deny');
  t.is(res.body.token, undefined);
  t.is(res.body.receipt, undefined);
  t.deepEqual(res.body.policy.determining, ['no-shell']);
  t.deepEqual(res.body.policy.languages, ['cedar'], 'the decision names the language that determined it');
  t.is(res.body.failure, undefined, 'a policy deny is not a failure');
  const last = res.body.trace.at(-1);
  t.like(last, { step: 'policy_evaluation', outcome: 'deny' });
});

test('an action no policy permits is denied by default', async (t) => {
  const a = await agent(w);
  const res = await a.call('POST', '/api/v1/permissions', { action: 'db.drop', resource: 'table:users' });
  t.is(res.body.status, 'denied');
  t.regex(res.body.reasons[0], /no Cedar policy permits/);
});

test('sensitive tier: the request waits for one approver, then the agent gets token and receipt naming the approver', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const alice = await approver(w, 'Alice');
  const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 500, currency: 'EUR', context: { invoice_id: 'INV-7' } });
  t.is(res.body.status, 'pending');
  t.is(res.body.decision, 'escalate');
  t.is(res.body.tier, 'sensitive');
  t.is(res.body.token, undefined);
  t.like(res.body.approval, { tier: 'sensitive', required: 1, status: 'pending' });

  const queue = await alice.call('GET', '/api/v1/approvals?status=pending');
  t.true(queue.body.approvals.some((x: { id: string }) => x.id === res.body.approval.id));

  const voted = await alice.call('POST', `/api/v1/approvals/${res.body.approval.id}/approve`, { comment: 'invoice checked' });
  t.is(voted.status, 200);
  t.is(voted.body.status, 'approved');

  const now = await a.call('GET', `/api/v1/permissions/${res.body.id}`);
  t.is(now.body.status, 'approved');
  t.regex(now.body.token, /^wtk_/);
  const { claims } = await verifyReceipt(now.body.receipt, { jwks: await jwksOf() });
  t.is(claims.tier, 'sensitive');
  t.is(claims.value, 500);
  t.is(claims.currency, 'EUR');
  t.deepEqual(claims.approvals?.map((x) => x.approver_id), [alice.id]);

  const used = await a.call('POST', '/api/v1/tokens/consume', { token: now.body.token, action: 'bank.transfer', resource: 'account:checking', use: { value: 500, currency: 'EUR' } });
  t.is(used.status, 200);
});

test('critical tier: two different approvers, then the delay, then approved', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const alice = await approver(w, 'Alice');
  const bob = await approver(w, 'Bob');
  const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 25_000, currency: 'EUR' });
  t.is(res.body.tier, 'critical');
  t.deepEqual(res.body.policy.determining.sort(), ['bank-large-critical', 'bank-sensitive']);
  const id = res.body.approval.id;

  t.is((await alice.call('POST', `/api/v1/approvals/${id}/approve`, {})).body.status, 'pending');
  const twice = await alice.call('POST', `/api/v1/approvals/${id}/approve`, {});
  t.is(twice.status, 409);
  t.is(twice.body.error.reason_code, 'already_voted');
  const quorum = await bob.call('POST', `/api/v1/approvals/${id}/approve`, {});
  t.is(quorum.body.status, 'delay');
  t.truthy(quorum.body.delay_until);
  const carol = await approver(w, 'Carol');
  const lateDeny = await carol.call('POST', `/api/v1/approvals/${id}/deny`, {});
  t.is(lateDeny.status, 409);
  t.regex(lateDeny.body.error.message, /critical delay .* can still cancel/);
  t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.status, 'pending');

  const settled = await a.call('GET', `/api/v1/permissions/${res.body.id}?wait=5`);
  t.is(settled.body.status, 'approved');
  const { claims } = await verifyReceipt(settled.body.receipt, { jwks: await jwksOf() });
  t.deepEqual(claims.approvals?.map((x) => x.approver_id).sort(), [alice.id, bob.id].sort());
});

test('critical tier: any approver can cancel during the delay, and the request is denied', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const [alice, bob, carol] = [await approver(w, 'Alice'), await approver(w, 'Bob'), await approver(w, 'Carol')];
  const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:savings', value: 50_000, currency: 'EUR' });
  const id = res.body.approval.id;
  const early = await carol.call('POST', `/api/v1/approvals/${id}/cancel`, {});
  t.is(early.body.error.reason_code, 'not_in_delay');
  await alice.call('POST', `/api/v1/approvals/${id}/approve`, {});
  const delayed = await bob.call('POST', `/api/v1/approvals/${id}/approve`, {});
  const cancelled = await carol.call('POST', `/api/v1/approvals/${id}/cancel`, { reason: 'wrong account' });
  t.is(cancelled.status, 200);
  t.is(cancelled.body.status, 'cancelled');
  // Past the moment the delay would have ended, the cancelled request must still be denied.
  await eventually(() => Date.now() > Date.parse(delayed.body.delay_until) + 100, 'the end of the delay');
  const after = await a.call('GET', `/api/v1/permissions/${res.body.id}`);
  t.is(after.body.status, 'denied');
  t.is(after.body.token, undefined);
});

test('one deny ends an approval, and later votes are refused', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const [alice, bob] = [await approver(w, 'Alice'), await approver(w, 'Bob')];
  const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 10 });
  const id = res.body.approval.id;
  t.is((await alice.call('POST', `/api/v1/approvals/${id}/deny`, { reason: 'not expected' })).body.status, 'denied');
  const late = await bob.call('POST', `/api/v1/approvals/${id}/approve`, {});
  t.is(late.status, 409);
  t.is(late.body.error.reason_code, 'already_decided');
  t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.status, 'denied');
});

test('a request nobody decides expires when its approval times out (fail closed)', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 10, approval_timeout: 1 });
  t.is(res.body.status, 'pending');
  const later = await a.call('GET', `/api/v1/permissions/${res.body.id}?wait=5`);
  t.is(later.body.status, 'expired');
  t.is(later.body.approval.status, 'expired');
});

test('wait long-polls a new request until a human decides', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const alice = await approver(w, 'Alice');
  const asking = a.call('POST', '/api/v1/permissions', { action: 'bank.pay', resource: 'api:stripe.com', value: 20, wait: 10 });
  const pending = await eventually(
    async () => (await alice.call('GET', '/api/v1/approvals')).body.approvals.find((x: { action: string; request: { agent: { id: string } } }) => x.action === 'bank.pay' && x.request.agent.id === a.id),
    'the pending request in the queue',
  );
  await alice.call('POST', `/api/v1/approvals/${pending.id}/approve`, {});
  const answer = await asking;
  t.is(answer.status, 201);
  t.is(answer.body.status, 'approved');
  t.regex(answer.body.token, /^wtk_/);
});

test('an agent can withdraw its pending request and revoke an unused token', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const pending = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 1 });
  const withdrawn = await a.call('POST', `/api/v1/permissions/${pending.body.id}/cancel`, {});
  t.is(withdrawn.body.status, 'denied');
  const queue = await w.admin('GET', '/api/v1/approvals');
  t.false(queue.body.approvals.some((x: { id: string }) => x.id === pending.body.approval.id));

  const allowed = await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:x@y.z' });
  const revoked = await a.call('POST', '/api/v1/tokens/revoke', { permission_id: allowed.body.id });
  t.is(revoked.body.status, 'revoked');
  const use = await a.call('POST', '/api/v1/tokens/consume', { token: allowed.body.token, action: 'email.send', resource: 'email:x@y.z' });
  t.is(use.status, 410);
  t.is(use.body.error.reason_code, 'token_revoked');
});

test("an agent cannot see or revoke another agent's permission", async (t) => {
  const a = await agent(w);
  const b = await agent(w);
  const mine = await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:x@y.z' });
  t.is((await b.call('GET', `/api/v1/permissions/${mine.body.id}`)).status, 404);
  t.is((await b.call('POST', '/api/v1/tokens/revoke', { permission_id: mine.body.id })).status, 404);
  t.is((await a.call('GET', `/api/v1/permissions/${mine.body.id}`)).status, 200);
});

test('withdrawing a request whose approval has just timed out answers 409 expired', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 3, approval_timeout: 1 });
  await eventually(() => Date.now() >= Date.parse(res.body.expires_at), 'the approval timeout');
  const late = await a.call('POST', `/api/v1/permissions/${res.body.id}/cancel`, {});
  t.is(late.status, 409);
  t.is(late.body.error.detail.status, 'expired');
});
