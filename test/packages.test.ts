import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { blocksRunBy, steps, type Block } from './helpers/readme.ts';
import { ROOT, agent, startWrit, tempDir } from './helpers/writ.ts';
import { cleanEnv, npmEnv } from './helpers/npm.ts';

/**
 * writ-client and writ-verify as a user gets them: packed and installed by the README's own
 * commands into a fresh project outside this repository, then used there by plain Node (no
 * TypeScript loader) and by TypeScript through their declarations.
 *
 * The commands run as the README prints them, with npm set by environment (as a user's npmrc
 * would) to `ignore-scripts`: the packages' prepack build would rewrite the `dist/` other test
 * files import at the same moment, and `npm test` has just built it; and to `offline`: the
 * project already holds the verifier's one dependency, so nothing needs the network.
 */

const execFileAsync = promisify(execFile);


const run = (file: string, args: string[], cwd: string) => execFileAsync(file, args, { cwd, env: cleanEnv, maxBuffer: 16 * 1024 * 1024 });

const [tarballBlock, linkBlock] = blocksRunBy('test/packages.test.ts');

/** A project of one's own, holding the verifier's dependency (packed again from the copy `npm ci` installed: byte for byte the registry's). */
async function freshProject(work: string, name: string): Promise<string> {
  const dir = path.join(work, name);
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: `writ-consumer-${name}`, private: true, type: 'module' }));
  const noble = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work, path.join(ROOT, 'node_modules/@noble/ed25519')], ROOT);
  const filename = (JSON.parse(noble.stdout) as Array<{ filename: string }>)[0]!.filename;
  await execFileAsync('npm', ['install', path.join(work, filename)], { cwd: dir, env: npmEnv });
  return dir;
}

/** A README block run as written, in bash from this repository, with its stand-in paths made real. */
async function runBlock(block: Block, paths: Record<string, string>): Promise<string> {
  let script = steps(block).map((s) => s.command).join('\n');
  for (const [standIn, real] of Object.entries(paths)) script = script.split(standIn).join(real);
  const { stdout, stderr } = await execFileAsync('bash', ['-euo', 'pipefail', '-c', script], { cwd: ROOT, env: npmEnv, maxBuffer: 16 * 1024 * 1024 });
  return stdout + stderr;
}

let work: string;
let tarballs: string;
let project: string;

test.before(async () => {
  work = await tempDir('writ-packages-');
  tarballs = path.join(work, 'tarballs');
  project = await freshProject(work, 'project');
  await runBlock(tarballBlock!, { '/tmp/writ-sdk': tarballs, 'your-project': project });
});

test('each tarball holds the built ESM, its declarations, package.json and README, and nothing else', async (t) => {
  const files = async (tarball: string) => (await run('tar', ['-tzf', path.join(tarballs, tarball)], work)).stdout.trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
  t.deepEqual(await files('writ-client-0.1.0.tgz'), ['README.md', 'dist/client.d.ts', 'dist/client.js', 'package.json']);
  t.deepEqual(await files('writ-verify-0.1.0.tgz'), ['README.md', 'dist/receipt-claims.d.ts', 'dist/receipt-claims.js', 'dist/verify.d.ts', 'dist/verify.js', 'package.json']);
});

test('installed, neither depends on the server: writ-client needs nothing, writ-verify only @noble/ed25519', async (t) => {
  const installed = path.join(project, 'node_modules');
  t.deepEqual((await fs.readdir(installed)).filter((entry) => !entry.startsWith('.')).sort(), ['@noble', 'writ-client', 'writ-verify']);
  const manifest = async (name: string) => JSON.parse(await fs.readFile(path.join(installed, name, 'package.json'), 'utf8'));
  t.is((await manifest('writ-client')).dependencies, undefined);
  t.deepEqual((await manifest('writ-verify')).dependencies, { '@noble/ed25519': '^3.2.0' });

  const importsOf = async (name: string, file: string) =>
    [...(await fs.readFile(path.join(installed, name, 'dist', file), 'utf8')).matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
  t.deepEqual(await importsOf('writ-client', 'client.js'), []);
  t.deepEqual(await importsOf('writ-verify', 'verify.js'), ['@noble/ed25519', './receipt-claims.js']);
  t.deepEqual(await importsOf('writ-verify', 'receipt-claims.js'), []);
});

/** A URL nothing listens on: a port the system just handed out, and closed again. */
async function closedPortUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const CONSUMER = `
import { WritClient, WritUnavailableError } from 'writ-client';
import { ReceiptVerificationError, verifyReceipt } from 'writ-verify';

const [url, apiKey, downUrl] = process.argv.slice(2);
const writ = new WritClient({ url, apiKey });
const permission = await writ.requestPermission({ action: 'email.send', resource: 'email:packed@acme.com', scope: { max_emails: 1 } });
const jwksUrl = url + '/.well-known/jwks.json';
const verified = await verifyReceipt(permission.receipt, { jwksUrl, issuer: url });
const used = await writ.consume({ token: permission.token, action: 'email.send', resource: 'email:packed@acme.com', use: { emails: 1 } });
const spent = await verifyReceipt(used.receipt, { jwksUrl, issuer: url });

const [header, , signature] = permission.receipt.split('.');
const altered = Buffer.from(JSON.stringify({ ...verified.claims, resource: 'email:evil@acme.com' })).toString('base64url');
const forged = await verifyReceipt(header + '.' + altered + '.' + signature, { jwksUrl }).then(() => 'verified', (e) => (e instanceof ReceiptVerificationError ? e.code : String(e)));
const down = await new WritClient({ url: downUrl, apiKey }).getPermission(permission.id).then(
  () => null,
  (e) => ({ unavailable: e instanceof WritUnavailableError, url: e.url }),
);

console.log(JSON.stringify({
  loader: { execArgv: process.execArgv, nodeOptions: process.env.NODE_OPTIONS ?? null },
  resolved: [import.meta.resolve('writ-client'), import.meta.resolve('writ-verify')],
  permission: { id: permission.id, status: permission.status },
  verified: { claims: verified.claims, kid: verified.kid, expired: verified.expired },
  spent: spent.claims.permission_id,
  forged,
  down,
}));
`;

test('plain Node, with no TypeScript loader, imports both from the project, gets a permission from a real Writ and verifies its receipt with the JWKS', async (t) => {
  const w = await startWrit();
  t.teardown(() => w.close());
  const a = await agent(w);
  const downUrl = await closedPortUrl();
  await fs.writeFile(path.join(project, 'consumer.mjs'), CONSUMER);
  const { stdout } = await run(process.execPath, ['consumer.mjs', w.url, a.key, downUrl], project);
  const out = JSON.parse(stdout);

  t.deepEqual(out.loader, { execArgv: [], nodeOptions: null });
  const installed = `file://${path.join(await fs.realpath(project), 'node_modules')}/`;
  t.deepEqual(out.resolved, [`${installed}writ-client/dist/client.js`, `${installed}writ-verify/dist/verify.js`], 'the installed copies, not this repository');

  t.is(out.permission.status, 'approved');
  t.like(out.verified.claims, { iss: w.url, permission_id: out.permission.id, action: 'email.send', resource: 'email:packed@acme.com', decision: 'allow' });
  t.false(out.verified.expired);
  const jwks = (await w.call('GET', '/.well-known/jwks.json')).body as { keys: Array<{ kid: string }> };
  t.true(jwks.keys.some((k) => k.kid === out.verified.kid), 'verified by a key of the server');
  t.is(out.spent, out.permission.id);
  t.is(out.forged, 'bad_signature');
  t.deepEqual(out.down, { unavailable: true, url: `${downUrl}/api/v1/permissions/${out.permission.id}` });
});

test('the installed declarations type-check a TypeScript consumer that has no Node types', async (t) => {
  await fs.writeFile(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022', 'DOM'], types: [], strict: true, noEmit: true, skipLibCheck: false },
      files: ['typed.ts'],
    }),
  );
  await fs.writeFile(
    path.join(project, 'typed.ts'),
    `import { WritApiError, WritClient, WritUnavailableError, type Permission } from 'writ-client';
import { ReceiptVerificationError, verifyReceipt, type AuthorizerClaims, type ReceiptClaims } from 'writ-verify';

export async function approved(writ: WritClient): Promise<ReceiptClaims | string> {
  try {
    const p: Permission = await writ.requestPermission({ action: 'email.send', resource: 'email:x@acme.com' });
    const { claims } = await verifyReceipt(p.receipt ?? '', { jwksUrl: 'https://writ.example/.well-known/jwks.json' });
    const authorizer: AuthorizerClaims | undefined = claims.iss_role === 'authorizer' ? (claims as AuthorizerClaims) : undefined;
    return authorizer ?? claims;
  } catch (e) {
    if (e instanceof WritUnavailableError) return \`retry after \${e.retryAfter ?? 1} s: \${e.url}\`;
    if (e instanceof WritApiError) return \`\${e.status} \${e.reasonCode}\`;
    if (e instanceof ReceiptVerificationError) return e.code;
    throw e;
  }
}
// @ts-expect-error: the declarations are precise, not any: a receipt is a string.
void verifyReceipt(42, { jwksUrl: 'x' });
`,
  );
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const result = await run(process.execPath, [tsc, '-p', project], project).then(
    () => 'ok',
    (e: { stdout?: string }) => e.stdout ?? String(e),
  );
  t.is(result, 'ok');
});

test("the README's other way, links to the checkout, installs both packages as links that import", async (t) => {
  const linked = await freshProject(work, 'linked');
  await runBlock(linkBlock!, { '/path/to/writ': ROOT, 'your-project': linked });
  for (const name of ['writ-client', 'writ-verify']) {
    t.true((await fs.lstat(path.join(linked, 'node_modules', name))).isSymbolicLink(), `${name} is a link`);
  }
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', "const c = await import('writ-client'); const v = await import('writ-verify'); console.log(typeof c.WritClient, typeof v.verifyReceipt)"], linked);
  t.is(stdout.trim(), 'function function');
});
