import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { safeEqual, sha256 } from '../crypto/encoding.ts';
import type { CommittedEntry } from '../log/log.ts';
import { TIERS, type PolicyDecision } from '../policy/types.ts';
import type { StorageState } from '../store/guarded.ts';
import type { Range } from '../store/store.ts';
import type { Writ } from '../writ.ts';

/**
 * One Writ's metrics, in a registry of its own (several servers share a test process). Counters
 * and histograms are fed by observers the log, the policy store and the HTTP server call; gauges
 * are read from the running Writ when Prometheus scrapes, so nothing is kept up to date between
 * scrapes. The process's own metrics (CPU, memory, event loop, GC) are collected once per process.
 */
const OUTCOMES = ['allow', 'deny', 'escalate', 'error'] as const;
const STORAGE_STATES: readonly StorageState[] = ['ok', 'unsafe', 'recovering', 'damaged'];

/**
 * Store ranges counted at scrape time. They are the open-approvals index of
 * src/domain/permissions.ts and the webhook delivery queue of src/domain/webhooks.ts; the metrics
 * tests fail if either moves.
 */
const OPEN_APPROVALS: Range = { gte: 'appr-open/', lt: 'appr-open/~' };
const WEBHOOK_QUEUE: Range = { gte: 'hookq/', lt: 'hookq/~' };
/** A scrape counts at most this many keys per range: past it, the gauge says "at least this". */
export const COUNT_BOUND = 10_000;

let processRegistry: Registry | undefined;
/** The process has one event loop and one heap, so their monitors are started once, not per server. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export type ScrapeSource = Pick<Writ, 'log' | 'store' | 'telegram'>;

export class Metrics {
  private readonly registry = new Registry();
  /** `text/plain; version=0.0.4; charset=utf-8`, Prometheus's text format. */
  readonly contentType = this.registry.contentType;
  private readonly tokenDigest: Buffer | undefined;
  private readonly decisions: Counter<'outcome' | 'tier'>;
  private readonly requests: Histogram<'route' | 'method' | 'status'>;
  private readonly batchSize: Histogram;
  private readonly fsync: Histogram;
  private readonly policyEvaluation: Histogram<'outcome'>;
  private source: ScrapeSource | undefined;

  constructor(options: { token?: string | undefined } = {}) {
    // Only the token's hash is kept, and a presented token is hashed before the comparison, so
    // the comparison takes the same time whatever is presented.
    this.tokenDigest = options.token ? sha256(options.token) : undefined;
    const registers = [this.registry];
    this.decisions = new Counter({
      name: 'writ_decisions_total',
      help: 'Decisions on permission requests, counted once their log entry is durable; outcome error is a deny that could not be decided',
      labelNames: ['outcome', 'tier'],
      registers,
    });
    for (const outcome of OUTCOMES) for (const tier of TIERS) this.decisions.inc({ outcome, tier }, 0);
    this.requests = new Histogram({
      name: 'writ_http_request_duration_seconds',
      help: 'HTTP requests, from arrival until the answer was sent; route is the path template',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'writ_log_commit_batch_size',
      help: 'Log entries per group-committed batch',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384],
      registers,
    });
    this.fsync = new Histogram({
      name: 'writ_log_fsync_seconds',
      help: 'Time of each synced batch write of the log (on PostgreSQL: the transaction that holds the sequencing lock)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.policyEvaluation = new Histogram({
      name: 'writ_policy_evaluation_seconds',
      help: 'Policy evaluations, from the request to the policy worker until its answer',
      labelNames: ['outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    const read = <T>(from: (source: ScrapeSource) => T, otherwise: T): T => (this.source ? from(this.source) : otherwise);
    new Counter({
      name: 'writ_log_batches_replaced_total',
      help: 'Log batches placed again before they were written, because another node sharing the database appended first (or a condition of one of their entries no longer held)',
      registers,
      collect() {
        this.reset();
        this.inc(read((s) => s.log.stats.replaced, 0));
      },
    });
    new Gauge({
      name: 'writ_log_size',
      help: 'Durable entries in the log',
      registers,
      collect() {
        this.set(read((s) => s.log.size, 0));
      },
    });
    new Gauge({
      name: 'writ_storage_healthy',
      help: '1 while storage accepts writes, 0 while it refuses them (after a failed write, or damaged)',
      registers,
      collect() {
        this.set(read((s) => (s.store.health.state === 'ok' ? 1 : 0), 0));
      },
    });
    new Gauge({
      name: 'writ_storage_state',
      help: 'The storage state: 1 for the current one',
      labelNames: ['state'],
      registers,
      collect() {
        const current = read((s) => s.store.health.state, undefined);
        for (const state of STORAGE_STATES) this.set({ state }, state === current ? 1 : 0);
      },
    });
    new Gauge({
      name: 'writ_approvals_pending',
      help: `Open approvals (pending, or critical ones in their delay), counted up to ${COUNT_BOUND}`,
      registers,
      collect: async function (this: Gauge) {
        await countInto(this, read((s) => s.store, undefined), OPEN_APPROVALS);
      },
    });
    new Gauge({
      name: 'writ_webhook_queue_depth',
      help: `Webhook deliveries waiting to be sent or retried, counted up to ${COUNT_BOUND}`,
      registers,
      collect: async function (this: Gauge) {
        await countInto(this, read((s) => s.store, undefined), WEBHOOK_QUEUE);
      },
    });
    new Gauge({
      name: 'writ_telegram_outbox_depth',
      help: 'Telegram calls waiting in the outbox (0 without the bot)',
      registers,
      collect() {
        this.set(read((s) => s.telegram?.health.queued ?? 0, 0));
      },
    });
  }

  /** Where the gauges read from, once the Writ they describe is wired. */
  watch(source: ScrapeSource): void {
    this.source = source;
  }

  /** The log's observer: each durable batch. */
  committed = (entries: readonly CommittedEntry[], seconds: number): void => {
    this.batchSize.observe(entries.length);
    this.fsync.observe(seconds);
    for (const { type, data } of entries) {
      if (type !== 'permission.decided') continue;
      const outcome = data.failure ? 'error' : String(data.decision);
      this.decisions.inc({ outcome, tier: String(data.tier) });
    }
  };

  /** The policy store's observer: each evaluation. */
  evaluated = (seconds: number, outcome: PolicyDecision['outcome']): void => {
    this.policyEvaluation.observe({ outcome }, seconds);
  };

  /** The HTTP server's observer: each answer, once sent. */
  answered(answer: { route: string; method: string; status: number; seconds: number }): void {
    this.requests.observe({ route: answer.route, method: answer.method, status: String(answer.status) }, answer.seconds);
  }

  /** Whether an Authorization header carries WRIT_METRICS_TOKEN (never, when it is not set). */
  acceptsScrape(authorization: string | undefined): boolean {
    const presented = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
    return this.tokenDigest !== undefined && presented !== undefined && safeEqual(sha256(presented), this.tokenDigest);
  }

  /** Everything, in the Prometheus text format: this Writ's metrics, then the process's. */
  async exposition(): Promise<string> {
    const [own, process] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return `${own.trimEnd()}\n${process}`;
  }
}

/** Sets the gauge to the number of keys in the range (up to the bound); a store that cannot be read now leaves the last count. */
async function countInto(gauge: Gauge, store: ScrapeSource['store'] | undefined, range: Range): Promise<void> {
  if (!store) return gauge.set(0);
  try {
    let count = 0;
    for await (const _ of store.iterate({ ...range, limit: COUNT_BOUND })) count++;
    gauge.set(count);
  } catch {
    // writ_storage_healthy says why; a scrape still answers.
  }
}
