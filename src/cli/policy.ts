import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import { z } from 'zod';
import { compileCedar, formatCedar, replacedRequestAttributes } from '../policy/cedar.ts';
import { belowMinimum, cedarCoverage, regoCoverage, type Coverage } from '../policy/coverage.ts';
import { ENTRYPOINT, HOW_TO_GET_OPA, findOpa, runOpa } from '../policy/opa.ts';
import { SCHEMA_FILE, buildPolicySet, evaluatorOf, hashSources, instantiate, readPolicySources, type LocalInputs, type PolicySource } from '../policy/set.ts';
import {
  decisionOf,
  describeOutcome,
  mismatch,
  requestDocumentSchema,
  runCases,
  testFileSchema,
  testReportJson,
  testReportJunit,
  toPolicyRequest,
  traceLines,
  type TestFileRun,
} from '../policy/testing.ts';
import { formatProblem, type PolicyProblem } from '../policy/types.ts';
import { UsageError, parseFlags } from './args.ts';

/** `writ policy --help`: every subcommand and flag (wired into the CLI's help by src/cli/main.ts). */
export const POLICY_HELP = `writ policy — the policy author's toolchain (DIR: --policies, else WRIT_POLICIES, else ./policies)

  writ policy check [--policies DIR] [--format text|json]
      Check the set step by step: parse (Cedar, with @id/@tier), schema (validation against
      schema.cedarschema, when there is one), rego compile (opa check and build; bundles load).
      Each problem as file:line:col under its step; exit 1 on any.

  writ policy test [--policies DIR] [--format text|json|junit] [--verbose] [--coverage]
                   [--min-coverage N] [FILE…]
      Run *.test.json cases (default: the ones in DIR) against the set; exit 1 on any failure.
      --format json     one JSON document: each case's name, file, passed, expected, actual,
                        determining policies, reasons and per-engine parts (--json is the same)
      --format junit    JUnit XML (testsuites/testsuite/testcase/failure) for CI systems
      -v, --verbose     every case's per-engine outcome, what determined it, and timings
      --coverage        Cedar: policies determining in at least one case; Rego: lines OPA saw
                        evaluated, replaying each case's input (opa eval --coverage)
      --min-coverage N  exit 1 when a language's coverage is below N percent (0-100); implies
                        --coverage

  writ policy fmt [--policies DIR] [--check]
      Format Cedar (cedar-wasm) and Rego (opa fmt) in place; --check lists what would change
      and exits 1 if anything would.

  writ policy eval --request FILE|- [--policies DIR] [--entities FILE] [--data FILE]
      Evaluate one request: decision, tier, determining policies, reasons, per-engine trace.
      --entities FILE   Cedar entities (Cedar's JSON entity format) added to the ones Writ
                        builds: new entities are added; for the request's own Agent, Resource
                        or Action, attributes and tags are added and parents joined, but the
                        attributes Writ takes from the request (Agent class and trust_tier,
                        Resource type and id) cannot be replaced
      --data FILE       a JSON object for OPA's data document (like opa eval -d), merged over
                        a bundle's own data; a value defined in both is an error
      Both are for local evaluation only: the server takes neither from requests.
`;

/** `writ policy check | test | fmt | eval`: the policy author's toolchain. */
export async function policy(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'check':
      return check(rest);
    case 'test':
      return testCommand(rest);
    case 'fmt':
      return fmt(rest);
    case 'eval':
      return evalCommand(rest);
    default:
      throw new UsageError(`unknown policy command "${sub ?? ''}"; use check, test, fmt or eval`);
  }
}

/** The policies directory named by --policies or WRIT_POLICIES; a missing one is an error, never an empty set. */
function dirOf(value: string | undefined): string {
  const dir = path.resolve(value ?? process.env.WRIT_POLICIES ?? './policies');
  if (!existsSync(dir)) throw new Error(`no policies directory at ${dir}`);
  return dir;
}
const shown = (dir: string, file: string) => path.relative(process.cwd(), path.join(dir, file)) || file;

/** Builds the set and prints its problems as path:line:col; no set when it does not build. */
async function load(dir: string) {
  const sources = await readPolicySources(dir);
  const { set, problems, warnings } = await buildPolicySet(sources, { opa: findOpa() });
  for (const p of problems) process.stderr.write(`${formatProblem({ ...p, file: shown(dir, p.file) })}\n`);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  return { set, sources };
}

function formatOf<F extends string>(value: string | undefined, formats: readonly F[]): F {
  if (value === undefined) return formats[0]!;
  if (!(formats as readonly string[]).includes(value)) throw new UsageError(`--format must be ${formats.join(', ')}; not "${value}"`);
  return value as F;
}

interface CheckStep {
  step: 'parse' | 'schema' | 'rego compile';
  status: 'ok' | 'problems' | 'skipped';
  detail: string;
  problems: PolicyProblem[];
}

/**
 * Each check as its own step, in the order a set is built: Cedar parses (with Writ's annotations),
 * then validates against the schema, then Rego compiles and prebuilt bundles load.
 */
async function checkSteps(sources: PolicySource[]): Promise<CheckStep[]> {
  const step = (name: CheckStep['step'], problems: PolicyProblem[], ok: string): CheckStep => ({
    step: name,
    status: problems.length ? 'problems' : 'ok',
    detail: problems.length ? `${problems.length} problem${problems.length === 1 ? '' : 's'}` : ok,
    problems,
  });
  const skipped = (name: CheckStep['step'], why: string): CheckStep => ({ step: name, status: 'skipped', detail: why, problems: [] });
  const cedarFiles = sources.filter((s) => s.file.endsWith('.cedar'));
  const schema = sources.find((s) => s.file === SCHEMA_FILE);
  const steps: CheckStep[] = [];

  const parsed = cedarFiles.length ? compileCedar(cedarFiles, undefined, { checkOnly: true }) : undefined;
  const count = parsed?.set?.policies.size ?? 0;
  steps.push(parsed ? step('parse', parsed.problems, `${cedarFiles.length} Cedar file(s), ${count} polic${count === 1 ? 'y' : 'ies'}: ${cedarFiles.map((s) => s.file).join(', ')}`) : skipped('parse', 'no .cedar files'));

  if (!schema) steps.push(skipped('schema', `no ${SCHEMA_FILE}`));
  else if (!parsed) steps.push(skipped('schema', 'no Cedar policies to validate'));
  else if (parsed.problems.length) steps.push(skipped('schema', 'the policies do not parse'));
  else steps.push(step('schema', compileCedar(cedarFiles, schema, { checkOnly: true }).problems, `${count} polic${count === 1 ? 'y' : 'ies'} valid against ${SCHEMA_FILE}`));

  const rego = sources.filter((s) => s.file.endsWith('.rego') || s.file.endsWith('.tar.gz'));
  if (!rego.length) {
    steps.push(skipped('rego compile', 'no .rego files or bundles'));
  } else {
    const built = await buildPolicySet(rego, { opa: findOpa() });
    const notLoaded = built.set?.artifacts.unloaded ?? [];
    const problems = [...built.problems, ...notLoaded.map((file) => ({ file, line: 1, column: 1, message: `not compiled: no OPA compiler; ${HOW_TO_GET_OPA}` }))];
    const modules = built.set?.artifacts.rego.map((m) => m.id) ?? [];
    steps.push(step('rego compile', problems, `${modules.length} module(s) with ${ENTRYPOINT}: ${modules.join('; ')}`));
  }
  return steps;
}

async function check(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { policies: { type: 'string' }, format: { type: 'string' } }, { max: 0 });
  const format = formatOf(values.format, ['text', 'json'] as const);
  const dir = dirOf(values.policies);
  const sources = await readPolicySources(dir);
  const steps = (await checkSteps(sources)).map((s) => ({ ...s, problems: s.problems.map((p) => ({ ...p, file: shown(dir, p.file) })) }));
  const problems = steps.reduce((n, s) => n + s.problems.length, 0);
  const where = path.relative(process.cwd(), dir) || '.';
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify({ policies: where, ok: problems === 0, steps, ...(problems === 0 ? { policy_set: hashSources(sources) } : {}) }, null, 2)}\n`);
    return problems === 0 ? 0 : 1;
  }
  process.stdout.write(`${where}\n`);
  for (const s of steps) {
    process.stdout.write(`  ${s.step}: ${s.status === 'ok' ? `OK (${s.detail})` : s.status === 'skipped' ? `skipped (${s.detail})` : s.detail}\n`);
    for (const p of s.problems) process.stdout.write(`    ${formatProblem(p)}\n`);
  }
  process.stdout.write(problems === 0 ? `OK ${where}: set ${hashSources(sources)}\n` : `FAILED ${where}: ${problems} problem${problems === 1 ? '' : 's'}\n`);
  return problems === 0 ? 0 : 1;
}

function minCoverageOf(value: string): number {
  const min = Number(value);
  if (value.trim() === '' || !Number.isFinite(min) || min < 0 || min > 100) throw new UsageError(`--min-coverage must be a percentage from 0 to 100; not "${value}"`);
  return min;
}

async function testCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    policies: { type: 'string' },
    format: { type: 'string' },
    json: { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
    coverage: { type: 'boolean' },
    'min-coverage': { type: 'string' },
  });
  const format = formatOf(values.json ? 'json' : values.format, ['text', 'json', 'junit'] as const);
  const minimum = values['min-coverage'] === undefined ? undefined : minCoverageOf(values['min-coverage']);
  const dir = dirOf(values.policies);
  const files = positionals.length ? positionals.map((f) => path.resolve(f)) : (await fs.readdir(dir).catch(() => [])).filter((f) => f.endsWith('.test.json')).sort().map((f) => path.join(dir, f));
  if (files.length === 0) throw new UsageError(`no *.test.json files in ${dir}; name test files on the command line`);
  const { set, sources } = await load(dir);
  if (!set) return 1;
  const evaluator = evaluatorOf(set);
  const runs: TestFileRun[] = [];
  for (const file of files) {
    const name = path.relative(process.cwd(), file);
    const parsed = await fs.readFile(file, 'utf8').then((text) => testFileSchema.safeParse(JSON.parse(text))).catch((err: Error) => err);
    if (parsed instanceof Error) runs.push({ file: name, results: [], error: parsed.message.split('\n')[0]! });
    else if (!parsed.success) runs.push({ file: name, results: [], error: parsed.error.issues.map((i) => `${i.path.join('.') || 'file'}: ${i.message}`).join('; ') });
    else runs.push({ file: name, results: runCases(evaluator, parsed.data) });
  }

  let coverage: Coverage[] | undefined;
  if (values.coverage || minimum !== undefined) {
    const opa = findOpa();
    const rego = opa ? await regoCoverage(opa, sources, runs.flatMap((r) => r.results.map((c) => c.request))) : undefined;
    coverage = [cedarCoverage(set.artifacts, runs.flatMap((r) => r.results)), rego]
      .filter((c): c is Coverage => c !== undefined)
      .map((c) => ({ ...c, missed: c.missed.map((m) => ({ ...m, file: shown(dir, m.file) })), unmeasured: c.unmeasured.map((f) => shown(dir, f)) }));
  }
  const below = coverage && minimum !== undefined ? belowMinimum(coverage, minimum) : [];
  const failed = runs.some((r) => r.error !== undefined || r.results.some((c) => !c.passed));

  if (format === 'json') {
    const report = { policy_set: set.hash, ...testReportJson(runs), ...(coverage ? { coverage: { languages: coverage, ...(minimum !== undefined ? { minimum, below: below.map((c) => c.language) } : {}) } } : {}) };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else if (format === 'junit') {
    process.stdout.write(testReportJunit(runs, { verbose: values.verbose }));
    // Coverage has no place in JUnit XML; it goes to stderr so the XML on stdout stays whole.
    if (coverage) process.stderr.write(coverageText(coverage, minimum, below));
  } else {
    for (const run of runs) {
      if (run.error !== undefined) {
        process.stderr.write(`${run.file}: not a valid test file: ${run.error}\n`);
        continue;
      }
      process.stdout.write(`${run.file}\n`);
      for (const result of run.results) {
        process.stdout.write(`  ${result.passed ? '✔' : '✘'} ${result.name}${values.verbose ? ` (${result.ms} ms)` : ''}\n`);
        if (!result.passed) process.stdout.write(`      ${mismatch(result)}\n`);
        if (!result.passed || values.verbose) for (const line of traceLines(result)) process.stdout.write(`      ${line}\n`);
      }
    }
    const passed = runs.reduce((n, r) => n + r.results.filter((c) => c.passed).length, 0);
    const failures = runs.reduce((n, r) => n + (r.error === undefined ? r.results.filter((c) => !c.passed).length : 1), 0);
    process.stdout.write(`${passed} passed, ${failures} failed\n`);
    if (coverage) process.stdout.write(coverageText(coverage, minimum, below));
  }
  return failed || below.length ? 1 : 0;
}

/** The coverage summary: per language, covered/total and percent, then what no case reached. */
function coverageText(coverage: Coverage[], minimum: number | undefined, below: Coverage[]): string {
  const lines = ['coverage'];
  if (!coverage.length) lines.push('  nothing to cover');
  for (const c of coverage) {
    lines.push(
      c.language === 'cedar'
        ? `  cedar: ${c.percent}% — ${c.covered}/${c.total} policies were determining in at least one case`
        : `  rego: ${c.percent}% — OPA line coverage: ${c.covered} lines covered, ${c.total - c.covered} not`,
    );
    if (c.language === 'cedar' && c.missed.length) lines.push(`    never determining: ${c.missed.map((m) => `${m.id} (${m.file}:${m.line})`).join(', ')}`);
    for (const file of new Set(c.language === 'rego' ? c.missed.map((m) => m.file) : [])) {
      const runs = c.missed.filter((m) => m.file === file).map((m) => `${m.line}${m.end_line ? `-${m.end_line}` : ''}`);
      lines.push(`    not covered: ${file} line${runs.length === 1 && !runs[0]!.includes('-') ? '' : 's'} ${runs.join(', ')}`);
    }
    if (c.unmeasured.length) lines.push(`    not measured (prebuilt bundles have no sources to trace): ${c.unmeasured.join(', ')}`);
  }
  if (minimum !== undefined) {
    lines.push(below.length ? `coverage below --min-coverage ${minimum}%: ${below.map((c) => `${c.language} ${c.percent}%`).join(', ')}` : `coverage meets --min-coverage ${minimum}%`);
  }
  return `${lines.join('\n')}\n`;
}

async function fmt(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { policies: { type: 'string' }, check: { type: 'boolean' } }, { max: 0 });
  const dir = dirOf(values.policies);
  const sources = await readPolicySources(dir);
  const changed: string[] = [];
  let errors = 0;
  for (const source of sources.filter((s) => s.file.endsWith('.cedar'))) {
    const { formatted, error } = formatCedar(source.text);
    if (error) {
      process.stderr.write(`${shown(dir, source.file)}: ${error}\n`);
      errors++;
    } else if (formatted !== source.text) {
      changed.push(source.file);
      if (!values.check) await fs.writeFile(path.join(dir, source.file), formatted!);
    }
  }
  const rego = sources.filter((s) => s.file.endsWith('.rego')).map((s) => s.file);
  if (rego.length) {
    const opa = findOpa();
    if (!opa) {
      process.stderr.write(`cannot format ${rego.join(', ')}: no OPA binary; ${HOW_TO_GET_OPA}\n`);
      errors++;
    } else {
      const listed = await runOpa(opa, ['fmt', '--list', ...rego], { cwd: dir });
      const differ = listed.stdout.split('\n').filter(Boolean).map((f) => path.basename(f));
      changed.push(...differ);
      if (listed.code !== 0 && !differ.length) {
        process.stderr.write(listed.stderr);
        errors++;
      }
      if (!values.check && differ.length) await runOpa(opa, ['fmt', '--write', ...differ], { cwd: dir });
    }
  }
  for (const file of changed) process.stdout.write(`${values.check ? 'would format' : 'formatted'} ${shown(dir, file)}\n`);
  if (!changed.length && !errors) process.stdout.write('all policy files are formatted\n');
  return errors > 0 || (values.check && changed.length > 0) ? 1 : 0;
}

const typeAndId = z.strictObject({ type: z.string().min(1), id: z.string() });
const entityUid = z.union([typeAndId, z.strictObject({ __entity: typeAndId })], { error: 'an entity uid is {"type": "…", "id": "…"}' });
const entitiesFileSchema = z.array(
  z.strictObject({
    uid: entityUid,
    attrs: z.record(z.string(), z.json()).default({}),
    parents: z.array(entityUid).default([]),
    tags: z.record(z.string(), z.json()).optional(),
  }),
);

async function readJson(file: string, what: string): Promise<unknown> {
  const text = file === '-' ? await readStdin() : await fs.readFile(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${what} ${file} is not JSON: ${(err as Error).message}`);
  }
}

async function evalCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { policies: { type: 'string' }, request: { type: 'string' }, entities: { type: 'string' }, data: { type: 'string' } }, { max: 0 });
  if (!values.request) throw new UsageError('eval needs --request FILE (a JSON request document, or - for stdin)');
  if ([values.request, values.entities, values.data].filter((f) => f === '-').length > 1) throw new UsageError('only one of --request, --entities and --data can read stdin (-)');
  const parsed = requestDocumentSchema.safeParse(await readJson(values.request, 'the request'));
  if (!parsed.success) throw new UsageError(`the request is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const request = toPolicyRequest(parsed.data);
  const local: LocalInputs = {};
  if (values.entities) {
    const entities = entitiesFileSchema.safeParse(await readJson(values.entities, 'the entities file'));
    if (!entities.success) throw new UsageError(`--entities must be Cedar's JSON entity format ([{uid: {type, id}, attrs?, parents?, tags?}]): ${entities.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    local.entities = entities.data as EntityJson[];
    const replaced = replacedRequestAttributes(request, local.entities);
    if (replaced.length) throw new UsageError(`--entities cannot set ${replaced.join(', ')}: Writ takes them from the request (its "agent" and "resource"), so that Cedar and Rego see the same; change the request instead`);
  }
  if (values.data) {
    const data = await readJson(values.data, 'the data file');
    if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new UsageError('--data must hold a JSON object (it becomes OPA\'s data document)');
    local.data = data as Record<string, unknown>;
  }
  const dir = dirOf(values.policies);
  const { set } = await load(dir);
  if (!set) return 1;
  if (local.entities && !set.artifacts.cedar.some((s) => s.file.endsWith('.cedar'))) process.stderr.write('warning: --entities has no effect: there are no Cedar policies\n');
  if (local.data && !set.artifacts.rego.length) process.stderr.write('warning: --data has no effect: there is no Rego\n');
  let evaluator;
  try {
    evaluator = local.entities || local.data ? instantiate(set.artifacts, local) : evaluatorOf(set);
  } catch (err) {
    // The one way a set that built fails to instantiate here: --data conflicting with a bundle's data.
    if (local.data) throw new UsageError(`--data: ${(err as Error).message}`);
    throw err;
  }
  const { outcome, parts } = evaluator.explain(request);
  const { decision, tier } = decisionOf(outcome);
  const result = {
    decision,
    tier,
    determining: outcome.outcome === 'error' ? [] : outcome.determining,
    reasons: outcome.outcome === 'error' ? outcome.errors : outcome.reasons,
    ...(outcome.outcome === 'error' ? { failure: outcome.code } : {}),
    policy_set: set.hash,
    trace: parts.map((p) => ({ step: p.engine, outcome: p.outcome.outcome, ms: p.ms, detail: describeOutcome(p.outcome) })),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
