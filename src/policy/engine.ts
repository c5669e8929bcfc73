import type { Worker } from 'node:worker_threads';
import { DECISION_THREAD_LIMITS, startWorker } from '../workers.ts';
import type { PolicyArtifacts } from './set.ts';
import { failure, type PolicyDecision, type PolicyRequest } from './types.ts';

/**
 * Policy evaluation on a worker thread: it takes the policy engines' CPU off the event loop (the
 * other core does it), and a run past its time budget can be stopped — the worker is terminated
 * and restarted, and everything it had not answered fails closed. A restarted worker loads every
 * set the last one held or was loading, every time.
 *
 * Ordering: loads and evaluations share one queue in the worker. The worker answers a load only
 * once it has warmed the set up (see engine-worker.ts). Evaluations are held here while a load is
 * in flight and sent when it is done, so neither a slow compile nor a cold engine eats into an
 * evaluation's budget; the budget starts when the evaluation is sent. Evaluations requested in
 * the same tick travel in one message.
 */
export type ToWorker =
  | { type: 'load'; version: string; artifacts: PolicyArtifacts }
  | { type: 'eval'; jobs: Array<{ id: number; version: string; request: PolicyRequest }> };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'loaded'; version: string; error?: string; holds: HeldSet[] }
  | { type: 'results'; results: Array<{ id: number; outcome: PolicyDecision }> };

/** The synthetic evaluations a worker ran on a set after loading it, before it served. */
export interface WarmUp {
  rounds: number;
  ms: number;
}

export interface HeldSet {
  version: string;
  warmUp: WarmUp;
}

/** What the worker really holds, as GET /api/v1/policies and /api/v1/status report it. Plain JSON. */
export interface WorkerStatus {
  /** The active set is loaded and warmed up in the worker. */
  ready: boolean;
  /** Hashes of the sets the worker holds, oldest first. */
  loaded: string[];
  restarts: number;
  last_restart?: { at: string; reason: string };
  /** The active set's warm-up in this worker. */
  warm_up?: WarmUp;
}

interface Pending {
  resolve: (outcome: PolicyDecision) => void;
  timer?: NodeJS.Timeout;
}

interface Load {
  artifacts: PolicyArtifacts;
  /** The caller of `load`; none for a restarted worker's reloads. */
  waiter?: { resolve: () => void; reject: (err: Error) => void };
}

/** A load (compile, instantiate, warm up) that takes longer than this is treated as stuck. */
const LOAD_TIMEOUT_MS = 60_000;
const KEEP_VERSIONS = 4;

export class PolicyEngine {
  private worker!: Worker;
  private booted = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private queue: Array<{ id: number; version: string; request: PolicyRequest }> = [];
  /** Loads sent to this worker and not yet answered. */
  private readonly loading = new Map<string, Load>();
  private loadTimer: NodeJS.Timeout | undefined;
  /** The acknowledged sets still in use, oldest first: what every new worker must load again. */
  private readonly wanted = new Map<string, PolicyArtifacts>();
  /** What this worker last said it holds. */
  private holds: HeldSet[] = [];
  private restarts = 0;
  private lastRestart: { at: string; reason: string } | undefined;
  private closed = false;

  constructor(private readonly timeoutMs: number) {
    this.spawn();
  }

  private spawn(): void {
    this.booted = false;
    this.holds = [];
    this.worker = startWorker('engine-worker', import.meta.url, DECISION_THREAD_LIMITS);
    this.worker.on('message', (message: FromWorker) => this.receive(message));
    this.worker.on('error', (err) => this.restart(`policy worker failed: ${err.message}`));
    this.worker.on('exit', (code) => this.restart(`policy worker exited with code ${code}`));
    // After the listeners: adding a 'message' listener refs the worker again.
    this.worker.unref();
    const unfinished = new Map(this.loading);
    this.loading.clear();
    for (const [version, artifacts] of this.wanted) if (!unfinished.has(version)) this.sendLoad(version, { artifacts });
    for (const [version, load] of unfinished) this.sendLoad(version, load);
  }

  /** Compiles and warms up a set in the worker; resolves once requests may be pinned to `version`. */
  load(version: string, artifacts: PolicyArtifacts): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the policy engine is shut down'));
    return new Promise((resolve, reject) => this.sendLoad(version, { artifacts, waiter: { resolve, reject } }));
  }

  private sendLoad(version: string, load: Load): void {
    this.loading.set(version, load);
    this.loadTimer ??= setTimeout(() => this.restart(`loading policies took longer than ${LOAD_TIMEOUT_MS / 1000} s`, { stuckLoad: true }), LOAD_TIMEOUT_MS);
    this.worker.postMessage({ type: 'load', version, artifacts: load.artifacts } satisfies ToWorker);
  }

  /** Never rejects: a failure, a crash or a timeout is an `error` outcome, which denies. */
  evaluate(version: string, request: PolicyRequest): Promise<PolicyDecision> {
    if (this.closed) return Promise.resolve(failure('policy_error', 'the policy engine is shut down'));
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { resolve });
      // Sent at the end of this tick: the worker starts on it while the next requests are read
      // (waiting for the end of the event loop's turn, or for an answer, measured slower under load).
      if (this.queue.length === 0) queueMicrotask(() => this.flush());
      this.queue.push({ id, version, request });
    });
  }

  /** Whether anything is waiting for the worker (sent or held). */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  status(version: string): WorkerStatus {
    const active = this.holds.find((held) => held.version === version);
    return {
      ready: this.booted && active !== undefined,
      loaded: this.holds.map((held) => held.version),
      restarts: this.restarts,
      ...(this.lastRestart ? { last_restart: this.lastRestart } : {}),
      ...(active ? { warm_up: active.warmUp } : {}),
    };
  }

  /** Sends the held evaluations in one message once the worker is up and has no load in flight. */
  private flush(): void {
    if (!this.booted || this.loading.size > 0 || this.queue.length === 0) return;
    const jobs = this.queue;
    this.queue = [];
    for (const { id } of jobs) {
      const pending = this.pending.get(id);
      if (pending) pending.timer = setTimeout(() => this.restart(`policy evaluation exceeded its ${this.timeoutMs} ms budget`, { culprit: id }), this.timeoutMs);
    }
    this.worker.postMessage({ type: 'eval', jobs } satisfies ToWorker);
  }

  private receive(message: FromWorker): void {
    if (message.type === 'ready') this.booted = true;
    else if (message.type === 'loaded') this.loaded(message);
    else for (const { id, outcome } of message.results) this.settle(id, outcome);
    this.flush();
  }

  private loaded(message: FromWorker & { type: 'loaded' }): void {
    const load = this.loading.get(message.version);
    this.loading.delete(message.version);
    if (this.loading.size === 0) {
      clearTimeout(this.loadTimer);
      this.loadTimer = undefined;
    }
    this.holds = message.holds;
    if (!load) return;
    if (message.error) return load.waiter?.reject(new Error(message.error));
    this.wanted.delete(message.version);
    this.wanted.set(message.version, load.artifacts);
    while (this.wanted.size > KEEP_VERSIONS) this.wanted.delete(this.wanted.keys().next().value!);
    load.waiter?.resolve();
  }

  private settle(id: number, outcome: PolicyDecision): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    pending.resolve(outcome);
  }

  /**
   * Fails every evaluation the worker had, then starts a fresh one that loads the same sets.
   * Loads in flight carry over, except after a stuck load: a caller's new set would stick again,
   * so it is refused, and the evaluations held meanwhile have waited long enough — they fail too.
   */
  private restart(reason: string, cause: { culprit?: number; stuckLoad?: boolean } = {}): void {
    if (this.closed) return;
    this.restarts++;
    this.lastRestart = { at: new Date().toISOString(), reason };
    // Evaluations still held here were never sent: the new worker will answer them.
    const held = new Set(cause.stuckLoad ? [] : this.queue.map((job) => job.id));
    if (cause.stuckLoad) this.queue = [];
    for (const id of [...this.pending.keys()]) {
      if (!held.has(id)) this.settle(id, failure('policy_timeout', cause.culprit === undefined || id === cause.culprit ? reason : 'policy worker restarted'));
    }
    clearTimeout(this.loadTimer);
    this.loadTimer = undefined;
    if (cause.stuckLoad) {
      for (const [version, load] of this.loading) load.waiter?.reject(new Error(`${reason} while loading ${version}`));
      this.loading.clear();
    }
    this.worker.removeAllListeners();
    void this.worker.terminate();
    this.spawn();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.pending.keys()]) this.settle(id, failure('policy_error', 'the policy engine is shut down'));
    this.queue = [];
    for (const [version, load] of this.loading) load.waiter?.reject(new Error(`the policy engine is shut down while loading ${version}`));
    this.loading.clear();
    clearTimeout(this.loadTimer);
    await this.worker.terminate();
  }
}
