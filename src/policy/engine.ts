import { Worker } from 'node:worker_threads';
import type { PolicyOutcome, PolicyRequest } from './types.ts';

/**
 * Policy evaluation on a worker thread: it takes the policy engines' CPU off the event loop (the
 * other core does it), and a run past its time budget can be stopped — the worker is terminated
 * and restarted, and everything it had not answered fails closed. Evaluations requested in the
 * same tick travel in one message.
 */
export type ToWorker =
  | { type: 'load'; version: string; sources: Array<{ file: string; text: string }> }
  | { type: 'eval'; jobs: Array<{ id: number; version: string; request: PolicyRequest }> };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'loaded'; version: string; error?: string }
  | { type: 'results'; results: Array<{ id: number; outcome: PolicyOutcome }> };

interface Pending {
  resolve: (outcome: PolicyOutcome) => void;
  timer?: NodeJS.Timeout;
}

export class PolicyEngine {
  private worker!: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private queue: Array<{ id: number; version: string; request: PolicyRequest }> = [];
  private loads = new Map<string, { sources: Array<{ file: string; text: string }>; resolve: () => void; reject: (err: Error) => void }>();
  /** What a restarted worker must load again: the acknowledged sets still in use, oldest first. */
  private readonly loaded = new Map<string, Array<{ file: string; text: string }>>();
  private closed = false;
  /** Until the worker has booted, jobs wait here and their budget has not started. */
  private ready = false;

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
    for (const [version, sources] of this.loaded) this.post({ type: 'load', version, sources });
  }

  /** Compiles a set in the worker; resolves once requests may be pinned to `version`. */
  load(version: string, sources: Array<{ file: string; text: string }>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.loads.set(version, { sources, resolve, reject });
      this.post({ type: 'load', version, sources });
    });
  }

  /** Never rejects: a failure, a crash or a timeout is an `error` outcome, which denies. */
  evaluate(version: string, request: PolicyRequest): Promise<PolicyOutcome> {
    if (this.closed) return Promise.resolve({ outcome: 'error', errors: ['the policy engine is shut down'] });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { resolve });
      if (this.queue.length === 0) queueMicrotask(() => this.flush());
      this.queue.push({ id, version, request });
    });
  }

  /** Sends the queued jobs in one message; each job's budget starts now. */
  private flush(): void {
    if (!this.ready || this.queue.length === 0) return;
    const jobs = this.queue;
    this.queue = [];
    for (const { id } of jobs) {
      const pending = this.pending.get(id);
      if (pending) pending.timer = setTimeout(() => this.restart(`policy evaluation exceeded its ${this.timeoutMs} ms budget`, id), this.timeoutMs);
    }
    this.post({ type: 'eval', jobs });
  }

  private post(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  private receive(message: FromWorker): void {
    if (message.type === 'ready') {
      this.ready = true;
      this.flush();
      return;
    }
    if (message.type === 'loaded') {
      const waiter = this.loads.get(message.version);
      this.loads.delete(message.version);
      if (message.error) {
        waiter?.reject(new Error(message.error));
      } else if (waiter) {
        this.loaded.delete(message.version);
        this.loaded.set(message.version, waiter.sources);
        while (this.loaded.size > 4) this.loaded.delete(this.loaded.keys().next().value!);
        waiter.resolve();
      }
      return;
    }
    for (const { id, outcome } of message.results) this.settle(id, outcome);
  }

  private settle(id: number, outcome: PolicyOutcome): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(id);
    pending.resolve(outcome);
  }

  /** Fails every unanswered evaluation closed and starts a fresh worker. */
  private restart(reason: string, culprit?: number): void {
    const worker = this.worker;
    // Jobs already sent may never be answered; jobs still queued go to the new worker.
    const queued = new Set(this.queue.map((job) => job.id));
    for (const id of [...this.pending.keys()]) {
      if (queued.has(id) && !this.closed) continue;
      this.settle(id, { outcome: 'error', errors: [id === culprit || culprit === undefined ? reason : 'policy worker restarted'] });
    }
    if (this.closed) this.queue = [];
    for (const [version, waiter] of this.loads) waiter.reject(new Error(`${reason} while loading ${version}`));
    this.loads.clear();
    if (this.closed) return;
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
