import test from 'ava';
import { Lease } from '../src/store/lease.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { eventually } from './helpers/writ.ts';

/** Work one node at a time must do (the Telegram bot): a lease in the shared store. */
function node(store: MemoryStore, name: string, events: string[]) {
  const lease = new Lease(store, 'work', name, {
    ttlMs: 600,
    onAcquired: () => void events.push(`${name} leads`),
    onLost: () => void events.push(`${name} stops`),
    report: () => {},
  });
  return lease;
}

test('of nodes sharing a store one holds the lease; when it stops another takes over, and they never hold it together', async (t) => {
  const store = new MemoryStore();
  const events: string[] = [];
  const leases = ['a', 'b', 'c'].map((name) => node(store, name, events));
  await Promise.all(leases.map((l) => l.start()));
  await eventually(() => leases.filter((l) => l.held).length === 1, 'one holder');
  let overlap = false;
  const watch = setInterval(() => (overlap ||= leases.filter((l) => l.held).length > 1), 5);
  try {
    const first = leases.find((l) => l.held)!;
    await first.stop();
    const rest = leases.filter((l) => l !== first);
    await eventually(() => rest.filter((l) => l.held).length === 1, 'a new holder');
    t.false(overlap, 'never two holders at once');
    t.is(events.filter((e) => e.endsWith('leads')).length, 2);
  } finally {
    clearInterval(watch);
    await Promise.all(leases.map((l) => l.stop()));
  }
});

test('a holder that stops renewing (its node died) is taken over once its term has run out', async (t) => {
  const store = new MemoryStore();
  const events: string[] = [];
  // The dead holder's record, as a node killed mid-term leaves it.
  await store.batch([{ type: 'put', key: 'lease/work', value: JSON.stringify({ node: 'dead', until: Date.now() + 600 }) }]);
  const lease = node(store, 'b', events);
  const started = Date.now();
  await lease.start();
  t.false(lease.held, 'not while the dead holder term runs');
  await eventually(() => lease.held, 'the takeover');
  t.true(Date.now() - started >= 500, 'only after the term ran out');
  await lease.stop();
  t.is(await store.get('lease/work'), undefined, 'given back on stop');
});
