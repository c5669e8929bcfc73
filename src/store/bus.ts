import crypto from 'node:crypto';
import pg from 'pg';
import type { Report } from '../report.ts';

/**
 * Word between nodes that share a database: "this permission changed", "this approval event
 * happened", "the webhooks or keys changed". It only wakes and informs; nothing depends on it for
 * correctness (every state change is a conditional write in the database, and those who wait
 * also look again on their own every few seconds), so a message lost while a connection is down
 * costs a few seconds, never a wrong answer.
 */
export interface Bus {
  /** This node's id: messages it published itself are not handed back to it. */
  readonly node: string;
  publish(message: BusMessage): void;
  /** Every message another node published, from now on. */
  subscribe(listener: (message: BusMessage) => void): void;
  close(): Promise<void>;
}

/** With other nodes sharing the store, whoever waits on their word also looks again on its own at least this often. */
export const RECHECK_MS = 2_000;

export type BusMessage =
  | { t: 'permission'; id: string }
  | { t: 'event'; event: unknown }
  | { t: 'webhooks' }
  | { t: 'keys' };

/** One process alone: nobody else to tell. */
export function localBus(): Bus {
  return { node: crypto.randomBytes(6).toString('hex'), publish: () => {}, subscribe: () => {}, close: async () => {} };
}

const CHANNEL = 'writ';
/** PostgreSQL refuses a payload of 8000 bytes or more. */
const MAX_PAYLOAD = 7900;
const RECONNECT_MS = 1000;

/** LISTEN/NOTIFY on the shared database: one listening connection per node, notifications sent through the pool. */
export async function postgresBus(url: string, report: Report): Promise<Bus> {
  const node = crypto.randomBytes(6).toString('hex');
  const config: pg.ClientConfig = { connectionString: url, keepAlive: true, connectionTimeoutMillis: 10_000 };
  const pool = new pg.Pool({ ...config, max: 2 });
  pool.on('error', () => undefined);
  const listeners: Array<(message: BusMessage) => void> = [];
  let listener: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const listen = async (): Promise<void> => {
    const client = new pg.Client(config);
    client.on('error', () => undefined);
    client.on('notification', (n) => {
      let parsed: { from: string; m: BusMessage };
      try {
        parsed = JSON.parse(n.payload ?? '') as { from: string; m: BusMessage };
      } catch {
        return;
      }
      if (parsed.from === node) return;
      for (const l of listeners) {
        try {
          l(parsed.m);
        } catch {
          // a listener's failure is its own
        }
      }
    });
    client.on('end', () => {
      if (closed || listener !== client) return;
      listener = undefined;
      report('the connection that hears other nodes ended; reconnecting (waiting requests look again on their own meanwhile)', 'warn');
      schedule();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (closed) return void (await client.end());
      listener = client;
    } catch {
      await client.end().catch(() => undefined);
      schedule();
    }
  };
  const schedule = () => {
    if (closed) return;
    clearTimeout(retry);
    retry = setTimeout(() => void listen(), RECONNECT_MS);
    retry.unref();
  };
  await listen();

  return {
    node,
    publish(message) {
      let payload = JSON.stringify({ from: node, m: message });
      // An event too large to carry still says which permission changed.
      if (Buffer.byteLength(payload) > MAX_PAYLOAD && message.t === 'event') {
        const id = (message.event as { data?: { permission?: { id?: string } } }).data?.permission?.id;
        if (!id) return;
        payload = JSON.stringify({ from: node, m: { t: 'permission', id } });
      }
      if (closed) return;
      pool.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]).catch(() => undefined);
    },
    subscribe(l) {
      listeners.push(l);
    },
    async close() {
      closed = true;
      clearTimeout(retry);
      await listener?.end().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}
