import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { startPostgres, type TestPostgres } from './helpers/postgres.ts';
import { BOT_TOKEN, startFakeTelegram } from './helpers/telegram.ts';
import crypto from 'node:crypto';
import { TransparencyLog } from '../src/log/log.ts';
import { verifyLog } from '../src/log/verify.ts';
import { PostgresStore } from '../src/store/postgres.ts';
import { ADMIN, caller, eventually, spawnWrit, startWrit, tempDir, writCliWith, type TestWrit } from './helpers/writ.ts';

/**
 * Several Writ nodes serving one PostgreSQL database, with requests spread across them: whatever
 * one node decides, the others see and honour at once; of concurrent requests racing on one
 * record, across nodes, exactly one wins; one log; and a node killed mid-stream loses nothing it
 * acknowledged, while the others go on and take its background work over.
 */
let server: Promise<TestPostgres> | undefined;
const postgres = () => (server ??= startPostgres());
test.after.always(async () => (await server)?.stop());

/** The keys are sealed in the database under this master key, so every node has the same ones. */
const MASTER = 'q3J7Yk2c0n8v5Xh1Lw9Zt4Rb6Md2Fs7Pa0Ue3Gi5Oj8=';
const EMAIL = (i: number) => ({ action: 'email.send', resource: `email:r${i}@acme.com`, scope: { max_emails: 1 } });

/** Three nodes in this process, each with its own data directory, on one new database. */
async function cluster(config: Record<string, unknown> = {}): Promise<{ nodes: TestWrit[]; url: string; close(): Promise<void> }> {
  const url = await (await postgres()).database();
  const start = () => startWrit({ config: { databaseUrl: url, masterKey: MASTER, criticalDelay: 1, ...config } });
  // The first creates the database's keys and log; the others start together on it.
  const first = await start();
  const nodes = [first, ...(await Promise.all([start(), start()]))];
  return { nodes, url, close: async () => void (await Promise.all(nodes.map((n) => n.close()))) };
}

async function principal(node: TestWrit, kind: 'agents' | 'approvers', body: Record<string, unknown>) {
  const res = await node.admin('POST', `/api/v1/${kind}`, body);
  if (res.status !== 201) throw new Error(`${kind}: ${res.status} ${res.text}`);
  return { id: res.body.id as string, key: res.body.api_key as string };
}

test('of 20 concurrent consumes of one token spread over three nodes, exactly one succeeds', async (t) => {
  const c = await cluster();
  try {
    const bot = await principal(c.nodes[0]!, 'agents', { name: 'bot' });
    const on = (i: number) => caller(c.nodes[i % 3]!.url, bot.key);
    const decided = await on(1)('POST', '/api/v1/permissions', EMAIL(0));
    t.is(decided.status, 201, decided.text);
    const spend = { token: decided.body.token, action: 'email.send', resource: 'email:r0@acme.com', use: { emails: 1 } };
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => on(i)('POST', '/api/v1/tokens/consume', spend)));
    const statuses = answers.map((r) => r.status);
    t.is(statuses.filter((s) => s === 200).length, 1, statuses.join(' '));
    for (const r of answers.filter((x) => x.status !== 200)) t.is(r.body.error.reason_code, 'token_used', r.text);
    const seen = await Promise.all(c.nodes.map((n) => n.admin('GET', `/api/v1/permissions/${decided.body.id}`)));
    t.deepEqual(seen.map((r) => r.body.status), ['used', 'used', 'used']);
  } finally {
    await c.close();
  }
  const verified = await writCliWith({ WRIT_MASTER_KEY: MASTER }, 'log', 'verify', '--data', c.nodes[0]!.data, '--database', c.url);
  t.is(verified.code, 0, verified.out);
});

test('a critical approval voted on two different nodes is approved, and a long poll on a third wakes when it is', async (t) => {
  const c = await cluster();
  try {
    const [a, b, third] = c.nodes as [TestWrit, TestWrit, TestWrit];
    const bot = await principal(a, 'agents', { name: 'bot', trust_tier: 'T2' });
    const alice = await principal(a, 'approvers', { name: 'Alice' });
    const bob = await principal(b, 'approvers', { name: 'Bob' });
    const asked = await caller(a.url, bot.key)('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 25_000, currency: 'EUR' });
    t.is(asked.body.tier, 'critical');
    const id = asked.body.approval.id;
    // Waiting on the third node, which neither decides nor votes.
    const waited = caller(third.url, bot.key)('GET', `/api/v1/permissions/${asked.body.id}?wait=30`);
    t.is((await caller(a.url, alice.key)('POST', `/api/v1/approvals/${id}/approve`, {})).body.status, 'pending');
    const twice = await caller(b.url, alice.key)('POST', `/api/v1/approvals/${id}/approve`, {});
    t.is(twice.body.error?.reason_code, 'already_voted', 'a vote cast on one node is counted on every node');
    const quorum = await caller(b.url, bob.key)('POST', `/api/v1/approvals/${id}/approve`, {});
    t.is(quorum.body.status, 'delay');
    const started = Date.now();
    const settled = await waited;
    t.is(settled.body.status, 'approved', settled.text);
    t.log(`the long poll on the third node answered ${Date.now() - started} ms after the quorum (critical delay 1 s)`);
    const jwks = (await third.call('GET', '/.well-known/jwks.json')).body;
    const { claims } = await verifyReceipt(settled.body.receipt, { jwks });
    t.deepEqual(claims.approvals?.map((x) => x.approver_id).sort(), [alice.id, bob.id].sort());
    // The delay's end was written once, by whichever node's timer came first.
    const records = (await a.admin('GET', '/api/v1/log/records')).body.records as Array<{ type: string; data: { approval_id?: string } }>;
    t.is(records.filter((r) => r.type === 'approval.approved' && r.data.approval_id === id).length, 1);
  } finally {
    await c.close();
  }
});

test('a long poll on one node wakes within moments of a vote on another', async (t) => {
  const c = await cluster();
  try {
    const [a, b] = c.nodes as [TestWrit, TestWrit];
    const bot = await principal(a, 'agents', { name: 'bot', trust_tier: 'T2' });
    const alice = await principal(b, 'approvers', { name: 'Alice' });
    const asked = await caller(a.url, bot.key)('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5, currency: 'EUR' });
    t.is(asked.body.tier, 'sensitive');
    const waited = caller(a.url, bot.key)('GET', `/api/v1/permissions/${asked.body.id}?wait=60`);
    // The waiter is registered before the vote (its first read found the request pending).
    await eventually(async () => (await a.admin('GET', `/api/v1/permissions/${asked.body.id}`)).body.status === 'pending', 'the pending request');
    const voted = await caller(b.url, alice.key)('POST', `/api/v1/approvals/${asked.body.approval.id}/approve`, {});
    t.is(voted.body.status, 'approved');
    const votedAt = Date.now();
    const woken = await waited;
    t.is(woken.body.status, 'approved');
    t.regex(woken.body.token, /^wtk_/);
    t.log(`woken ${Date.now() - votedAt} ms after the vote on the other node`);
    t.true(Date.now() - votedAt < 30_000, 'woken by the vote, not by the end of its wait');
  } finally {
    await c.close();
  }
});

test('what one node revokes, rotates or learns, every node honours at once', async (t) => {
  const c = await cluster();
  try {
    const [a, b, third] = c.nodes as [TestWrit, TestWrit, TestWrit];
    const bot = await principal(a, 'agents', { name: 'bot' });
    // Known, and cached, on every node.
    for (const n of c.nodes) t.is((await caller(n.url, bot.key)('POST', '/api/v1/permissions', EMAIL(1))).status, 201);
    const held = await caller(b.url, bot.key)('POST', '/api/v1/permissions', EMAIL(2));
    t.is((await a.admin('POST', '/api/v1/oap/revocations', { scope: 'agent', id: bot.id, reason: 'compromised' })).status, 200);
    for (const n of c.nodes) t.is((await caller(n.url, bot.key)('POST', '/api/v1/permissions', EMAIL(3))).status, 401, `node ${n.url} refuses the revoked agent`);
    const spend = await third.admin('GET', `/api/v1/permissions/${held.body.id}`);
    t.is(spend.body.status, 'revoked', 'its token, obtained on another node, is revoked');

    // A receipt key rotated on one node signs on the others, without a restart.
    const rotated = await a.admin('POST', '/api/v1/keys/rotate');
    t.is(rotated.status, 200);
    const other = await principal(b, 'agents', { name: 'other' });
    const receiptKid = async (n: TestWrit) => {
      const res = await caller(n.url, other.key)('POST', '/api/v1/permissions', EMAIL(4));
      return JSON.parse(Buffer.from(String(res.body.receipt).split('.')[0]!, 'base64url').toString()).kid as string;
    };
    for (const n of c.nodes) await eventually(async () => (await receiptKid(n)) === rotated.body.current, `node ${n.url} signing with the new key`);

    // Every node is listed with its policy set, and they agree.
    const status = await third.admin('GET', '/api/v1/status');
    t.is(status.body.nodes.length, 3);
    t.is(new Set(status.body.nodes.map((n: { policy_hash: string }) => n.policy_hash)).size, 1);
    t.deepEqual(status.body.warnings, []);
  } finally {
    await c.close();
  }
});

test('the status warns when the nodes serving one database have different policy sets', async (t) => {
  const c = await cluster();
  const policies = await tempDir();
  await (await import('node:fs/promises')).writeFile(`${policies}/only.cedar`, 'permit (principal, action, resource);\n');
  const odd = await startWrit({ policies, config: { databaseUrl: c.url, masterKey: MASTER } });
  try {
    const status = await c.nodes[0]!.admin('GET', '/api/v1/status');
    t.is(status.body.nodes.length, 4);
    t.is(new Set(status.body.nodes.map((n: { policy_hash: string }) => n.policy_hash)).size, 2);
    t.regex(status.body.warnings.join(' '), /different policy sets/);
  } finally {
    await odd.close();
    await c.close();
  }
});

/** A webhook receiver counting what it gets, by event id. */
async function receiver() {
  const got = new Map<string, number>();
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const id = String(req.headers['writ-event-id']);
    got.set(id, (got.get(id) ?? 0) + 1);
    // A slow receiver: a node killed mid-stream has sends in flight, which another node takes over.
    setTimeout(() => res.writeHead(200).end(), 200);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))) };
}

test('kill -9 of the node signing the checkpoints, in a stream of requests over three: nothing acknowledged is lost, another node signs, the log verifies, every webhook is delivered', async (t) => {
  t.timeout(180_000);
  const url = await (await postgres()).database();
  const hook = await receiver();
  t.teardown(() => hook.close());
  const env = { WRIT_DATABASE_URL: url, WRIT_MASTER_KEY: MASTER, WRIT_CHECKPOINT_INTERVAL: '1' };
  const first = await spawnWrit(await tempDir(), env);
  const rest = await Promise.all([spawnWrit(await tempDir(), env), spawnWrit(await tempDir(), env)]);
  const nodes = [first, ...rest];
  try {
    const admin = caller(first.url, ADMIN);
    t.is((await admin('POST', '/api/v1/webhooks', { url: hook.url, events: ['approval.requested'], secret: 'a-receiver-secret-0123456789' })).status, 201);
    const bot = await admin('POST', '/api/v1/agents', { name: 'bot', trust_tier: 'T2' });
    const on = (i: number) => caller(nodes[i % 3]!.url, bot.body.api_key);
    const acknowledged: Array<{ id: string; event?: string }> = [];
    let stop = false;
    let sent = 0;
    const stream = (async () => {
      for (let i = 0; !stop; i++) {
        const res = await on(i)('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 + (i % 7), currency: 'EUR' }).catch(() => undefined);
        sent++;
        if (res?.status === 201) acknowledged.push({ id: res.body.id, event: res.body.approval?.id });
      }
    })();
    await eventually(() => acknowledged.length >= 30, 'decisions before the kill', 60_000);
    // The node that holds the checkpoint lease (and has webhook sends in flight, the receiver being slow) dies.
    const signs = async (n: (typeof nodes)[number]) => (await caller(n.url, ADMIN)('GET', '/api/v1/status')).body.log?.signs_checkpoints === true;
    const victim = await eventually(async () => {
      for (const [i, n] of nodes.entries()) if (await signs(n)) return i + 1;
      return undefined;
    }, 'the node signing the checkpoints') - 1;
    const left = nodes.filter((_, i) => i !== victim);
    nodes[victim]!.child.kill('SIGKILL');
    const atKill = acknowledged.length;
    await eventually(() => acknowledged.length >= atKill + 30, 'decisions after the kill, on the other nodes', 60_000);
    stop = true;
    await stream;
    t.log(`${acknowledged.length} of ${sent} requests acknowledged; the killed node's share failed from the kill on`);
    const survivor = caller(left[1]!.url, ADMIN);
    for (const { id } of acknowledged) t.is((await survivor('GET', `/api/v1/permissions/${id}`)).status, 200, id);
    // One delivery per acknowledged request: those the killed node had claimed are sent by another once their claim runs out.
    const expected = acknowledged.length;
    await eventually(() => hook.got.size >= expected, `${expected} deliveries (have ${hook.got.size})`, 60_000);
    const twice = [...hook.got.values()].filter((n) => n > 1).length;
    t.log(`${hook.got.size} events delivered, ${twice} of them twice (a send in flight at the kill)`);
    t.true(twice <= 8, `at most the sends in flight at the kill are repeated (${twice})`);
    // Another node takes the lease over, and the checkpoints go on.
    await eventually(async () => (await signs(left[0]!)) || (await signs(left[1]!)), 'another node signing the checkpoints', 30_000);
    const size = (await survivor('GET', '/api/v1/status')).body.log.size as number;
    await eventually(async () => {
      const note = (await caller(left[0]!.url)('GET', '/api/v1/log/checkpoint')).text;
      return Number(note.split('\n')[1]) >= size;
    }, 'a checkpoint covering the log after the kill');
    const verified = await writCliWith({ WRIT_MASTER_KEY: MASTER }, 'log', 'verify', '--data', await tempDir(), '--database', url);
    t.is(verified.code, 0, verified.out);
    // The nodes left stop cleanly when told to.
    for (const n of left) n.child.kill('SIGTERM');
    t.deepEqual(await Promise.all(left.map((n) => n.exited)), [0, 0]);
  } finally {
    for (const n of nodes) n.child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
  }
});

test('one node at a time leads the Telegram bot: cards of approvals made on any node are sent once, and another node leads once it stops', async (t) => {
  const tg = await startFakeTelegram();
  t.teardown(() => tg.close());
  const c = await cluster({ telegramBotToken: BOT_TOKEN, telegramApiRoot: tg.apiRoot });
  const nodes = [...c.nodes];
  try {
    const leaders = async () => (await Promise.all(nodes.map((n) => n.admin('GET', '/api/v1/status')))).map((r) => r.body.telegram.leader as boolean);
    await eventually(async () => (await leaders()).filter(Boolean).length === 1, 'one leader');
    t.deepEqual((await leaders()).filter(Boolean), [true], 'exactly one node leads');
    const created = await nodes[0]!.admin('POST', '/api/v1/approvers', { name: 'Alice' });
    const alice = tg.user(4242, { name: 'Alice' });
    await alice.sendCommand(alice.makeCommand(`/start ${created.body.link_code}`));
    await eventually(() => tg.messages(4242).some((m) => /^Linked: you are approver/.test(m.text)), 'Alice linked');
    const bot = await principal(nodes[0]!, 'agents', { name: 'bot', trust_tier: 'T2' });
    const follower = (await leaders()).findIndex((l) => !l);
    const asked = await caller(nodes[follower]!.url, bot.key)('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 });
    const id = asked.body.approval.id as string;
    await eventually(() => tg.messages(4242).some((m) => m.text.includes(id)), 'the card, made on a node that does not lead');
    t.is(tg.messages(4242).filter((m) => m.text.includes(id)).length, 1, 'one card, from the leader alone');

    // The leader stops: another node takes the bot over.
    const leader = (await leaders()).indexOf(true);
    await nodes[leader]!.close();
    nodes.splice(leader, 1);
    await eventually(async () => (await leaders()).filter(Boolean).length === 1, 'a new leader', 20_000);
    const again = await caller(nodes[0]!.url, bot.key)('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 6 });
    await eventually(() => tg.messages(4242).some((m) => m.text.includes(again.body.approval.id)), 'a card from the new leader');
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
});

test('a key rotated on one node while its agent is revoked on another: the agent is left with no key that works', async (t) => {
  const c = await cluster();
  try {
    const [a, b] = c.nodes as [TestWrit, TestWrit];
    for (let i = 0; i < 10; i++) {
      const bot = await principal(a, 'agents', { name: `bot ${i}` });
      const [rotated, revoked] = await Promise.all([
        a.admin('POST', `/api/v1/agents/${bot.id}/keys`),
        b.admin('POST', '/api/v1/oap/revocations', { scope: 'agent', id: bot.id, reason: 'compromised' }),
      ]);
      t.is(revoked.status, 200, revoked.text);
      t.true(rotated.status === 201 || rotated.status === 409, rotated.text);
      for (const key of [bot.key, ...(rotated.status === 201 ? [rotated.body.api_key as string] : [])]) {
        for (const n of c.nodes) t.is((await caller(n.url, key)('POST', '/api/v1/permissions', EMAIL(i))).status, 401, `round ${i}: no key of the revoked agent works on ${n.url}`);
      }
    }
  } finally {
    await c.close();
  }
});

test('two logs on one database, each through connections of its own, write one chain: a batch the other outran is written again under the sequencing lock', async (t) => {
  const url = await (await postgres()).database();
  const stores = await Promise.all([PostgresStore.open(url), PostgresStore.open(url)]);
  try {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
    const signing = { kid: 'k', privateKey, publicKey, publicJwk: {}, publicRaw: Buffer.from(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)) };
    const logs = await Promise.all(stores.map((store) => TransparencyLog.open(store, { origin: 'test/pg-log', key: signing })));
    // Waves of appends on both at once: each wave's batches race for the tail.
    const answers = [];
    for (let wave = 0; wave < 20; wave++) answers.push(...(await Promise.all(Array.from({ length: 10 }, (_, i) => logs[i % 2]!.append('e', { wave, i })))));
    t.deepEqual(answers.map((a) => a.index).sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i), 'every entry has its own index');
    const conflicts = logs[0]!.stats.replaced + logs[1]!.stats.replaced;
    t.log(`${conflicts} batches met the other log first`);
    t.true(conflicts > 0, 'the logs raced');
    const verified = await verifyLog(stores[0]!, { name: 'test/pg-log', publicKeyRaw: signing.publicRaw });
    t.true(verified.ok, verified.problem?.message);
    t.is(verified.size, 200);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
});
