import crypto from 'node:crypto';
import { decrypt, encrypt } from '../crypto/keys.ts';
import { sortableId } from '../crypto/encoding.ts';
import { WritError } from '../errors.ts';
import type { TransparencyLog } from '../log/log.ts';
import { Conflict, pad, put, type BatchOp, type Store } from '../store/store.ts';
import { localBus, RECHECK_MS, type Bus } from '../store/bus.ts';
import type { EventSink, WebhookEventType, WritEvent } from './events.ts';
import type { Report } from '../report.ts';

/**
 * Outgoing webhooks. A delivery is queued in LevelDB in the same batch as the change that caused
 * it, then sent by a dispatcher that retries with exponential backoff; it leaves the queue only
 * when the receiver answered 2xx, so a restart loses nothing (receivers dedupe on the event id).
 * Each body is signed: `Writ-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`.
 *
 * Every node sharing the store sends from the one queue: a delivery is claimed before it is sent,
 * by moving it (a conditional write, so one node wins) to a time CLAIM_MS ahead. The claimant
 * deletes or requeues it after sending; a claimant that died leaves it due again once its claim
 * runs out, and another node sends it then.
 */
export interface Subscription {
  id: string;
  url: string;
  events: WebhookEventType[];
  created_at: string;
}

interface StoredSubscription extends Subscription {
  secret_sealed: string;
  /** The full URL, sealed: `url` shows it with its query values redacted (they often carry credentials). */
  url_sealed?: string;
}

interface Delivery {
  delivery_id: string;
  subscription_id: string;
  event: { id: string; type: string; created_at: string; data: unknown };
  attempt: number;
  last_error?: string;
}

const K = {
  subscription: (id: string) => `hook/${id}`,
  subscriptions: { gte: 'hook/', lt: 'hook/~' },
  queued: (due: number, id: string) => `hookq/${pad(due)}/${id}`,
  dead: (id: string) => `hookdead/${id}`,
};
const MAX_ATTEMPTS = 12;
const MAX_BACKOFF_MS = 10 * 60_000;
const SEND_TIMEOUT_MS = 10_000;
/** How long a claimed delivery is left to its claimant: longer than a send can take. */
const CLAIM_MS = SEND_TIMEOUT_MS + 2_000;
const PARALLEL = 8;

/**
 * A URL as it may be shown and logged: past the first path segment, query values and any fragment
 * replaced by "…", because chat services carry the credential in the path
 * (https://hooks.slack.com/services/T…/B…/secret).
 */
export function redactedUrl(url: string): string {
  const u = new URL(url);
  const [first, ...rest] = u.pathname.split('/').filter(Boolean);
  const path = first === undefined ? '/' : `/${first}${rest.length ? '/…' : ''}`;
  const query = [...u.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=…`).join('&');
  return `${u.origin}${path}${query ? `?${query}` : ''}${u.hash ? '#…' : ''}`;
}

export function signature(secret: string, timestamp: number, body: string): string {
  return crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export interface WebhookStats {
  subscriptions: number;
  delivered: number;
  failed_attempts: number;
  dead: number;
  last_error?: { at: string; url: string; message: string };
}

export class Webhooks implements EventSink {
  private readonly subscriptions = new Map<string, StoredSubscription>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly stats: WebhookStats = { subscriptions: 0, delivered: 0, failed_attempts: 0, dead: 0 };

  private readonly bus: Bus;

  constructor(
    private readonly o: { store: Store; log: TransparencyLog; dataKey: Buffer; retryBaseMs: number; report: Report; bus?: Bus },
  ) {
    this.bus = o.bus ?? localBus();
    this.bus.subscribe((message) => {
      if (message.t === 'webhooks') void this.load().catch(() => undefined);
    });
  }

  async start(): Promise<void> {
    await this.load();
    this.stopped = false;
    this.wake(0);
  }

  /** The subscriptions as stored: another node may have added or removed one. */
  private async load(): Promise<void> {
    const stored = new Map<string, StoredSubscription>();
    for await (const [, raw] of this.o.store.iterate(K.subscriptions)) {
      const sub = JSON.parse(raw) as StoredSubscription;
      stored.set(sub.id, sub);
    }
    this.subscriptions.clear();
    for (const [id, sub] of stored) this.subscriptions.set(id, sub);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  get health(): WebhookStats {
    return { ...this.stats, subscriptions: this.subscriptions.size };
  }

  async create(input: { url: string; events: WebhookEventType[]; secret: string }): Promise<Subscription> {
    const sub: StoredSubscription = {
      id: sortableId('hook'),
      url: redactedUrl(input.url),
      events: [...new Set(input.events)],
      created_at: new Date().toISOString(),
      secret_sealed: encrypt(this.o.dataKey, input.secret),
      url_sealed: encrypt(this.o.dataKey, input.url),
    };
    await this.o.log.append('webhook.created', { webhook_id: sub.id, url: sub.url, events: sub.events }, [put(K.subscription(sub.id), sub)]);
    this.subscriptions.set(sub.id, sub);
    this.bus.publish({ t: 'webhooks' });
    return view(sub);
  }

  list(): Subscription[] {
    return [...this.subscriptions.values()].map(view);
  }

  async remove(id: string): Promise<Subscription> {
    const sub = this.subscriptions.get(id);
    if (!sub) throw new WritError('not_found', `no webhook ${id}`, { field: 'id' });
    await this.o.log.append('webhook.deleted', { webhook_id: id, url: sub.url }, [{ type: 'del', key: K.subscription(id) }]);
    this.subscriptions.delete(id);
    this.bus.publish({ t: 'webhooks' });
    return view(sub);
  }

  /** Queues one delivery per interested subscription, in the batch of the change itself. */
  ops(event: WritEvent): BatchOp[] {
    if (event.type === 'approval.updated') return [];
    const ops: BatchOp[] = [];
    for (const sub of this.subscriptions.values()) {
      if (!sub.events.includes(event.type)) continue;
      const delivery: Delivery = {
        delivery_id: sortableId('dlv'),
        subscription_id: sub.id,
        event: { id: event.id, type: event.type, created_at: event.created_at, data: event.data },
        attempt: 0,
      };
      ops.push(put(K.queued(Date.now(), delivery.delivery_id), delivery));
    }
    return ops;
  }

  after(event: WritEvent): void {
    if (event.type !== 'approval.updated' && this.subscriptions.size > 0) this.wake(0);
  }

  /**
   * Asks for a drain in `ms`. A wake that comes while a drain runs is remembered and answered by
   * another pass, so a delivery queued during a drain (or a retry it scheduled) is never missed.
   */
  private wake(ms: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.drain().finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake(0);
        }
      });
    }, ms);
    this.timer.unref();
  }

  /** Sends every delivery that is due, a few at a time, then sleeps until the next one is. */
  private async drain(): Promise<void> {
    try {
      // Another node may have added or removed a subscription: its word (the bus) may have been lost.
      if (this.o.bus) await this.load();
      for (;;) {
        if (this.stopped) return;
        const due: Array<[string, string]> = [];
        for await (const entry of this.o.store.iterate({ gte: 'hookq/', lt: `hookq/${pad(Date.now())}~`, limit: PARALLEL })) due.push(entry);
        if (due.length === 0) break;
        // Each delivery settles on its own: one failing cannot leave others running unobserved.
        await Promise.allSettled(due.map(([key, raw]) => this.claimAndDeliver(key, raw)));
      }
      let next = this.o.bus ? Date.now() + RECHECK_MS : Infinity;
      for await (const [key] of this.o.store.iterate({ gte: 'hookq/', lt: 'hookq/~', limit: 1 })) next = Math.min(next, Number(key.split('/')[1]));
      if (next < Infinity) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.wake(0), Math.max(50, next - Date.now()));
        this.timer.unref();
      }
    } catch (err) {
      this.o.report(`webhook dispatcher: ${(err as Error).message}`, 'error');
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.wake(0), 1000);
      this.timer.unref();
    }
  }

  /** Claims a due delivery (another node may claim it first, and then sends it) and sends it. */
  private async claimAndDeliver(key: string, raw: string): Promise<void> {
    const delivery = JSON.parse(raw) as Delivery;
    const claimed = K.queued(Date.now() + CLAIM_MS, delivery.delivery_id);
    try {
      await this.o.store.batch([{ type: 'del', key }, { type: 'put', key: claimed, value: raw }], { sync: true, expect: [{ key, value: raw }] });
    } catch (err) {
      if (err instanceof Conflict) return;
      throw err;
    }
    await this.deliver(claimed, raw, delivery);
  }

  /**
   * Sends a claimed delivery, then takes it off the queue or requeues it, only while the claim is
   * still this node's: one that ran out meanwhile (a send slower than CLAIM_MS) belongs to
   * whichever node claimed it next, and this one leaves it alone.
   */
  private async deliver(key: string, raw: string, delivery: Delivery): Promise<void> {
    const settle = async (ops: BatchOp[]) => {
      try {
        await this.o.store.batch(ops, { sync: true, expect: [{ key, value: raw }] });
      } catch (err) {
        if (!(err instanceof Conflict)) throw err;
      }
    };
    // A subscription made on another node a moment ago may not have reached this one yet.
    if (!this.subscriptions.has(delivery.subscription_id) && this.o.bus) await this.load();
    const sub = this.subscriptions.get(delivery.subscription_id);
    if (!sub) {
      await settle([{ type: 'del', key }]);
      return;
    }
    const body = JSON.stringify(delivery.event);
    const t = Math.floor(Date.now() / 1000);
    let problem: string | undefined;
    try {
      const secret = decrypt(this.o.dataKey, sub.secret_sealed);
      const res = await fetch(sub.url_sealed ? decrypt(this.o.dataKey, sub.url_sealed) : sub.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'writ-webhooks/1',
          'writ-event-id': delivery.event.id,
          'writ-event-type': delivery.event.type,
          'writ-signature': `t=${t},v1=${signature(secret, t, body)}`,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) problem = `HTTP ${res.status}`;
    } catch (err) {
      problem = (err as Error).message;
    }
    if (!problem) {
      this.stats.delivered++;
      await settle([{ type: 'del', key }]);
      return;
    }
    this.stats.failed_attempts++;
    this.stats.last_error = { at: new Date().toISOString(), url: sub.url, message: problem };
    const next: Delivery = { ...delivery, attempt: delivery.attempt + 1, last_error: problem };
    if (next.attempt >= MAX_ATTEMPTS) {
      this.stats.dead++;
      this.o.report(`webhook ${sub.id}: giving up on event ${delivery.event.id} after ${next.attempt} attempts (${problem})`, 'error');
      await settle([{ type: 'del', key }, put(K.dead(delivery.delivery_id), next)]);
      return;
    }
    const backoff = Math.min(MAX_BACKOFF_MS, this.o.retryBaseMs * 2 ** delivery.attempt);
    await settle([{ type: 'del', key }, put(K.queued(Date.now() + backoff, delivery.delivery_id), next)]);
  }
}

function view(sub: StoredSubscription): Subscription {
  const { secret_sealed: _sealed, url_sealed: _url, ...rest } = sub;
  return rest;
}
