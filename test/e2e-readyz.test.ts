import test from 'ava';
import net from 'node:net';
import { agent, caller, eventually, startWrit } from './helpers/writ.ts';
import { Faults } from './helpers/faults.ts';
import type { Range, Store } from '../src/store/store.ts';

/**
 * /readyz is for load balancers and orchestrators: ready only once start-up has finished and
 * Writ can serve (storage accepts writes, the log appends, the policy worker holds the active
 * set), with every reason it cannot. /healthz stays liveness and storage.
 */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

test('a started server is ready, and says so in one word', async (t) => {
  const w = await startWrit();
  try {
    const ready = await w.call('GET', '/readyz');
    t.is(ready.status, 200);
    t.deepEqual(ready.body, { status: 'ready' });
  } finally {
    await w.close();
  }
});

test('while start-up is still running the server is alive but not ready', async (t) => {
  // Start-up re-arms the open approvals after the server listens; hold that step.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const wrapDriver = (driver: Store): Store => ({
    get: (key) => driver.get(key),
    getMany: (keys) => driver.getMany(keys),
    batch: (ops, options) => driver.batch(ops, options),
    settle: () => driver.settle(),
    close: () => driver.close(),
    iterate: (range: Range) =>
      range.gte === 'appr-open/'
        ? (async function* () {
            await held;
            yield* driver.iterate(range);
          })()
        : driver.iterate(range),
  });
  const port = await freePort();
  const starting = startWrit({ config: { port }, hooks: { wrapDriver } });
  try {
    const call = caller(`http://127.0.0.1:${port}`);
    const early = await eventually(() => call('GET', '/readyz').catch(() => undefined), 'the server to listen');
    t.is(early.status, 503);
    t.deepEqual(early.body, { status: 'not_ready', reasons: ['starting'] });
    t.is(early.headers.get('retry-after'), '1');
    t.is((await call('GET', '/healthz')).status, 200, 'alive all the same');
  } finally {
    release();
  }
  const w = await starting;
  try {
    t.is((await w.call('GET', '/readyz')).status, 200);
  } finally {
    await w.close();
  }
});

test('while storage refuses writes the server is not ready, and ready again once it re-verified', async (t) => {
  const faults = new Faults();
  const w = await startWrit({ hooks: { wrapDriver: faults.wrap } });
  try {
    const a = await agent(w);
    faults.reopenFailures = Number.MAX_SAFE_INTEGER;
    faults.failWrites(1);
    t.is((await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:client@acme.com' })).status, 503);
    const refused = await w.call('GET', '/readyz');
    t.is(refused.status, 503);
    t.is(refused.body.status, 'not_ready');
    t.true(refused.body.reasons.includes('storage_unavailable'), JSON.stringify(refused.body));
    t.true(refused.body.reasons.includes('log_refusing_appends'), 'the failed write broke the log too');
    t.false(refused.body.reasons.includes('starting'));

    faults.reopenFailures = 0;
    await eventually(async () => (await w.call('GET', '/readyz')).status === 200, 'readiness after recovery');
  } finally {
    await w.close();
  }
});
