import http from 'node:http';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { openApiDocument } from '../src/http/openapi.ts';
import { ROUTES } from '../src/http/routes/index.ts';
import { Contract } from './helpers/contract.ts';
import { agent, approver, eventually, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * GET /api/v1/approvals/events: the approval queue as Server-Sent Events, for the dashboard. An
 * event per change of any approval, naming it and its status; a stream that ends when its client
 * leaves or the server stops, and leaves nothing subscribed behind.
 */
let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(async () => {
  await w?.close();
});

interface Stream {
  status: number;
  type: string;
  /** Everything received so far. */
  text: () => string;
  /** The `approval` events received so far, parsed. */
  events: () => Array<{ approval_id: string; status: string; type: string }>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close: () => void;
}

/** Follows the stream with node:http, whose aborted request closes its connection as a browser's EventSource.close() does. */
async function open(url: string, headers: Record<string, string>): Promise<Stream> {
  const leave = new AbortController();
  const req = http.get(`${url}/api/v1/approvals/events`, { headers, signal: leave.signal });
  req.on('error', () => undefined);
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject));
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (text += chunk));
  const ended = new Promise<void>((resolve) => res.once('close', resolve));
  const events = () =>
    text
      .split('\n\n')
      .filter((frame) => /^event: approval$/m.test(frame))
      .map((frame) => JSON.parse(/^data: (.*)$/m.exec(frame)![1]!));
  return { status: res.statusCode!, type: String(res.headers['content-type'] ?? ''), text: () => text, events, ended, close: () => leave.abort() };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

test('an approver following the stream hears of a new approval and of its decision, by id and status', async (t) => {
  const ap = await approver(w, 'stream-watcher');
  const stream = await open(w.url, bearer(ap.key));
  try {
    t.is(stream.status, 200);
    t.regex(stream.type, /^text\/event-stream/);
    await eventually(() => stream.text().includes(': connected'), 'the first comment');
    const a = await agent(w, { trust_tier: 'T2' });
    const asked = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 20 });
    const id = asked.body.approval.id as string;
    const created = await eventually(() => stream.events().find((e) => e.approval_id === id), 'the event of the new approval');
    t.is(created.status, 'pending');
    t.is(created.type, 'approval.requested');
    t.false(stream.text().includes('account:checking'), 'the stream names approvals, never their requests');
    t.is((await ap.call('POST', `/api/v1/approvals/${id}/approve`, {})).status, 200);
    const decided = await eventually(() => stream.events().find((e) => e.approval_id === id && e.status === 'approved'), 'the event of the decision');
    t.is(decided.type, 'approval.approved');
  } finally {
    stream.close();
  }
});

test('the stream takes the dashboard session cookie and refuses strangers and agents', async (t) => {
  const ap = await approver(w, 'stream-cookie');
  const session = await w.call('POST', '/api/v1/session', { key: ap.key });
  const cookie = session.headers.get('set-cookie')!.split(';')[0]!;
  const withCookie = await open(w.url, { cookie });
  t.is(withCookie.status, 200);
  withCookie.close();
  const stranger = await w.call('GET', '/api/v1/approvals/events');
  t.is(stranger.status, 401);
  const a = await agent(w);
  const refused = await a.call('GET', '/api/v1/approvals/events');
  t.is(refused.status, 403);
  t.is(refused.body.error.reason_code, 'forbidden');
});

test('streams opened and closed leave no subscriber behind', async (t) => {
  // Its own server, so no other test's stream is counted.
  const own = await startWrit();
  t.teardown(() => own.close());
  const ap = await approver(own, 'stream-churn');
  const events = own.server.writ.permissions.events;
  const before = events.size;
  for (let round = 0; round < 3; round++) {
    const streams = await Promise.all(Array.from({ length: 20 }, () => open(own.url, bearer(ap.key))));
    await eventually(() => streams.every((s) => s.text().includes(': connected')), 'every stream connected');
    t.is(events.size, before + 20, 'one subscriber per open stream');
    for (const s of streams) s.close();
    await eventually(() => events.size === before, `subscribers back to ${before} (now ${events.size})`);
  }
  t.is(events.size, before);
});

test('a server shutting down ends its open streams at once, rather than waiting out the grace period', async (t) => {
  const own = await startWrit();
  const ap = await approver(own, 'stream-shutdown');
  const stream = await open(own.url, bearer(ap.key));
  await eventually(() => stream.text().includes(': connected'), 'connected');
  const started = Date.now();
  await own.close();
  await stream.ended;
  const ms = Date.now() - started;
  t.true(ms < 5000, `closed in ${ms} ms (the grace period is 10 s)`);
  t.is(own.server.writ.permissions.events.size, 2, 'only the built-in sinks (webhooks, oversight) remain');
});

test('the contract checker takes an event stream by its media type, and refuses a stream where JSON is declared', (t) => {
  const contract = new Contract(openApiDocument(ROUTES, 'http://127.0.0.1') as never);
  t.is(contract.check({ method: 'GET', path: '/api/v1/approvals/events', status: 200, type: 'text/event-stream', body: new PassThrough() }), undefined);
  t.regex(contract.check({ method: 'GET', path: '/api/v1/approvals/events', status: 200, type: 'application/json', body: {} })!, /media type application\/json is not declared/);
  t.regex(contract.check({ method: 'GET', path: '/api/v1/agents', status: 200, type: 'application/json', body: new PassThrough() })!, /streamed body/);
});
