import test from 'ava';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { ENV_KEYS } from '../src/config.ts';
import http from 'node:http';
import { ADMIN, ROOT, agent, startWrit, tempDir, writCli, writCliFed, writCliWith, type TestWrit } from './helpers/writ.ts';

/** The `writ` CLI, run as the real binary: help, mistakes, and scripting a running server without curl. */
let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(() => w?.close());

const run = (...args: string[]) => writCliWith({ WRIT_URL: w.url, WRIT_KEY: ADMIN }, ...args);

test('writ --version prints the package version', async (t) => {
  const { version } = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const out = await writCli('--version');
  t.is(out.code, 0);
  t.is(out.out.trim(), `writ ${version}`);
});

test('every command and group answers --help, and the usage lists every WRIT_ variable', async (t) => {
  for (const args of [['serve'], ['log'], ['log', 'verify'], ['log', 'proof'], ['agents'], ['agents', 'create'], ['approvals', 'approve'], ['policy', 'test'], ['config', 'check'], ['backup']]) {
    const out = await writCli(...args, '--help');
    t.is(out.code, 0, args.join(' '));
    t.regex(out.out, /usage: writ|^\w[\w-]*: /m, args.join(' '));
  }
  const usage = await writCli('--help');
  for (const name of Object.keys(ENV_KEYS)) t.true(usage.out.includes(name), `${name} is in the usage`);
  t.regex(usage.out, /exit codes: 0 done; 1 failed .* 2 called wrongly; 3 the server could not be reached/);
});

test('a mistyped command or flag gets a did-you-mean and exit code 2; extra arguments are refused', async (t) => {
  const command = await writCli('sevre');
  t.is(command.code, 2);
  t.regex(command.out, /unknown command "sevre" \(did you mean serve\?\)/);
  const sub = await writCli('agents', 'craete', 'x');
  t.is(sub.code, 2);
  t.regex(sub.out, /did you mean create\?/);
  const flag = await writCli('serve', '--prot', '1');
  t.is(flag.code, 2);
  t.regex(flag.out, /unknown flag --prot \(did you mean --port\?\)/);
  t.regex(flag.out, /usage: writ serve/);
  const extra = await writCli('serve', 'now');
  t.is(extra.code, 2);
  t.regex(extra.out, /unexpected argument now/);
});

test('agents, approvers and attesters are created, rotated and revoked from the CLI, with --json for scripts', async (t) => {
  const created = JSON.parse((await run('agents', 'create', 'cli-bot', '--trust-tier', 'T2', '--json')).out);
  t.regex(created.api_key, /^writ_agent_/);
  t.is(created.trust_tier, 'T2');
  const quiet = await run('agents', 'create', 'quiet-bot', '--quiet');
  t.regex(quiet.out.trim(), /^writ_agent_[0-9a-f]{16}\.\S+$/, '--quiet prints only the key');
  const rotated = await run('agents', 'rotate', created.id);
  t.is(rotated.code, 0, rotated.out);
  t.regex(rotated.out, /new key for agt_.*\n\s+key:\s+writ_agent_/);
  const revoked = await run('agents', 'revoke', created.id, '--reason', 'decommissioned');
  t.is(revoked.code, 0);
  t.regex(revoked.out, /revoked agent agt_\S+ \(decommissioned\): 1 key\(s\), 0 token\(s\), 0 open approval\(s\)/);
  const approver = await run('approvers', 'create', 'Alice');
  t.regex(approver.out, /link: send \/start \S+ to the bot/);
  const attester = await run('attesters', 'create', 'payments OPA', '--touchpoint', 'payments');
  t.regex(attester.out, /attester att_\S+: payments OPA, touchpoint payments/);
  const missing = await run('agents', 'rotate', 'agt_nope');
  t.is(missing.code, 1);
  t.regex(missing.out, /404 not_found/);
});

test('approvals are listed, shown with their request and digest, and approved from the CLI', async (t) => {
  const a = await agent(w, { trust_tier: 'T2' });
  const alice = JSON.parse((await run('approvers', 'create', 'Alice', '--json')).out);
  const pending = (await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:cli', value: 42, currency: 'EUR' })).body;
  const asAlice = (...args: string[]) => writCliWith({ WRIT_URL: w.url, WRIT_KEY: alice.api_key }, ...args);
  const list = await asAlice('approvals', 'list');
  t.regex(list.out, new RegExp(`${pending.approval.id}\\s+pending\\s+sensitive\\s+bank\\.transfer account:cli 42 EUR`));
  const shown = await asAlice('approvals', 'show', pending.approval.id);
  t.regex(shown.out, /value:\s+42 EUR/);
  const digest = /digest:\s+(\S+)/.exec(shown.out)![1]!;
  const wrong = await asAlice('approvals', 'approve', pending.approval.id, '--digest', `x${digest.slice(1)}`);
  t.is(wrong.code, 1);
  t.regex(wrong.out, /409 request_mismatch/);
  const approved = await asAlice('approvals', 'approve', pending.approval.id, '--digest', digest);
  t.is(approved.code, 0, approved.out);
  t.regex(approved.out, /approved \(1 of 1\)/);
  const perm = await writCliWith({ WRIT_URL: w.url, WRIT_KEY: a.key }, 'permissions', 'show', pending.id);
  t.regex(perm.out, new RegExp(`${pending.id}: approved \\(decision allow, policies said escalate, tier sensitive\\)`));
  t.regex(perm.out, /token: wtk_/);
  const another = (await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:cli', value: 43, currency: 'EUR' })).body;
  const denied = await asAlice('approvals', 'deny', another.approval.id, '--reason', 'not this one');
  t.is(denied.code, 0, denied.out);
  t.is(denied.out.trim(), `${another.approval.id}: denied`);
  t.is((await a.call('GET', `/api/v1/permissions/${another.id}`)).body.status, 'denied');
});

test('lists page like the API: --limit and --cursor, or --all for every page; an agent lists only its own permissions', async (t) => {
  const names = ['list-a', 'list-b', 'list-c'];
  for (const name of names) t.is((await run('agents', 'create', name)).code, 0);
  const firstPage = await run('agents', 'list', '--limit', '2');
  t.is(firstPage.code, 0, firstPage.out);
  const more = /--cursor (\S+), or --all/.exec(firstPage.out);
  t.truthy(more, firstPage.out);
  t.is(firstPage.out.split('\n').filter((l) => /^agt_/.test(l)).length, 2);
  const everything = JSON.parse((await run('agents', 'list', '--all', '--limit', '2', '--json')).out) as { items: Array<{ id: string; name: string }> };
  for (const name of names) t.true(everything.items.some((a) => a.name === name), `${name} is listed`);
  t.is(new Set(everything.items.map((a) => a.id)).size, everything.items.length, 'no agent twice across pages');
  t.false(JSON.stringify(everything).includes('writ_agent_'), 'no key in a list');
  const next = await run('agents', 'list', '--limit', '2', '--cursor', more![1]!);
  t.is(next.code, 0, next.out);
  t.false(next.out.includes(firstPage.out.split('\n')[0]!.split(' ')[0]!), 'the next page starts after the first');
  const both = await run('agents', 'list', '--all', '--cursor', more![1]!);
  t.is(both.code, 2);

  const mine = await agent(w);
  const other = await agent(w);
  await mine.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:mine@acme.com' });
  await other.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:other@acme.com' });
  const own = await writCliWith({ WRIT_URL: w.url, WRIT_KEY: mine.key }, 'permissions', 'list', '--all');
  t.is(own.code, 0, own.out);
  t.regex(own.out, /approved\s+allow\s+standard\s+email\.send email:mine@acme\.com/);
  t.false(own.out.includes('other@acme.com'));
  const filtered = await run('permissions', 'list', '--agent', other.id, '--action', 'email.*', '--json');
  t.deepEqual((JSON.parse(filtered.out) as { items: Array<{ resource: string }> }).items.map((p) => p.resource), ['email:other@acme.com']);
  for (const kind of ['approvers', 'attesters', 'resource-servers']) t.is((await run(kind, 'list')).code, 0, kind);
  const badFilter = await run('permissions', 'list', '--status', 'maybe');
  t.is(badFilter.code, 1);
  t.regex(badFilter.out, /422 .*status/);
});

test('writ log proof --verify checks an inclusion proof offline, and fails against another log key', async (t) => {
  const a = await agent(w);
  const { log } = (await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:proof@acme.com' })).body;
  const key = (await w.call('GET', '/.well-known/openid-configuration')).body.log_verifier_key as string;
  const ok = await run('log', 'proof', String(log.index), '--verify', '--log-key', key);
  t.is(ok.code, 0, ok.out);
  t.regex(ok.out, new RegExp(`proof of entry ${log.index}: OK — included in the signed tree of \\d+ entries`));
  const stranger = key.replace(/\+[0-9a-f]{8}\+/, '+00000000+');
  const bad = await run('log', 'proof', String(log.index), '--verify', '--log-key', stranger, '--json');
  t.is(bad.code, 1);
  t.false(JSON.parse(bad.out).ok);
  const tofu = await run('log', 'proof', String(log.index), '--verify');
  t.regex(tofu.out, /taken from the server's discovery document: pin it with --log-key/);
});

test('a profile keeps the URL and key (mode 0600); one readable by others is refused; a server that is down is exit code 3', async (t) => {
  const home = await tempDir('writ-xdg-');
  const env = { XDG_CONFIG_HOME: home, WRIT_ADMIN_TOKEN: '', WRIT_URL: '', WRIT_KEY: '' };
  const login = await writCliWith(env, 'login', '--url', w.url, '--key', ADMIN, '--profile', 'test');
  t.is(login.code, 0, login.out);
  const file = path.join(home, 'writ', 'profiles.json');
  t.is((await fs.stat(file)).mode & 0o777, 0o600);
  const viaProfile = await writCliWith(env, 'agents', 'create', 'profiled', '--json');
  t.is(viaProfile.code, 0, viaProfile.out);
  await fs.chmod(file, 0o644);
  const refused = await writCliWith(env, 'agents', 'create', 'x');
  t.is(refused.code, 1);
  t.regex(refused.out, /can be read by others \(mode 644\)/);
  // A port that was free a moment ago: nothing listens there.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const down = await writCliWith({ WRIT_URL: `http://127.0.0.1:${port}` }, 'approvals', 'list');
  t.is(down.code, 3);
  t.regex(down.out, new RegExp(`cannot reach Writ at http://127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
});

test('a damaged profile file is named with its fix, and does not stand in the way of --url and --key; login reads a key from standard input', async (t) => {
  const home = await tempDir('writ-xdg-');
  const env = { XDG_CONFIG_HOME: home, WRIT_ADMIN_TOKEN: '', WRIT_URL: '', WRIT_KEY: '' };
  const dir = path.join(home, 'writ');
  const file = path.join(dir, 'profiles.json');
  // A directory made before with a loose mode is tightened by the first login.
  await fs.mkdir(dir, { mode: 0o755 });
  await fs.chmod(dir, 0o755);
  const login = await writCliFed(`${ADMIN}\n`, env, 'login', '--url', w.url, '--key', '-');
  t.is(login.code, 0, login.out);
  t.is((await fs.stat(dir)).mode & 0o777, 0o700);
  t.deepEqual(JSON.parse(await fs.readFile(file, 'utf8')).profiles.default, { url: w.url, key: ADMIN });
  t.is((await writCliWith(env, 'agents', 'list')).code, 0);
  for (const damaged of ['{bad', 'null', '[]', '{"profiles":{"x":{"url":5}}}']) {
    await fs.writeFile(file, damaged, { mode: 0o600 });
    const out = await writCliWith(env, 'agents', 'list');
    t.is(out.code, 1, damaged);
    t.regex(out.out, new RegExp(`^writ: ${file.replace(/[.\\/]/g, '\\$&')} is not (JSON|a profile file) .*fix it, or remove it and run writ login again\n$`), damaged);
    const outright = await writCliWith(env, 'agents', 'list', '--url', w.url, '--key', ADMIN);
    t.is(outright.code, 0, outright.out);
  }
  await fs.writeFile(file, JSON.stringify({ default: 'gone', profiles: {} }), { mode: 0o600 });
  const missing = await writCliWith(env, 'agents', 'list');
  t.is(missing.code, 1);
  t.regex(missing.out, /no profile "gone"/);
});

test('a --url that is not an http(s) URL, or holds a password, is a usage error that never repeats the password; a server that is not Writ is exit 1', async (t) => {
  for (const url of ['notaurl', 'ftp://127.0.0.1/']) {
    const out = await writCliWith({ WRIT_URL: '' }, 'agents', 'list', '--url', url);
    t.is(out.code, 2, url);
    t.regex(out.out, /--url /);
  }
  const secret = await writCliWith({ WRIT_URL: '' }, 'agents', 'list', '--url', 'http://user:s3cret-pass@127.0.0.1:1');
  t.is(secret.code, 2);
  t.regex(secret.out, /must not hold a user name or password/);
  t.notRegex(secret.out, /s3cret-pass/);
  const other = http.createServer((_req, res) => res.end('hello'));
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => other.close(() => r())));
  const url = `http://127.0.0.1:${(other.address() as net.AddressInfo).port}`;
  for (const args of [['agents', 'create', 'x', '--quiet'], ['agents', 'list'], ['log', 'proof', '0']]) {
    const out = await writCliWith({ WRIT_URL: url }, ...args);
    t.is(out.code, 1, args.join(' '));
    t.regex(out.out, /answered 200 with something that is not Writ's JSON \(hello\); is --url \(or WRIT_URL\) a Writ server\?/);
  }
});

test('serve reads a YAML configuration file below flags and the environment; unknown keys are refused with file:line', async (t) => {
  const dir = await tempDir();
  const file = path.join(dir, 'writ.yaml');
  await fs.writeFile(file, 'port: 0\napproval_timeout_seconds: 60\nadmin_token: a-token-from-the-file-000\n');
  const checked = await writCliWith({ WRIT_ADMIN_TOKEN: '', WRIT_CRITICAL_DELAY_SECONDS: '9' }, 'config', 'check', '--config', file, '--json', '--policies', path.join(ROOT, 'policies'));
  t.is(checked.code, 0, checked.out);
  const rows = Object.fromEntries((JSON.parse(checked.out).settings as Array<{ setting: string; value: unknown; source: string }>).map((r) => [r.setting, r]));
  t.like(rows.WRIT_APPROVAL_TIMEOUT_SECONDS, { value: 60, source: 'file' });
  t.like(rows.WRIT_CRITICAL_DELAY_SECONDS, { value: 9, source: 'environment' });
  t.like(rows.WRIT_POLICIES, { source: 'flag' });
  t.like(rows.WRIT_ADMIN_TOKEN, { value: '(set, not shown)', source: 'file' });
  t.false(checked.out.includes('a-token-from-the-file'), 'secrets are never printed');
  await fs.writeFile(file, 'port: 0\napprovl_timeout_seconds: 60\n');
  const typo = await writCli('serve', '--config', file);
  t.is(typo.code, 1);
  t.regex(typo.out, /writ\.yaml:2: unknown setting "approvl_timeout_seconds" \(did you mean approval_timeout_seconds\?\)/);
  await fs.writeFile(file, 'port: eighty\n');
  const bad = await writCli('config', 'check', '--config', file);
  t.is(bad.code, 1);
  t.regex(bad.out, /writ\.yaml:1: port: /);
});

test('dashboard sessions are listed and ended from the CLI', async (t) => {
  const signedIn = await w.call('POST', '/api/v1/session', { key: ADMIN });
  t.is(signedIn.status, 201);
  const cookie = signedIn.headers.get('set-cookie')!.split(';')[0]!;
  const listed = await run('sessions', 'list');
  t.is(listed.code, 0, listed.out);
  t.regex(listed.out, new RegExp(`^${signedIn.body.id}  admin .+  via key  since \\S+  until ${signedIn.body.expires_at}$`, 'm'));
  const ended = await run('sessions', 'revoke', signedIn.body.id, '--reason', 'laptop lost', '--json');
  t.is(ended.code, 0, ended.out);
  t.is(JSON.parse(ended.out).closed.reason, 'laptop lost');
  t.is((await w.call('GET', '/api/v1/session', undefined, { cookie })).status, 401);
  t.notRegex((await run('sessions', 'list')).out, new RegExp(signedIn.body.id));
});
