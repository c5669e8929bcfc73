import test from 'ava';
import path from 'node:path';
import { PAGE_SCAN_LIMIT } from '../src/domain/permissions.ts';
import { LevelStore } from '../src/store/level.ts';
import { agent, approver, caller, eventually, startWrit, type Caller, type TestWrit } from './helpers/writ.ts';

/**
 * Lists answer a page at a time in a stable order: following `next_cursor` meets every item
 * exactly once, filters narrow without skipping, an agent sees only its own permissions whatever
 * it passes, and no list carries a token or a secret.
 */
let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(() => w?.close());

const P = '/api/v1/permissions';
const send = { action: 'email.send', resource: 'email:client@acme.com' };
const draft = { action: 'email.draft', resource: 'email:client@acme.com' };
const shell = { action: 'shell.execute', resource: 'host:build-1' };
const transfer = { action: 'bank.transfer', resource: 'account:checking', value: 5, currency: 'EUR' };

interface Listed {
  id: string;
  [field: string]: any;
}
interface Walked {
  pages: Array<{ items: Listed[]; next_cursor?: string }>;
  items: Listed[];
  ids: string[];
  /** Every page as sent, to look for what must never be in one. */
  text: string;
}

const withCursor = (path: string, cursor: string | undefined) => (cursor === undefined ? path : `${path}${path.includes('?') ? '&' : '?'}cursor=${cursor}`);

/** Follows next_cursor from the first page to the last. */
async function walk(call: Caller, path: string, envelope = 'items'): Promise<Walked> {
  const pages: Walked['pages'] = [];
  let text = '';
  for (let cursor: string | undefined; ; ) {
    const res = await call('GET', withCursor(path, cursor));
    if (res.status !== 200) throw new Error(`GET ${withCursor(path, cursor)}: ${res.status} ${res.text}`);
    pages.push({ items: res.body[envelope], ...(res.body.next_cursor !== undefined ? { next_cursor: res.body.next_cursor } : {}) });
    text += res.text;
    cursor = res.body.next_cursor;
    if (cursor === undefined) break;
    if (pages.length > 5000) throw new Error(`GET ${path}: the walk does not end`);
  }
  const items = pages.flatMap((p) => p.items);
  return { pages, items, ids: items.map((i) => i.id), text };
}

const ascending = (ids: string[]) => ids.every((id, i) => i === 0 || ids[i - 1]! < id);
const descending = (ids: string[]) => ids.every((id, i) => i === 0 || ids[i - 1]! > id);
const sorted = (ids: string[]) => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** What a cursor holds, as anyone can read it (it is opaque, not secret). */
const readCursor = (cursor: string) => JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { a: string };
const rewriteCursor = (cursor: string, position: string) => Buffer.from(JSON.stringify({ ...readCursor(cursor), a: position })).toString('base64url');

async function ask(a: { call: Caller }, request: Record<string, unknown>) {
  const res = await a.call('POST', P, request);
  if (res.status !== 201) throw new Error(`POST ${P}: ${res.status} ${res.text}`);
  return res.body as { id: string; status: string; token?: string; receipt?: string; created_at: string; approval?: { id: string } };
}

test('an admin reads every register a page at a time: each principal exactly once, in the order of one big page, and no secret', async (t) => {
  const own = await startWrit();
  try {
    const secrets: string[] = [];
    const created: Record<string, string[]> = { agents: [], approvers: [], attesters: [], 'resource-servers': [] };
    for (let i = 0; i < 5; i++) {
      const res = await own.admin('POST', '/api/v1/agents', { name: `agent ${i}` });
      created.agents!.push(res.body.id);
      secrets.push(res.body.api_key);
    }
    for (let i = 0; i < 3; i++) {
      const apr = await own.admin('POST', '/api/v1/approvers', { name: `approver ${i}`, telegram_user_id: 1000 + i });
      created.approvers!.push(apr.body.id);
      secrets.push(apr.body.api_key, apr.body.link_code);
      const att = await own.admin('POST', '/api/v1/attesters', { name: `attester ${i}`, touchpoint_id: `tp-${i}` });
      created.attesters!.push(att.body.id);
      secrets.push(att.body.api_key);
      const rs = await own.admin('POST', '/api/v1/resource-servers', { name: `mailer ${i}` });
      created['resource-servers']!.push(rs.body.id);
      secrets.push(rs.body.api_key);
    }
    const revoked = created.agents![2]!;
    t.is((await own.admin('POST', '/api/v1/oap/revocations', { scope: 'agent', id: revoked, reason: 'compromised' })).status, 200);

    for (const [collection, ids] of Object.entries(created)) {
      const walked = await walk(own.admin, `/api/v1/${collection}?limit=2`);
      const whole = await own.admin('GET', `/api/v1/${collection}?limit=200`);
      t.deepEqual(walked.ids, whole.body.items.map((i: Listed) => i.id), `${collection}: the walk is the one big page`);
      t.is(whole.body.next_cursor, undefined, `${collection}: one page holds them all`);
      t.deepEqual(sorted(walked.ids), sorted(ids), `${collection}: each exactly once`);
      t.true(ascending(walked.ids), `${collection}: in id order`);
      t.true(walked.pages.slice(0, -1).every((p) => p.items.length === 2 && p.next_cursor !== undefined), `${collection}: full pages until the last`);
      t.is(walked.pages.at(-1)!.next_cursor, undefined);
      t.deepEqual((await walk(own.admin, `/api/v1/${collection}?limit=3`)).ids, walked.ids, `${collection}: the same order with another page size`);
      for (const secret of secrets) t.false(walked.text.includes(secret), `${collection}: no key or link code`);
      t.notRegex(walked.text, /hash|api_key|link_code/);
    }

    const agents = (await own.admin('GET', '/api/v1/agents')).body.items as Listed[];
    t.is(agents.find((a) => a.id === revoked)?.revoked?.reason, 'compromised');
    t.is(agents.filter((a) => a.revoked).length, 1);
    const approvers = (await own.admin('GET', '/api/v1/approvers')).body.items as Listed[];
    t.deepEqual(approvers.map((a) => a.telegram_user_id).sort(), [1000, 1001, 1002]);
    const attesters = (await own.admin('GET', '/api/v1/attesters')).body.items as Listed[];
    t.deepEqual(attesters.map((a) => a.touchpoint_id).sort(), ['tp-0', 'tp-1', 'tp-2']);
  } finally {
    await own.close();
  }
});

test('only an admin reads the registers', async (t) => {
  const a = await agent(w);
  const alice = await approver(w, 'Alice');
  for (const collection of ['agents', 'approvers', 'attesters', 'resource-servers']) {
    for (const call of [a.call, alice.call]) {
      const res = await call('GET', `/api/v1/${collection}`);
      t.is(res.status, 403, collection);
      t.is(res.body.error.reason_code, 'forbidden');
    }
  }
});

test('an agent walks its own permissions oldest first, each exactly once, with receipts and without tokens', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const asked = [];
  for (const request of [send, shell, transfer, send, shell, transfer, send]) asked.push(await ask(a, request));
  const tokens = asked.flatMap((p) => (p.token ? [p.token] : []));
  t.is(tokens.length, 3);

  const walked = await walk(a.call, `${P}?limit=3`);
  t.deepEqual(walked.ids, sorted(asked.map((p) => p.id)));
  t.deepEqual(walked.pages.map((p) => p.items.length), [3, 3, 1]);
  t.deepEqual((await walk(a.call, `${P}?limit=2`)).ids, walked.ids, 'the same order with another page size');
  for (const item of walked.items) {
    const mine = asked.find((p) => p.id === item.id)!;
    t.is(item.status, mine.status);
    t.is(item.token, undefined);
    t.is(item.receipt, mine.receipt, 'the receipt it was given');
  }
  for (const token of tokens) t.false(walked.text.includes(token), 'no token in any page');
  t.notRegex(walked.text, /wtk_|token_hash|token_sealed|key_id/);
  // A token stays where it always was: GET of the one permission.
  t.is((await a.call('GET', `${P}/${asked[0]!.id}`)).body.token, asked[0]!.token);
});

test("an agent sees only its own permissions: naming another agent is refused, and no cursor reaches another agent's", async (t) => {
  const a = await agent(w);
  const b = await agent(w);
  const mine = [await ask(a, send), await ask(a, shell), await ask(a, send)].map((p) => p.id);
  const theirs = [await ask(b, send), await ask(b, shell)].map((p) => p.id);

  t.deepEqual((await walk(a.call, P)).ids, mine);
  t.deepEqual((await walk(a.call, `${P}?agent=${a.id}`)).ids, mine, 'naming itself is allowed');
  const other = await a.call('GET', `${P}?agent=${b.id}`);
  t.is(other.status, 403);
  t.is(other.body.error.reason_code, 'forbidden');
  t.is(other.body.error.detail.field, 'agent');

  const first = await a.call('GET', `${P}?limit=1`);
  const cursor = first.body.next_cursor as string;
  t.is(readCursor(cursor).a, mine[0]!);
  // A cursor moved to the start of everything, or into the other agent's ids, still reads only a's.
  for (const position of ['perm_000000000000', theirs[0]!, theirs[1]!]) {
    const forged = await walk(a.call, withCursor(`${P}?limit=10`, rewriteCursor(cursor, position)));
    t.deepEqual(forged.ids, mine.filter((id) => id > position), position);
  }
  // Another agent's cursor, or a's with the admin's filters, is not a cursor of that query.
  for (const [call, path] of [
    [b.call, P],
    [w.admin, P],
    [w.admin, `${P}?agent=${b.id}`],
  ] as const) {
    const res = await call('GET', withCursor(path, cursor));
    t.is(res.status, 422, path);
    t.is(res.body.error.reason_code, 'invalid_value');
    t.is(res.body.error.detail.field, 'cursor');
  }
  t.deepEqual((await walk(w.admin, `${P}?agent=${b.id}`)).ids, theirs);
});

test('an admin lists every agent\'s permissions and narrows them by agent, status, action (whole categories too) and time', async (t) => {
  const c = await agent(w, { trust_tier: 'T2' });
  const d = await agent(w);
  const sent = await ask(c, send);
  const drafted = await ask(c, draft);
  const refused = await ask(c, shell);
  const pending = await ask(c, transfer);
  const other = await ask(d, send);

  const everyone = await walk(w.admin, `${P}?limit=50`);
  t.true(ascending(everyone.ids), 'oldest first, each once');
  for (const p of [sent, drafted, refused, pending, other]) t.true(everyone.ids.includes(p.id));

  const ofC = (query: string) => walk(w.admin, `${P}?agent=${c.id}&limit=2${query}`).then((r) => r.ids);
  t.deepEqual(await ofC(''), [sent.id, drafted.id, refused.id, pending.id]);
  t.deepEqual(await ofC('&status=approved'), [sent.id, drafted.id]);
  t.deepEqual(await ofC('&status=denied'), [refused.id]);
  t.deepEqual(await ofC('&status=pending'), [pending.id]);
  t.deepEqual(await ofC('&status=used'), []);
  t.deepEqual(await ofC('&action=email.send'), [sent.id]);
  t.deepEqual(await ofC('&action=email.*'), [sent.id, drafted.id]);
  t.deepEqual(await ofC('&action=bank.*'), [pending.id]);
  t.deepEqual(await ofC('&action=email.send&status=denied'), []);

  const all = (await walk(w.admin, `${P}?agent=${c.id}`)).items;
  const since = refused.created_at;
  const expected = all.filter((p) => p.created_at >= since).map((p) => p.id);
  t.true(expected.length < all.length && expected.includes(refused.id));
  t.deepEqual(await ofC(`&since=${since}`), expected);
  // The same instant written with an offset (a "+" in a query must be percent-encoded).
  const offset = new Date(Date.parse(since) + 3600_000).toISOString().replace('Z', '+01:00');
  t.deepEqual(await ofC(`&since=${encodeURIComponent(offset)}`), expected);
  t.deepEqual(await ofC('&since=2999-01-01T00:00:00Z'), []);
  t.deepEqual(await ofC('&since=1970-01-01T00:00:00Z'), all.map((p) => p.id));
});

test('a token past its expiry is listed as expired', async (t) => {
  const e = await agent(w);
  const short = await ask(e, { ...send, ttl: 1 });
  t.is(short.status, 'approved');
  await eventually(async () => (await walk(e.call, `${P}?status=expired`)).ids.includes(short.id), 'the token to expire');
  t.deepEqual((await walk(e.call, `${P}?status=approved`)).ids, []);
});

test('a filter that matches little still meets every match exactly once: a page can come back short, with a next_cursor', async (t) => {
  t.timeout(180_000);
  const f = await agent(w);
  const first = await ask(f, send);
  // More denied requests between the two matches than one page reads.
  let left = PAGE_SCAN_LIMIT + 5;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (left-- > 0) await ask(f, shell);
    }),
  );
  const last = await ask(f, send);

  for (const [who, call, path] of [
    ['the agent', f.call, `${P}?status=approved&limit=5`],
    ['an admin', w.admin, `${P}?agent=${f.id}&action=email.send&limit=5`],
  ] as const) {
    const walked = await walk(call, path);
    t.deepEqual(walked.ids, [first.id, last.id], who);
    t.true(walked.pages.some((p) => p.items.length < 5 && p.next_cursor !== undefined), `${who}: a short page that continues`);
    t.true(walked.pages.length >= 2, who);
  }
  const denied = await walk(f.call, `${P}?status=denied&limit=200`);
  t.is(denied.ids.length, PAGE_SCAN_LIMIT + 5);
  t.is(new Set(denied.ids).size, denied.ids.length);
  t.true(ascending(denied.ids));
});

test('approvers page through the queue: open ones oldest first, any other status newest first, each exactly once', async (t) => {
  const g = await agent(w, { trust_tier: 'T2' });
  const alice = await approver(w, 'Alice');
  const approvals: string[] = [];
  for (let i = 0; i < 5; i++) approvals.push((await ask(g, transfer)).approval!.id);

  const open = await walk(alice.call, '/api/v1/approvals?limit=2', 'approvals');
  t.true(ascending(open.ids), 'oldest open first, each once');
  t.deepEqual(open.ids.filter((id) => approvals.includes(id)), approvals);
  t.true(open.pages.slice(0, -1).every((p) => p.items.length <= 2 && p.next_cursor !== undefined));
  t.true(open.items.every((a) => a.status === 'pending' || a.status === 'delay'));

  for (const id of approvals.slice(0, 2)) t.is((await alice.call('POST', `/api/v1/approvals/${id}/deny`, {})).status, 200);
  const denied = await walk(alice.call, '/api/v1/approvals?status=denied&limit=1', 'approvals');
  t.true(descending(denied.ids), 'newest first, each once');
  t.deepEqual(denied.ids.filter((id) => approvals.includes(id)), approvals.slice(0, 2).reverse());
  t.true(denied.items.every((a) => a.status === 'denied'));
  const all = await walk(w.admin, '/api/v1/approvals?status=all&limit=2', 'approvals');
  t.true(descending(all.ids));
  t.deepEqual(all.ids.filter((id) => approvals.includes(id)), [...approvals].reverse());
  const stillOpen = await walk(alice.call, '/api/v1/approvals?status=pending&limit=2', 'approvals');
  t.deepEqual(stillOpen.ids.filter((id) => approvals.includes(id)), approvals.slice(2));

  const first = await alice.call('GET', '/api/v1/approvals?limit=1');
  for (const path of ['/api/v1/approvals?status=all', '/api/v1/agents', P]) {
    const res = await w.admin('GET', withCursor(path, first.body.next_cursor));
    t.is(res.status, 422, path);
    t.is(res.body.error.detail.field, 'cursor');
  }
});

test('a cursor of another list is refused, naming the cursor', async (t) => {
  await agent(w);
  await agent(w);
  const agents = await w.admin('GET', '/api/v1/agents?limit=1');
  for (const path of ['/api/v1/approvers', '/api/v1/resource-servers', P, '/api/v1/approvals']) {
    const res = await w.admin('GET', withCursor(path, agents.body.next_cursor));
    t.is(res.status, 422, path);
    t.is(res.body.error.reason_code, 'invalid_value');
    t.is(res.body.error.detail.field, 'cursor');
    t.regex(res.body.error.message, /^cursor: /);
  }
});

test("an agent's permissions are listed from a store an older version wrote, once the index is built at start", async (t) => {
  const own = await startWrit();
  const a = await agent(own);
  const ids = [await ask(a, send), await ask(a, shell), await ask(a, send)].map((p) => p.id);
  await own.close();
  // What a version without the index left: no agent-perm keys, and no marker.
  const store = await LevelStore.open(path.join(own.data, 'db'));
  const index: string[] = [];
  for await (const [key] of store.iterate({ gte: 'agent-perm/', lt: 'agent-perm/~' })) index.push(key);
  t.is(index.length, 3);
  await store.batch([...index, 'meta/agent-perm-index'].map((key) => ({ type: 'del' as const, key })), { sync: true });
  await store.close();

  const again = await startWrit({ data: own.data });
  try {
    t.deepEqual((await walk(caller(again.url, a.key), P)).ids, ids);
    t.deepEqual((await walk(again.admin, `${P}?agent=${a.id}&limit=1`)).ids, ids);
  } finally {
    await again.close();
  }
});
