import test from 'ava';
import { ADMIN, agent, approver, caller, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * Bad input gets a 4xx in the one error shape, names the field, stores nothing, and is never a
 * 5xx. Each row: who calls, what they send, what they must get back.
 */
let w: TestWrit;
let agentKey: string;
let approverKey: string;
test.before(async () => {
  w = await startWrit();
  agentKey = (await agent(w)).key;
  approverKey = (await approver(w)).key;
});
test.after.always(() => w?.close());

type Row = [name: string, who: 'agent' | 'admin' | 'approver' | 'nobody' | string, method: string, path: string, body: unknown, status: number, code: string, field?: string];

const P = '/api/v1/permissions';
const ok = { action: 'email.send', resource: 'email:a@b.c' };
const rows: Row[] = [
  ['missing action', 'agent', 'POST', P, { resource: 'email:a@b.c' }, 400, 'invalid_request', 'action'],
  ['extra field', 'agent', 'POST', P, { ...ok, colour: 'blue' }, 400, 'invalid_request', 'colour'],
  ['wrong type', 'agent', 'POST', P, { ...ok, scope: 'all' }, 400, 'invalid_request', 'scope'],
  ['body is an array', 'agent', 'POST', P, [ok], 400, 'invalid_request'],
  ['malformed JSON', 'agent', 'POST', P, '{"action": ', 400, 'malformed_json', 'body'],
  ['malformed action', 'agent', 'POST', P, { ...ok, action: 'send email' }, 422, 'invalid_action', 'action'],
  ['malformed resource', 'agent', 'POST', P, { ...ok, resource: 'no-colon' }, 422, 'invalid_resource', 'resource'],
  ['ttl zero', 'agent', 'POST', P, { ...ok, ttl: 0 }, 422, 'ttl_out_of_range', 'ttl'],
  ['ttl above the maximum', 'agent', 'POST', P, { ...ok, ttl: 999_999 }, 422, 'ttl_out_of_range', 'ttl'],
  ['wait above 60 s', 'agent', 'POST', P, { ...ok, wait: 61 }, 422, 'invalid_value', 'wait'],
  ['scope pattern that is no regex', 'agent', 'POST', P, { ...ok, scope: { subject_pattern: '([' } }, 422, 'invalid_value', 'scope.subject_pattern'],
  ['context key forging a Cedar entity', 'agent', 'POST', P, { ...ok, context: { __entity: { type: 'Agent', id: 'x' } } }, 422, 'invalid_value', 'context.__entity'],
  ['unsupported wire version', 'agent', 'POST', P, ok, 400, 'unsupported_version', 'Writ-Version'],
  ['no key', 'nobody', 'POST', P, ok, 401, 'unauthenticated', 'authorization'],
  ['bad key', 'writ_agent_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'POST', P, ok, 401, 'unauthenticated'],
  ['admin key asking permission', 'admin', 'POST', P, ok, 403, 'forbidden'],
  ['agent creating agents', 'agent', 'POST', '/api/v1/agents', { name: 'x' }, 403, 'forbidden'],
  ['approver reading the log export', 'approver', 'GET', '/api/v1/log/records', undefined, 403, 'forbidden'],
  ['agent voting', 'agent', 'POST', '/api/v1/approvals/appr_x/approve', {}, 403, 'forbidden'],
  ['unknown approval', 'approver', 'POST', '/api/v1/approvals/appr_nope/approve', {}, 404, 'not_found', 'id'],
  ['unknown permission', 'agent', 'GET', `${P}/perm_nope`, undefined, 404, 'not_found', 'id'],
  ['unknown route', 'agent', 'GET', '/api/v1/nothing-here', undefined, 404, 'route_not_found'],
  ['wrong method', 'agent', 'DELETE', P, undefined, 405, 'method_not_allowed'],
  ['wrong method on the OpenAPI document', 'nobody', 'POST', '/openapi.json', undefined, 405, 'method_not_allowed'],
  ['bad trust tier', 'admin', 'POST', '/api/v1/agents', { name: 'x', trust_tier: 'T9' }, 422, 'invalid_value', 'trust_tier'],
  ['unknown query parameter', 'agent', 'GET', `${P}/perm_x?colour=blue`, undefined, 400, 'invalid_request', 'colour'],
  ['negative proof index', 'nobody', 'GET', '/api/v1/log/proof/-1', undefined, 422, 'invalid_value', 'index'],
  ['non-numeric proof index', 'nobody', 'GET', '/api/v1/log/proof/abc', undefined, 422, 'invalid_value', 'index'],
  ['fractional proof index', 'nobody', 'GET', '/api/v1/log/proof/1.5', undefined, 422, 'invalid_value', 'index'],
  ['proof index past the end of the log', 'nobody', 'GET', '/api/v1/log/proof/999999', undefined, 404, 'not_found', 'index'],
  ['non-numeric wait', 'agent', 'GET', `${P}/perm_x?wait=soon`, undefined, 422, 'invalid_value', 'wait'],
  ['empty wait', 'agent', 'GET', `${P}/perm_x?wait=`, undefined, 422, 'invalid_value', 'wait'],
  ['wait given twice', 'agent', 'GET', `${P}/perm_x?wait=1&wait=2`, undefined, 422, 'invalid_value', 'wait'],
  ['non-numeric approval list limit', 'approver', 'GET', '/api/v1/approvals?limit=ten', undefined, 422, 'invalid_value', 'limit'],
  ['approval list limit in hex', 'approver', 'GET', '/api/v1/approvals?limit=0x10', undefined, 422, 'invalid_value', 'limit'],
  ['approval list limit above 200', 'approver', 'GET', '/api/v1/approvals?limit=201', undefined, 422, 'invalid_value', 'limit'],
  ['agent list limit of zero', 'admin', 'GET', '/api/v1/agents?limit=0', undefined, 422, 'invalid_value', 'limit'],
  ['empty permission list limit', 'agent', 'GET', `${P}?limit=`, undefined, 422, 'invalid_value', 'limit'],
  ['permission list limit in hex', 'admin', 'GET', `${P}?limit=0x10`, undefined, 422, 'invalid_value', 'limit'],
  ['permission list limit above 200', 'agent', 'GET', `${P}?limit=201`, undefined, 422, 'invalid_value', 'limit'],
  ['a cursor that is not base64url', 'admin', 'GET', '/api/v1/approvers?cursor=not%20a%20cursor', undefined, 422, 'invalid_value', 'cursor'],
  ['a cursor Writ never gave out', 'admin', 'GET', '/api/v1/attesters?cursor=bm90LWEtY3Vyc29y', undefined, 422, 'invalid_value', 'cursor'],
  ['a cursor of an empty object', 'approver', 'GET', '/api/v1/approvals?cursor=e30', undefined, 422, 'invalid_value', 'cursor'],
  ['a cursor whose position is a path', 'agent', 'GET', `${P}?cursor=${Buffer.from('{"l":"permissions","q":"x","a":"../key/x"}').toString('base64url')}`, undefined, 422, 'invalid_value', 'cursor'],
  ['an empty cursor', 'admin', 'GET', '/api/v1/resource-servers?cursor=', undefined, 422, 'invalid_value', 'cursor'],
  ['an unknown permission status', 'agent', 'GET', `${P}?status=granted`, undefined, 422, 'invalid_value', 'status'],
  ['a permission action filter that is no action', 'agent', 'GET', `${P}?action=email`, undefined, 422, 'invalid_action', 'action'],
  ['a wildcard for the category of an action filter', 'admin', 'GET', `${P}?action=*.send`, undefined, 422, 'invalid_action', 'action'],
  ['a since that is no date-time', 'agent', 'GET', `${P}?since=yesterday`, undefined, 422, 'invalid_value', 'since'],
  ['a since without a time zone', 'admin', 'GET', `${P}?since=2024-01-01T00:00:00`, undefined, 422, 'invalid_value', 'since'],
  ['a since whose "+" was not percent-encoded', 'admin', 'GET', `${P}?since=2024-01-01T00:00:00+01:00`, undefined, 422, 'invalid_value', 'since'],
  ['an agent filter that is no agent id', 'admin', 'GET', `${P}?agent=bob`, undefined, 422, 'invalid_value', 'agent'],
  ['an agent filter given twice', 'admin', 'GET', `${P}?agent=agt_a&agent=agt_b`, undefined, 422, 'invalid_value', 'agent'],
  ['an agent listing another agent\'s permissions', 'agent', 'GET', `${P}?agent=agt_someoneelse`, undefined, 403, 'forbidden', 'agent'],
  ['an agent listing agents', 'agent', 'GET', '/api/v1/agents', undefined, 403, 'forbidden'],
  ['an approver listing permissions', 'approver', 'GET', P, undefined, 403, 'forbidden'],
  ['an unknown list parameter', 'admin', 'GET', '/api/v1/agents?status=revoked', undefined, 400, 'invalid_request', 'status'],
  ['non-numeric consistency size', 'nobody', 'GET', '/api/v1/log/consistency?old=abc&new=1', undefined, 422, 'invalid_value', 'old'],
  ['non-numeric log export start', 'admin', 'GET', '/api/v1/log/records?from=abc', undefined, 422, 'invalid_value', 'from'],
  ['touchpoint_id given twice', 'admin', 'GET', '/api/v1/oap/attestations/att_x?touchpoint_id=a&touchpoint_id=b', undefined, 422, 'invalid_value', 'touchpoint_id'],
  ['consume without a token', 'agent', 'POST', '/api/v1/tokens/consume', { action: 'email.send', resource: 'email:a@b.c' }, 400, 'invalid_request', 'token'],
  ['bad percent-encoding in the path', 'nobody', 'POST', '/api/v1/approvals/%ZZ/approve', {}, 400, 'invalid_request', 'id'],
  ['bad percent-encoding in the path, authenticated', 'agent', 'GET', `${P}/%E0`, undefined, 400, 'invalid_request', 'id'],
  ['context nested 1000 levels deep', 'agent', 'POST', P, `{"action":"email.send","resource":"email:a@b.c","context":${'{"a":'.repeat(1000)}1${'}'.repeat(1000)}}`, 400, 'invalid_request'],
  ['a lone surrogate in a name', 'admin', 'POST', '/api/v1/agents', '{"name":"\\udfff"}', 400, 'invalid_request', 'name'],
  ['a lone surrogate in a resource', 'agent', 'POST', P, '{"action":"email.send","resource":"email:\\ud800"}', 400, 'invalid_request', 'resource'],
  ['a nested key forging a Cedar entity', 'agent', 'POST', P, { ...ok, context: { on_behalf_of: { __entity: { type: 'Agent', id: 'boss' } } } }, 422, 'invalid_value', 'context.on_behalf_of.__entity'],
  ['a body on an endpoint that takes none', 'admin', 'POST', '/api/v1/keys/rotate', [1, 2], 400, 'invalid_request', 'body'],
  ['malformed JSON from a stranger is a 401, not a parse error', 'nobody', 'POST', P, '{"action": ', 401, 'unauthenticated'],
  ['a number where a string belongs', 'agent', 'POST', P, { ...ok, action: 123 }, 400, 'invalid_request', 'action'],
  ['a fractional ttl', 'agent', 'POST', P, { ...ok, ttl: 1.5 }, 422, 'ttl_out_of_range', 'ttl'],
  ['the Telegram webhook without its secret, with a malformed body', 'nobody', 'POST', '/api/v1/telegram/webhook', '{"update_id": ', 401, 'unauthenticated', 'X-Telegram-Bot-Api-Secret-Token'],
  // Bodies are refused rather than rewritten (JSON text here: a JS object literal cannot hold __proto__ or a duplicate).
  ['__proto__ in scope', 'agent', 'POST', P, '{"action":"email.send","resource":"email:a@b.c","scope":{"__proto__":{"max_emails":1}}}', 422, 'invalid_value', 'scope.__proto__'],
  ['__proto__ nested in context', 'agent', 'POST', P, '{"action":"email.send","resource":"email:a@b.c","context":{"on_behalf_of":{"__proto__":{}}}}', 422, 'invalid_value', 'context.on_behalf_of.__proto__'],
  ['__proto__ at the top of a body', 'admin', 'POST', '/api/v1/agents', '{"name":"x","__proto__":{"trust_tier":"T3"}}', 422, 'invalid_value', '__proto__'],
  ['a body that is not UTF-8', 'agent', 'POST', P, utf8WithBytes('{"action":"email.send","resource":"email:a@b.c","context":{"reason":"', [0xff], '"}}'), 400, 'invalid_encoding', 'body'],
  ['an overlong UTF-8 encoding', 'admin', 'POST', '/api/v1/agents', utf8WithBytes('{"name":"a', [0xc0, 0xaf], 'b"}'), 400, 'invalid_encoding', 'body'],
  ['a scope key given twice', 'agent', 'POST', P, '{"action":"email.send","resource":"email:a@b.c","scope":{"max_emails":1,"max_emails":1000}}', 400, 'duplicate_key', 'scope.max_emails'],
  ['a key given twice with the same value', 'agent', 'POST', P, '{"action":"email.send","action":"email.send","resource":"email:a@b.c"}', 400, 'duplicate_key', 'action'],
  ['a key given twice, once escaped', 'agent', 'POST', P, '{"action":"email.send","resource":"email:a@b.c","\\u0072esource":"email:x@y.z"}', 400, 'duplicate_key', 'resource'],
  ['a bidi override in a resource', 'agent', 'POST', P, { ...ok, resource: 'email:moc.evil\u202e@acme.com' }, 422, 'invalid_resource', 'resource'],
  ['a right-to-left mark in a resource', 'agent', 'POST', P, { ...ok, resource: 'email:a\u200fb.c' }, 422, 'invalid_resource', 'resource'],
  ['a C1 control in a resource', 'agent', 'POST', P, { ...ok, resource: 'email:a\u0085b.c' }, 422, 'invalid_resource', 'resource'],
  ['a zero-width space in a resource', 'agent', 'POST', P, { ...ok, resource: 'email:a\u200bb.c' }, 422, 'invalid_resource', 'resource'],
  ['a byte-order mark in a resource', 'agent', 'POST', P, { ...ok, resource: 'email:a\ufeffb.c' }, 422, 'invalid_resource', 'resource'],
  ['a bidi isolate in an agent name', 'admin', 'POST', '/api/v1/agents', { name: 'Bob\u2066 (admin)' }, 422, 'invalid_value', 'name'],
  ['a newline in an approver name', 'admin', 'POST', '/api/v1/approvers', { name: 'Alice\nApproved' }, 422, 'invalid_value', 'name'],
  ['a C1 control in an attester name', 'admin', 'POST', '/api/v1/attesters', { name: 'scanner\u009b', touchpoint_id: 'tp-1' }, 422, 'invalid_value', 'name'],
  ['a bidi override in a context string', 'agent', 'POST', P, { ...ok, context: { reason: 'refund \u202eevil' } }, 422, 'invalid_value', 'context.reason'],
  ['a NUL in a scope string', 'agent', 'POST', P, { ...ok, scope: { subject: 'a\u0000b' } }, 422, 'invalid_value', 'scope.subject'],
  ['a control character in a context key', 'agent', 'POST', P, { ...ok, context: { 'bell\u0007': 1 } }, 422, 'invalid_value', 'context.bell\u0007'],
  ['a C1 control in a use string', 'agent', 'POST', '/api/v1/tokens/consume', { token: 'wtk_x', ...ok, use: { note: 'x\u0090' } }, 422, 'invalid_value', 'use.note'],
  ['an integer in scope beyond Cedar\'s Long', 'agent', 'POST', P, '{"action":"email.send","resource":"email:a@b.c","scope":{"big":1e21}}', 422, 'invalid_value', 'scope.big'],
  ['an integer JSON.parse would round', 'agent', 'POST', P, '{"action":"email.send","resource":"email:a@b.c","scope":{"big":12345678901234567890}}', 422, 'invalid_value', 'scope.big'],
  ['a fraction beyond Cedar\'s decimal', 'agent', 'POST', P, { ...ok, context: { amount: 922337203685477.5 } }, 422, 'invalid_value', 'context.amount'],
  ['a value beyond the safe integers', 'agent', 'POST', P, { ...ok, value: 1e21 }, 422, 'invalid_value', 'value'],
];

/** A body of JSON text around raw bytes that are not UTF-8 (which a string could not carry). */
function utf8WithBytes(before: string, bytes: number[], after: string): Uint8Array {
  return Uint8Array.from([...Buffer.from(before), ...bytes, ...Buffer.from(after)]);
}

/** The caller, or for raw bytes a plain fetch with the same headers. */
async function send(call: ReturnType<typeof caller>, key: string | null | undefined, method: string, path: string, body: unknown, headers: Record<string, string>) {
  if (!(body instanceof Uint8Array)) return call(method, path, body, headers);
  const authorization = `Bearer ${key === undefined ? ADMIN : key}`;
  const res = await fetch(`${w.url}${path}`, { method, body: new Uint8Array(body), headers: { authorization, 'content-type': 'application/json', ...headers } });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), headers: res.headers, text };
}

for (const [name, who, method, path, body, status, code, field] of rows) {
  test(`bad input: ${name} → ${status} ${code}`, async (t) => {
    const key = who === 'agent' ? agentKey : who === 'approver' ? approverKey : who === 'admin' ? undefined : who === 'nobody' ? null : who;
    const call = key === undefined ? w.admin : caller(w.url, key ?? undefined);
    const before = w.server.writ.log.size;
    const res = await send(call, key, method, path, body, name === 'unsupported wire version' ? { 'writ-version': '2' } : {});
    t.is(res.status, status, res.text);
    t.is(res.body.error.reason_code, code);
    t.is(typeof res.body.error.message, 'string');
    t.truthy(res.headers.get('x-request-id'));
    if (field) t.is(res.body.error.detail?.field, field);
    t.is(w.server.writ.log.size, before, 'nothing was recorded');
    if (name === 'a number where a string belongs') t.notRegex(res.body.error.message, /required/);
  });
}

test('a body over 1 MiB is refused with 413', async (t) => {
  const call = caller(w.url, agentKey);
  const res = await call('POST', P, { ...ok, context: { blob: 'x'.repeat(1024 * 1024) } });
  t.is(res.status, 413);
  t.is(res.body.error.reason_code, 'payload_too_large');
});

test('a body that is not JSON is refused with 415', async (t) => {
  const res = await caller(w.url, agentKey)('POST', P, 'action=email.send', { 'content-type': 'text/plain' });
  t.is(res.status, 415);
});

test('a wrong method answers 405 with the Allow header', async (t) => {
  const res = await w.call('PUT', '/healthz');
  t.is(res.status, 405);
  t.is(res.headers.get('allow'), 'GET, HEAD, OPTIONS');
});

test('an invalid request still answers with the cascade trace up to the failing step', async (t) => {
  const res = await caller(w.url, agentKey)('POST', P, { ...ok, action: 'nope' });
  t.deepEqual(
    res.body.error.detail.trace.map((s: { step: string; outcome: string }) => `${s.step}:${s.outcome}`),
    ['wire_version:pass', 'authenticate:pass', 'validate_body:reject'],
  );
});
