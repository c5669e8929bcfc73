import test from 'ava';
import type { Browser } from 'playwright-core';
import { launch, newPage } from './helpers/browser.ts';
import { BOT_TOKEN, startFakeTelegram, type FakeTelegram } from './helpers/telegram.ts';
import { eventually, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * /login in Telegram: a linked approver gets a one-time link to the dashboard, decided by who
 * sends it (the Telegram user), not by anything typed. The link's token opens one session, once.
 * Against the telegram-test-api emulator on loopback and a real Chromium.
 */
let tg: FakeTelegram;
let w: TestWrit;
let browser: Browser;
test.before(async () => {
  tg = await startFakeTelegram();
  w = await startWrit({ config: { telegramBotToken: BOT_TOKEN, telegramApiRoot: tg.apiRoot } });
  browser = await launch();
});
test.after.always(async () => {
  await browser?.close();
  await w?.close();
  await tg?.close();
});

let nextUser = 7100;
async function linked(name: string) {
  const userId = nextUser++;
  const created = await w.admin('POST', '/api/v1/approvers', { name });
  const client = tg.user(userId, { name });
  await client.sendCommand(client.makeCommand(`/start ${created.body.link_code}`));
  await eventually(() => tg.messages(userId).some((m) => /^Linked: you are approver/.test(m.text)), `${name} linked`);
  return { id: created.body.id as string, userId, client };
}

/** Sends /login and returns the link the bot answers with. */
async function login(who: { userId: number; client: ReturnType<FakeTelegram['user']> }): Promise<string> {
  const before = tg.messages(who.userId).length;
  await who.client.sendCommand(who.client.makeCommand('/login'));
  const reply = await eventually(() => tg.messages(who.userId).slice(before).find((m) => /Sign in|only linked approvers/i.test(m.text)), 'the answer to /login');
  return reply.text;
}

const tokenOf = (text: string, url: string) => new RegExp(`${url.replace(/[.]/g, '\\.')}/login#token=([A-Za-z0-9_-]{43})`).exec(text)?.[1];

test('a linked approver\'s /login yields a link whose token signs in once; a second use is refused', async (t) => {
  const alice = await linked('Alice');
  const text = await login(alice);
  t.regex(text, /as Alice/);
  const token = tokenOf(text, w.url);
  t.truthy(token, `a link to ${w.url}/login#token=…: ${text}`);
  const first = await w.call('POST', '/api/v1/session', { login_token: token });
  t.is(first.status, 201);
  t.like(first.body.principal, { role: 'approver', id: alice.id, name: 'Alice' });
  t.regex(first.headers.get('set-cookie')!, /^writ_session=/);
  const again = await w.call('POST', '/api/v1/session', { login_token: token });
  t.is(again.status, 401);
  t.is(again.body.error.reason_code, 'unauthenticated');
});

test('an unlinked Telegram user gets a polite refusal and no link; a group chat gets no link either', async (t) => {
  const stranger = tg.user(7999);
  await stranger.sendCommand(stranger.makeCommand('/login'));
  const reply = await eventually(() => tg.messages(7999).find((m) => /linked approvers/.test(m.text)), 'the refusal');
  t.regex(reply.text, /^Sorry/);
  t.false(tg.messages(7999).some((m) => /#token=/.test(m.text)));

  const bob = await linked('Bob');
  const group = tg.user(bob.userId, { chatId: -7100, type: 'group' });
  await group.sendCommand(group.makeCommand('/login'));
  await eventually(() => tg.messages(-7100).some((m) => /private chat/.test(m.text)), 'the group refusal');
  t.false(tg.messages(-7100).some((m) => /#token=/.test(m.text)), 'a sign-in link is never posted to a group');
});

test('the link opened in a browser signs the approver in and lands on /approvals, and the token leaves the address bar', async (t) => {
  const carol = await linked('Carol');
  const token = tokenOf(await login(carol), w.url)!;
  const { page, context, problems } = await newPage(browser);
  await page.goto(`${w.url}/login#token=${token}`);
  await page.waitForURL(/\/approvals$/);
  await page.waitForSelector('#sign-out');
  t.regex(await page.locator('header .who').innerText(), /Carol \(approver\)/);
  t.false(page.url().includes(token), 'the token is gone from the address bar');
  t.true((await context.cookies()).some((c) => c.name === 'writ_session' && c.httpOnly));
  t.deepEqual(problems, []);
  await context.close();

  // The same link a second time, in another browser: refused, and the sign-in form says why.
  const second = await newPage(browser);
  await second.page.goto(`${w.url}/login#token=${token}`);
  await second.page.waitForSelector('#login-status [role="alert"]');
  t.regex(await second.page.locator('#login-status [role="alert"]').innerText(), /not valid, or was used already/);
  await second.context.close();
});
