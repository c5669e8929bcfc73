import { Worker } from 'node:worker_threads';
import type { PolicyArtifacts } from './set.ts';
import { failure, type PolicyDecision, type PolicyRequest } from './types.ts';

/**
 * Policy evaluation on a worker thread: it takes the policy engines' CPU off the event loop (the
 * other core does it), and a run past its time budget can be stopped — the worker is terminated
 * and restarted, and everything it had not answered fails closed.
 *
 * Ordering: loads and evaluations share one queue in the worker. Evaluations are held here while
 * a load is in flight and sent when it is done, so a slow compile never eats into an
 * evaluation's budget; the budget starts when the evaluation is sent. Evaluations requested in
 * the same tick travel in one message.
 */
export type ToWorker =
  | { type: 'load'; version: string; artifacts: PolicyArtifacts }
  | { type: 'eval'; jobs: Array<{ id: number; version: string; request: PolicyRequest }> };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'loaded'; version: string; error?: string }
  | { type: 'results'; results: Array<{ id: number; outcome: PolicyDecision }> };

interface Pending {
  resolve: (outcome: PolicyDecision) => void;
  timer?: NodeJS.Timeout;
}

interface Load {
  artifacts: PolicyArtifacts;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A load (compile + instantiate) that takes longer than this is treated as stuck. */
const LOAD_TIMEOUT_MS = 60_000;
const KEEP_VERSIONS = 4;

export class PolicyEngine {
  private worker!: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private queue: Array<{ id: number; version: string; request: PolicyRequest }> = [];
  /** Loads sent and not yet acknowledged (a caller's, or a restarted worker's reloads). */
  private readonly loading = new Map<string, Load | undefined>();
  private loadTimer: NodeJS.Timeout | undefined;
  /** What a restarted worker must load again: the acknowledged sets still in use, oldest first. */
  private readonly loaded = new Map<string, PolicyArtifacts>();
  private ready = false;
  private closed = false;

  constructor(private readonly timeoutMs: number) {
    this.spawn();
  }

  private spawn(): void {
    this.ready = false;
    // Compiled (dist/*.js) the worker runs as it is; from TypeScript sources (tests) it boots tsx first.
    const compiled = import.meta.url.endsWith('.js');
    const entry = new URL(compiled ? './engine-worker.js' : './engine-worker.ts', import.meta.url);
    this.worker = compiled
      ? new Worker(entry)
      : new Worker(new URL('./worker-boot.js', import.meta.url), { workerData: { entry: entry.href } });
    this.worker.unref();
    this.worker.on('message', (message: FromWorker) => this.receive(message));
    this.worker.on('error', (err) => this.restart(`policy worker failed: ${err.message}`));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.restart(`policy worker exited with code ${code}`);
    });
    for (const [version, artifacts] of this.loaded) this.sendLoad(version, artifacts, undefined);
  }

  /** Compiles a set in the worker; resolves once requests may be pinned to `version`. */
  load(version: string, artifacts: PolicyArtifacts): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the policy engine is shut down'));
    return new Promise((resolve, reject) => this.sendLoad(version, artifacts, { artifacts, resolve, reject }));
  }

  private sendLoad(version: string, artifacts: PolicyArtifacts, waiter: Load | undefined): void {
    this.loading.set(version, waiter);
    this.loadTimer ??= setTimeout(() => this.restart(`loading policies took longer than ${LOAD_TIMEOUT_MS / 1000} s`), LOAD_TIMEOUT_MS);
    this.worker.postMessage({ type: 'load', version, artifacts } satisfies ToWorker);
  }

  /** Never rejects: a failure, a crash or a timeout is an `error` outcome, which denies. */
  evaluate(version: string, request: PolicyRequest): Promise<PolicyDecision> {
    if (this.closed) return Promise.resolve(failure('policy_error', 'the policy engine is shut down'));
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { resolve });
      if (this.queue.length === 0) queueMicrotask(() => this.flush());
      this.queue.push({ id, version, request });
    });
  }

  /** Sends the held evaluations in one message once the worker is up and has no load in flight. */
  private flush(): void {
    if (!this.ready || this.loading.size > 0 || this.queue.length === 0) return;
    const jobs = this.queue;
    this.queue = [];
    for (const { id } of jobs) {
      const pending = this.pending.get(id);
      if (pending) pending.timer = setTimeout(() => this.restart(`policy evaluation exceeded its ${this.timeoutMs} ms budget`, id), this.timeoutMs);
    }
    this.worker.postMessage({ type: 'eval', jobs } satisfies ToWorker);
  }

  private receive(message: FromWorker): void {
    if (message.type === 'ready') {
      this.ready = true;
    } else if (message.type === 'loaded') {
      const waiter = this.loading.get(message.version);
      this.loading.delete(message.version);
      if (this.loading.size === 0) {
        clearTimeout(this.loadTimer);
        this.loadTimer = undefined;
      }
      if (message.error) {
        waiter?.reject(new Error(message.error));
      } else {
        this.loaded.delete(message.version);
        this.loaded.set(message.version, waiter?.artifacts ?? this.loaded.get(message.version)!);
        while (this.loaded.size > KEEP_VERSIONS) this.loaded.delete(this.loaded.keys().next().value!);
        waiter?.resolve();
      }
    } else {
      for (const { id, outcome } of message.results) this.settle(id, outcome);
    }
    this.flush();
  }

  private settle(id: number, outcome: PolicyDecision): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    pending.resolve(outcome);
  }

  /** Fails every evaluation the worker had and every load it was doing, then starts a fresh one. */
  private restart(reason: string, culprit?: number): void {
    const worker = this.worker;
    // Evaluations still held here were never sent: the new worker will answer them.
    const held = new Set(this.queue.map((job) => job.id));
    for (const id of [...this.pending.keys()]) {
      if (held.has(id) && !this.closed) continue;
      this.settle(id, failure(this.closed ? 'policy_error' : 'policy_timeout', id === culprit || culprit === undefined ? reason : 'policy worker restarted'));
    }
    for (const [version, waiter] of this.loading) waiter?.reject(new Error(`${reason} while loading ${version}`));
    this.loading.clear();
    clearTimeout(this.loadTimer);
    this.loadTimer = undefined;
    if (this.closed) {
      this.queue = [];
      return;
    }
    worker.removeAllListeners();
    void worker.terminate();
    this.spawn();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.restart('the policy engine is shut down');
    await this.worker.terminate();
  }
}
