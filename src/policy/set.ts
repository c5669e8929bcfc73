import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sha256 } from '../crypto/encoding.ts';
import { readBundle } from './bundle.ts';
import type { EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import { compileCedar, evaluateCedar, type CedarSet } from './cedar.ts';
import { HOW_TO_GET_OPA, buildRego } from './opa.ts';
import { evaluateRego, instantiateRego, mergeData, type RegoEvaluator, type RegoModule } from './rego.ts';
import { failure, maxTier, type PolicyDecision, type PolicyLanguage, type PolicyOutcome, type PolicyProblem, type PolicyRequest } from './types.ts';

/**
 * A policy set: the top-level `*.cedar` files, an optional `schema.cedarschema`, the `*.rego`
 * files (compiled together by OPA into one Wasm module) and prebuilt OPA Wasm bundles
 * (`*.tar.gz`). A set is built once (`buildPolicySet`), then instantiated wherever it evaluates.
 */
export interface PolicySource {
  file: string;
  /** File content; bundles (binary) are held as base64. */
  text: string;
}

/** Everything an evaluator needs; plain data, so it can be posted to the policy worker. */
export interface PolicyArtifacts {
  cedar: PolicySource[];
  rego: RegoModule[];
  /** Sources present but not compiled (no OPA compiler): every evaluation fails closed. */
  unloaded: string[];
}

export interface PolicySet {
  /** SHA-256 over every source file's name and bytes, standard base64. */
  hash: string;
  files: string[];
  artifacts: PolicyArtifacts;
}

export const SCHEMA_FILE = 'schema.cedarschema';
const isPolicyFile = (n: string) => n.endsWith('.cedar') || n === SCHEMA_FILE || n.endsWith('.rego') || n.endsWith('.tar.gz');

export async function readPolicySources(dir: string): Promise<PolicySource[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return Promise.all(
    names
      .filter(isPolicyFile)
      .sort()
      .map(async (file) => ({ file, text: await fsp.readFile(path.join(dir, file), file.endsWith('.tar.gz') ? 'base64' : 'utf8') })),
  );
}

export function hashSources(sources: PolicySource[]): string {
  return sha256(JSON.stringify(sources.map((s) => [s.file, s.text]))).toString('base64');
}

/**
 * Compiles and checks a set; problems carry file:line:col. Without an OPA compiler, `.rego`
 * sources are not an error here but are listed as `unloaded` (the set then denies everything)
 * with a warning saying how to get one.
 */
export async function buildPolicySet(sources: PolicySource[], options: { opa?: string | undefined } = {}): Promise<{ set?: PolicySet; problems: PolicyProblem[]; warnings: string[] }> {
  const problems: PolicyProblem[] = [];
  const warnings: string[] = [];
  const cedar = sources.filter((s) => s.file.endsWith('.cedar') || s.file === SCHEMA_FILE);
  const checked = checkCedar(cedar);
  problems.push(...checked);

  const rego: RegoModule[] = [];
  const unloaded: string[] = [];
  const regoSources = sources.filter((s) => s.file.endsWith('.rego'));
  if (regoSources.length > 0 && !options.opa) {
    unloaded.push(...regoSources.map((s) => s.file));
    warnings.push(`not loaded: ${unloaded.join(', ')} — no OPA compiler; ${HOW_TO_GET_OPA}. Until they load, every request is denied.`);
  } else if (regoSources.length > 0) {
    const built = await compileRegoSources(options.opa!, regoSources);
    problems.push(...built.problems);
    if (built.module) rego.push(built.module);
  }
  for (const bundle of sources.filter((s) => s.file.endsWith('.tar.gz'))) {
    try {
      const { wasm, data, files } = readBundle(Buffer.from(bundle.text, 'base64'));
      rego.push({ id: bundle.file, files, wasm, data });
    } catch (err) {
      problems.push({ file: bundle.file, line: 1, column: 1, message: (err as Error).message });
    }
  }
  for (const module of rego) {
    try {
      instantiateRego(module);
    } catch (err) {
      problems.push({ file: module.files[0] ?? module.id, line: 1, column: 1, message: (err as Error).message });
    }
  }
  if (problems.length) return { problems, warnings };
  return { set: { hash: hashSources(sources), files: sources.map((s) => s.file), artifacts: { cedar, rego, unloaded } }, problems, warnings };
}

function checkCedar(sources: PolicySource[]): PolicyProblem[] {
  const schema = sources.find((s) => s.file === SCHEMA_FILE);
  const files = sources.filter((s) => s.file.endsWith('.cedar'));
  return files.length ? compileCedar(files, schema, { checkOnly: true }).problems : [];
}

/** `opa build` reads files: the sources are written to a scratch directory under their own names. */
async function compileRegoSources(opa: string, sources: PolicySource[]): Promise<{ module?: RegoModule; problems: PolicyProblem[] }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'writ-rego-'));
  try {
    await Promise.all(sources.map((s) => fsp.writeFile(path.join(dir, s.file), s.text)));
    const { bundle, problems } = await buildRego(opa, dir, sources.map((s) => s.file));
    if (!bundle) return { problems };
    const files = sources.map((s) => s.file);
    return { module: { id: files.join(','), files, wasm: bundle.wasm, data: bundle.data }, problems: [] };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

export interface Evaluator {
  evaluate(request: PolicyRequest): PolicyDecision;
  /** The same decision, with each engine's own outcome and time (for `writ policy test/eval`). */
  explain(request: PolicyRequest): { outcome: PolicyDecision; parts: Array<{ engine: string; outcome: PolicyOutcome; ms: number }> };
}

/**
 * What a local evaluation (`writ policy eval`) may add to a request: Cedar entities beside the
 * ones Writ builds, and a document for OPA's `data`. The server never takes either from a request.
 */
export interface LocalInputs {
  entities?: EntityJson[];
  data?: Record<string, unknown>;
}

/** Makes a set evaluable in this thread (Cedar preparsed, Rego Wasm instantiated). */
export function instantiate(artifacts: PolicyArtifacts, local: LocalInputs = {}): Evaluator {
  const files = artifacts.cedar.filter((s) => s.file.endsWith('.cedar'));
  let cedar: CedarSet | undefined;
  if (files.length) {
    const compiled = compileCedar(files, artifacts.cedar.find((s) => s.file === SCHEMA_FILE));
    if (!compiled.set) throw new Error(compiled.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('\n'));
    cedar = compiled.set;
  }
  const rego: RegoEvaluator[] = artifacts.rego.map((m) => instantiateRego(local.data ? { ...m, data: mergeData(m.data, local.data) } : m));
  const engines: Array<{ engine: string; run: (r: PolicyRequest) => PolicyOutcome }> = [
    ...(cedar ? [{ engine: 'cedar', run: (r: PolicyRequest) => evaluateCedar(cedar, r, local.entities) }] : []),
    ...rego.map((e) => ({ engine: `rego:${e.id}`, run: (r: PolicyRequest) => evaluateRego(e, r) })),
  ];
  const notLoaded = artifacts.unloaded.length
    ? failure('policy_not_loaded', `policies not loaded: ${artifacts.unloaded.join(', ')} (no OPA compiler; ${HOW_TO_GET_OPA})`)
    : undefined;
  const guarded = (run: (r: PolicyRequest) => PolicyOutcome, request: PolicyRequest): PolicyOutcome => {
    try {
      return run(request);
    } catch (err) {
      return failure('policy_error', `policy engine failed: ${(err as Error).message}`);
    }
  };
  return {
    evaluate(request) {
      if (notLoaded) return notLoaded;
      return combine(engines.map((e) => guarded(e.run, request)));
    },
    explain(request) {
      if (notLoaded) return { outcome: notLoaded, parts: [] };
      const parts = engines.map((e) => {
        const started = performance.now();
        const outcome = guarded(e.run, request);
        return { engine: e.engine, outcome, ms: Math.round((performance.now() - started) * 1000) / 1000 };
      });
      return { outcome: combine(parts.map((p) => p.outcome)), parts };
    },
  };
}

const DEFAULT_DENY = 'no policy applies to this request (default deny)';

/**
 * Cedar and Rego together, deny-overrides (XACML): any error is an error (the caller denies and
 * records a failure), else any deny is a deny, else any permit allows at the highest tier among
 * the permits. A language that does not apply takes no part, so a Cedar file of forbids beside
 * Rego rules only ever takes away; when nothing applies (or there are no policies) it is a deny.
 */
export function combine(outcomes: PolicyOutcome[]): PolicyDecision {
  const errors = only(outcomes, 'error');
  if (errors.length) return { outcome: 'error', code: errors[0]!.code, errors: errors.flatMap((o) => o.errors) };
  const denies = only(outcomes, 'deny');
  if (denies.length) return { outcome: 'deny', ...merged(denies) };
  const permits = only(outcomes, 'allow');
  if (permits.length) return { outcome: 'allow', tier: maxTier(permits.map((o) => o.tier)), ...merged(permits) };
  return { outcome: 'deny', determining: [], reasons: [DEFAULT_DENY, ...only(outcomes, 'not_applicable').flatMap((o) => o.reasons)], languages: [] };
}

const only = <K extends PolicyOutcome['outcome']>(outcomes: PolicyOutcome[], kind: K) =>
  outcomes.filter((o): o is Extract<PolicyOutcome, { outcome: K }> => o.outcome === kind);

const merged = (outcomes: Array<{ determining: string[]; reasons: string[]; languages: PolicyLanguage[] }>) => ({
  determining: outcomes.flatMap((o) => o.determining),
  reasons: outcomes.flatMap((o) => o.reasons),
  languages: [...new Set(outcomes.flatMap((o) => o.languages))],
});

const evaluators = new WeakMap<PolicySet, Evaluator>();

/** The set's in-process evaluator (CLI, tests, benchmarks); the server evaluates on its policy worker. */
export function evaluatorOf(set: PolicySet): Evaluator {
  let evaluator = evaluators.get(set);
  if (!evaluator) {
    evaluator = instantiate(set.artifacts);
    evaluators.set(set, evaluator);
  }
  return evaluator;
}

export const evaluate = (set: PolicySet, request: PolicyRequest): PolicyDecision => evaluatorOf(set).evaluate(request);

/**
 * A set's first evaluations in a fresh thread are slow (tens to hundreds of ms) while V8 compiles
 * the engines' Wasm and JS glue; without a warm-up the first real request would spend its budget
 * on that. Every field is set so both engines take their full path; the answers are thrown away.
 */
export const WARM_UP_PROBE: PolicyRequest = {
  agent: { id: 'agt_warm_up', class: 'warm-up', trust_tier: 'unregistered' },
  action: 'writ.warm_up',
  resource: 'writ:warm-up',
  scope: { max: 1 },
  context: { reason: 'warm-up', share: 0.5 },
  value: 1.5,
  currency: 'EUR',
  time: new Date(0),
};
const WARM_UP_ROUNDS = 5;
/** A set slow even when warm stops warming up after this, so it cannot delay serving for long. */
const WARM_UP_MS = 500;

export function warmUp(evaluator: Evaluator): { rounds: number; ms: number } {
  const started = performance.now();
  let rounds = 0;
  do {
    evaluator.evaluate(WARM_UP_PROBE);
    rounds++;
  } while (rounds < WARM_UP_ROUNDS && performance.now() - started < WARM_UP_MS);
  return { rounds, ms: Math.round((performance.now() - started) * 1000) / 1000 };
}
