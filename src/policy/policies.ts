import fs from 'node:fs';
import { PolicyEngine, type WorkerStatus } from './engine.ts';
import { findOpa } from './opa.ts';
import { buildPolicySet, hashSources, readPolicySources, type PolicySet, type PolicySource } from './set.ts';
import { formatProblem, type PolicyDecision, type PolicyProblem, type PolicyRequest } from './types.ts';
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

  private constructor(
    readonly dir: string,
    private readonly engine: PolicyEngine,
    private active: PolicySet,
    private readonly onChange: (before: PolicySet, after: PolicySet) => Promise<void>,
    private readonly report: Report,
    private readonly opa: string | undefined,
    private readonly onEvaluated: (seconds: number, outcome: PolicyDecision['outcome']) => void,
  ) {
    this.status = PolicyStore.statusOf(active);
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
    return new PolicyStore(dir, engine, set, options.onChange ?? (async () => {}), report, opa, options.onEvaluated ?? (() => {}));
  }

  /** Evaluates on the engine's worker against exactly this set; failures and timeouts are `error`. */
  async evaluate(set: PolicySet, request: PolicyRequest): Promise<PolicyDecision> {
    const started = performance.now();
    const decision = await this.engine.evaluate(set.hash, request);
    try {
      this.onEvaluated((performance.now() - started) / 1000, decision.outcome);
    } catch {
      // an observer's failure is its own: the decision stands
    }
    return decision;
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
    this.watcher?.close();
    clearTimeout(this.timer);
    await this.engine.close();
  }
}

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
