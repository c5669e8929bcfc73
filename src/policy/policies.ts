import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { sha256 } from '../crypto/encoding.ts';
import { compileCedar, evaluateCedar, type CedarSet } from './cedar.ts';
import { PolicyEngine } from './engine.ts';
import { formatProblem, type PolicyOutcome, type PolicyProblem, type PolicyRequest } from './types.ts';

/**
 * The active policy set: every top-level `*.cedar` file of the policies directory plus an optional
 * `schema.cedarschema`. Sets are immutable once compiled; a reload swaps the whole object, so an
 * evaluation that started on the old set finishes on it and no request ever sees half a set.
 */
export interface PolicySet {
  /** SHA-256 over the sorted (file name, content) pairs, standard base64. */
  hash: string;
  files: string[];
  cedar: CedarSet | undefined;
}

export interface Decision {
  outcome: PolicyOutcome;
  hash: string;
}

const SCHEMA_FILE = 'schema.cedarschema';

export async function readPolicySources(dir: string): Promise<Array<{ file: string; text: string }>> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const wanted = names.filter((n) => n.endsWith('.cedar') || n === SCHEMA_FILE).sort();
  return Promise.all(wanted.map(async (file) => ({ file, text: await fsp.readFile(path.join(dir, file), 'utf8') })));
}

export function hashSources(sources: Array<{ file: string; text: string }>): string {
  return sha256(JSON.stringify(sources.map((s) => [s.file, s.text]))).toString('base64');
}

export function compilePolicySet(sources: Array<{ file: string; text: string }>): { set?: PolicySet; problems: PolicyProblem[] } {
  const schema = sources.find((s) => s.file === SCHEMA_FILE);
  const cedarSources = sources.filter((s) => s.file.endsWith('.cedar'));
  const compiled = cedarSources.length > 0 ? compileCedar(cedarSources, schema) : { set: undefined, problems: [] };
  if (compiled.problems.length > 0) return { problems: compiled.problems };
  return { set: { hash: hashSources(sources), files: sources.map((s) => s.file), cedar: compiled.set }, problems: [] };
}

/** With no policy at all nothing is permitted: default deny. */
export function evaluate(set: PolicySet, request: PolicyRequest): PolicyOutcome {
  if (!set.cedar) return { outcome: 'deny', determining: [], reasons: ['no policies are loaded'] };
  try {
    return evaluateCedar(set.cedar, request);
  } catch (err) {
    return { outcome: 'error', errors: [`policy engine failed: ${(err as Error).message}`] };
  }
}

export interface PolicyStatus {
  hash: string;
  files: string[];
  loaded_at: string;
  last_error?: { at: string; problems: string[] };
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
  private status: PolicyStatus;

  private constructor(
    readonly dir: string,
    private readonly engine: PolicyEngine,
    private active: PolicySet,
    private readonly onChange: (before: PolicySet, after: PolicySet) => Promise<void>,
    private readonly report: (message: string) => void,
  ) {
    this.status = { hash: active.hash, files: active.files, loaded_at: new Date().toISOString() };
  }

  /** Fails if the initial set does not compile: the server must not start on a broken set. */
  static async open(
    dir: string,
    options: { onChange?: (before: PolicySet, after: PolicySet) => Promise<void>; report?: (m: string) => void; timeoutMs?: number } = {},
  ): Promise<PolicyStore> {
    const sources = await readPolicySources(dir);
    const { set, problems } = compilePolicySet(sources);
    if (!set) throw new PolicyLoadError(problems);
    const engine = new PolicyEngine(options.timeoutMs ?? 250);
    try {
      await engine.load(set.hash, sources);
    } catch (err) {
      await engine.close();
      throw err;
    }
    return new PolicyStore(dir, engine, set, options.onChange ?? (async () => {}), options.report ?? (() => {}));
  }

  /** Evaluates on the engine's worker against exactly this set; failures and timeouts are `error`. */
  evaluate(set: PolicySet, request: PolicyRequest): Promise<PolicyOutcome> {
    if (!set.cedar) return Promise.resolve(evaluate(set, request));
    return this.engine.evaluate(set.hash, request);
  }

  get current(): PolicySet {
    return this.active;
  }

  get state(): PolicyStatus {
    return this.status;
  }

  watch(): void {
    if (this.watcher) return;
    try {
      this.watcher = fs.watch(this.dir, { persistent: false }, () => this.scheduleReload());
      this.watcher.on('error', () => undefined);
    } catch (err) {
      this.report(`policy directory ${this.dir} cannot be watched (${(err as Error).message}); changes need a restart`);
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
        sources = await readPolicySources(this.dir);
      } catch (err) {
        this.fail([`${this.dir}: ${(err as Error).message}`]);
        return;
      }
      if (hashSources(sources) === this.active.hash) return;
      const { set, problems } = compilePolicySet(sources);
      if (!set) {
        this.fail(problems.map(formatProblem));
        return;
      }
      try {
        await this.engine.load(set.hash, sources);
      } catch (err) {
        this.fail([(err as Error).message]);
        return;
      }
      const before = this.active;
      this.active = set;
      this.status = { hash: set.hash, files: set.files, loaded_at: new Date().toISOString() };
      this.report(`policies reloaded: ${set.files.join(', ') || '(none)'} (set ${set.hash.slice(0, 12)})`);
      await this.onChange(before, set).catch((err) => this.report(`could not log the policy change: ${(err as Error).message}`));
    });
    return this.reloading;
  }

  private fail(problems: string[]): void {
    this.status = { ...this.status, last_error: { at: new Date().toISOString(), problems } };
    this.report(`policy change refused; the last good set (${this.active.hash.slice(0, 12)}) keeps serving:\n  ${problems.join('\n  ')}`);
  }

  async close(): Promise<void> {
    this.watcher?.close();
    clearTimeout(this.timer);
    await this.engine.close();
  }
}

export class PolicyLoadError extends Error {
  constructor(readonly problems: PolicyProblem[]) {
    super(`policies failed to load:\n  ${problems.map(formatProblem).join('\n  ')}`);
    this.name = 'PolicyLoadError';
  }
}
