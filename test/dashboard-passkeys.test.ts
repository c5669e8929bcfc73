import test from 'ava';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launch, newPage, shot, signIn } from './helpers/browser.ts';
import { agent, approver, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * Critical approvals on the web need a passkey. An approver registers WebAuthn credentials on
 * /passkeys; approving a critical request with the dashboard's session needs a fresh assertion
 * whose challenge is bound to that approval and its request digest. Chromium's virtual
 * authenticator (over CDP) stands in for a fingerprint reader: it answers every ceremony with user
 * verification. Approvals made with a key (CLI, API) and sensitive approvals are unchanged.
 */
let w: TestWrit;
let browser: Browser;
test.before(async () => {
  // WebAuthn takes a host name as the relying party, never an IP address: serve on localhost.
  w = await startWrit({ config: { criticalDelay: 300, host: 'localhost' } });
  browser = await launch();
});
test.after.always(async () => {
  await browser?.close();
  await w?.close();
});

/** A fingerprint reader built into the device, that always verifies its user. */
async function withAuthenticator(context: BrowserContext, page: Page): Promise<void> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
}

/** A T2 agent asks for a transfer: 50 000 is critical (two approvers, then a delay), 500 sensitive (one approver). */
async function transfer(value: number): Promise<string> {
  const a = await agent(w, { trust_tier: 'T2' });
  const res = await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:savings', value, currency: 'EUR' });
  if (res.status !== 201 || !res.body.approval) throw new Error(`request: ${res.status} ${res.body.status}`);
  return res.body.approval.id as string;
}

/** Registers a passkey on the /passkeys page, as a person would. */
async function registerOnPage(page: Page, name: string): Promise<void> {
  await page.goto(`${w.url}/passkeys`);
  await page.waitForSelector('#passkey-list :is(#no-passkeys, #passkeys)');
  await page.fill('#passkey-name', name);
  await page.click('#passkey-form button[type=submit]');
  await page.waitForSelector(`#passkeys tr:has(td.passkey-name:text-is("${name}"))`);
}

/**
 * From the signed-in page: asks for the approval's passkey options, has the browser's
 * authenticator sign them (navigator.credentials.get, encoded as @simplewebauthn/browser does),
 * and returns the assertion's JSON form, the `webauthn` the approve takes. Plain JavaScript in a
 * string: the test's TypeScript compiler would add helpers the page does not have.
 */
const ASSERTION_SCRIPT = `async (id) => {
  const session = await (await fetch('/api/v1/session')).json();
  const res = await fetch('/api/v1/approvals/' + id + '/passkey-options', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf_token },
    body: '{}',
  });
  if (!res.ok) throw new Error('passkey-options: ' + res.status + ' ' + (await res.text()));
  const { options } = await res.json();
  const bytes = (text) => Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const text = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/[+]/g, '-').replace(/[/]/g, '_').replace(/=+$/, '');
  const credential = await navigator.credentials.get({
    publicKey: {
      challenge: bytes(options.challenge),
      rpId: options.rpId,
      timeout: options.timeout,
      userVerification: options.userVerification,
      allowCredentials: options.allowCredentials.map((c) => ({ type: c.type, id: bytes(c.id) })),
    },
  });
  const response = credential.response;
  return {
    id: credential.id,
    rawId: text(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: text(response.clientDataJSON),
      authenticatorData: text(response.authenticatorData),
      signature: text(response.signature),
      ...(response.userHandle ? { userHandle: text(response.userHandle) } : {}),
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}`;

function assertionFor(page: Page, approvalId: string): Promise<unknown> {
  return page.evaluate(`(${ASSERTION_SCRIPT})(${JSON.stringify(approvalId)})`);
}

/** An approve made from the signed-in page with its session cookie and CSRF token, as the approvals page makes it. */
function approveOnPage(page: Page, approvalId: string, webauthn?: unknown): Promise<{ status: number; body: any }> {
  return page.evaluate(
    async ([id, assertion]) => {
      const session = await (await fetch('/api/v1/session')).json();
      const res = await fetch(`/api/v1/approvals/${id}/approve`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrf_token },
        body: JSON.stringify(assertion ? { webauthn: assertion } : {}),
      });
      return { status: res.status, body: await res.json() };
    },
    [approvalId, webauthn] as const,
  );
}

/** The page's session as an HTTP client holds it: the cookie, and the CSRF token for changes. */
async function sessionOf(context: BrowserContext): Promise<Record<string, string>> {
  const cookie = (await context.cookies()).find((c) => c.name === 'writ_session')!;
  const headers = { cookie: `writ_session=${cookie.value}` };
  const csrf = (await w.call('GET', '/api/v1/session', undefined, headers)).body.csrf_token as string;
  return { ...headers, 'x-csrf-token': csrf };
}

async function logged(type: string): Promise<Array<Record<string, any>>> {
  const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
  return records.filter((r: { type: string }) => r.type === type).map((r: { data: Record<string, unknown> }) => r.data);
}

test('an approver registers a passkey on /passkeys; it is listed, and its registration is logged', async (t) => {
  const ap = await approver(w, 'Priya');
  const { page, context, problems } = await newPage(browser);
  await withAuthenticator(context, page);
  await signIn(page, w.url, ap.key);
  await page.goto(`${w.url}/passkeys`);
  await page.waitForSelector('#no-passkeys');
  await registerOnPage(page, 'work laptop');
  t.regex((await page.textContent('#passkey-status'))!, /Registered the passkey “work laptop”/);
  const listed = (await w.call('GET', '/api/v1/passkeys', undefined, await sessionOf(context))).body.items;
  t.is(listed.length, 1);
  t.is(listed[0].name, 'work laptop');
  t.deepEqual(listed[0].transports, ['internal']);
  const entry = (await logged('passkey.registered')).find((d) => d.approver_id === ap.id);
  t.is(entry?.credential_id, listed[0].id);
  await shot(page, 'passkeys');
  // Another approver sees only their own.
  t.deepEqual((await (await approver(w, 'Quinn')).call('GET', '/api/v1/passkeys')).body.items, []);
  t.deepEqual(problems, []);
  await context.close();
});

test('a critical approval approved on the web needs the passkey: without it 403 passkey_required, with it the vote counts and says so', async (t) => {
  const ap = await approver(w, 'Rosa');
  const second = await approver(w, 'Sam');
  const { page, context, problems } = await newPage(browser);
  await withAuthenticator(context, page);
  await signIn(page, w.url, ap.key);
  await registerOnPage(page, 'phone');
  const [before] = (await w.call('GET', '/api/v1/passkeys', undefined, await sessionOf(context))).body.items;
  const id = await transfer(50_000);

  const bare = await approveOnPage(page, id);
  t.is(bare.status, 403);
  t.is(bare.body.error.reason_code, 'passkey_required');
  t.is(bare.body.error.detail.field, 'webauthn');

  const voted = await approveOnPage(page, id, await assertionFor(page, id));
  t.is(voted.status, 200, JSON.stringify(voted.body));
  t.is(voted.body.status, 'pending', 'a critical approval needs a second approver');
  const [vote] = voted.body.votes;
  const [mine] = (await w.call('GET', '/api/v1/passkeys', undefined, await sessionOf(context))).body.items;
  t.is(vote.approver_id, ap.id);
  t.is(vote.passkey, mine.id, 'the vote names the passkey that confirmed it');
  t.truthy(mine.last_used_at);
  t.true(mine.counter > before.counter, 'the signature counter moved forward and is kept');
  const entry = (await logged('approval.vote')).find((d) => d.approval_id === id && d.by.approver_id === ap.id);
  t.is(entry?.by.passkey, mine.id, 'and so does its log entry');

  // The second approver approves with a key (CLI, API): that is unchanged, no passkey.
  const quorum = await second.call('POST', `/api/v1/approvals/${id}/approve`, {});
  t.is(quorum.status, 200);
  t.is(quorum.body.status, 'delay');
  t.deepEqual(problems, []);
  await context.close();
});

test('on the approvals page, "Approve with passkey" asks the authenticator and the vote counts with that passkey', async (t) => {
  const ap = await approver(w, 'Uma');
  const { page, context, problems } = await newPage(browser);
  await withAuthenticator(context, page);
  await signIn(page, w.url, ap.key);
  await registerOnPage(page, 'laptop');
  const id = await transfer(60_000);
  await page.goto(`${w.url}/approvals`);
  // Once the stream is live the queue has been fetched on connecting, so the card stays as drawn.
  await page.waitForSelector('#live[data-state="live"]');
  const card = `[data-approval-id="${id}"]`;
  await page.waitForSelector(`${card} button[data-action=approve]`);
  t.is((await page.textContent(`${card} button[data-action=approve]`))?.trim(), 'Approve with passkey');
  await page.fill(`${card} textarea[name=comment]`, 'checked with the treasurer');
  await page.click(`${card} button[data-action=approve]`);
  await page.waitForSelector(`${card} [data-my-vote=approve]`);
  const approval = (await w.call('GET', `/api/v1/approvals/${id}`, undefined, await sessionOf(context))).body;
  const [mine] = (await w.call('GET', '/api/v1/passkeys', undefined, await sessionOf(context))).body.items;
  t.is(approval.votes[0].approver_id, ap.id);
  t.is(approval.votes[0].passkey, mine.id);
  t.is(approval.votes[0].comment, 'checked with the treasurer');
  t.deepEqual(problems, []);
  await context.close();
});

test('without a registered passkey the web approve of a critical approval is refused, and the page says to register one', async (t) => {
  const ap = await approver(w, 'Tomas');
  const { page, context, problems } = await newPage(browser);
  await signIn(page, w.url, ap.key);
  await page.goto(`${w.url}/passkeys`);
  await page.waitForSelector('#no-passkeys');
  t.regex((await page.textContent('#no-passkeys'))!, /Register one to approve critical requests/);
  const id = await transfer(50_000);
  const refused = await approveOnPage(page, id);
  t.is(refused.status, 403);
  t.is(refused.body.error.reason_code, 'passkey_required');
  t.regex(refused.body.error.message, /register one on the Passkeys page \(\/passkeys\)/);
  const options = await w.call('POST', `/api/v1/approvals/${id}/passkey-options`, {}, await sessionOf(context));
  t.is(options.status, 403);
  t.is(options.body.error.reason_code, 'passkey_required');
  const approval = await ap.call('GET', `/api/v1/approvals/${id}`);
  t.deepEqual(approval.body.votes, [], 'no vote was counted');
  // With the approver's key the same approve is taken as before.
  t.is((await ap.call('POST', `/api/v1/approvals/${id}/approve`, {})).status, 200);
  t.deepEqual(problems, []);
  await context.close();
});

test('an assertion made for one approval is refused on another, and none counts twice', async (t) => {
  const ap = await approver(w, 'Uma');
  const { page, context, problems } = await newPage(browser);
  await withAuthenticator(context, page);
  await signIn(page, w.url, ap.key);
  await registerOnPage(page, 'desk key');
  const [a, b] = [await transfer(50_000), await transfer(60_000)];
  const session = await sessionOf(context);

  const forA = await assertionFor(page, a);
  const onB = await w.call('POST', `/api/v1/approvals/${b}/approve`, { webauthn: forA }, session);
  t.is(onB.status, 403);
  t.is(onB.body.error.reason_code, 'passkey_invalid');
  t.deepEqual((await ap.call('GET', `/api/v1/approvals/${b}`)).body.votes, []);
  // Its challenge was spent on that try: it no longer counts for A either.
  const late = await w.call('POST', `/api/v1/approvals/${a}/approve`, { webauthn: forA }, session);
  t.is(late.status, 403);
  t.is(late.body.error.reason_code, 'passkey_invalid');

  const fresh = await assertionFor(page, a);
  const counted = await w.call('POST', `/api/v1/approvals/${a}/approve`, { webauthn: fresh }, session);
  t.is(counted.status, 200, JSON.stringify(counted.body));
  t.is(counted.body.votes.length, 1);
  const replayed = await w.call('POST', `/api/v1/approvals/${a}/approve`, { webauthn: fresh }, session);
  t.is(replayed.status, 403);
  t.is(replayed.body.error.reason_code, 'passkey_invalid');

  // Another approver cannot use Uma's assertion, even for the approval it was made for.
  const other = await approver(w, 'Victor');
  const theirs = await other.call('POST', `/api/v1/approvals/${b}/approve`, { webauthn: await assertionFor(page, b) });
  t.is(theirs.status, 403);
  t.is(theirs.body.error.reason_code, 'passkey_required', 'Victor has no passkey at all');
  t.deepEqual(problems, []);
  await context.close();
});

test('a sensitive (not critical) approval is approved on the web without a passkey', async (t) => {
  const ap = await approver(w, 'Wen');
  const { page, context, problems } = await newPage(browser);
  await signIn(page, w.url, ap.key);
  const id = await transfer(500);
  const approved = await approveOnPage(page, id);
  t.is(approved.status, 200, JSON.stringify(approved.body));
  t.is(approved.body.tier, 'sensitive');
  t.is(approved.body.status, 'approved');
  t.is(approved.body.votes[0].passkey, undefined);
  t.deepEqual(problems, []);
  await context.close();
});

test('deleting a passkey on the page takes two clicks, is logged, and the next critical web approve needs a passkey again', async (t) => {
  const ap = await approver(w, 'Xia');
  const { page, context, problems } = await newPage(browser);
  await withAuthenticator(context, page);
  await signIn(page, w.url, ap.key);
  await registerOnPage(page, 'old tablet');
  const [mine] = (await w.call('GET', '/api/v1/passkeys', undefined, await sessionOf(context))).body.items;
  const button = page.locator('#passkeys tr:has(td.passkey-name:text-is("old tablet")) button.delete');
  await button.click();
  t.is(await button.textContent(), 'Delete “old tablet”?');
  t.is((await w.call('GET', '/api/v1/passkeys', undefined, await sessionOf(context))).body.items.length, 1, 'one click only asks');
  await button.click();
  await page.waitForSelector('#no-passkeys');
  t.regex((await page.textContent('#passkey-status'))!, /Deleted the passkey “old tablet”/);
  const entry = (await logged('passkey.deleted')).find((d) => d.approver_id === ap.id);
  t.is(entry?.credential_id, mine.id);
  const refused = await approveOnPage(page, await transfer(50_000));
  t.is(refused.body.error.reason_code, 'passkey_required');
  t.deepEqual(problems, []);
  await context.close();
});

test('on a public URL whose host is an IP address, registering a passkey says to set WRIT_PUBLIC_URL to a host name', async (t) => {
  const ip = await startWrit();
  try {
    const ap = await approver(ip, 'Yara');
    const refused = await ap.call('POST', '/api/v1/passkeys/registration-options', {});
    t.is(refused.status, 400);
    t.is(refused.body.error.detail.field, 'public_url');
    t.regex(refused.body.error.message, /not an IP address \(127\.0\.0\.1\); set WRIT_PUBLIC_URL, e\.g\. http:\/\/localhost:\d+/);
  } finally {
    await ip.close();
  }
});
