import { put, type Store } from '../store/store.ts';
import type { Report } from '../report.ts';

/**
 * The nodes serving one database, each with the policy set it has loaded: every node keeps a
 * record of itself (`node/<id>`) up to date, and `/api/v1/status` lists the nodes seen lately and
 * warns when their policy sets differ (a node whose policies directory was not updated decides
 * differently from the others). One process alone lists itself.
 */
export interface NodeRecord {
  id: string;
  started_at: string;
  seen_at: string;
  policy_hash: string;
  url: string;
}

const HEARTBEAT_MS = 5_000;
/** A node not seen for this long is left out of the list (it stopped or died). */
const STALE_MS = 3 * HEARTBEAT_MS;
const RANGE = { gte: 'node/', lt: 'node/~' };

export class Nodes {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly store: Store,
    readonly id: string,
    private readonly about: () => { policy_hash: string; url: string },
    private readonly report: Report,
  ) {}

  private record(): NodeRecord {
    return { id: this.id, started_at: this.startedAt, seen_at: new Date().toISOString(), ...this.about() };
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch((err) => this.report(`node record: ${(err as Error).message}`, 'warn')), HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Written now too when the policy set changes, so the status shows it at once. */
  beat(): Promise<void> {
    return this.store.batch([put(`node/${this.id}`, this.record())]);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.store.batch([{ type: 'del', key: `node/${this.id}` }]).catch(() => undefined);
  }

  /** The nodes seen lately (this one always, as it is now), and whether their policy sets differ. */
  async list(): Promise<{ nodes: NodeRecord[]; policy_sets_differ: boolean }> {
    const now = Date.now();
    const nodes = new Map<string, NodeRecord>();
    try {
      for await (const [, raw] of this.store.iterate(RANGE)) {
        const node = JSON.parse(raw) as NodeRecord;
        if (now - Date.parse(node.seen_at) <= STALE_MS) nodes.set(node.id, node);
      }
    } catch {
      // storage down: this node still reports itself
    }
    nodes.set(this.id, this.record());
    const list = [...nodes.values()].sort((a, b) => (a.started_at < b.started_at ? -1 : 1));
    return { nodes: list, policy_sets_differ: new Set(list.map((n) => n.policy_hash)).size > 1 };
  }
}
