import fs from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './writ.ts';

/**
 * The dashboard in a real browser: Debian's Chromium (installed by .ci/run), driven by
 * playwright-core. Every page a test opens fails the test on a script error or a
 * Content-Security-Policy violation, so a page that only looks right is not enough.
 */
export const CHROMIUM = '/usr/bin/chromium';

export async function launch(): Promise<Browser> {
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

export interface OpenPage {
  page: Page;
  context: BrowserContext;
  /** Script errors, console errors and CSP violations seen so far. */
  problems: string[];
}

/** A fresh browser profile (its own cookies) with one page; `width` 360 is a phone. */
export async function newPage(browser: Browser, { width = 1280, height = 900 }: { width?: number; height?: number } = {}): Promise<OpenPage> {
  const context = await browser.newContext({ viewport: { width, height }, ...(width < 600 ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}) });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    // A failed fetch the page handles (a 401 before signing in, a 409 it shows) is logged by
    // Chromium as a console error of type "error" about the resource; those are expected answers.
    if (message.type() === 'error' && !/Failed to load resource: the server responded with a status of (4\d\d)/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  return { page, context, problems };
}

/** Signs in on /login with a key, and waits for the app to land on its first page. */
export async function signIn(page: Page, url: string, key: string): Promise<void> {
  await page.goto(`${url}/login`);
  await page.fill('#key', key);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#sign-out');
}

/**
 * A screenshot for the README, written to docs/screenshots/NAME.png when DASHBOARD_SCREENSHOTS=1 (the
 * pictures are committed; the suite does not rewrite them on every run).
 */
export async function shot(page: Page, name: string): Promise<void> {
  if (process.env.DASHBOARD_SCREENSHOTS !== '1') return;
  const dir = path.join(ROOT, 'docs', 'screenshots');
  await fs.mkdir(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}
