import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { ADMIN, ROOT, caller, eventually, spawnWrit, tempDir, writCli, writCliWith } from './helpers/writ.ts';

/**
 * Starting and stopping as operators do: every start-up failure exits non-zero with a clear
 * message and holds nothing; a generated admin key is never lost; signals reach the server
 * however it was started; commands that only read never create files.
 */
const serve = (data: string, ...args: string[]) => writCli('serve', '--data', data, ...args);

async function busyPort(t: { teardown(fn: () => unknown): void }): Promise<number> {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => blocker.close(r)));
  return (blocker.address() as net.AddressInfo).port;
}

test('a busy port stops the start with a clear message, releases the data directory, and the unseen admin key is replaced', async (t) => {
  const data = await tempDir();
  const port = await busyPort(t);
  const first = await writCliWith({ WRIT_ADMIN_TOKEN: '' }, 'serve', '--data', data, '--port', String(port), '--policies', path.join(ROOT, 'policies'));
  t.is(first.code, 1);
  t.regex(first.out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use`));
  t.notRegex(first.out, /writ_admin_/, 'no admin key is printed by a start that did not listen');

  // Nothing held: a start on a free port works, and gets a fresh admin key printed.
  const server = await spawnWrit(data, { WRIT_ADMIN_TOKEN: '' });
  try {
    const printed = /Admin API key \(shown once[^\n]*\n\s+(writ_admin_\S+)/.exec(server.output())?.[1];
    t.truthy(printed, server.output());
    t.regex(server.output(), /admin key generated at an earlier start was never shown, so it is revoked/);
    const { records } = (await caller(server.url, printed)('GET', '/api/v1/log/records')).body;
    const generated = records.filter((r: { type: string }) => r.type === 'admin.key_generated');
    t.is(generated.length, 2);
    t.is(generated[1].data.revoked_unshown_key_id, generated[0].data.key_id);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});

test('a host name that does not resolve stops the start and releases the lock', async (t) => {
  const data = await tempDir();
  const refused = await serve(data, '--host', 'no-such-host.invalid', '--port', '0');
  t.is(refused.code, 1);
  t.regex(refused.out, /the host name no-such-host\.invalid does not resolve/);
  const verify = await writCli('log', 'verify', '--data', data);
  t.is(verify.code, 0, 'the LevelDB lock was released');
});

test('a policies directory that does not exist is an error, for the server and for the toolchain', async (t) => {
  const data = await tempDir();
  const server = await serve(data, '--port', '0', '--policies', '/nope');
  t.is(server.code, 1);
  t.regex(server.out, /the policies directory \/nope does not exist/);
  const check = await writCli('policy', 'check', '--policies', '/nope');
  t.is(check.code, 1);
  t.notRegex(check.out, /^OK/m);
  t.regex(check.out, /no policies directory at \/nope/);
});

test('read-only commands never create files', async (t) => {
  const typo = path.join(await tempDir(), 'typo');
  const verify = await writCli('log', 'verify', '--data', typo);
  t.is(verify.code, 1);
  t.regex(verify.out, /no Writ data directory at/);
  t.false(await fs.stat(typo).then(() => true, () => false));
  const rotate = await writCli('keys', 'rotate', '--data', typo);
  t.is(rotate.code, 1);
  t.false(await fs.stat(typo).then(() => true, () => false));
});

test('SIGTERM to `npm start` reaches the server: it stops, flushes and releases its port and data directory', async (t) => {
  const data = await tempDir();
  const npm = spawn('npm', ['start', '--silent'], {
    cwd: ROOT,
    env: { ...process.env, WRIT_DATA: data, WRIT_PORT: '0', WRIT_ADMIN_TOKEN: ADMIN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout.on('data', (c: Buffer) => (output += c.toString()));
  npm.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', resolve));
  t.teardown(() => npm.kill('SIGKILL'));
  const url = await eventually(() => /Writ is listening on (http:\/\/\S+)/.exec(output)?.[1], 'the banner', 120_000);
  t.is((await caller(url)('GET', '/healthz')).status, 200);
  npm.kill('SIGTERM');
  await exited;
  await eventually(() => /stopped/.test(output), 'the server to say it stopped');
  await t.throwsAsync(fetch(`${url}/healthz`), undefined, 'nothing listens any more');
  t.is((await writCli('log', 'verify', '--data', data)).code, 0, 'the data directory is free and its log verifies');
});
