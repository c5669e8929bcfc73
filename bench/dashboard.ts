import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { spawnWrit } from './util.ts';

/**
 * The dashboard's figures: page weight (what a first visit downloads: the script and the
 * stylesheet; the log verifier's worker only when Verify chain is pressed), and time to first
 * render in Debian's Chromium against a local Writ: first contentful paint of the sign-in page,
 * and until a signed-in page has drawn its heading. Median of RUNS fresh browser profiles (cold
 * HTTP cache each time).
 */
const RUNS = Number(process.env.BENCH_DASHBOARD_RUNS ?? 10);

export async function dashboardFigures(root: string, adminKey: string): Promise<Record<string, number>> {
  const dir = path.join(root, 'dist', 'dashboard');
  const files = (await fs.readdir(dir)).filter((f) => /\.(js|css)$/.test(f)).sort();
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  const sizes = await Promise.all(files.map(async (f) => ({ f, bytes: await fs.readFile(path.join(dir, f)) })));
  const first = sizes.filter((s) => s.f === 'app.js' || s.f === 'app.css');
  const total = (list: typeof sizes) => list.reduce((n, s) => n + s.bytes.length, 0);
  const gz = (list: typeof sizes) => list.reduce((n, s) => n + gzipSync(s.bytes).length, 0);
  console.log(`dashboard page weight: ${sizes.map((s) => `${s.f} ${kb(s.bytes.length)} (${kb(gzipSync(s.bytes).length)} gzip)`).join(', ')}`);
  console.log(`dashboard first visit (app.js + app.css): ${kb(total(first))}, ${kb(gz(first))} gzip (Writ serves them uncompressed)`);

  const data = await fs.mkdtemp(path.join(os.tmpdir(), 'writ-bench-dash-'));
  const server = await spawnWrit(root, { data, policies: path.join(root, 'policies'), env: { WRIT_ADMIN_TOKEN: adminKey } });
  const { url } = server;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  try {
    const paint: number[] = [];
    const signedIn: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${url}/login`);
      await page.waitForSelector('#login-form');
      paint.push(
        await page.evaluate(
          () =>
            new Promise<number>((resolve) => {
              const seen = performance.getEntriesByName('first-contentful-paint')[0];
              if (seen) return resolve(seen.startTime);
              new PerformanceObserver((list) => resolve(list.getEntries()[0]!.startTime)).observe({ type: 'paint', buffered: true });
            }),
        ),
      );
      const res = await page.request.post(`${url}/api/v1/session`, { data: { key: adminKey } });
      if (res.status() !== 201) throw new Error(`sign-in: ${res.status()}`);
      await page.goto(`${url}/status`);
      await page.waitForSelector('main h1');
      signedIn.push(await page.evaluate(() => performance.now()));
      await context.close();
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`dashboard time to first render: sign-in page first contentful paint p50 ${median(paint).toFixed(0)} ms; a signed-in page (/status) drawn p50 ${median(signedIn).toFixed(0)} ms (${RUNS} fresh profiles, Chromium ${browser.version()})`);
    return {
      dashboard_first_visit_kb: total(first) / 1024,
      dashboard_first_visit_gzip_kb: gz(first) / 1024,
      dashboard_first_paint_p50_ms: median(paint),
      dashboard_signed_in_page_p50_ms: median(signedIn),
    };
  } finally {
    await browser.close();
    await server.stop();
    await fs.rm(data, { recursive: true, force: true });
  }
}
