import test from 'ava';
import type { Browser, Page } from 'playwright-core';
import { launch, newPage, shot, signIn } from './helpers/browser.ts';
import { ADMIN, agent, approver, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * The approvals page in a real Chromium against a real Writ: the queue updates live (Server-Sent
 * Events), an approver approves, denies with a comment, or cancels a critical approval during its
 * delay with a click, and the agent waiting on its request hears the outcome. The critical delay is
 * 300 s here, so it lasts while the page is looked at.
 */
let w: TestWrit;
let browser: Browser;
test.before(async () => {
  w = await startWrit({ config: { criticalDelay: 300 } });
  browser = await launch();
});
test.after.always(async () => {
  await browser?.close();
  await w?.close();
});

const card = (id: string) => `[data-approval-id="${id}"]`;

/** An approver signed in on /approvals with the event stream connected. */
async function onApprovals(name: string, width?: number) {
  const ap = await approver(w, name);
  const opened = await newPage(browser, width ? { width, height: 800 } : {});
  await signIn(opened.page, w.url, ap.key);
  await opened.page.waitForURL(/\/approvals$/);
  await opened.page.waitForSelector('#live[data-state="live"]');
  return { ap, ...opened };
}

async function transfer(value: number, extra: Record<string, unknown> = {}) {
  const a = await agent(w, { name: 'invoice-bot', class: 'finance', trust_tier: 'T2' });
  const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value, currency: 'EUR', ...extra });
  if (res.status !== 201 || !res.body.approval) throw new Error(`transfer: ${res.status} ${res.text.slice(0, 300)}`);
  return { a, permissionId: res.body.id as string, approvalId: res.body.approval.id as string };
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();

test('a new approval arrives live with everything needed to decide, and a click approves it: the agent\'s long poll returns approved', async (t) => {
  const { page, context, problems } = await onApprovals('live-approver');
  const { a, permissionId, approvalId } = await transfer(500, { scope: { max_value: 500 }, context: { reason: 'pay invoice <7>', invoice_id: 'INV-7' } });
  // No reload: the card appears because the stream said so.
  await page.waitForSelector(`#queue ${card(approvalId)}[data-status="pending"]`);
  const shown = await text(page, card(approvalId));
  for (const part of ['invoice-bot', 'class finance', 'trust T2', 'bank.transfer', 'account:checking', '500 EUR', 'max_value', 'pay invoice <7>', 'INV-7', 'sensitive', '0 of 1 approval', 'in ']) {
    t.true(shown.includes(part), `the card shows ${part}`);
  }
  const api = (await w.admin('GET', `/api/v1/approvals/${approvalId}`)).body;
  t.is(await text(page, `${card(approvalId)} [data-digest]`), api.request_digest);
  t.is(await text(page, `${card(approvalId)} [data-escalated-by]`), api.request.policy.escalated_by.join(', '));
  t.true(api.request.policy.escalated_by.length > 0);
  t.regex(await text(page, `${card(approvalId)} [data-countdown="expires"]`), /^in \d+ min \d+ s$/);
  await shot(page, 'approvals');

  const waiting = a.call('GET', `/api/v1/permissions/${permissionId}?wait=30`);
  await page.click(`${card(approvalId)} button[data-action="approve"]`);
  const answer = await waiting;
  t.is(answer.body.status, 'approved');
  t.truthy(answer.body.token, 'the agent gets its token');
  await page.waitForSelector(`#recent ${card(approvalId)}[data-status="approved"]`);
  t.is(await page.locator(`#queue ${card(approvalId)}`).count(), 0, 'a decided approval leaves the queue');
  t.deepEqual(problems, []);
  await context.close();
});

test('a request denied with a comment: the comment is in the approval\'s votes, and the agent is denied', async (t) => {
  const { page, context, problems, ap } = await onApprovals('deny-approver');
  const { a, permissionId, approvalId } = await transfer(40);
  await page.waitForSelector(`#queue ${card(approvalId)}`);
  await page.fill(`${card(approvalId)} textarea[name="comment"]`, 'not this vendor');
  await page.click(`${card(approvalId)} button[data-action="deny"]`);
  await page.waitForSelector(`#recent ${card(approvalId)}[data-status="denied"]`);
  t.is(await text(page, `${card(approvalId)} [data-vote="deny"] .comment`), 'not this vendor');
  const record = (await w.admin('GET', `/api/v1/approvals/${approvalId}`)).body;
  t.like(record.votes[0], { approver_id: ap.id, vote: 'deny', comment: 'not this vendor' });
  t.is((await a.call('GET', `/api/v1/permissions/${permissionId}`)).body.status, 'denied');
  t.deepEqual(problems, []);
  await context.close();
});

test('a critical approval: no web approve without a passkey; approved by two approvers over the API, then cancelled on the web during its delay', async (t) => {
  const { page, context, problems } = await onApprovals('critical-watcher');
  const { a, permissionId, approvalId } = await transfer(25_000);
  await page.waitForSelector(`#queue ${card(approvalId)}[data-tier="critical"]`);
  t.true((await text(page, card(approvalId))).includes('0 of 2 approvals'));

  // The page asks for a passkey assertion first; without one, nothing is sent.
  await page.click(`${card(approvalId)} button[data-action="approve"]`);
  await page.waitForSelector(`${card(approvalId)} .card-status [role="alert"]`);
  t.not((await text(page, `${card(approvalId)} .card-status [role="alert"]`)).trim(), '');
  t.deepEqual((await w.admin('GET', `/api/v1/approvals/${approvalId}`)).body.votes, [], 'no vote was cast');

  for (const name of ['critical-one', 'critical-two']) {
    const other = await approver(w, name);
    t.is((await other.call('POST', `/api/v1/approvals/${approvalId}/approve`, { comment: `ok from ${name}` })).status, 200);
  }
  await page.waitForSelector(`#queue ${card(approvalId)}[data-status="delay"]`);
  t.regex(await text(page, `${card(approvalId)} [data-countdown="delay"]`), /^in [45] min \d+ s$/);
  t.is(await page.locator(`${card(approvalId)} button[data-action="approve"]`).count(), 0, 'only cancel during the delay');
  await shot(page, 'approval-critical-delay');

  await page.fill(`${card(approvalId)} textarea[name="comment"]`, 'call the vendor first');
  await page.click(`${card(approvalId)} button[data-action="cancel"]`);
  await page.waitForSelector(`#recent ${card(approvalId)}[data-status="cancelled"]`);
  const seen = (await a.call('GET', `/api/v1/permissions/${permissionId}`)).body;
  t.is(seen.status, 'denied');
  t.is(seen.approval.status, 'cancelled');
  t.like(seen.approval.votes.at(-1), { vote: 'cancel', comment: 'call the vendor first' });
  t.deepEqual(problems, []);
  await context.close();
});

test('an approval\'s own page follows it live; an admin sees it read-only, with the trace', async (t) => {
  const { approvalId } = await transfer(60);
  const { page, context, problems } = await newPage(browser);
  await signIn(page, w.url, ADMIN);
  await page.goto(`${w.url}/approvals/${approvalId}`);
  await page.waitForSelector(`${card(approvalId)}[data-status="pending"]`);
  await page.waitForSelector('[data-trace] tbody tr');
  t.is(await page.locator(`${card(approvalId)} button`).count(), 0, 'admins do not decide');
  await page.waitForSelector('#live[data-state="live"]');
  const other = await approver(w, 'detail-approver');
  await other.call('POST', `/api/v1/approvals/${approvalId}/approve`, {});
  await page.waitForSelector(`${card(approvalId)}[data-status="approved"]`);
  t.deepEqual(problems, []);
  await context.close();
});

test('at a phone width (360 px) the approvals page with a pending approval has no sideways scroll', async (t) => {
  const { page, context, problems } = await onApprovals('phone-approver', 360);
  const { approvalId } = await transfer(70, { context: { reason: 'a long reason without spaces: '.padEnd(200, 'x') } });
  await page.waitForSelector(`#queue ${card(approvalId)}`);
  t.true(await page.evaluate(() => document.documentElement.scrollWidth <= 360), `scroll width ${await page.evaluate(() => document.documentElement.scrollWidth)}`);
  t.deepEqual(problems, []);
  await context.close();
});
