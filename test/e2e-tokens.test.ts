import test from 'ava';
import { agent, eventually, startWrit, type TestWrit } from './helpers/writ.ts';

/** One-time tokens: exactly once, only inside their scope, never after expiry or revocation. */
let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(() => w?.close());

async function allowed(scope: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const a = await agent(w);
  const res = await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:client@acme.com', scope, ...extra });
  if (res.body.status !== 'approved') throw new Error(res.text);
  return { a, token: res.body.token as string, id: res.body.id as string, expiresAt: res.body.expires_at as string };
}

const use = (token: string, u: Record<string, unknown> = {}, over: Record<string, unknown> = {}) => ({
  token,
  action: 'email.send',
  resource: 'email:client@acme.com',
  use: u,
  ...over,
});

test('of 20 concurrent consumes of one token exactly one succeeds', async (t) => {
  const { a, token } = await allowed();
  const answers = await Promise.all(Array.from({ length: 20 }, () => a.call('POST', '/api/v1/tokens/consume', use(token))));
  const statuses = answers.map((r) => r.status).sort();
  t.is(statuses.filter((s) => s === 200).length, 1);
  t.is(statuses.filter((s) => s === 409).length, 19);
});

test('a use beyond a max_ bound is refused with 403 and leaves the token unspent', async (t) => {
  const { a, token } = await allowed({ max_emails: 1 });
  const over = await a.call('POST', '/api/v1/tokens/consume', use(token, { emails: 2 }));
  t.is(over.status, 403);
  t.is(over.body.error.reason_code, 'scope_violation');
  t.regex(over.body.error.message, /use\.emails/);
  t.is((await a.call('POST', '/api/v1/tokens/consume', use(token, { emails: 1 }))).status, 200);
});

test('a _pattern must match the whole used value', async (t) => {
  const { a, token } = await allowed({ subject_pattern: 'Invoice [0-9]+' });
  t.is((await a.call('POST', '/api/v1/tokens/consume', use(token, { subject: 'Invoice 12; and more' }))).status, 403);
  t.is((await a.call('POST', '/api/v1/tokens/consume', use(token, { subject: 'Invoice 12' }))).status, 200);
});

test('_allowed: false forbids a use field, and other scope keys must be equal', async (t) => {
  const { a, token } = await allowed({ attachments_allowed: false, from: 'billing@acme.com' });
  t.is((await a.call('POST', '/api/v1/tokens/consume', use(token, { from: 'billing@acme.com', attachments: ['a.pdf'] }))).status, 403);
  t.is((await a.call('POST', '/api/v1/tokens/consume', use(token, { from: 'ceo@acme.com' }))).status, 403);
  t.is((await a.call('POST', '/api/v1/tokens/consume', use(token, { from: 'billing@acme.com' }))).status, 200);
});

test('a use that leaves out a constrained key, or goes below zero, is outside the scope', async (t) => {
  const { a, token } = await allowed({ max_value: 100, recipient: 'a@b.c', subject_pattern: 'Invoice .*' });
  const missing = await a.call('POST', '/api/v1/tokens/consume', use(token, {}));
  t.is(missing.status, 403);
  t.deepEqual(missing.body.error.detail.violations.length, 3);
  t.is((await a.call('POST', '/api/v1/tokens/consume', use(token, { value: -5, recipient: 'a@b.c', subject: 'Invoice 1' }))).status, 403);
  t.is((await a.call('POST', '/api/v1/tokens/consume', use(token, { value: 5, recipient: 'a@b.c', subject: 'Invoice 1' }))).status, 200);
});

test('an agent-chosen pattern cannot stall the server: matching is linear time', async (t) => {
  const { a, token } = await allowed({ subject_pattern: '(a|a)*' });
  const started = Date.now();
  const res = await a.call('POST', '/api/v1/tokens/consume', use(token, { subject: `${'a'.repeat(4000)}b` }));
  t.is(res.status, 403);
  t.true(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
});

test('a token is bound to its action and resource', async (t) => {
  const { a, token } = await allowed();
  const other = await a.call('POST', '/api/v1/tokens/consume', use(token, {}, { resource: 'email:other@acme.com' }));
  t.is(other.status, 403);
  t.is(other.body.error.reason_code, 'resource_mismatch');
  const action = await a.call('POST', '/api/v1/tokens/consume', use(token, {}, { action: 'email.delete' }));
  t.is(action.status, 403);
  t.is(action.body.error.reason_code, 'action_mismatch');
});

test('an expired token is refused with 410', async (t) => {
  const { a, token, id, expiresAt } = await allowed({}, { ttl: 1 });
  await eventually(() => Date.now() >= Date.parse(expiresAt), 'the token to expire');
  const late = await a.call('POST', '/api/v1/tokens/consume', use(token));
  t.is(late.status, 410);
  t.is(late.body.error.reason_code, 'token_expired');
  t.is((await a.call('GET', `/api/v1/permissions/${id}`)).body.status, 'expired');
});

test('an unknown token is a 404 that reveals nothing', async (t) => {
  const a = await agent(w);
  const res = await a.call('POST', '/api/v1/tokens/consume', use('wtk_' + 'A'.repeat(43)));
  t.is(res.status, 404);
  t.is(res.body.error.reason_code, 'token_invalid');
});

test('a token is stored only as a hash', async (t) => {
  const { token } = await allowed();
  const raw: string[] = [];
  for await (const [key, value] of w.server.writ.store.iterate({})) raw.push(key, value);
  t.false(raw.some((s) => s.includes(token)));
});
