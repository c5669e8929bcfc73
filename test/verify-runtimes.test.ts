import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { ROOT, agent, eventually, startWrit, tempDir, type TestWrit } from './helpers/writ.ts';
import { cleanEnv, npmEnv } from './helpers/npm.ts';

/**
 * writ-verify claims to run in browsers, Deno and Cloudflare Workers: here it does, in each real
 * runtime (Debian's Chromium, the Deno binary of the `deno` package, Cloudflare's workerd of the
 * `workerd` package). Each loads the package as a user gets it (packed and installed from its
 * tarball, offline, as test/packages.test.ts does) with its one dependency, and verifies a real
 * receipt of a running Writ against that Writ's JWKS URL, fetched over HTTP by the runtime
 * itself; a receipt whose claims were altered must fail with `bad_signature`.
 */

const execFileAsync = promisify(execFile);


/** writ-verify and @noble/ed25519 installed from their tarballs into a fresh project; returns its node_modules. */
async function installVerifier(work: string): Promise<string> {
  const pack = async (...what: string[]) => {
    const { stdout } = await execFileAsync('npm', ['pack', '--json', '--pack-destination', work, ...what], { cwd: ROOT, env: npmEnv });
    return path.join(work, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
  };
  const tarballs = [await pack('-w', 'writ-verify'), await pack(path.join(ROOT, 'node_modules/@noble/ed25519'))];
  const project = path.join(work, 'project');
  await fs.mkdir(project);
  await fs.writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'writ-verify-runtimes', private: true, type: 'module' }));
  await execFileAsync('npm', ['install', ...tarballs], { cwd: project, env: npmEnv });
  return path.join(project, 'node_modules');
}

/** The installed files each runtime loads. */
interface Installed {
  verify: string;
  claims: string;
  noble: string;
}

let work: string;
let installed: Installed;
let w: TestWrit;
let receipt: string;
let permissionId: string;
/** The same receipt with other claims under the original signature. */
let forged: string;
let jwksUrl: string;

test.before(async () => {
  work = await tempDir('writ-runtimes-');
  const modules = await installVerifier(work);
  installed = {
    verify: path.join(modules, 'writ-verify/dist/verify.js'),
    claims: path.join(modules, 'writ-verify/dist/receipt-claims.js'),
    noble: path.join(modules, '@noble/ed25519/index.js'),
  };
  w = await startWrit();
  const a = await agent(w);
  const res = await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:runtimes@acme.com' });
  if (res.status !== 201) throw new Error(`permission: ${res.status} ${res.text}`);
  receipt = res.body.receipt;
  permissionId = res.body.id;
  const [header, payload, signature] = receipt.split('.') as [string, string, string];
  const altered = { ...JSON.parse(Buffer.from(payload, 'base64url').toString()), resource: 'email:evil@acme.com' };
  forged = `${header}.${Buffer.from(JSON.stringify(altered)).toString('base64url')}.${signature}`;
  jwksUrl = `${w.url}/.well-known/jwks.json`;
});
test.after.always(() => w?.close());

/** What every runtime must report: the receipt's claims, and the forgery refused. */
function assertVerified(t: import('ava').ExecutionContext, out: { verified: { claims?: Record<string, unknown>; code?: string }; forged: { claims?: unknown; code?: string } }) {
  t.like(out.verified.claims, { iss: w.url, action: 'email.send', resource: 'email:runtimes@acme.com', decision: 'allow', permission_id: permissionId });
  t.deepEqual(out.forged, { code: 'bad_signature' });
}

/** Starts a server on 127.0.0.1, on a port the system picks, closed when the test ends. */
async function listen(t: import('ava').ExecutionContext, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

// ---------------------------------------------------------------------------------------------
// Chromium: a counterparty's page on its own origin, loading the package as ES modules.

/** The page, as a user would write it: an import map for the bare specifiers, and one module script. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>writ-verify</title>
<script type="importmap">
{ "imports": { "writ-verify": "/node_modules/writ-verify/dist/verify.js", "@noble/ed25519": "/node_modules/@noble/ed25519/index.js" } }
</script>
<script type="module">
  import { ReceiptVerificationError, verifyReceipt } from 'writ-verify';
  window.check = (receipt, options) =>
    verifyReceipt(receipt, options).then(
      ({ claims }) => ({ claims }),
      (err) => (err instanceof ReceiptVerificationError ? { code: err.code } : { error: String(err) }),
    );
</script>
`;

test('in Chromium, a page on another origin than Writ fetches its JWKS and verifies a receipt; a forged one fails with bad_signature', async (t) => {
  const files: Record<string, string> = {
    '/node_modules/writ-verify/dist/verify.js': installed.verify,
    '/node_modules/writ-verify/dist/receipt-claims.js': installed.claims,
    '/node_modules/@noble/ed25519/index.js': installed.noble,
  };
  const site = await listen(t, (req, res) => {
    const file = files[req.url ?? ''];
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    else if (file) void fs.readFile(file).then((body) => res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(body));
    else res.writeHead(404).end();
  });
  // The same key set from a third origin that sends no CORS header: the browser must refuse to hand it to the page.
  const keys = await (await fetch(jwksUrl)).text();
  const withoutCors = await listen(t, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(keys));
  t.not(new URL(site).origin, new URL(w.url).origin);

  // Playwright's own browser download cannot be had here; Debian's Chromium can. CI runs as root, hence no sandbox.
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${site}/`);
  await page.waitForFunction(() => 'check' in window);
  const check = (jws: string, options: Record<string, string>) =>
    page.evaluate(([jws, options]) => (window as unknown as { check: (r: string, o: object) => Promise<unknown> }).check(jws, options), [jws, options] as const);

  const out = {
    verified: (await check(receipt, { jwksUrl, issuer: w.url })) as { claims?: Record<string, unknown> },
    forged: (await check(forged, { jwksUrl })) as { code?: string },
  };
  assertVerified(t, out);
  t.deepEqual(await check(receipt, { jwksUrl: `${withoutCors}/jwks.json` }), { code: 'jwks_unavailable' }, 'without the header the browser keeps the keys from the page');
  // A header of the page's own makes the browser ask first (a preflight), and Writ says yes.
  const preflighted = await page.evaluate((url) => fetch(url, { headers: { 'cache-control': 'no-cache' } }).then((res) => res.status, (err: Error) => err.message), jwksUrl);
  t.is(preflighted, 200);
});

// ---------------------------------------------------------------------------------------------
// Deno: a script with the network to Writ and nothing else.

const DENO_SCRIPT = `
import { ReceiptVerificationError, verifyReceipt } from 'writ-verify';

const [receipt, forged, jwksUrl, issuer] = Deno.args;
const check = (jws, options) =>
  verifyReceipt(jws, options).then(
    ({ claims }) => ({ claims }),
    (err) => (err instanceof ReceiptVerificationError ? { code: err.code } : { error: String(err) }),
  );
const granted = (name) => Deno.permissions.querySync({ name }).state === 'granted';
console.log(JSON.stringify({
  deno: Deno.version.deno,
  verified: await check(receipt, { jwksUrl, issuer }),
  forged: await check(forged, { jwksUrl }),
  granted: ['read', 'write', 'env', 'run', 'sys', 'ffi', 'import'].filter(granted),
}));
`;

test('in Deno, with no permission but the network to Writ, a script verifies a receipt against the JWKS URL; a forged one fails with bad_signature', async (t) => {
  const dir = path.join(work, 'deno');
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'check.js'), DENO_SCRIPT);
  // Local files only: no npm: or jsr: specifier, so there is nothing for Deno to download.
  const imports = { 'writ-verify': pathToFileURL(installed.verify).href, '@noble/ed25519': pathToFileURL(installed.noble).href };
  await fs.writeFile(path.join(dir, 'import-map.json'), JSON.stringify({ imports }));
  const deno = path.join(ROOT, 'node_modules/.bin/deno');
  const args = ['run', '--no-config', '--no-lock', '--no-remote', '--no-npm', '--no-prompt', `--allow-net=${new URL(w.url).host}`, '--import-map=import-map.json', 'check.js'];
  const { stdout } = await execFileAsync(deno, [...args, receipt, forged, jwksUrl, w.url], {
    cwd: dir,
    env: { ...cleanEnv, DENO_DIR: path.join(dir, 'cache'), DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
  });
  const out = JSON.parse(stdout);
  t.regex(out.deno, /^2\./);
  assertVerified(t, out);
  t.deepEqual(out.granted, [], 'nothing but the network was granted');
});

// ---------------------------------------------------------------------------------------------
// Cloudflare Workers: workerd, serving a Worker whose fetch handler verifies what it is asked to.

const WORKER = `
import { ReceiptVerificationError, verifyReceipt } from 'writ-verify';

export default {
  async fetch(request) {
    const asked = new URL(request.url).searchParams;
    const receipt = asked.get('receipt');
    const jwksUrl = asked.get('jwks');
    if (receipt === null || jwksUrl === null) return new Response('ready');
    const issuer = asked.get('issuer') ?? undefined;
    try {
      const { claims } = await verifyReceipt(receipt, { jwksUrl, issuer });
      return Response.json({ claims });
    } catch (err) {
      if (err instanceof ReceiptVerificationError) return Response.json({ code: err.code });
      throw err;
    }
  },
};
`;

/**
 * workerd has no package resolution (wrangler would bundle): each file is a module under the name
 * it is imported by. verify.js's './receipt-claims.js' resolves against the name 'writ-verify',
 * hence 'receipt-claims.js' at the top. No compatibility flag (no nodejs_compat): the Workers
 * platform's own APIs only. The global fetch goes out through a network that reaches 127.0.0.1
 * only, where Writ's JWKS is.
 */
const workerdConfig = (files: { worker: string; verify: string; claims: string; noble: string }) => `
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "verifier", worker = .verifier),
    (name = "loopback", network = (allow = ["127.0.0.1/32"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "verifier")],
);

const verifier :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed ${JSON.stringify(files.worker)}),
    (name = "writ-verify", esModule = embed ${JSON.stringify(files.verify)}),
    (name = "receipt-claims.js", esModule = embed ${JSON.stringify(files.claims)}),
    (name = "@noble/ed25519", esModule = embed ${JSON.stringify(files.noble)}),
  ],
  compatibilityDate = "2026-11-01",
  globalOutbound = "loopback",
);
`;

test('in workerd (Cloudflare Workers), a Worker fetches the JWKS from Writ and verifies a receipt; a forged one fails with bad_signature', async (t) => {
  const dir = path.join(work, 'workerd');
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'worker.js'), WORKER);
  // Embedded paths are relative to the config file.
  const relative = (file: string) => path.relative(dir, file);
  await fs.writeFile(path.join(dir, 'config.capnp'), workerdConfig({ worker: 'worker.js', verify: relative(installed.verify), claims: relative(installed.claims), noble: relative(installed.noble) }));

  // The socket listens on port 0; workerd reports the port it got on the control descriptor (fd 3).
  const child = spawn(path.join(ROOT, 'node_modules/.bin/workerd'), ['serve', 'config.capnp', '--control-fd=3'], { cwd: dir, env: cleanEnv, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let output = '';
  let control = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (control += c.toString()));
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => ((exit = `${code ?? signal}`), resolve())));
  const stop = () => exit === undefined && child.kill('SIGKILL');
  // Also when this test file's process ends before the teardown could run.
  process.once('exit', stop);
  t.teardown(async () => {
    stop();
    await exited;
  });

  const port = await eventually(() => {
    if (exit !== undefined) throw new Error(`workerd exited (${exit}) before it listened:\n${output}`);
    // Whole lines only: the last one may still be arriving.
    const listening = control.split('\n').slice(0, -1).map((line) => JSON.parse(line) as { event: string; socket: string; port: number });
    return listening.find((m) => m.event === 'listen' && m.socket === 'http')?.port;
  }, `workerd's listen event:\n${output}`, 30_000);
  const worker = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(worker).catch(() => undefined))?.ok, `the Worker's answer:\n${output}`);

  const check = async (jws: string, issuer?: string) => {
    const res = await fetch(`${worker}/?${new URLSearchParams({ receipt: jws, jwks: jwksUrl, ...(issuer ? { issuer } : {}) })}`);
    if (!res.ok) throw new Error(`the Worker answered ${res.status}: ${await res.text()}\n${output}`);
    return res.json() as Promise<{ claims?: Record<string, unknown>; code?: string }>;
  };
  assertVerified(t, { verified: await check(receipt, w.url), forged: await check(forged) });
});
