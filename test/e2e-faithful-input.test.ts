import test from 'ava';
import { agent, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * What an agent sends is decided, stored and signed as sent, or refused: never quietly rewritten
 * into something else (a dropped key, a replaced byte, a last-wins duplicate, a rounded number)
 * and never accepted in a form that displays as something else to the person approving it.
 * Serial, so that "nothing was recorded" is about this test's request alone.
 */
let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(() => w?.close());

const P = '/api/v1/permissions';

async function refusedWithNothingRecorded(t: import('ava').ExecutionContext, send: () => Promise<{ status: number; body: any }>) {
  const before = w.server.writ.log.size;
  const res = await send();
  t.is(w.server.writ.log.size, before, 'nothing was recorded');
  t.is(res.body.token, undefined, 'no token was issued');
  return res;
}

test.serial('a __proto__ key in scope is refused, so it cannot turn a bounded request into an unbounded token', async (t) => {
  const a = await agent(w);
  const res = await refusedWithNothingRecorded(t, () => a.call('POST', P, '{"action":"email.send","resource":"email:a@b.c","scope":{"__proto__":{"max_emails":1}}}'));
  t.is(res.status, 422);
  t.is(res.body.error.reason_code, 'invalid_value');
  t.is(res.body.error.detail.field, 'scope.__proto__');
  // The same bound written plainly is kept, and holds.
  const bounded = await a.call('POST', P, { action: 'email.send', resource: 'email:a@b.c', scope: { max_emails: 1 } });
  t.deepEqual(bounded.body.scope, { max_emails: 1 });
  const over = await a.call('POST', '/api/v1/tokens/consume', { token: bounded.body.token, action: 'email.send', resource: 'email:a@b.c', use: { emails: 1000 } });
  t.is(over.body.error.reason_code, 'scope_violation');
});

test.serial('a body that is not UTF-8 is refused, not stored and signed with U+FFFD in place of its bytes', async (t) => {
  const a = await agent(w);
  const body = Buffer.concat([Buffer.from('{"action":"email.send","resource":"email:a@b.c","scope":{"subject":"Invoice '), Buffer.from([0xe9]), Buffer.from('"}}')]);
  const res = await refusedWithNothingRecorded(t, async () => {
    const answer = await fetch(`${w.url}${P}`, { method: 'POST', body, headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' } });
    return { status: answer.status, body: await answer.json() };
  });
  t.is(res.status, 400);
  t.is(res.body.error.reason_code, 'invalid_encoding');
  t.is(res.body.error.detail.field, 'body');
});

test.serial('a key given twice is refused rather than decided on its last value', async (t) => {
  const a = await agent(w);
  const res = await refusedWithNothingRecorded(t, () => a.call('POST', P, '{"action":"email.send","resource":"email:a@b.c","scope":{"max_emails":1,"max_emails":1000}}'));
  t.is(res.status, 400);
  t.is(res.body.error.reason_code, 'duplicate_key');
  t.is(res.body.error.detail.field, 'scope.max_emails');
  t.regex(res.body.error.message, /scope\.max_emails/);
});

test.serial('a resource with a bidi override is refused before an approval is opened for people to read', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const pending = async () => (await w.admin('GET', '/api/v1/approvals?status=pending')).body.approvals.length as number;
  const open = await pending();
  // Displays as "account:external-savings": the override reverses what follows it.
  const res = await refusedWithNothingRecorded(t, () => a.call('POST', P, { action: 'bank.transfer', resource: 'account:\u202Esgnivas-lanretxe', value: 5 }));
  t.is(res.status, 422);
  t.is(res.body.error.reason_code, 'invalid_resource');
  t.is(res.body.error.detail.field, 'resource');
  t.is(await pending(), open, 'no approval was opened');
});

test.serial('a number Cedar cannot hold is refused naming its field, not denied with a raw Cedar error', async (t) => {
  const a = await agent(w);
  const huge = await refusedWithNothingRecorded(t, () => a.call('POST', P, '{"action":"email.send","resource":"email:a@b.c","scope":{"big":1e21}}'));
  t.is(huge.status, 422);
  t.is(huge.body.error.reason_code, 'invalid_value');
  t.is(huge.body.error.detail.field, 'scope.big');
  t.notRegex(huge.body.error.message, /cedar/i);
  // JSON.parse would have stored this one as 12345678901234567000.
  const rounded = await refusedWithNothingRecorded(t, () => a.call('POST', P, '{"action":"email.send","resource":"email:a@b.c","scope":{"big":12345678901234567890}}'));
  t.is(rounded.status, 422);
  t.is(rounded.body.error.detail.field, 'scope.big');
  // The largest integer that survives parsing is decided as usual.
  const largest = await a.call('POST', P, '{"action":"email.send","resource":"email:a@b.c","scope":{"big":9007199254740991}}');
  t.is(largest.status, 201);
  t.is(largest.body.decision, 'allow');
  t.deepEqual(largest.body.scope, { big: 9007199254740991 });
});
