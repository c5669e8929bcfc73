import test from 'ava';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { verifyConsistency } from '../src/log/merkle.ts';
import { ADMIN, ROOT, caller, eventually } from './helpers/writ.ts';

/**
 * A real filesystem that fills up while Writ runs, then gets its space back (a tmpfs in a mount
 * namespace of the test's own, see helpers/disk-lab.ts). Every answer a client got must survive a
 * restart; nothing is acknowledged while writes fail; the signed log is only ever extended.
 */
class DiskLab {
  private readonly answers: AsyncIterator<string>;
  private constructor(private readonly child: ReturnType<typeof spawn>) {
    this.answers = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }

  static async open(sizeMb: number): Promise<DiskLab> {
    const lab = path.join(ROOT, 'test/helpers/disk-lab.ts');
    const child = spawn('unshare', ['-rm', '--', process.execPath, '--import=tsx', lab, ROOT, String(sizeMb), ADMIN], { stdio: ['pipe', 'pipe', 'inherit'] });
    const opened = new DiskLab(child);
    const ready = await opened.next();
    if (!ready.ready) throw new Error(`the disk lab did not start: ${JSON.stringify(ready)}`);
    return opened;
  }

  private async next(): Promise<any> {
    const { value, done } = await this.answers.next();
    if (done) throw new Error('the disk lab exited');
    return JSON.parse(value);
  }

  async send(cmd: 'start' | 'stop' | 'fill' | 'free' | 'output'): Promise<any> {
    this.child.stdin!.write(`${JSON.stringify({ cmd })}\n`);
    return this.next();
  }

  async close(): Promise<void> {
    this.child.stdin!.write(`${JSON.stringify({ cmd: 'exit' })}\n`);
    await new Promise((resolve) => this.child.once('exit', resolve));
  }
}

const email = { action: 'email.send', resource: 'email:full@acme.com' };
const note = (text: string) => ({ size: Number(text.split('\n')[1]), root: Buffer.from(text.split('\n')[2]!, 'base64') });

test('a disk that fills up and gets its space back while Writ runs loses nothing that was acknowledged and never forks the log', async (t) => {
  const lab = await DiskLab.open(24);
  t.teardown(() => lab.close());
  let { url } = await lab.send('start');
  t.truthy(url);
  const admin = caller(url, ADMIN);
  const key = (await admin('POST', '/api/v1/agents', { name: 'filler' })).body.api_key as string;
  const agent = caller(url, key);
  const acknowledged: Array<{ id: string; token: string }> = [];
  const ask = async () => {
    const res = await agent('POST', '/api/v1/permissions', email);
    if (res.status === 201) acknowledged.push({ id: res.body.id, token: res.body.token });
    return res;
  };
  for (let i = 0; i < 5; i++) t.is((await ask()).status, 201);
  const first = (await admin('POST', '/api/v1/log/checkpoint')).text;

  await lab.send('fill');
  const refused = await eventually(async () => {
    const res = await ask();
    return res.status === 503 ? res : undefined;
  }, 'a request refused for lack of space');
  t.is(refused.body.error.reason_code, 'storage_unavailable');
  const health = await admin('GET', '/healthz');
  t.is(health.status, 503);
  t.is((await admin('POST', '/api/v1/log/checkpoint')).status, 503, 'no checkpoint over entries that are not durable');
  const stillFull = await ask();
  t.is(stillFull.status, 503, 'nothing is acknowledged while the disk is full');

  await lab.send('free');
  await eventually(async () => (await admin('GET', '/healthz')).status === 200, 'Writ to reopen and re-verify its store');
  for (let i = 0; i < 5; i++) t.is((await ask()).status, 201);
  const spent = acknowledged.at(-1)!;
  t.is((await agent('POST', '/api/v1/tokens/consume', { token: spent.token, ...email })).status, 200);
  const second = (await admin('POST', '/api/v1/log/checkpoint')).text;

  t.is((await lab.send('stop')).code, 0);
  ({ url } = await lab.send('start'));
  const again = caller(url, key);
  for (const { id } of acknowledged) t.is((await again('GET', `/api/v1/permissions/${id}`)).status, 200, `${id} was acknowledged and must survive`);
  t.is((await again('POST', '/api/v1/tokens/consume', { token: spent.token, ...email })).status, 409, 'the consumed token stays consumed');
  const latest = (await caller(url)('GET', '/api/v1/log/checkpoint')).text;
  const [a, b, c] = [first, second, latest].map(note) as [ReturnType<typeof note>, ReturnType<typeof note>, ReturnType<typeof note>];
  for (const [older, newer] of [[a, b], [b, c]] as const) {
    t.true(newer.size >= older.size);
    const proof = (await again('GET', `/api/v1/log/consistency?old=${older.size}&new=${newer.size}`)).body.hashes.map((h: string) => Buffer.from(h, 'base64'));
    t.true(verifyConsistency(older.size, newer.size, older.root, newer.root, proof), `the checkpoint of ${newer.size} extends the one of ${older.size}`);
  }
  t.is((await lab.send('stop')).code, 0);
});
