import fs from 'node:fs';
import { PolicyEngine, type WorkerStatus } from './engine.ts';
import { findOpa } from './opa.ts';
import { WARM_UP_PROBE, buildPolicySet, hashSources, instantiate, readPolicySources, warmUp, type Evaluator, type PolicySet, type PolicySource } from './set.ts';
import { failure, formatProblem, type PolicyDecision, type PolicyProblem, type PolicyRequest } from './types.ts';
import type { Report } from '../report.ts';

export interface PolicyStatus {
  hash: string;
  files: string[];
  /** Sources present but not compiled (no OPA compiler): every request is denied meanwhile. */
  not_loaded: string[];
  loaded_at: string;
  last_error?: { at: string; problems: string[] };
  /** What the policy worker holds: after a restart or during a load it may not have the active set yet. */
  worker: WorkerStatus;
}

/**
 * Keeps the active set, reloads on file change, and reports (never applies) broken sets. A set is
 * compiled here (to report problems) and in the engine's worker, which evaluates; it becomes
 * active only once the worker has it.
 */
export class PolicyStore {
  private watcher: fs.FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> = Promise.resolve();
  private status: Omit<PolicyStatus, 'worker'>;
  /** The set evaluated on the event loop at rest (see `evaluate`), while it stays fast. */
  private inline: { hash: string; evaluator: Evaluator; slow: number } | undefined;

  private constructor(
    readonly dir: string,
    private readonly engine: PolicyEngine,
    private active: PolicySet,
    private readonly onChange: (before: PolicySet, after: PolicySet) => Promise<void>,
    private readonly report: Report,
    private readonly opa: string | undefined,
    private readonly onEvaluated: (seconds: number, outcome: PolicyDecision['outcome']) => void,
    private readonly timeoutMs: number,
    private readonly atRest: () => boolean,
  ) {
    this.status = PolicyStore.statusOf(active);
    this.prepareInline(active);
  }

  private static statusOf(set: PolicySet): Omit<PolicyStatus, 'worker'> {
    return { hash: set.hash, files: set.files, not_loaded: set.artifacts.unloaded, loaded_at: new Date().toISOString() };
  }

  /** Fails if the initial set does not compile: the server must not start on a broken set. */
  static async open(
    dir: string,
    options: {
      onChange?: (before: PolicySet, after: PolicySet) => Promise<void>;
      report?: Report;
      timeoutMs?: number;
      opa?: string | undefined;
      /**
       * Whether the server is otherwise idle (nothing waiting for the disk, say). Only then is a fast
       * Cedar set evaluated on the event loop; under load the worker does it, beside the event loop.
       */
      atRest?: () => boolean;
      /** Sees how long each evaluation took, from the request to the worker's answer (metrics). */
      onEvaluated?: (seconds: number, outcome: PolicyDecision['outcome']) => void;
    } = {},
  ): Promise<PolicyStore> {
    const report = options.report ?? (() => {});
    const opa = 'opa' in options ? options.opa : findOpa();
    const { set, problems, warnings } = await buildPolicySet(await readPolicySources(dir), { opa });
    if (!set) throw new PolicyLoadError(problems);
    for (const warning of warnings) report(warning, 'warn');
    const engine = new PolicyEngine(options.timeoutMs ?? 250);
    try {
      await engine.load(set.hash, set.artifacts);
    } catch (err) {
      await engine.close();
      throw err;
    }
    return new PolicyStore(dir, engine, set, options.onChange ?? (async () => {}), report, opa, options.onEvaluated ?? (() => {}), options.timeoutMs ?? 250, options.atRest ?? (() => true));
  }

  /**
   * Evaluates against exactly this set; failures and timeouts are `error`. Under load, and for any
   * set not known to be fast, on the engine's worker, which can be stopped at the time budget. At
   * rest (nothing waiting for the worker, and `atRest`) a fast Cedar set is evaluated here: handing
   * one evaluation to the worker costs a thread wake-up (1–3 ms measured on a 2-vCPU VM, against
   * 10–100 µs for the evaluation itself). Under load the thread is awake anyway, and evaluating there
   * leaves the event loop to the requests (measured: 340 against 620 µs of event loop per decision).
   * A set is fast when a warm evaluation here takes under INLINE_MS (see prepareInline); a few
   * evaluations here over DEMOTE_MS (or one over half the budget) send the set's later ones to the
   * worker for good, and one past the budget is a policy_timeout, as on the worker.
   */
  async evaluate(set: PolicySet, request: PolicyRequest): Promise<PolicyDecision> {
    const started = performance.now();
    const decision = this.inline?.hash === set.hash && !this.engine.busy && this.atRest() ? this.evaluateInline(this.inline.evaluator, request, started) : await this.engine.evaluate(set.hash, request);
    try {
      this.onEvaluated((performance.now() - started) / 1000, decision.outcome);
    } catch {
      // an observer's failure is its own: the decision stands
    }
    return decision;
  }

  private evaluateInline(evaluator: Evaluator, request: PolicyRequest, started: number): PolicyDecision {
    const decision = evaluator.evaluate(request);
    const ms = performance.now() - started;
    // A pause (a collection, code meeting a request of a new shape) lands in some evaluations: a
    // set moves after SLOW_LIMIT slow ones, or at once after one that took half the budget.
    if (ms <= Math.min(DEMOTE_MS, this.timeoutMs / 2)) return decision;
    if (ms <= this.timeoutMs / 2 && this.inline && ++this.inline.slow < SLOW_LIMIT) return decision;
    this.report(`policy set ${this.inline?.hash.slice(0, 12)} took ${ms.toFixed(1)} ms in one evaluation; it is evaluated on the policy worker from now on`, 'warn');
    this.inline = undefined;
    return ms > this.timeoutMs ? failure('policy_timeout', `policy evaluation exceeded its ${this.timeoutMs} ms budget`) : decision;
  }

  /**
   * Takes the active set on the event loop at rest if it is Cedar and fast (see `evaluate`): the worker's
   * warm-up, cold rounds included, finished within WARM_UP_LIMIT_MS, so the same warm-up here is
   * short too; then one warm evaluation here must take under INLINE_MS.
   */
  private prepareInline(set: PolicySet): void {
    this.inline = undefined;
    // Only Cedar: its evaluation has no loops and ends in time bounded by the policies and the
    // request. A Rego rule can iterate without bound over what a request brings (fast on the
    // warm-up, seconds on one input), and only the worker can be stopped mid-evaluation.
    if (set.artifacts.rego.length > 0 || set.artifacts.unloaded.length > 0) return;
    const warm = this.engine.status(set.hash).warm_up;
    if (!warm || warm.ms > WARM_UP_LIMIT_MS) return;
    try {
      const evaluator = instantiate(set.artifacts);
      const { rounds } = warmUp(evaluator);
      // The quickest of a few warm evaluations: a busy machine delays some, not what the set costs.
      let quickest = Infinity;
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        evaluator.evaluate(WARM_UP_PROBE);
        quickest = Math.min(quickest, performance.now() - started);
      }
      if (rounds < warm.rounds || quickest > INLINE_MS) return;
      this.inline = { hash: set.hash, evaluator, slow: 0 };
    } catch (err) {
      this.report(`policy set ${set.hash.slice(0, 12)} could not be prepared for evaluation at rest (${(err as Error).message}); the policy worker evaluates it`, 'warn');
    }
  }

  get current(): PolicySet {
    return this.active;
  }

  get state(): PolicyStatus {
    return { ...this.status, worker: this.engine.status(this.active.hash) };
  }

  watch(): void {
    if (this.watcher) return;
    try {
      this.watcher = fs.watch(this.dir, { persistent: false }, () => this.scheduleReload());
      this.watcher.on('error', () => undefined);
    } catch (err) {
      this.report(`policy directory ${this.dir} cannot be watched (${(err as Error).message}); changes need a restart`, 'warn');
    }
  }

  private scheduleReload(): void {
    clearTimeout(this.timer);
    // Editors write files in several steps; wait for the burst to settle.
    this.timer = setTimeout(() => void this.reload(), 150);
    this.timer.unref();
  }

  /** Re-reads the directory; a set that fails to compile is reported and the last good one keeps serving. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(async () => {
      let sources;
      try {
        sources = await readSettled(this.dir);
      } catch (err) {
        this.fail([`${this.dir}: ${(err as Error).message}`]);
        return;
      }
      if (!sources) return void this.report(`policy directory ${this.dir} is still changing; waiting for the next change to settle`, 'info');
      if (hashSources(sources) === this.active.hash) return;
      let built;
      try {
        built = await buildPolicySet(sources, { opa: this.opa });
      } catch (err) {
        this.fail([(err as Error).message]);
        return;
      }
      const { set, problems, warnings } = built;
      if (!set) {
        this.fail(problems.map(formatProblem));
        return;
      }
      for (const warning of warnings) this.report(warning, 'warn');
      try {
        await this.engine.load(set.hash, set.artifacts);
      } catch (err) {
        this.fail([(err as Error).message]);
        return;
      }
      const before = this.active;
      this.prepareInline(set);
      this.active = set;
      this.status = PolicyStore.statusOf(set);
      this.report(`policies reloaded: ${set.files.join(', ') || '(none)'} (set ${set.hash.slice(0, 12)})`, 'info');
      await this.onChange(before, set).catch((err) => this.report(`could not log the policy change: ${(err as Error).message}`, 'error'));
    });
    return this.reloading;
  }

  private fail(problems: string[]): void {
    this.status = { ...this.status, last_error: { at: new Date().toISOString(), problems } };
    this.report(`policy change refused; the last good set (${this.active.hash.slice(0, 12)}) keeps serving:\n  ${problems.join('\n  ')}`, 'warn');
  }

  async close(): Promise<void> {
    // From here on every evaluation goes to the closed engine, which answers each with an error.
    this.inline = undefined;
    this.watcher?.close();
    clearTimeout(this.timer);
    await this.engine.close();
  }
}

/** An evaluation on the event loop at rest must take no longer than this (ms). */
const INLINE_MS = 2;
/** Evaluations on the event loop slower than this (ms) are slow: SLOW_LIMIT of them move the set to the worker. */
const DEMOTE_MS = 25;
const SLOW_LIMIT = 3;
/** A set whose warm-up on the worker took longer than this is never evaluated on the event loop (ms). */
const WARM_UP_LIMIT_MS = 500;

/** How long the directory must read the same before a change is taken, and how often to look. */
const SETTLE_MS = 100;
const SETTLE_TRIES = 20;

/**
 * The directory as it is once it stops changing: a file being written is seen in pieces (empty,
 * then half), and a half-written file that happens to parse must not become the active set. Only
 * two reads SETTLE_MS apart that agree are taken; undefined when it kept changing.
 */
async function readSettled(dir: string): Promise<PolicySource[] | undefined> {
  let sources = await readPolicySources(dir);
  for (let tries = 0; tries < SETTLE_TRIES; tries++) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS).unref());
    const again = await readPolicySources(dir);
    if (hashSources(again) === hashSources(sources)) return again;
    sources = again;
  }
  return undefined;
}

export class PolicyLoadError extends Error {
  constructor(readonly problems: PolicyProblem[]) {
    super(`policies failed to load:\n  ${problems.map(formatProblem).join('\n  ')}`);
    this.name = 'PolicyLoadError';
  }
}
