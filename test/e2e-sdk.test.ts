import test from 'ava';
import { WritApiError, WritClient, WritTimeoutError } from 'writ/client';
import { verifyReceipt } from 'writ/verify';
import { agent, approver, eventually, startWrit, type TestWrit } from './helpers/writ.ts';

/** The SDK as an agent builder imports it: `writ/client` and `writ/verify` from package exports. */
let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(() => w?.close());

test('requestPermission returns the token at once for a standard action, and consume spends it', async (t) => {
  const a = await agent(w);
  const client = new WritClient({ url: w.url, apiKey: a.key });
  const p = await client.requestPermission({ action: 'email.send', resource: 'email:sdk@acme.com', scope: { max_emails: 1 } });
  t.is(p.status, 'approved');
  const used = await client.consume({ token: p.token!, action: 'email.send', resource: 'email:sdk@acme.com', use: { emails: 1 } });
  t.true(used.valid);
  const { claims } = await verifyReceipt(used.receipt, { jwksUrl: `${w.url}/.well-known/jwks.json` });
  t.is(claims.permission_id, p.id);
  const error = await t.throwsAsync(client.consume({ token: p.token!, action: 'email.send', resource: 'email:sdk@acme.com' }), { instanceOf: WritApiError });
  t.is(error!.reasonCode, 'token_used');
  t.is(error!.status, 409);
});

test('waitForApproval resolves when a human approves', async (t) => {
  const a = await agent(w, { trust_tier: 'T3' });
  const alice = await approver(w, 'Alice');
  const client = new WritClient({ url: w.url, apiKey: a.key });
  const asked = client.requestPermission({ action: 'bank.transfer', resource: 'account:ops', value: 42, currency: 'EUR', waitForApproval: true, timeout: 20 });
  const open = await eventually(async () => (await alice.call('GET', '/api/v1/approvals')).body.approvals.find((x: { resource: string }) => x.resource === 'account:ops'), 'the approval');
  await alice.call('POST', `/api/v1/approvals/${open.id}/approve`, {});
  const decided = await asked;
  t.is(decided.status, 'approved');
  t.truthy(decided.token);
});

test('waitForApproval rejects with a clear error when nobody decides in time', async (t) => {
  const a = await agent(w, { trust_tier: 'T3' });
  const client = new WritClient({ url: w.url, apiKey: a.key });
  const error = await t.throwsAsync(client.requestPermission({ action: 'bank.transfer', resource: 'account:slow', value: 1, waitForApproval: true, timeout: 1 }), {
    instanceOf: WritTimeoutError,
  });
  t.regex(error!.message, /still pending/);
  t.is(error!.permission.status, 'pending');
});

test('bad input surfaces as WritApiError with the reason code', async (t) => {
  const a = await agent(w);
  const client = new WritClient({ url: w.url, apiKey: a.key });
  const error = await t.throwsAsync(client.requestPermission({ action: 'nope', resource: 'email:x@y.z' }), { instanceOf: WritApiError });
  t.is(error!.reasonCode, 'invalid_action');
  t.is(error!.detail?.field, 'action');
});
