import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { KEYS } from '../src/log/log.ts';
import { LevelStore } from '../src/store/level.ts';
import { launch, newPage, shot, signIn } from './helpers/browser.ts';
import { ADMIN, agent, spawnWrit, startWrit, tempDir, writCli, type TestWrit } from './helpers/writ.ts';

/**
 * Permissions, receipts and the log in the browser: a permission's receipt is verified and its
 * inclusion proof checked in the page; Verify chain re-derives the whole log in a worker and names
 * the entry that was altered on disk, the same index `writ log verify` names.
 */
let w: TestWrit;
let browser: Browser;
let a: Awaited<ReturnType<typeof agent>>;
const allowed: Array<{ id: string; index: number }> = [];
const denied: string[] = [];
test.before(async () => {
  w = await startWrit();
  browser = await launch();
  a = await agent(w, { name: 'mailer' });
  // Several dozen entries, and more allowed email.send than a page of the list holds (50).
  for (let i = 0; i < 55; i++) {
    const res = await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: `email:r${i}@acme.com` });
    allowed.push({ id: res.body.id, index: res.body.log.index });
  }
  for (let i = 0; i < 3; i++) denied.push((await a.call('POST', '/api/v1/permissions', { action: 'shell.execute', resource: `host:h${i}` })).body.id);
});
test.after.always(async () => {
  await browser?.close();
  await w?.close();
});

/** Clicks Verify chain and waits for its verdict. */
async function verifyChain(page: Page): Promise<{ outcome: string; text: string; index: string | undefined; seconds: number; value: number; max: number }> {
  await page.waitForSelector('#verify-chain:not([disabled])');
  await page.click('#verify-chain');
  const result = await page.waitForSelector('#verify-result[data-outcome]', { timeout: 60_000 });
  return {
    outcome: (await result.getAttribute('data-outcome'))!,
    index: (await result.getAttribute('data-index')) ?? undefined,
    text: (await result.textContent())!,
    seconds: Number(await result.getAttribute('data-seconds')),
    value: await page.$eval('#verify-progress', (p) => (p as HTMLProgressElement).value),
    max: await page.$eval('#verify-progress', (p) => (p as HTMLProgressElement).max),
  };
}

test("a permission's page shows its trace, its receipt's signature valid and its inclusion proof valid, both checked in the browser", async (t) => {
  const { page, context, problems } = await newPage(browser);
  await signIn(page, w.url, ADMIN);
  const { id, index } = allowed[7]!;
  await page.goto(`${w.url}/permissions/${id}`);
  await page.waitForSelector('#receipt-verdict[data-outcome]');
  await page.waitForSelector('#proof-verdict[data-outcome]');
  t.is(await page.getAttribute('#receipt-verdict', 'data-outcome'), 'valid');
  t.regex((await page.textContent('#receipt-verdict'))!, /^Signature valid: verified in this browser/);
  t.is(await page.getAttribute('#proof-verdict', 'data-outcome'), 'valid');
  t.regex((await page.textContent('#proof-verdict'))!, new RegExp(`^Inclusion proof valid: entry ${index} is in the tree of \\d+ entries`));
  t.regex((await page.textContent('#receipt'))!, new RegExp(`"permission_id": "${id}"`), 'the claims are shown decoded');
  t.regex((await page.textContent('#receipt'))!, /"typ": "oap-receipt\+jwt"/, 'and the header');
  t.true((await page.$$('#trace tbody tr')).length > 0, 'the cascade steps are listed');
  t.regex((await page.textContent('#trace'))!, /Determining policies/);
  await shot(page, 'permission');
  t.deepEqual(problems, []);
  await context.close();
});

test('a receipt whose signature does not verify is shown as invalid', async (t) => {
  const { page, context, problems } = await newPage(browser);
  await signIn(page, w.url, ADMIN);
  // The page verifies what the API hands it: a receipt with its payload swapped for another's.
  const { id } = allowed[3]!;
  const other = (await w.admin('GET', `/api/v1/permissions/${allowed[4]!.id}`)).body.receipt.split('.');
  await page.route(`**/api/v1/permissions/${id}`, async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    const [header, , signature] = body.receipt.split('.');
    await route.fulfill({ response: res, json: { ...body, receipt: `${header}.${other[1]}.${signature}` } });
  });
  await page.goto(`${w.url}/permissions/${id}`);
  await page.waitForSelector('#receipt-verdict[data-outcome]');
  t.is(await page.getAttribute('#receipt-verdict', 'data-outcome'), 'invalid');
  t.regex((await page.textContent('#receipt-verdict'))!, /Signature INVALID \(bad_signature\)/);
  t.deepEqual(problems, []);
  await context.close();
});

test('the permissions search filters by action and status, and pages with its cursor', async (t) => {
  const { page, context, problems } = await newPage(browser);
  await signIn(page, w.url, ADMIN);
  await page.goto(`${w.url}/permissions`);
  await page.waitForSelector('#permission-results tbody tr');
  await page.fill('#filter-action', 'shell.*');
  await page.selectOption('#filter-status', 'denied');
  await page.click('#permission-filters button[type=submit]');
  await page.waitForURL(/action=shell\.\*&status=denied|status=denied.*action=shell/);
  await page.waitForSelector('#permission-results tbody tr');
  const rows = await page.$$eval('#permission-results tbody tr', (trs) => trs.map((tr) => ({ id: tr.getAttribute('data-id'), cells: [...tr.querySelectorAll('td')].map((td) => td.textContent) })));
  t.deepEqual(rows.map((r) => r.id).sort(), [...denied].sort(), 'exactly the denied shell requests');
  t.true(rows.every((r) => r.cells[1] === 'shell.execute' && r.cells[3] === 'denied'));

  await page.fill('#filter-action', 'email.send');
  await page.selectOption('#filter-status', 'approved');
  await page.fill('#filter-agent', a.id);
  await page.click('#permission-filters button[type=submit]');
  await page.waitForURL(/status=approved/);
  await page.waitForSelector('#permission-results tbody tr');
  const first = await page.$$eval('#permission-results tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-id')));
  t.is(first.length, 50, 'a page holds 50');
  await page.click('#next-page');
  await page.waitForURL(/cursor=/);
  await page.waitForFunction(() => document.querySelectorAll('#permission-results tbody tr').length === 5);
  const second = await page.$$eval('#permission-results tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-id')));
  t.deepEqual([...first, ...second], allowed.map((p) => p.id), 'the next page carries on where the first stopped, filters kept');
  t.is(await page.$('#next-page'), null, 'and is the last');

  await page.goto(`${w.url}/permissions?action=Not-An-Action`);
  await page.waitForSelector('#permission-results [role=alert]');
  t.regex((await page.textContent('#permission-results [role=alert]'))!, /^action: /, 'a bad filter is named');
  t.deepEqual(problems, []);
  await context.close();
});

test('Verify chain re-derives a good log in the browser and passes, its progress reaching 100%', async (t) => {
  const { page, context, problems } = await newPage(browser);
  await signIn(page, w.url, ADMIN);
  await page.goto(`${w.url}/log`);
  await page.waitForSelector('#checkpoint [role=status]');
  t.regex((await page.textContent('#checkpoint'))!, /Signature valid/);
  const size = (await w.admin('GET', '/api/v1/log/stored?limit=1')).body.size;
  t.true(size >= 58, `several dozen entries (${size})`);
  const result = await verifyChain(page);
  t.is(result.outcome, 'valid', result.text);
  t.regex(result.text, new RegExp(`^Chain valid: all ${size} entries re-derived`));
  t.is(result.value, result.max, 'the progress bar is full');
  t.is(result.max, size);
  t.log(`Verify chain: ${size} entries in ${result.seconds} s`);
  await shot(page, 'log-verified');
  t.deepEqual(problems, []);
  await context.close();
});

test('the log exports as CSV (a header row, one row an entry) with the session cookie', async (t) => {
  const { page, context, problems } = await newPage(browser);
  await signIn(page, w.url, ADMIN);
  await page.goto(`${w.url}/log`);
  await page.waitForSelector('#export a.export-csv');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export a.export-csv')]);
  t.regex(download.suggestedFilename(), /^writ-log-0-\d+\.csv$/);
  const csv = await fs.readFile((await download.path())!, 'utf8');
  const lines = csv.trimEnd().split('\r\n');
  t.is(lines[0], 'index,time,type,prev,data');
  t.true(lines.length > 58);
  t.regex(lines[1]!, /^0,/);
  const [json] = await Promise.all([page.waitForEvent('download'), page.click('#export a.export-json')]);
  const { records } = JSON.parse(await fs.readFile((await json.path())!, 'utf8'));
  t.is(records.length, lines.length - 1, 'the JSON export holds the same entries');
  t.deepEqual(problems, []);
  await context.close();
});

test('an approver sees the log and verifies it, without the export', async (t) => {
  const made = await w.admin('POST', '/api/v1/approvers', { name: 'log-reader' });
  const { page, context, problems } = await newPage(browser);
  await signIn(page, w.url, made.body.api_key);
  await page.goto(`${w.url}/log`);
  await page.waitForSelector('#entries tbody tr');
  t.is(await page.$('#export'), null);
  t.is((await verifyChain(page)).outcome, 'valid');
  t.deepEqual(problems, []);
  await context.close();
});

test('at a phone width (360 px) the log page fits without sideways scrolling', async (t) => {
  const { page, context, problems } = await newPage(browser, { width: 360, height: 740 });
  await signIn(page, w.url, ADMIN);
  await page.goto(`${w.url}/log`);
  await page.waitForSelector('#entries tbody tr');
  await page.waitForSelector('#checkpoint [role=status]');
  t.true(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'no horizontal scroll');
  await page.goto(`${w.url}/permissions/${allowed[0]!.id}`);
  await page.waitForSelector('#proof-verdict[data-outcome]');
  t.true(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'nor on a permission page');
  t.deepEqual(problems, []);
  await context.close();
});

test('on a log altered on disk, Verify chain names the tampered index, the one `writ log verify` names', async (t) => {
  const data = await tempDir();
  const first = await startWrit({ data });
  const mailer = await agent(first);
  const indexes: number[] = [];
  for (let i = 0; i < 30; i++) indexes.push((await mailer.call('POST', '/api/v1/permissions', { action: 'email.send', resource: `email:t${i}@acme.com` })).body.log.index);
  await first.close();

  const store = await LevelStore.open(path.join(data, 'db'));
  const victim = indexes[11]!;
  const raw = (await store.get(KEYS.entry(victim)))!;
  await store.batch([{ type: 'put', key: KEYS.entry(victim), value: raw.replace('email:', 'email:evil-') }], { sync: true });
  await store.close();

  const server = await spawnWrit(data);
  t.teardown(() => void server.child.kill('SIGKILL'));
  const { page, context, problems } = await newPage(browser);
  await signIn(page, server.url, ADMIN);
  await page.goto(`${server.url}/log`);
  const result = await verifyChain(page);
  t.is(result.outcome, 'invalid');
  t.is(result.index, String(victim));
  t.regex(result.text, new RegExp(`^Verification FAILED at index ${victim}: entry ${victim}: entry does not hash to its stored leaf hash`));
  await shot(page, 'log-tampered');
  t.deepEqual(problems, []);
  await context.close();

  server.child.kill('SIGTERM');
  await server.exited;
  const cli = await writCli('log', 'verify', '--data', data);
  t.is(cli.code, 1);
  t.regex(cli.out, new RegExp(`FAILED at index ${victim}\\b`));
});
