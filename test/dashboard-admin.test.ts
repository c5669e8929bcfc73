import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { qrPath } from '../dashboard/src/qr.ts';
import { launch, newPage, shot, signIn } from './helpers/browser.ts';
import { BOT_TOKEN, startFakeTelegram } from './helpers/telegram.ts';
import { ADMIN, ROOT, agent, approver, caller, eventually, startWrit, tempDir, type TestWrit } from './helpers/writ.ts';

/**
 * The admin's pages in a real Chromium, signed in with the admin key: principals (create with the
 * key shown once, revoke, rotate, link codes with a QR code), policies (the active set, a refused
 * change at file:line:col, "try a request"), oversight touchpoints and legal bases, and status.
 */
let w: TestWrit;
let browser: Browser;
test.before(async () => {
  w = await startWrit();
  browser = await launch();
});
test.after.always(async () => {
  await browser?.close();
  await w?.close();
});

async function admin(on: TestWrit = w, width?: number) {
  const opened = await newPage(browser, width ? { width, height: 740 } : {});
  await signIn(opened.page, on.url, ADMIN);
  return opened;
}

const open = async (page: Page, url: string, ready: string) => {
  await page.goto(url);
  await page.waitForSelector(ready);
};

/** The approvers' tab of /principals (the kind is the page's own state, in the URL's fragment). */
async function approvers(page: Page, url: string) {
  await open(page, `${url}/principals`, '#principals-table');
  await page.click('#tab-approvers');
  await page.waitForSelector('#principals-table th:text("Telegram")');
}

const row = (page: Page, name: string) => page.locator('#principals-rows tr', { hasText: name });

test('an admin creates an agent: its key is shown once with a copy button, works against the API, and stops working once revoked in the page', async (t) => {
  const { page, context, problems } = await admin();
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await open(page, `${w.url}/principals`, '#principals-table');
  await page.fill('#new-name', 'Invoice bot');
  await page.fill('#new-class', 'finance');
  await page.selectOption('#new-trust_tier', 'T2');
  await page.click('#create-form button[type=submit]');
  await page.waitForSelector('#new-key-value');
  const key = (await page.textContent('#new-key-value'))!.trim();
  t.regex(key, /^writ_agent_[0-9a-f]{16}\./);
  t.regex((await page.textContent('#new-key'))!, /will not be shown again/);
  await page.click('#new-key button[data-copy]');
  await page.waitForSelector('#new-key button:text("Copied")');
  t.is(await page.evaluate(() => navigator.clipboard.readText()), key, 'the copy button copies the key');
  await row(page, 'Invoice bot').waitFor();
  t.regex((await row(page, 'Invoice bot').textContent())!, /finance.*T2.*active/);
  await shot(page, 'principal-created');

  const id = (await row(page, 'Invoice bot').getAttribute('data-id'))!;
  const listed = await w.admin('GET', '/api/v1/agents?limit=200');
  t.like(listed.body.items.find((a: { id: string }) => a.id === id), { name: 'Invoice bot', class: 'finance', trust_tier: 'T2' });
  const asAgent = caller(w.url, key);
  const allowed = await asAgent('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:client@acme.com', scope: { max_emails: 1 } });
  t.is(allowed.status, 201);
  t.is(allowed.body.status, 'approved');

  // Shown once: a new visit to the page has no trace of it.
  await open(page, `${w.url}/principals`, '#principals-table');
  await row(page, 'Invoice bot').waitFor();
  t.is(await page.$('#new-key'), null);
  t.false((await page.content()).includes(key));

  await row(page, 'Invoice bot').locator('button[data-action=revoke]').click();
  await row(page, 'Invoice bot').locator('select[data-field=reason]').selectOption('decommissioned');
  await row(page, 'Invoice bot').locator('button[data-action=confirm-revoke]').click();
  await row(page, 'Invoice bot').locator('.badge-revoked').waitFor();
  const refused = await asAgent('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:client@acme.com', scope: { max_emails: 1 } });
  t.is(refused.status, 401, 'the revoked agent key is refused');
  t.like((await w.admin('GET', '/api/v1/agents?limit=200')).body.items.find((a: { id: string }) => a.id === id), { revoked: { reason: 'decommissioned' } });
  t.deepEqual(problems, []);
  await context.close();
});

test('revoking asks first: "Keep" leaves the principal as it was', async (t) => {
  const a = await agent(w, { name: 'Kept agent' });
  const { page, context, problems } = await admin();
  await open(page, `${w.url}/principals`, '#principals-table');
  await row(page, 'Kept agent').locator('button[data-action=revoke]').click();
  await row(page, 'Kept agent').locator('button[data-action=cancel-revoke]').click();
  await row(page, 'Kept agent').locator('button[data-action=revoke]').waitFor();
  t.is((await a.call('GET', '/api/v1/permissions')).status, 200, 'the key still works');
  t.deepEqual(problems, []);
  await context.close();
});

test('rotating a key in the page shows the new key once; it works and the old one is refused', async (t) => {
  const a = await agent(w, { name: 'Rotated agent' });
  const { page, context, problems } = await admin();
  await open(page, `${w.url}/principals`, '#principals-table');
  await row(page, 'Rotated agent').locator('button[data-action=rotate]').click();
  await page.waitForSelector('#new-key-value');
  const key = (await page.textContent('#new-key-value'))!.trim();
  t.not(key, a.key);
  t.regex((await page.textContent('#new-key'))!, /old key has stopped working[\s\S]*will not be shown again/);
  t.is((await caller(w.url, key)('GET', '/api/v1/permissions')).status, 200);
  t.is((await a.call('GET', '/api/v1/permissions')).status, 401);
  t.deepEqual(problems, []);
  await context.close();
});

test('without a connected bot, an approver link code is shown with a QR code of the code itself, and the page says so', async (t) => {
  await approver(w, 'Dana');
  const { page, context, problems } = await admin();
  await approvers(page, w.url);
  await row(page, 'Dana').locator('button[data-action=link-code]').click();
  await page.waitForSelector('#link-code .qr svg[role=img]');
  const code = (await page.textContent('#link-code-value'))!.trim();
  t.regex(code, /^[A-Za-z0-9_-]{8,}$/);
  t.regex((await page.textContent('#link-code'))!, new RegExp(`/start ${code}`));
  t.truthy(await page.$('#link-code-no-bot'));
  t.is(await page.getAttribute('#link-code .qr svg path', 'd'), qrPath(code).d, 'the QR code encodes the code');
  await shot(page, 'principals');
  t.deepEqual(problems, []);
  await context.close();
});

test("with the Telegram bot connected, the link code's QR code is the bot link, and following it links the approver", async (t) => {
  const tg = await startFakeTelegram();
  const own = await startWrit({ config: { telegramBotToken: BOT_TOKEN, telegramApiRoot: tg.apiRoot } });
  try {
    const bot = await eventually(async () => {
      const s = (await own.admin('GET', '/api/v1/status')).body.telegram;
      return s.connected && s.bot_username;
    }, 'the bot connected');
    await approver(own, 'Erin');
    const { page, context, problems } = await admin(own);
    await approvers(page, own.url);
    await row(page, 'Erin').locator('button[data-action=link-code]').click();
    await page.waitForSelector('#link-code .qr svg');
    const link = (await page.textContent('#link-code-value'))!.trim();
    const code = new URL(link).searchParams.get('start')!;
    t.is(link, `https://t.me/${bot}?start=${code}`);
    t.is(await page.getAttribute('#link-code .qr svg path', 'd'), qrPath(link).d, 'the QR code encodes the bot link');
    t.is(await page.$('#link-code-no-bot'), null);
    const client = tg.user(4711, { name: 'Erin' });
    await client.sendCommand(client.makeCommand(`/start ${code}`));
    await eventually(() => tg.messages(4711).some((m) => /^Linked: you are approver/.test(m.text)), 'Erin linked');
    await approvers(page, own.url);
    await eventually(async () => /linked/.test((await row(page, 'Erin').textContent()) ?? '') && !/not linked/.test((await row(page, 'Erin').textContent()) ?? ''), 'the list shows Erin linked');
    t.deepEqual(problems, []);
    await context.close();
  } finally {
    await own.close();
    await tg.close();
  }
});

test('/policies shows the active set and "try a request" gives the decision and tier a real request gets', async (t) => {
  const { page, context, problems } = await admin();
  await open(page, `${w.url}/policies`, '#policy-hash');
  const status = (await w.admin('GET', '/api/v1/policies')).body;
  t.is(await page.textContent('#policy-hash'), status.hash);
  t.regex((await page.textContent('#policy-files tr[data-file="shell.cedar"]'))!, /no-shell/);
  t.regex((await page.textContent('#policy-files tr[data-file="bank.cedar"]'))!, /bank-sensitive[\s\S]*bank-large-critical/);
  const payer = await agent(w, { name: 'payer', trust_tier: 'T2' });

  const submit = async (fields: { action: string; resource: string; value?: string; currency?: string; scope?: string }) => {
    await page.fill('#try-action', fields.action);
    await page.fill('#try-resource', fields.resource);
    await page.fill('#try-value', fields.value ?? '');
    await page.fill('#try-currency', fields.currency ?? '');
    await page.fill('#try-scope', fields.scope ?? '');
    await page.selectOption('#try-trust-tier', 'T2');
    await page.evaluate(() => document.getElementById('try-result')!.replaceChildren());
    await page.click('#try-form button[type=submit]');
    await page.waitForSelector('#try-result > *');
  };
  const tryIt = async (fields: Parameters<typeof submit>[0]) => {
    await submit(fields);
    return { decision: (await page.textContent('#try-decision'))?.trim(), tier: (await page.textContent('#try-tier'))?.trim() };
  };
  const transfer = await tryIt({ action: 'bank.transfer', resource: 'bank:acct-1', value: '500', currency: 'EUR' });
  t.deepEqual(transfer, { decision: 'escalate', tier: 'sensitive' });
  t.regex((await page.textContent('#try-trace'))!, /policy_evaluation[\s\S]*escalation_routing/);
  const real = await payer.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'bank:acct-1', value: 500, currency: 'EUR' });
  t.deepEqual(transfer, { decision: real.body.policy_decision, tier: real.body.tier });
  await shot(page, 'policies');

  const shell = await tryIt({ action: 'shell.execute', resource: 'host:build-1' });
  t.is(shell.decision, 'deny');
  t.is((await payer.call('POST', '/api/v1/permissions', { action: 'shell.execute', resource: 'host:build-1' })).body.policy_decision, 'deny');
  t.regex((await page.textContent('#try-result'))!, /no-shell/);

  // Bad input is named: in the page (not JSON) and by the server (a bad bound).
  await page.fill('#try-scope', '{max_emails: 1');
  await page.click('#try-form button[type=submit]');
  await page.waitForSelector('#try-result [role=alert]');
  t.regex((await page.textContent('#try-result'))!, /scope is not JSON/);
  await submit({ action: 'email.send', resource: 'email:x@acme.com', scope: '{"max_emails": "many"}' });
  t.truthy(await page.$('#try-result [role=alert]'));
  t.regex((await page.textContent('#try-result'))!, /scope\.max_emails/);
  t.deepEqual(problems, []);
  await context.close();
});

test('/policies shows a refused change with file:line:col while the last good set keeps serving', async (t) => {
  const dir = await tempDir('writ-policies-');
  for (const file of await fs.readdir(path.join(ROOT, 'policies'))) if (file.endsWith('.cedar')) await fs.copyFile(path.join(ROOT, 'policies', file), path.join(dir, file));
  const own = await startWrit({ policies: dir });
  try {
    const { page, context, problems } = await admin(own);
    await open(page, `${own.url}/policies`, '#policy-hash');
    const hash = await page.textContent('#policy-hash');
    t.is(await page.$('#policy-error [role=alert]'), null);
    await fs.writeFile(path.join(dir, 'broken.cedar'), '// a policy with a syntax error\npermit (\n  principal,\n  action == Action::"x.y"\n  resource\n);\n');
    await page.waitForSelector('#policy-error .problem');
    const shown = (await page.textContent('#policy-error .problem'))!;
    t.regex(shown, /^broken\.cedar:\d+:\d+: /);
    const { last_error } = (await own.admin('GET', '/api/v1/policies')).body;
    t.is(shown, last_error.problems[0]);
    t.is(await page.textContent('#policy-hash'), hash, 'the last good set is still the active one');
    t.deepEqual(problems, []);
    await context.close();
  } finally {
    await own.close();
  }
});

test('/status shows storage ok and the log size', async (t) => {
  const before = (await w.admin('GET', '/api/v1/status')).body.log.size;
  const { page, context, problems } = await admin();
  await open(page, `${w.url}/status`, '#log-size');
  const after = (await w.admin('GET', '/api/v1/status')).body.log.size;
  t.regex((await page.textContent('#status-storage h2'))!, /Storage ok/);
  const size = Number(await page.textContent('#log-size'));
  // Other tests share this server and write to its log meanwhile.
  t.true(size >= before && size <= after, `${before} <= ${size} <= ${after}`);
  t.regex((await page.textContent('#status-policies'))!, /ready/);
  t.regex((await page.textContent('#status-telegram'))!, /Not configured/);
  t.regex((await page.textContent('#status-webhooks'))!, /Subscriptions/);
  await shot(page, 'status');
  t.deepEqual(problems, []);
  await context.close();
});

test('/oversight lists a touchpoint after its attester posts an attestation, with a bar per legal basis', async (t) => {
  const made = await w.admin('POST', '/api/v1/attesters', { name: 'refund engine', touchpoint_id: 'tp-refunds' });
  const attester = caller(w.url, made.body.api_key);
  for (const [seq, legal_basis] of [[1, 'contract'], [2, 'contract'], [3, 'consent']] as const) {
    const res = await attester('POST', '/api/v1/oap/attestations', {
      attestation_id: `att-page-${seq}`,
      touchpoint_id: 'tp-refunds',
      agent_class: 'refund-bot',
      action_class: 'refund.issue',
      decision: 'allow',
      decided_at: new Date().toISOString(),
      sequence_number: seq,
      legal_basis,
      evidence_digest: crypto.createHash('sha256').update(`page-${seq}`).digest('hex'),
    });
    t.is(res.status, 201);
  }
  const { page, context, problems } = await admin();
  await open(page, `${w.url}/oversight`, '#touchpoints-table tr[data-touchpoint="tp-refunds"]');
  t.regex((await page.textContent('tr[data-touchpoint="tp-refunds"]'))!, /ok.*3/);
  const bars = page.locator('[data-agent-class="refund-bot"] .bars span');
  t.is(await bars.count(), 6, 'a bar per legal basis');
  t.is(await page.getAttribute('[data-agent-class="refund-bot"] .bars span[data-basis=contract]', 'data-count'), '2');
  const heights = await bars.evaluateAll((spans) => Object.fromEntries(spans.map((s) => [s.getAttribute('data-basis'), (s as HTMLElement).getBoundingClientRect().height])));
  t.true(heights.contract! > heights.consent! && heights.consent! > heights.vital_interests!, JSON.stringify(heights));
  await shot(page, 'oversight');
  t.deepEqual(problems, []);
  await context.close();
});

test('the admin pages fit a 360 px phone without sideways scrolling', async (t) => {
  await agent(w, { name: 'a phone-width agent with a long name to wrap' });
  const { page, context, problems } = await admin(w, 360);
  for (const [where, ready] of [
    ['/principals', '#principals-rows tr'],
    ['/policies', '#policy-hash'],
    ['/oversight', '#touchpoints'],
    ['/status', '#log-size'],
  ] as const) {
    await open(page, `${w.url}${where}`, ready);
    t.true(await page.evaluate(() => document.documentElement.scrollWidth <= 360), `${where}: no horizontal scroll`);
  }
  await approvers(page, w.url);
  t.true(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'approvers: no horizontal scroll');
  t.deepEqual(problems, []);
  await context.close();
});
