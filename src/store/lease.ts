import { Conflict, type Store } from './store.ts';
import type { Report } from '../report.ts';

/**
 * A lease on work that one node at a time must do (the Telegram bot's polling and cards): held by
 * the node that wrote it last, renewed well inside its term, and taken over by another node once
 * its holder has let it run out (stopped, died, or lost the database). Taking and renewing are
 * conditional writes, so two nodes never both believe they hold it; a holder that cannot renew
 * in time lets go a third of a term before its term ends, so its successor (which waits for the
 * end) never overlaps it while the nodes' clocks agree to within that (NTP does far better).
 */
export interface LeaseOptions {
  /** How long a term lasts without renewal; another node takes over at most this long after a holder dies. */
  ttlMs?: number;
  onAcquired: () => void | Promise<void>;
  onLost: () => void | Promise<void>;
  report: Report;
}

interface Held {
  node: string;
  until: number;
}

const TTL_MS = 6_000;

export class Lease {
  private raw: string | undefined;
  private until = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Ends this node's belief that it holds the lease when its term runs out unrenewed. */
  private expiry: NodeJS.Timeout | undefined;
  private stopped = false;
  private turn: Promise<void> = Promise.resolve();
  private readonly ttlMs: number;

  constructor(
    private readonly store: Store,
    private readonly name: string,
    private readonly node: string,
    private readonly o: LeaseOptions,
  ) {
    this.ttlMs = o.ttlMs ?? TTL_MS;
  }

  private get key(): string {
    return `lease/${this.name}`;
  }

  /** Held, and not within the last third of its term (where the holder has already let go). */
  get held(): boolean {
    return this.raw !== undefined && Date.now() < this.until - this.ttlMs / 3;
  }

  start(): Promise<void> {
    return this.tick();
  }

  /** One attempt, then the next one a third of a term later. */
  private tick(): Promise<void> {
    this.turn = this.turn.then(() => this.attempt()).catch((err) => this.o.report(`lease ${this.name}: ${(err as Error).message}`, 'warn'));
    return this.turn.finally(() => {
      if (this.stopped) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.tick(), this.ttlMs / 3);
      this.timer.unref();
    });
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    const current = await this.store.get(this.key).catch(() => undefined);
    const holder = current === undefined ? undefined : (JSON.parse(current) as Held);
    const mine = this.raw !== undefined && current === this.raw;
    if (!mine && this.raw !== undefined) await this.lose();
    // Another node holds a term that has not run out.
    if (!mine && holder && holder.until > Date.now()) return;
    const until = Date.now() + this.ttlMs;
    const next = JSON.stringify({ node: this.node, until } satisfies Held);
    try {
      await this.store.batch([{ type: 'put', key: this.key, value: next }], { sync: true, expect: [{ key: this.key, value: current }] });
    } catch (err) {
      if (this.raw !== undefined && !this.held) await this.lose();
      if (err instanceof Conflict) return;
      throw err;
    }
    const acquired = this.raw === undefined;
    this.raw = next;
    this.until = until;
    // A write that came back too late (a slow database) is no term to act on: let go now.
    if (!this.held) return this.lose();
    // Unrenewed, the holder lets go a third of a term before the term's end.
    clearTimeout(this.expiry);
    this.expiry = setTimeout(() => void this.lose(), until - this.ttlMs / 3 - Date.now());
    this.expiry.unref();
    if (acquired) await this.o.onAcquired();
  }

  private async lose(): Promise<void> {
    if (this.raw === undefined) return;
    this.raw = undefined;
    this.until = 0;
    clearTimeout(this.expiry);
    await this.o.onLost();
  }

  /** Stops renewing; a lease held is given back at once, so another node need not wait out its term. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.turn;
    const raw = this.raw;
    await this.lose();
    if (raw !== undefined) await this.store.batch([{ type: 'del', key: this.key }], { sync: true, expect: [{ key: this.key, value: raw }] }).catch(() => undefined);
  }
}
