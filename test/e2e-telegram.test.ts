import test from 'ava';
import { parse } from '../bot/callback-data.ts';
import { BOT_TOKEN, startFakeTelegram, type FakeTelegram } from './helpers/telegram.ts';
import { agent, caller, eventually, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * Approvals in Telegram against the telegram-test-api emulator on loopback, through the real Bot
 * API protocol. Each test gets its own Writ and emulator.
 */
async function setup(config: Record<string, unknown> = {}) {
  const tg = await startFakeTelegram();
  const w = await startWrit({ config: { telegramBotToken: BOT_TOKEN, telegramApiRoot: tg.apiRoot, criticalDelay: 2, ...config } });
  return { tg, w, close: async () => (await w.close(), await tg.close()) };
}

let nextUser = 1000;
/** An approver linked from their own private chat, as a person would do it. */
async function linked(tg: FakeTelegram, w: TestWrit, name: string, options: { telegram_user_id?: number } = {}) {
  const userId = options.telegram_user_id ?? nextUser++;
  const created = await w.admin('POST', '/api/v1/approvers', { name, ...options });
  const client = tg.user(userId, { name });
  await client.sendCommand(client.makeCommand(`/start ${created.body.link_code}`));
  await eventually(() => tg.messages(userId).some((m) => /^Linked: you are approver/.test(m.text)), `${name} linked`);
  return { id: created.body.id as string, userId, client, rest: created.body };
}

/** An agent asks for a bank transfer, which waits for people; returns the agent, answer and approval id. */
async function pendingTransfer(w: TestWrit, body: Record<string, unknown> = {}) {
  const a = await agent(w, { trust_tier: 'T2' });
  const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5, ...body });
  return { a, res, id: res.body.approval.id as string };
}

const card = (tg: FakeTelegram, chatId: number, approvalId: string) => tg.messages(chatId).find((m) => m.text.includes(approvalId));
const buttons = (m: ReturnType<typeof card>) => m?.reply_markup?.inline_keyboard.flat() ?? [];

async function tap(tg: FakeTelegram, who: { userId: number; client: ReturnType<FakeTelegram['user']> }, chatId: number, approvalId: string, text: string) {
  const message = await eventually(() => {
    const c = card(tg, chatId, approvalId);
    return c && buttons(c).some((b) => b.text.includes(text)) ? c : undefined;
  }, `a ${text} button`);
  const button = buttons(message).find((b) => b.text.includes(text))!;
  return press(tg, who, chatId, message.message_id, button.callback_data);
}

async function press(tg: FakeTelegram, who: { userId: number; client: ReturnType<FakeTelegram['user']> }, chatId: number, messageId: number, data: string) {
  const before = tg.answers().length;
  await who.client.sendCallback(who.client.makeCallbackQuery(data, { message: { message_id: messageId, chat: { id: chatId } } as never, from: { id: who.userId } as never }));
  return eventually(() => tg.answers()[before], 'the answer to the tap');
}

test('linking: a code links once, in a private chat; wrong, reused and foreign codes are refused', async (t) => {
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    const reuse = tg.user(5001);
    await reuse.sendCommand(reuse.makeCommand(`/start ${alice.rest.link_code}`));
    await eventually(() => tg.messages(5001).some((m) => /link code is not valid/.test(m.text)), 'a reused code refused');
    const stranger = tg.user(5002);
    await stranger.sendCommand(stranger.makeCommand('/start not-a-code'));
    await eventually(() => tg.messages(5002).some((m) => /link code is not valid/.test(m.text)), 'a wrong code refused');
    t.false(tg.messages(5001).some((m) => /Linked/.test(m.text)));

    const bound = await w.admin('POST', '/api/v1/approvers', { name: 'Bound', telegram_user_id: 777 });
    const impostor = tg.user(778);
    await impostor.sendCommand(impostor.makeCommand(`/start ${bound.body.link_code}`));
    await eventually(() => tg.messages(778).some((m) => /belongs to another Telegram account/.test(m.text)), 'refusal');
    const group = tg.user(777, { chatId: -100, type: 'group' });
    await group.sendCommand(group.makeCommand(`/start ${bound.body.link_code}`));
    await eventually(() => tg.messages(-100).some((m) => /private chat/.test(m.text)), 'group refusal');
    const owner = tg.user(777);
    await owner.sendCommand(owner.makeCommand(`/start ${bound.body.link_code}`));
    await eventually(() => tg.messages(777).some((m) => /Linked: you are approver Bound/.test(m.text)), 'the right user links');

    const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
    t.is(records.filter((r: { type: string }) => r.type === 'approver.telegram_linked').length, 2);
  } finally {
    await close();
  }
});

test('a card reaches every linked approver with everything needed to decide, and a tap approves', async (t) => {
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    const bob = await linked(tg, w, 'Bob');
    const a = await agent(w, { name: 'invoice-bot', class: 'finance', trust_tier: 'T2' });
    const res = await a.call('POST', '/api/v1/permissions', {
      action: 'bank.transfer',
      resource: 'account:checking',
      value: 500,
      currency: 'EUR',
      scope: { max_value: 500 },
      context: { reason: 'pay invoice <7>', invoice_id: 'INV-7' },
    });
    const id = res.body.approval.id;
    for (const who of [alice, bob]) {
      const c = await eventually(() => card(tg, who.userId, id), `card for ${who.userId}`);
      for (const part of ['invoice-bot', 'finance', 'T2', 'bank.transfer', 'account:checking', '500 EUR', 'max_value', 'pay invoice &lt;7&gt;', 'INV-7', 'sensitive', '0 of 1', 'Expires']) {
        t.true(c.text.includes(part), `card shows ${part}`);
      }
      t.deepEqual(buttons(c).map((b) => b.text), ['✅ Approve', '❌ Deny']);
      for (const b of buttons(c)) {
        t.true(Buffer.byteLength(b.callback_data) <= 64);
        t.false(b.callback_data.includes(id), 'the payload is a handle, not the approval id');
        t.truthy(parse(b.callback_data));
      }
    }
    const answer = await tap(tg, alice, alice.userId, id, 'Approve');
    t.is(answer, 'Approved.');
    t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.status, 'approved');
    for (const who of [alice, bob]) {
      const edited = await eventually(() => {
        const c = card(tg, who.userId, id);
        return c && /Approved/.test(c.text) && buttons(c).length === 0 ? c : undefined;
      }, `card edited for ${who.userId}`);
      t.regex(edited.text, /Approved<\/b> by Alice at \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    }
  } finally {
    await close();
  }
});

test("a stranger's tap in a shared chat does not count, is answered 'not allowed', and is logged", async (t) => {
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    const { a, res, id } = await pendingTransfer(w);
    const stranger = { userId: 4242, client: tg.user(4242, { chatId: alice.userId }) };
    const answer = await tap(tg, stranger, alice.userId, id, 'Approve');
    t.regex(answer, /not allowed/);
    t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.status, 'pending');
    const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
    const event = records.find((r: { type: string }) => r.type === 'security.telegram_tap_refused');
    t.like(event?.data, { telegram_user_id: 4242, reason: 'not_a_linked_approver', approval_id: id });
  } finally {
    await close();
  }
});

test('a deny tap denies, and a tap on a decided approval changes nothing and says so', async (t) => {
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    const bob = await linked(tg, w, 'Bob');
    const { a, res, id } = await pendingTransfer(w);
    await eventually(() => card(tg, bob.userId, id), 'card');
    const stale = card(tg, bob.userId, id)!;
    t.is(await tap(tg, alice, alice.userId, id, 'Deny'), 'Denied.');
    t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.status, 'denied');
    // Bob taps the button he still had before his card was edited.
    t.regex(await press(tg, bob, bob.userId, stale.message_id, buttons(stale)[0]!.callback_data), /already denied/);
    t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.status, 'denied');
    await eventually(() => /Denied<\/b> by Alice/.test(card(tg, bob.userId, id)?.text ?? ''), "Bob's card edited");
  } finally {
    await close();
  }
});

test('critical: one approver tapping twice is one vote; two approvers open the delay; Cancel inside it denies', async (t) => {
  const { tg, w, close } = await setup({ criticalDelay: 30 });
  try {
    const alice = await linked(tg, w, 'Alice');
    const bob = await linked(tg, w, 'Bob');
    const { a, res, id } = await pendingTransfer(w, { value: 50_000, currency: 'EUR' });
    t.regex(await tap(tg, alice, alice.userId, id, 'Approve'), /recorded \(1 of 2\)/);
    t.regex(await tap(tg, alice, alice.userId, id, 'Approve'), /already voted/);
    t.regex(await tap(tg, bob, bob.userId, id, 'Approve'), /Approved by two/);
    const inDelay = await eventually(() => {
      const c = card(tg, alice.userId, id);
      return c && buttons(c).some((b) => b.text.includes('Cancel')) ? c : undefined;
    }, 'the Cancel button');
    t.regex(inDelay.text, /Runs at:.* unless an approver cancels/);
    t.regex(await tap(tg, bob, bob.userId, id, 'Cancel'), /Cancelled/);
    t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.status, 'denied');
    await eventually(() => /Cancelled<\/b> by Bob/.test(card(tg, alice.userId, id)?.text ?? '') && buttons(card(tg, alice.userId, id)).length === 0, 'cards edited');
  } finally {
    await close();
  }
});

test('critical: after two approvals and the delay, the request is approved and the cards say so', async (t) => {
  const { tg, w, close } = await setup({ criticalDelay: 1 });
  try {
    const alice = await linked(tg, w, 'Alice');
    const bob = await linked(tg, w, 'Bob');
    const { a, res, id } = await pendingTransfer(w, { value: 50_000 });
    await tap(tg, alice, alice.userId, id, 'Approve');
    await tap(tg, bob, bob.userId, id, 'Approve');
    t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}?wait=10`)).body.status, 'approved');
    await eventually(() => /Approved<\/b> \(delay over\)/.test(card(tg, bob.userId, id)?.text ?? ''), 'cards edited');
  } finally {
    await close();
  }
});

test('a request nobody decides expires, and the cards say so', async (t) => {
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    const { a, res, id } = await pendingTransfer(w, { value: 5, approval_timeout: 1 });
    const first = await eventually(() => card(tg, alice.userId, id), 'card');
    const approve = buttons(first).find((b) => b.text.includes('Approve'))!.callback_data;
    t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}?wait=5`)).body.status, 'expired');
    await eventually(() => /Expired/.test(card(tg, alice.userId, id)?.text ?? '') && buttons(card(tg, alice.userId, id)).length === 0, 'card edited');
    t.regex(await press(tg, alice, alice.userId, first.message_id, approve), /already expired/);
    t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.status, 'expired');
  } finally {
    await close();
  }
});

test('with Telegram unreachable, REST approvals still work and the status shows the bot is down; cards catch up', async (t) => {
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    const a = await agent(w, { trust_tier: 'T2' });
    const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 });
    await eventually(() => card(tg, alice.userId, res.body.approval.id), 'the card, before the outage');
    tg.down = true;
    const unseen = await a.call('POST', '/api/v1/permissions', { action: 'bank.pay', resource: 'api:stripe.com', value: 7 });
    t.is(unseen.body.status, 'pending', 'new requests are decided while Telegram is down');
    const voted = await caller(w.url, alice.rest.api_key)('POST', `/api/v1/approvals/${res.body.approval.id}/approve`, {});
    t.is(voted.status, 200);
    t.is((await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.status, 'approved');
    const status = await eventually(async () => {
      const s = (await w.admin('GET', '/api/v1/status')).body.telegram;
      return s.connected === false && s.last_error ? s : undefined;
    }, 'the bot reported as down');
    t.is(status.enabled, true);
    tg.down = false;
    await eventually(() => /Approved<\/b> by Alice/.test(card(tg, alice.userId, res.body.approval.id)?.text ?? ''), 'the card edited once Telegram is back', 20_000);
    await eventually(() => card(tg, alice.userId, unseen.body.approval.id), 'the card that waited for Telegram', 20_000);
  } finally {
    await close();
  }
});

test('a 429 from Telegram is retried after retry_after, and the card still arrives', async (t) => {
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    tg.throttleNext('sendMessage', 3);
    const a = await agent(w, { trust_tier: 'T2' });
    const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 });
    await eventually(() => card(tg, alice.userId, res.body.approval.id), 'card after the 429', 10_000);
    const sends = tg.calls.filter((c) => c.method === 'sendMessage' && String(c.body.text).includes(res.body.approval.id));
    t.is(sends.length, 2);
    t.true(sends[1]!.at - sends[0]!.at >= 3000, `waited retry_after (3 s), not ${sends[1]!.at - sends[0]!.at} ms`);
  } finally {
    await close();
  }
});

test('/pending lists open approvals as cards, and /unlink stops them', async (t) => {
  const { tg, w, close } = await setup();
  try {
    const a = await agent(w, { trust_tier: 'T2' });
    const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 });
    const alice = await linked(tg, w, 'Alice');
    const group = tg.user(alice.userId, { chatId: -300, type: 'group' });
    await group.sendCommand(group.makeCommand('/pending'));
    await eventually(() => tg.messages(-300).some((m) => /private chat/.test(m.text)), '/pending refused in a group');
    t.false(tg.messages(-300).some((m) => m.text.includes(res.body.approval.id)));
    const second = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:second', value: 6 });
    await eventually(() => card(tg, alice.userId, second.body.approval.id), 'the card for a new approval');
    await alice.client.sendCommand(alice.client.makeCommand('/pending'));
    await eventually(() => card(tg, alice.userId, res.body.approval.id), 'card from /pending');
    await eventually(() => tg.messages(alice.userId).filter((m) => m.text.includes(second.body.approval.id)).length === 2, 'a second card from /pending');
    await caller(w.url, alice.rest.api_key)('POST', `/api/v1/approvals/${second.body.approval.id}/deny`, {});
    await eventually(() => tg.messages(alice.userId).filter((m) => m.text.includes(second.body.approval.id)).every((m) => /Denied/.test(m.text)), 'both cards edited');
    await alice.client.sendCommand(alice.client.makeCommand('/unlink'));
    await eventually(() => tg.messages(alice.userId).some((m) => /Unlinked/.test(m.text)), 'unlinked');
    t.regex(await tap(tg, alice, alice.userId, res.body.approval.id, 'Approve'), /not allowed/);
  } finally {
    await close();
  }
});

test('webhook mode: updates need the secret token Writ registered with Telegram', async (t) => {
  const tg = await startFakeTelegram();
  const w = await startWrit({ config: { telegramBotToken: BOT_TOKEN, telegramApiRoot: tg.apiRoot, telegramMode: 'webhook', telegramWebhookUrl: 'https://writ.example/api/v1/telegram/webhook' } });
  try {
    const registered = await eventually(() => tg.calls.find((c) => c.method === 'setWebhook'), 'setWebhook');
    t.is(registered.body.url, 'https://writ.example/api/v1/telegram/webhook');
    const created = await w.admin('POST', '/api/v1/approvers', { name: 'Alice' });
    const update = { update_id: 1, message: { message_id: 1, date: 0, text: `/start ${created.body.link_code}`, entities: [{ type: 'bot_command', offset: 0, length: 6 }], chat: { id: 55, type: 'private' }, from: { id: 55, is_bot: false, first_name: 'A' } } };
    t.is((await w.call('POST', '/api/v1/telegram/webhook', update)).status, 401);
    t.is((await w.call('POST', '/api/v1/telegram/webhook', update, { 'x-telegram-bot-api-secret-token': 'guess' })).status, 401);
    const ok = await w.call('POST', '/api/v1/telegram/webhook', update, { 'x-telegram-bot-api-secret-token': registered.body.secret_token });
    t.is(ok.status, 200);
    await eventually(() => tg.messages(55).some((m) => /Linked/.test(m.text)), 'linked through the webhook');
  } finally {
    await w.close();
    await tg.close();
  }
});

test('webhook mode: a request without the right secret token is refused before its body is read', async (t) => {
  const tg = await startFakeTelegram();
  const w = await startWrit({ config: { telegramBotToken: BOT_TOKEN, telegramApiRoot: tg.apiRoot, telegramMode: 'webhook', telegramWebhookUrl: 'https://writ.example/api/v1/telegram/webhook' } });
  try {
    const registered = await eventually(() => tg.calls.find((c) => c.method === 'setWebhook'), 'setWebhook');
    const hook = (body: string, headers: Record<string, string> = {}) => w.call('POST', '/api/v1/telegram/webhook', body, headers);
    // Unread, a body cannot be found malformed or too large: the secret is checked first.
    const malformed = await hook('{"update_id": ', { 'x-telegram-bot-api-secret-token': 'guess' });
    t.is(malformed.status, 401);
    t.is(malformed.body.error.reason_code, 'unauthenticated');
    t.is(malformed.body.error.detail.field, 'X-Telegram-Bot-Api-Secret-Token');
    const huge = await hook(JSON.stringify({ update_id: 2, blob: 'x'.repeat(2 * 1024 * 1024) }), { 'x-telegram-bot-api-secret-token': `${registered.body.secret_token}x` });
    t.is(huge.status, 401);
    // With the secret, the same body is read, and found malformed.
    const read = await hook('{"update_id": ', { 'x-telegram-bot-api-secret-token': registered.body.secret_token });
    t.is(read.status, 400);
    t.is(read.body.error.reason_code, 'malformed_json');
  } finally {
    await w.close();
    await tg.close();
  }
});

test('the SDK, waiting for approval, resolves when a human taps Approve in Telegram', async (t) => {
  const { WritClient } = await import('writ/client');
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    const a = await agent(w, { trust_tier: 'T2' });
    const client = new WritClient({ url: w.url, apiKey: a.key });
    const waiting = client.requestPermission({ action: 'bank.transfer', resource: 'account:sdk', value: 9, waitForApproval: true, timeout: 30 });
    const message = await eventually(() => tg.messages(alice.userId).find((m) => m.text.includes('account:sdk')), 'the card');
    const id = /<i>(appr_[^<]+)<\/i>/.exec(message.text)![1]!;
    await tap(tg, alice, alice.userId, id, 'Approve');
    const decided = await waiting;
    t.is(decided.status, 'approved');
    t.truthy(decided.token);
  } finally {
    await close();
  }
});

test('two approvers tapping at once: one decides, the other is told it is already decided', async (t) => {
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    const bob = await linked(tg, w, 'Bob');
    const { a, res, id } = await pendingTransfer(w);
    const aliceCard = await eventually(() => card(tg, alice.userId, id), "Alice's card");
    const bobCard = await eventually(() => card(tg, bob.userId, id), "Bob's card");
    const before = tg.answers().length;
    await Promise.all([
      alice.client.sendCallback(alice.client.makeCallbackQuery(buttons(aliceCard)[0]!.callback_data, { message: { message_id: aliceCard.message_id, chat: { id: alice.userId } } as never, from: { id: alice.userId } as never })),
      bob.client.sendCallback(bob.client.makeCallbackQuery(buttons(bobCard)[1]!.callback_data, { message: { message_id: bobCard.message_id, chat: { id: bob.userId } } as never, from: { id: bob.userId } as never })),
    ]);
    const answers = await eventually(() => (tg.answers().length >= before + 2 ? tg.answers().slice(before) : undefined), 'both answers');
    const status = (await a.call('GET', `/api/v1/permissions/${res.body.id}`)).body.status;
    t.true(status === 'approved' || status === 'denied');
    t.is(answers.filter((x) => /already/.test(x)).length, 1, answers.join(' | '));
    const approval = (await w.admin('GET', '/api/v1/approvals?status=all')).body.approvals.find((x: { id: string }) => x.id === id);
    t.is(approval.votes.length, 1);
  } finally {
    await close();
  }
});

test('a new link code replaces the old one, and links after an /unlink', async (t) => {
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    await alice.client.sendCommand(alice.client.makeCommand('/unlink'));
    await eventually(() => tg.messages(alice.userId).some((m) => /Unlinked/.test(m.text)), 'unlinked');
    const first = (await w.admin('POST', `/api/v1/approvers/${alice.id}/link-code`)).body;
    const second = (await w.admin('POST', `/api/v1/approvers/${alice.id}/link-code`)).body;
    t.not(first.link_code, second.link_code);
    await alice.client.sendCommand(alice.client.makeCommand(`/start ${first.link_code}`));
    await eventually(() => tg.messages(alice.userId).some((m) => /link code is not valid/.test(m.text)), 'the replaced code refused');
    await alice.client.sendCommand(alice.client.makeCommand(`/start ${second.link_code}`));
    await eventually(() => tg.messages(alice.userId).filter((m) => /^Linked/.test(m.text)).length === 2, 'linked again');
  } finally {
    await close();
  }
});

test("revoking an agent edits its open approval's cards to say so, and their buttons go", async (t) => {
  const { tg, w, close } = await setup();
  try {
    const alice = await linked(tg, w, 'Alice');
    const { a, id } = await pendingTransfer(w);
    await eventually(() => card(tg, alice.userId, id), 'the card');
    const revoked = await w.admin('POST', '/api/v1/oap/revocations', { scope: 'agent', id: a.id, reason: 'compromised' });
    t.is(revoked.body.approvals_closed, 1);
    const edited = await eventually(() => {
      const c = card(tg, alice.userId, id);
      return c && /the agent was revoked/.test(c.text) ? c : undefined;
    }, 'the card edited');
    t.is(buttons(edited).length, 0);
  } finally {
    await close();
  }
});
