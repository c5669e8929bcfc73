import test from 'ava';
import path from 'node:path';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { LevelStore } from '../src/store/level.ts';
import { agent, approver, caller, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * What was decided is the ceiling of what the token can do: the value and currency a human
 * approved are bound into the token, leaving a bound out never buys an easier tier, and an
 * approval covers exactly the request it showed.
 */
let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(() => w?.close());

const transfer = { action: 'bank.transfer', resource: 'account:checking' };

async function approvedTransfer(request: Record<string, unknown>) {
  const a = await agent(w, { trust_tier: 'T2' });
  const alice = await approver(w, 'Alice');
  const asked = await a.call('POST', '/api/v1/permissions', { ...transfer, ...request });
  await alice.call('POST', `/api/v1/approvals/${asked.body.approval.id}/approve`, {});
  const now = await a.call('GET', `/api/v1/permissions/${asked.body.id}`);
  return { a, asked: asked.body, now: now.body };
}

test('a token approved for a value spends at most that value, in that currency, and a use must say both', async (t) => {
  const { a, asked, now } = await approvedTransfer({ value: 5, currency: 'EUR' });
  t.is(asked.tier, 'sensitive');
  const consume = (use: Record<string, unknown>) => a.call('POST', '/api/v1/tokens/consume', { token: now.token, ...transfer, use });
  for (const use of [{ value: 1_000_000, currency: 'EUR' }, {}, { value: 5 }, { value: 5, currency: 'USD' }]) {
    const refused = await consume(use);
    t.is(refused.status, 403, JSON.stringify(use));
    t.is(refused.body.error.reason_code, 'scope_violation');
  }
  t.is((await consume({ value: 5, currency: 'EUR' })).status, 200);
});

test('a value decided without a currency binds the use to no currency', async (t) => {
  const { a, now } = await approvedTransfer({ value: 5 });
  const consume = (use: Record<string, unknown>) => a.call('POST', '/api/v1/tokens/consume', { token: now.token, ...transfer, use });
  t.is((await consume({ value: 5, currency: 'JPY' })).status, 403, 'it cannot become 5 of some other unit');
  t.is((await consume({ value: 5 })).status, 200);
});

test('a money request that names no value is critical, so leaving it out never buys a single approval', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const res = await a.call('POST', '/api/v1/permissions', transfer);
  t.is(res.body.decision, 'escalate');
  t.is(res.body.tier, 'critical');
  t.is(res.body.approval.required, 2);
});

test('a marketing agent that leaves out its bound is refused, like one that asks for bulk', async (t) => {
  const a = await agent(w, { class: 'marketing', trust_tier: 'T3' });
  const email = { action: 'email.send', resource: 'email:list@acme.com' };
  t.is((await a.call('POST', '/api/v1/permissions', email)).body.decision, 'deny');
  t.is((await a.call('POST', '/api/v1/permissions', { ...email, scope: { max_emails: 500 } })).body.decision, 'deny');
  t.is((await a.call('POST', '/api/v1/permissions', { ...email, scope: { max_emails: 50 } })).body.decision, 'allow');
});

test('a scope that names another currency than the request is refused', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const res = await a.call('POST', '/api/v1/permissions', { ...transfer, value: 5, currency: 'EUR', scope: { currency: 'USD' } });
  t.is(res.status, 422);
  t.is(res.body.error.detail.field, 'scope.currency');
});

test('approvers see the request they decide, with its digest; a vote for another digest is refused', async (t) => {
  const a = await agent(w, { name: 'payer', class: 'finance', trust_tier: 'T2' });
  const alice = await approver(w, 'Alice');
  const asked = (await a.call('POST', '/api/v1/permissions', { ...transfer, value: 42, currency: 'EUR', context: { reason: 'invoice 7' } })).body;
  const shown = (await alice.call('GET', `/api/v1/approvals/${asked.approval.id}`)).body;
  t.like(shown.request, {
    permission_id: asked.id,
    agent: { name: 'payer', class: 'finance', trust_tier: 'T2' },
    action: 'bank.transfer',
    resource: 'account:checking',
    value: 42,
    currency: 'EUR',
    context: { reason: 'invoice 7' },
    policy: { escalated_by: ['bank-sensitive'] },
  });
  t.regex(shown.request_digest, /^[A-Za-z0-9+/]{43}=$/);
  t.is(shown.request.digest, shown.request_digest);
  const queued = (await alice.call('GET', '/api/v1/approvals')).body.approvals.find((x: { id: string }) => x.id === asked.approval.id);
  t.is(queued.request.value, 42, 'the queue shows the same');

  const wrong = await alice.call('POST', `/api/v1/approvals/${asked.approval.id}/approve`, { request_digest: 'A'.repeat(43) + '=' });
  t.is(wrong.status, 409);
  t.is(wrong.body.error.reason_code, 'request_mismatch');
  const right = await alice.call('POST', `/api/v1/approvals/${asked.approval.id}/approve`, { request_digest: shown.request_digest });
  t.is(right.status, 200);
  t.is(right.body.status, 'approved');
});

test("a permission's decision and its receipt's decision agree once humans have decided", async (t) => {
  const { asked, now } = await approvedTransfer({ value: 7, currency: 'EUR' });
  t.is(asked.decision, 'escalate');
  t.is(now.decision, 'allow');
  t.is(now.policy_decision, 'escalate');
  const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
  t.is((await verifyReceipt(now.receipt, { jwks })).claims.decision, now.decision);
});

test('a request changed in storage after approvers saw it gets no token', async (t) => {
  const own = await startWrit();
  const a = await agent(own, { trust_tier: 'T2' });
  const alice = await approver(own, 'Alice');
  const asked = (await a.call('POST', '/api/v1/permissions', { ...transfer, value: 10, currency: 'EUR' })).body;
  await own.close();
  // Someone with the disk raises the amount of the pending request.
  const store = await LevelStore.open(path.join(own.data, 'db'));
  const record = JSON.parse((await store.get(`perm/${asked.id}`))!);
  await store.batch([{ type: 'put', key: `perm/${asked.id}`, value: JSON.stringify({ ...record, value: 1_000_000 }) }], { sync: true });
  await store.close();
  const again = await startWrit({ data: own.data });
  try {
    const voted = await caller(again.url, alice.key)('POST', `/api/v1/approvals/${asked.approval.id}/approve`, {});
    t.is(voted.body.status, 'denied');
    const now = (await caller(again.url, a.key)('GET', `/api/v1/permissions/${asked.id}`)).body;
    t.is(now.status, 'denied');
    t.is(now.token, undefined);
    t.true(now.reasons.some((r: string) => /changed after the approvers saw it/.test(r)));
  } finally {
    await again.close();
  }
});
