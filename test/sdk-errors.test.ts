import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WritApiError, WritClient, WritClientError, WritTimeoutError, WritUnavailableError } from '../packages/writ-client/src/client.ts';
import { ReceiptVerificationError, verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { agent, startWrit, type TestWrit } from './helpers/writ.ts';

/** What an agent builder catches: every SDK error names the request's URL and carries its cause. */

/** A real HTTP server on 127.0.0.1 answering with `handler`; `close` also drops requests it holds. */
async function serve(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A URL nothing listens on: a port the system just handed out, and closed again. */
async function downUrl(): Promise<string> {
  const server = await serve(() => {});
  await server.close();
  return server.url;
}

const KEY = 'wk_test_not_a_real_key';

let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(() => w?.close());

test('a Writ that is down rejects with WritUnavailableError naming the URL, with the connection error as cause', async (t) => {
  const base = await downUrl();
  const client = new WritClient({ url: base, apiKey: KEY });
  const error = await t.throwsAsync(client.requestPermission({ action: 'email.send', resource: 'email:down@acme.com' }), { instanceOf: WritUnavailableError });
  t.true(error instanceof WritClientError);
  t.is(error!.method, 'POST');
  t.is(error!.url, `${base}/api/v1/permissions`);
  t.true(error!.cause instanceof TypeError, "Node's fetch failure, as fetch threw it");
  t.true(error!.message.includes(`${base}/api/v1/permissions`));
  t.regex(error!.message, /ECONNREFUSED/);
  t.is(error!.status, undefined, 'nothing answered');

  const lookup = await t.throwsAsync(client.getPermission('perm_1', { wait: 5 }), { instanceOf: WritUnavailableError });
  t.is(lookup!.url, `${base}/api/v1/permissions/perm_1?wait=5`);
});

test('a host name that does not resolve rejects with WritUnavailableError naming the URL', async (t) => {
  // .invalid never resolves (RFC 6761); the timeout bounds a machine whose resolver is slow to say so.
  const client = new WritClient({ url: 'http://writ.invalid', apiKey: KEY, timeoutMs: 10_000 });
  const error = await t.throwsAsync(client.getPermission('perm_1'), { instanceOf: WritUnavailableError });
  t.is(error!.url, 'http://writ.invalid/api/v1/permissions/perm_1');
  t.truthy(error!.cause);
  t.regex(error!.message, /^Writ is unavailable at GET http:\/\/writ\.invalid\/api\/v1\/permissions\/perm_1: /);
});

test('a 503 with Retry-After rejects with WritUnavailableError carrying the status, the reason code and when to retry', async (t) => {
  const answer = { reason_code: 'overloaded', message: 'too many undurable entries; retry shortly' };
  const server = await serve((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '7' }).end(JSON.stringify({ error: answer }));
  });
  t.teardown(server.close);
  const client = new WritClient({ url: `${server.url}/`, apiKey: KEY });
  const error = await t.throwsAsync(client.consume({ token: 't', action: 'email.send', resource: 'email:x@acme.com' }), { instanceOf: WritUnavailableError });
  t.is(error!.url, `${server.url}/api/v1/tokens/consume`, 'the trailing slash of the base URL is not doubled');
  t.is(error!.status, 503);
  t.is(error!.reasonCode, 'overloaded');
  t.is(error!.retryAfter, 7);
  t.deepEqual(error!.cause, answer);
  t.regex(error!.message, /503 overloaded, retry after 7 s/);
});

test("a gateway's 502 page (no Writ behind it) is WritUnavailableError too, with the page as cause", async (t) => {
  const page = '<html><body>Bad Gateway</body></html>';
  const server = await serve((_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' }).end(page);
  });
  t.teardown(server.close);
  const error = await t.throwsAsync(new WritClient({ url: server.url, apiKey: KEY }).revoke('perm_1'), { instanceOf: WritUnavailableError });
  t.is(error!.status, 502);
  t.is(error!.reasonCode, undefined);
  t.is(error!.retryAfter, undefined);
  t.is(error!.cause, page);
});

test('a server that accepts but never answers rejects with WritUnavailableError once timeoutMs has passed', async (t) => {
  const server = await serve(() => {
    // Holds every request until the test closes the server.
  });
  t.teardown(server.close);
  const client = new WritClient({ url: server.url, apiKey: KEY, timeoutMs: 200 });
  const error = await t.throwsAsync(client.getPermission('perm_1'), { instanceOf: WritUnavailableError });
  t.is((error!.cause as Error).name, 'TimeoutError');
  t.regex(error!.message, /no answer within 0\.2 s/);
  t.is(error!.url, `${server.url}/api/v1/permissions/perm_1`);
});

test("a long poll is not cut short by timeoutMs: the server's wait is added to it", async (t) => {
  const a = await agent(w, { trust_tier: 'T3' });
  // Writ holds the poll for 5 s, twice the 2.5 s allowed for an answer (which is the margin left
  // for a loaded machine once the wait is added).
  const client = new WritClient({ url: w.url, apiKey: a.key, timeoutMs: 2500 });
  const error = await t.throwsAsync(client.requestPermission({ action: 'bank.transfer', resource: 'account:poll', value: 1, waitForApproval: true, timeout: 6 }), {
    instanceOf: WritTimeoutError,
  });
  t.is(error!.permission.status, 'pending');
  t.is(error!.url, `${w.url}/api/v1/permissions/${error!.permission.id}`, 'where to look the pending permission up later');
});

test("Writ's refusal stays WritApiError, with its status and reason code, the URL, and its answer as cause", async (t) => {
  const a = await agent(w);
  const client = new WritClient({ url: w.url, apiKey: a.key });
  const error = await t.throwsAsync(client.requestPermission({ action: 'nope', resource: 'email:x@y.z' }), { instanceOf: WritApiError });
  t.false(error instanceof WritUnavailableError);
  t.true(error instanceof WritClientError);
  t.is(error!.status, 422);
  t.is(error!.reasonCode, 'invalid_action');
  t.is(error!.method, 'POST');
  t.is(error!.url, `${w.url}/api/v1/permissions`);
  t.like(error!.cause as object, { reason_code: 'invalid_action', detail: { field: 'action' } });
  t.true(error!.message.includes(`POST ${w.url}/api/v1/permissions answered 422 invalid_action`));

  const stranger = new WritClient({ url: w.url, apiKey: 'wk_nobody' });
  const refused = await t.throwsAsync(stranger.getPermission('perm_1'), { instanceOf: WritApiError });
  t.is(refused!.status, 401);
  t.is(refused!.reasonCode, 'unauthenticated');
});

test('a success answer that is not JSON (the URL is not a Writ) is WritApiError invalid_response', async (t) => {
  const server = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html>welcome</html>');
  });
  t.teardown(server.close);
  const error = await t.throwsAsync(new WritClient({ url: server.url, apiKey: KEY }).getPermission('perm_1'), { instanceOf: WritApiError });
  t.is(error!.reasonCode, 'invalid_response');
  t.is(error!.status, 200);
  t.true(error!.cause instanceof SyntaxError);
});

test('a URL the client could never reach is refused when the client is made, not later as a server that is down', (t) => {
  for (const url of ['not a url', 'ftp://writ.example', 'http://user:secret@writ.example']) {
    t.throws(() => new WritClient({ url, apiKey: KEY }), { instanceOf: TypeError }, url);
  }
});

test('a JWKS URL nothing answers on fails with jwks_unavailable naming the URL, with the failure as cause', async (t) => {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  // Well-formed enough to reach the key fetch; it never gets as far as its signature.
  const receipt = `${b64({ alg: 'EdDSA', typ: 'oap-receipt+jwt', kid: 'k1' })}.${b64({ iss: 'x' })}.${Buffer.alloc(64).toString('base64url')}`;

  const down = `${await downUrl()}/.well-known/jwks.json`;
  const refused = await t.throwsAsync(verifyReceipt(receipt, { jwksUrl: down }), { instanceOf: ReceiptVerificationError });
  t.is(refused!.code, 'jwks_unavailable');
  t.is(refused!.url, down);
  t.true(refused!.cause instanceof TypeError);
  t.true(refused!.message.includes(down));

  const server = await serve((_req, res) => {
    res.writeHead(503, { 'retry-after': '1' }).end();
  });
  t.teardown(server.close);
  const busy = `${server.url}/.well-known/jwks.json`;
  const unavailable = await t.throwsAsync(verifyReceipt(receipt, { jwksUrl: busy }), { instanceOf: ReceiptVerificationError });
  t.is(unavailable!.code, 'jwks_unavailable');
  t.is(unavailable!.url, busy);
  t.regex((unavailable!.cause as Error).message, /^HTTP 503/);
  t.regex(unavailable!.message, /\(HTTP 503\)$/);
});
