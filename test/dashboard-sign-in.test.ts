import test from 'ava';
import type { Browser } from 'playwright-core';
import { launch, newPage, shot, signIn } from './helpers/browser.ts';
import { ADMIN, agent, approver, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * The dashboard is served by Writ at / and signed in to with an admin or approver key: an
 * HttpOnly, SameSite=Strict session cookie, a CSRF token on every change, sessions that end on
 * sign-out, on an admin's revocation and when the key they were opened with is revoked.
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

/** The session cookie of a sign-in made over HTTP, as a browser would keep it. */
async function signInOverHttp(key: string): Promise<{ cookie: string; csrf: string; id: string; setCookie: string }> {
  const res = await w.call('POST', '/api/v1/session', { key });
  if (res.status !== 201) throw new Error(`sign-in: ${res.status} ${res.text}`);
  const setCookie = res.headers.get('set-cookie')!;
  return { cookie: setCookie.split(';')[0]!, csrf: res.body.csrf_token, id: res.body.id, setCookie };
}

test('the dashboard is served at / with a strict Content-Security-Policy, and the API stays JSON', async (t) => {
  const page = await fetch(`${w.url}/approvals`);
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type')!, /^text\/html/);
  const csp = page.headers.get('content-security-policy')!;
  t.regex(csp, /default-src 'none'/);
  t.regex(csp, /script-src 'self'(;|$)/, 'no inline script, no other origin');
  t.regex(csp, /frame-ancestors 'none'/);
  t.is(page.headers.get('access-control-allow-origin'), null, 'the dashboard is for this origin only');
  const html = await page.text();
  t.regex(html, /<script type="module" src="\/assets\/app\.js"><\/script>/);
  t.notRegex(html, /https?:\/\//, 'nothing from another origin');
  const script = await fetch(`${w.url}/assets/app.js`);
  t.is(script.status, 200);
  t.regex(script.headers.get('content-type')!, /^text\/javascript/);
  t.is((await fetch(`${w.url}/assets/..%2Fpackage.json`)).status, 404);
  const unknown = await w.call('GET', '/api/v1/nothing');
  t.is(unknown.status, 404);
  t.is(unknown.body.error.reason_code, 'route_not_found');
});

test('an admin signs in with the key and lands on a page; the cookie is HttpOnly and SameSite=Strict; signing out ends the session', async (t) => {
  const { page, context, problems } = await newPage(browser);
  await signIn(page, w.url, ADMIN);
  t.is(new URL(page.url()).pathname, '/status');
  await page.waitForSelector('h1');
  const cookie = (await context.cookies()).find((c) => c.name === 'writ_session')!;
  t.true(cookie.httpOnly);
  t.is(cookie.sameSite, 'Strict');
  t.is(await page.evaluate(() => document.cookie), '', 'no script can read the session');
  await page.click('#sign-out');
  await page.waitForSelector('#login-form');
  await page.goto(`${w.url}/principals`);
  await page.waitForSelector('#login-form');
  t.regex(page.url(), /\/login\?next=%2Fprincipals$/, 'back to sign-in, then to where it was going');
  t.deepEqual(problems, []);
  await context.close();
});

test('a wrong key is refused in the page; an agent key cannot open a dashboard session', async (t) => {
  const { page, context, problems } = await newPage(browser);
  await page.goto(`${w.url}/login`);
  await page.fill('#key', 'writ_admin_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login-status [role=alert]');
  t.is(await page.textContent('#login-status [role=alert]'), 'That key is not valid.');
  const wrong = await w.call('POST', '/api/v1/session', { key: 'not-a-key' });
  t.is(wrong.status, 401);
  t.is(wrong.body.error.detail.field, 'key');
  const a = await agent(w);
  const refused = await w.call('POST', '/api/v1/session', { key: a.key });
  t.is(refused.status, 403);
  t.is(refused.body.error.reason_code, 'forbidden');
  t.deepEqual(problems, []);
  await context.close();
});

test('a change made with the session cookie needs its CSRF token; a read does not', async (t) => {
  const { cookie, csrf } = await signInOverHttp(ADMIN);
  t.is((await w.call('GET', '/api/v1/agents', undefined, { cookie })).status, 200);
  const forged = await w.call('POST', '/api/v1/agents', { name: 'csrf' }, { cookie });
  t.is(forged.status, 403);
  t.is(forged.body.error.reason_code, 'csrf_failed');
  t.is(forged.body.error.detail.field, 'x-csrf-token');
  const wrong = await w.call('POST', '/api/v1/agents', { name: 'csrf' }, { cookie, 'x-csrf-token': `${csrf.slice(0, -2)}AA` });
  t.is(wrong.status, 403);
  const made = await w.call('POST', '/api/v1/agents', { name: 'csrf' }, { cookie, 'x-csrf-token': csrf });
  t.is(made.status, 201);
  // An agent's own routes never take the cookie: only keys.
  t.is((await w.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:x@acme.com' }, { cookie, 'x-csrf-token': csrf })).status, 401);
});

test('revoking the approver, or an admin revoking the session, ends it at once', async (t) => {
  const ap = await approver(w, 'session-approver');
  const first = await signInOverHttp(ap.key);
  t.is((await w.call('GET', '/api/v1/session', undefined, { cookie: first.cookie })).body.principal.id, ap.id);
  const second = await signInOverHttp(ap.key);
  const listed = await w.admin('GET', '/api/v1/sessions');
  t.true(listed.body.items.some((s: { id: string }) => s.id === second.id));
  t.is((await w.admin('POST', `/api/v1/sessions/${second.id}/revoke`, {})).status, 200);
  const ended = await w.call('GET', '/api/v1/session', undefined, { cookie: second.cookie });
  t.is(ended.status, 401);
  t.regex(ended.body.error.message, /the session has ended/);
  t.is((await w.admin('POST', '/api/v1/oap/revocations', { scope: 'approver', id: ap.id, reason: 'compromised' })).status, 200);
  const revoked = await w.call('GET', '/api/v1/session', undefined, { cookie: first.cookie });
  t.is(revoked.status, 401);
  t.regex(revoked.body.error.message, /revoked or replaced/);
  const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
  t.true(records.some((r: { type: string; data: { session_id: string } }) => r.type === 'session.opened' && r.data.session_id === first.id), 'sign-ins are logged');
  t.true(records.some((r: { type: string; data: { session_id: string } }) => r.type === 'session.closed' && r.data.session_id === second.id));
});

test('at a phone width (360 px) the sign-in page and the navigation fit without sideways scrolling', async (t) => {
  const { page, context, problems } = await newPage(browser, { width: 360, height: 740 });
  await page.goto(`${w.url}/login`);
  await page.waitForSelector('#login-form');
  await shot(page, 'sign-in-phone');
  t.true(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'no horizontal scroll');
  await signIn(page, w.url, ADMIN);
  await page.waitForSelector('header.top nav a');
  t.true(await page.evaluate(() => document.documentElement.scrollWidth <= 360), 'no horizontal scroll once signed in');
  t.deepEqual(problems, []);
  await context.close();
});
