import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ADMIN, ROOT, caller, eventually, spawnWrit, tempDir } from './helpers/writ.ts';

/**
 * What `writ serve` writes for a log collector: JSON lines on stderr, one access-log line per
 * request (request id, method, route template, status, time, who), the server's own reports at
 * their levels, and never a key, a token or a body, even when every request carries one.
 */
const SCRAPE_TOKEN = 'a-scrape-only-token-0123456789';

interface Line {
  level: string;
  time: string;
  msg: string;
  [field: string]: unknown;
}

/** Every line of the output must be a JSON object: a collector gets nothing else. */
function lines(stderr: string): Line[] {
  return stderr
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const parsed = JSON.parse(line) as Line;
      if (typeof parsed !== 'object' || parsed === null) throw new Error(`not a JSON object: ${line}`);
      return parsed;
    });
}

async function serve(env: Record<string, string> = {}) {
  const server = await spawnWrit(await tempDir(), env);
  // Everything after the banner; the lines of start-up are in output() with it.
  let stderr = '';
  server.child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { ...server, stderr: () => stderr };
}

test('each request is one JSON line with its id, route template, status, time and principal; no key or token is ever written', async (t) => {
  const server = await serve({ WRIT_METRICS_TOKEN: SCRAPE_TOKEN });
  t.teardown(() => server.child.kill('SIGKILL'));
  const expected: Array<{ id: string; method: string; route: string | null; status: number; principal_id?: string; role?: string }> = [];
  const note = (res: { status: number; headers: Headers }, method: string, route: string | null, who: { principal_id?: string; role?: string } = {}) =>
    expected.push({ id: res.headers.get('x-request-id')!, method, route, status: res.status, ...who });

  const admin = caller(server.url, ADMIN);
  const created = await admin('POST', '/api/v1/agents', { name: 'logged', trust_tier: 'T2' });
  note(created, 'POST', '/api/v1/agents', { principal_id: 'admin', role: 'admin' });
  const agentKey: string = created.body.api_key;
  const agentId: string = created.body.id;
  const asAgent = caller(server.url, agentKey);
  const action = { action: 'email.send', resource: 'email:client@acme.com' };
  const asked = await asAgent('POST', '/api/v1/permissions', { ...action, scope: { max_emails: 1 }, context: { reason: 'a body the log never sees' } });
  t.is(asked.status, 201);
  note(asked, 'POST', '/api/v1/permissions', { principal_id: agentId, role: 'agent' });
  const token: string = asked.body.token;
  const id: string = asked.body.id;
  note(await asAgent('GET', `/api/v1/permissions/${id}`), 'GET', '/api/v1/permissions/:id', { principal_id: agentId, role: 'agent' });
  note(await asAgent('GET', `/api/v1/permissions/${id}?token=${token}`), 'GET', '/api/v1/permissions/:id', { principal_id: agentId, role: 'agent' });
  note(await asAgent('POST', '/api/v1/tokens/consume', { token, ...action, use: { emails: 1 } }), 'POST', '/api/v1/tokens/consume', { principal_id: agentId, role: 'agent' });
  note(await caller(server.url, `${agentKey}0`)('GET', `/api/v1/permissions/${id}`), 'GET', '/api/v1/permissions/:id');
  note(await caller(server.url)('GET', `/no/route/${token}`), 'GET', null);
  note(await caller(server.url, SCRAPE_TOKEN)('GET', '/metrics'), 'GET', '/metrics');
  note(await caller(server.url, token)('POST', '/api/v1/permissions', action), 'POST', '/api/v1/permissions');
  // The last request before the signal: its line must not be lost on the way out.
  note(await caller(server.url)('GET', '/healthz'), 'GET', '/healthz');

  server.child.kill('SIGTERM');
  t.is(await server.exited, 0);
  const written = lines(server.stderr());
  const access = written.filter((line) => line.msg === 'request');
  t.is(access.length, expected.length, 'one line per request');
  for (const want of expected) {
    const got = access.filter((line) => line.request_id === want.id);
    t.is(got.length, 1, `one line for request ${want.id}`);
    const line = got[0]!;
    t.like(line, { level: 'info', method: want.method, route: want.route, status: want.status });
    t.is(line.principal_id, want.principal_id);
    t.is(line.role, want.role);
    t.is(typeof line.ms, 'number');
    t.false(Number.isNaN(Date.parse(line.time)));
  }
  t.is(written.at(-1)!.msg, 'stopped', 'the last line is written before the process exits');
  t.true(written.some((line) => line.level === 'info' && /^SIGTERM: finishing in-flight requests/.test(line.msg)));

  const everything = server.output();
  const secret = agentKey.split('.').at(-1)!;
  for (const [what, value] of Object.entries({ 'the admin token': ADMIN, 'the agent key': agentKey, "the agent key's secret": secret, 'the token': token, 'the scrape token': SCRAPE_TOKEN })) {
    t.false(everything.includes(value), `${what} is not in the output`);
  }
  t.false(everything.includes('a body the log never sees'), 'no body');
  t.false(everything.includes('authorization') || everything.includes('Bearer'), 'no header');
});

test('a request whose client leaves before the answer is logged as 499, aborted', async (t) => {
  const server = await serve();
  t.teardown(() => server.child.kill('SIGKILL'));
  const admin = caller(server.url, ADMIN);
  const key: string = (await admin('POST', '/api/v1/agents', { name: 'impatient', trust_tier: 'T2' })).body.api_key;
  const pending = (await caller(server.url, key)('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:x', value: 5 })).body;
  const leaving = new AbortController();
  const poll = fetch(`${server.url}/api/v1/permissions/${pending.id}?wait=30`, { headers: { authorization: `Bearer ${key}` }, signal: leaving.signal });
  // A request sent after the poll is answered after the server has read the poll's.
  await admin('GET', '/healthz');
  leaving.abort();
  t.is(await poll.then(() => 'answered', () => 'left'), 'left');
  const line = await eventually(
    () => lines(server.stderr()).find((l) => l.msg === 'request' && l.route === '/api/v1/permissions/:id'),
    'the line of the abandoned poll',
  );
  t.like(line, { method: 'GET', status: 499, aborted: true, role: 'agent' });
});

test('WRIT_LOG_LEVEL=warn keeps the warnings and drops the access log and the news', async (t) => {
  const policies = await tempDir();
  await fs.cp(path.join(ROOT, 'policies'), policies, { recursive: true });
  const server = await serve({ WRIT_LOG_LEVEL: 'warn', WRIT_POLICIES: policies });
  t.teardown(() => server.child.kill('SIGKILL'));
  t.is((await caller(server.url)('GET', '/healthz')).status, 200);
  await fs.writeFile(path.join(policies, 'broken.cedar'), 'permit (principal, action, resource) when { nonsense };\n');
  await eventually(() => server.stderr().includes('policy change refused'), 'the refused change to be logged');
  server.child.kill('SIGTERM');
  t.is(await server.exited, 0);
  const written = lines(server.stderr());
  const refused = written.find((line) => line.msg.startsWith('policy change refused'));
  t.is(refused?.level, 'warn');
  t.deepEqual(
    written.filter((line) => line.level === 'info' || line.level === 'debug'),
    [],
    'no access-log line, no shutdown news',
  );
});
