import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import { agent, eventually, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * The connection around a request: an answer given before the body has arrived ends the
 * connection, so a client is never left on a keep-alive socket that Node holds open to drain a
 * body nobody will read.
 */
const LIMIT = 1024;
let w: TestWrit;
let agentKey: string;
test.before(async () => {
  w = await startWrit({ config: { maxBodyBytes: LIMIT } });
  agentKey = (await agent(w)).key;
});
test.after.always(() => w?.close());

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: any;
}

/**
 * Sends a request head and `sent` bytes of a chunked body over a raw keep-alive socket, and never
 * the last chunk: as far as the server knows the body is still arriving.
 */
function unfinishedUpload(path: string, headers: Record<string, string>, sent: number) {
  const { port, hostname } = new URL(w.url);
  const socket = net.connect(Number(port), hostname);
  let received = '';
  let closed = false;
  socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  const head = Object.entries({ host: hostname, connection: 'keep-alive', 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
  for (let left = sent; left > 0; left -= 512) {
    const chunk = '{'.padEnd(Math.min(512, left), ' ');
    socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
  }
  const answer = (): RawAnswer | undefined => {
    const end = received.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [statusLine, ...lines] = received.slice(0, end).split('\r\n');
    const fields = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const body = received.slice(end + 4);
    if (body.length < Number(fields['content-length'] ?? 0)) return undefined;
    return { status: Number(statusLine!.split(' ')[1]), headers: fields, body: JSON.parse(body) };
  };
  return { socket, answer, closed: () => closed };
}

// Well below the 65 s Node would otherwise hold the connection, with room for a loaded machine.
const PROMPTLY_MS = 10_000;

const early: Array<[status: number, code: string, headers: () => Record<string, string>, bytes: number]> = [
  [413, 'payload_too_large', () => ({ authorization: `Bearer ${agentKey}` }), 4 * LIMIT],
  [401, 'unauthenticated', () => ({ authorization: 'Bearer writ_agent_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }), 100],
];
for (const [status, code, headers, bytes] of early) {
  test(`a ${status} for a chunked body still arriving says Connection: close and the server closes the socket`, async (t) => {
    const upload = unfinishedUpload('/api/v1/permissions', headers(), bytes);
    try {
      const answer = await eventually(upload.answer, `the ${status}`);
      t.is(answer.status, status);
      t.is(answer.body.error.reason_code, code);
      t.is(answer.headers.connection, 'close');
      t.true(await eventually(upload.closed, 'the server to close the connection', PROMPTLY_MS));
    } finally {
      upload.socket.destroy();
    }
  });
}

test('a request whose body has fully arrived keeps its keep-alive connection for the next request', async (t) => {
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise<{ status: number; reused: boolean; connection: string | undefined }>((resolve, reject) => {
      const req = http.request(`${w.url}/api/v1/permissions/perm_nope`, { agent: keepAlive, headers: { authorization: `Bearer ${agentKey}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.end();
    });
  try {
    const first = await get();
    const second = await get();
    t.is(first.status, 404);
    t.is(first.connection, 'keep-alive');
    t.true(second.reused, 'the second request went over the first one’s connection');
  } finally {
    keepAlive.destroy();
  }
});
