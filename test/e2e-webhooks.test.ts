import test from 'ava';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { agent, approver, eventually, startWrit, tempDir } from './helpers/writ.ts';

/** Outgoing webhooks as a receiver sees them: signed, deduplicable, retried until accepted. */
interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

async function receiver(answers: number[]) {
  const received: Received[] = [];
  let calls = 0;
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    res.writeHead(answers[calls++] ?? 200).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))),
  };
}

const SECRET = 'a-receiver-secret-0123456789';

/** What a receiver does: recompute the HMAC over `t.body` and compare in constant time. */
function verify(r: Received): boolean {
  const header = String(r.headers['writ-signature']);
  const { t, v1 } = Object.fromEntries(header.split(',').map((kv) => kv.split('=') as [string, string]));
  const expected = crypto.createHmac('sha256', SECRET).update(`${t}.${r.body}`).digest('hex');
  return v1 !== undefined && crypto.timingSafeEqual(Buffer.from(v1, 'hex'), Buffer.from(expected, 'hex'));
}

test('a delivery is signed over timestamp and body, and carries an event id for deduplication', async (t) => {
  const hook = await receiver([]);
  const w = await startWrit({ config: { webhookRetryBaseMs: 50 } });
  try {
    const created = await w.admin('POST', '/api/v1/webhooks', { url: hook.url, events: ['approval.requested', 'approval.approved', 'permission.used'], secret: SECRET });
    t.is(created.status, 201);
    t.is(created.body.secret, undefined, 'the secret is never shown again');
    const a = await agent(w, { trust_tier: 'T2' });
    const alice = await approver(w, 'Alice');
    const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 });
    await alice.call('POST', `/api/v1/approvals/${res.body.approval.id}/approve`, {});
    const token = (await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.token;
    await a.call('POST', '/api/v1/tokens/consume', { token, action: 'bank.transfer', resource: 'account:checking', use: { value: 5 } });
    await eventually(() => hook.received.length >= 3, 'three deliveries');
    const events = hook.received.map((r) => JSON.parse(r.body));
    t.deepEqual(events.map((e) => e.type).sort(), ['approval.approved', 'approval.requested', 'permission.used']);
    for (const r of hook.received) {
      t.true(verify(r), 'signature verifies');
      t.regex(String(r.headers['writ-signature']), /^t=\d+,v1=[0-9a-f]{64}$/);
      t.is(r.headers['writ-event-id'], JSON.parse(r.body).id);
    }
    const approved = events.find((e) => e.type === 'approval.approved');
    t.like(approved.data.permission, { id: res.body.id, action: 'bank.transfer' });
    t.is(approved.data.by.name, 'Alice');
    // A tampered body does not verify.
    t.false(verify({ ...hook.received[0]!, body: hook.received[0]!.body.replace('bank', 'bonk') }));
  } finally {
    await w.close();
    await hook.close();
  }
});

test('a receiver that fails twice gets the event on the third try', async (t) => {
  const hook = await receiver([500, 503, 200]);
  const w = await startWrit({ config: { webhookRetryBaseMs: 50 } });
  try {
    await w.admin('POST', '/api/v1/webhooks', { url: hook.url, events: ['approval.requested'], secret: SECRET });
    const a = await agent(w, { trust_tier: 'T2' });
    await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 });
    await eventually(() => hook.received.length >= 3, 'three attempts');
    const ids = hook.received.map((r) => r.headers['writ-event-id']);
    t.is(new Set(ids).size, 1, 'the same event, retried');
    // Once Writ counts it delivered it has left the queue: nothing more comes.
    const health = await eventually(async () => {
      const deliveries = (await w.admin('GET', '/api/v1/webhooks')).body.deliveries;
      return deliveries.delivered === 1 ? deliveries : undefined;
    }, 'the delivery to be counted');
    t.like(health, { delivered: 1, failed_attempts: 2 });
    t.is(hook.received.length, 3, 'nothing more once accepted');
  } finally {
    await w.close();
    await hook.close();
  }
});

test('a restart between attempts loses no delivery', async (t) => {
  const hook = await receiver([500]);
  const data = await tempDir();
  let w = await startWrit({ data, config: { webhookRetryBaseMs: 1500 } });
  await w.admin('POST', '/api/v1/webhooks', { url: hook.url, events: ['approval.requested'], secret: SECRET });
  const a = await agent(w, { trust_tier: 'T2' });
  await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 });
  await eventually(() => hook.received.length >= 1, 'the first, failed attempt');
  await w.close();
  t.is(hook.received.length, 1);
  w = await startWrit({ data, config: { webhookRetryBaseMs: 1500 } });
  try {
    await eventually(() => hook.received.length >= 2, 'the retry after the restart', 10_000);
    t.is(hook.received[1]!.headers['writ-event-id'], hook.received[0]!.headers['writ-event-id']);
    t.true(verify(hook.received[1]!));
  } finally {
    await w.close();
    await hook.close();
  }
});

test('webhook subscriptions: listed without secrets, deleted, and bad input refused', async (t) => {
  const w = await startWrit();
  try {
    const created = (await w.admin('POST', '/api/v1/webhooks', { url: 'https://example.test/hook', events: ['approval.denied'], secret: SECRET })).body;
    const listed = (await w.admin('GET', '/api/v1/webhooks')).body.webhooks;
    t.deepEqual(listed, [created]);
    t.false(JSON.stringify(listed).includes(SECRET));
    t.is((await w.admin('DELETE', `/api/v1/webhooks/${created.id}`)).status, 200);
    t.deepEqual((await w.admin('GET', '/api/v1/webhooks')).body.webhooks, []);
    t.is((await w.admin('DELETE', `/api/v1/webhooks/${created.id}`)).status, 404);
    const bad = [
      [{ url: 'ftp://x', events: ['approval.denied'], secret: SECRET }, 'url'],
      [{ url: 'https://x.test', events: ['approval.exploded'], secret: SECRET }, 'events.0'],
      [{ url: 'https://x.test', events: [], secret: SECRET }, 'events'],
      [{ url: 'https://x.test', events: ['approval.denied'], secret: 'short' }, 'secret'],
    ] as const;
    for (const [body, field] of bad) {
      const res = await w.admin('POST', '/api/v1/webhooks', body);
      t.true(res.status === 400 || res.status === 422, JSON.stringify(res.body));
      t.is(res.body.error.detail.field, field);
    }
    const raw: string[] = [];
    for await (const [, value] of w.server.writ.store.iterate({ gte: 'hook/', lt: 'hook/~' })) raw.push(value);
    t.false(raw.some((v) => v.includes(SECRET)), 'secrets are encrypted at rest');
  } finally {
    await w.close();
  }
});
