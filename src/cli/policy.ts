import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { formatCedar } from '../policy/cedar.ts';
import { HOW_TO_GET_OPA, findOpa, runOpa } from '../policy/opa.ts';
import { buildPolicySet, evaluatorOf, readPolicySources } from '../policy/set.ts';
import { decisionOf, describeOutcome, requestDocumentSchema, runCases, testFileSchema, toPolicyRequest } from '../policy/testing.ts';
import { formatProblem } from '../policy/types.ts';
import { UsageError, parseFlags } from './args.ts';

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

/** Builds the set and prints its problems as path:line:col; undefined when it does not build. */
async function load(dir: string) {
  const { set, problems, warnings } = await buildPolicySet(await readPolicySources(dir), { opa: findOpa() });
  for (const p of problems) process.stderr.write(`${formatProblem({ ...p, file: shown(dir, p.file) })}\n`);
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  return set;
}

async function check(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { policies: { type: 'string' } });
  const dir = dirOf(values.policies);
  const set = await load(dir);
  if (!set) return 1;
  if (set.artifacts.unloaded.length) return 1;
  const { cedar, rego } = set.artifacts;
  const cedarFiles = cedar.filter((s) => s.file.endsWith('.cedar')).map((s) => s.file);
  process.stdout.write(
    `OK ${path.relative(process.cwd(), dir) || '.'}: ${cedarFiles.length} Cedar file(s)${cedarFiles.length ? ` (${cedarFiles.join(', ')})` : ''}, ` +
      `${rego.length} Rego module(s)${rego.length ? ` (${rego.map((r) => r.id).join('; ')})` : ''}; set ${set.hash}\n`,
  );
  return 0;
}

async function testCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { policies: { type: 'string' }, json: { type: 'boolean' } });
  const dir = dirOf(values.policies);
  const files = positionals.length ? positionals.map((f) => path.resolve(f)) : (await fs.readdir(dir).catch(() => [])).filter((f) => f.endsWith('.test.json')).sort().map((f) => path.join(dir, f));
  if (files.length === 0) throw new UsageError(`no *.test.json files in ${dir}; name test files on the command line`);
  const set = await load(dir);
  if (!set) return 1;
  const evaluator = evaluatorOf(set);
  let passed = 0;
  let failed = 0;
  for (const file of files) {
    let cases;
    try {
      cases = testFileSchema.parse(JSON.parse(await fs.readFile(file, 'utf8')));
    } catch (err) {
      process.stderr.write(`${path.relative(process.cwd(), file)}: not a valid test file: ${(err as Error).message.split('\n')[0]}\n`);
      failed++;
      continue;
    }
    process.stdout.write(`${path.relative(process.cwd(), file)}\n`);
    for (const result of runCases(evaluator, cases)) {
      if (result.passed) {
        passed++;
        process.stdout.write(`  ✔ ${result.name}\n`);
        continue;
      }
      failed++;
      const expected = `${result.expected.decision}${result.expected.tier ? ` at ${result.expected.tier}` : ''}`;
      process.stdout.write(`  ✘ ${result.name}\n      expected ${expected}, got ${result.actual.decision}${result.actual.decision === 'deny' ? '' : ` at ${result.actual.tier}`}\n`);
      for (const part of result.explanation.parts) process.stdout.write(`      ${part.engine}: ${describeOutcome(part.outcome)} (${part.ms} ms)\n`);
      if (result.explanation.parts.length === 0) process.stdout.write(`      ${describeOutcome(result.explanation.outcome)}\n`);
    }
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

async function fmt(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { policies: { type: 'string' }, check: { type: 'boolean' } });
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

async function evalCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { policies: { type: 'string' }, request: { type: 'string' } });
  if (!values.request) throw new UsageError('eval needs --request FILE (a JSON request document, or - for stdin)');
  const raw = values.request === '-' ? await readStdin() : await fs.readFile(values.request, 'utf8');
  const parsed = requestDocumentSchema.safeParse(JSON.parse(raw));
  if (!parsed.success) throw new UsageError(`the request is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const dir = dirOf(values.policies);
  const set = await load(dir);
  if (!set) return 1;
  const { outcome, parts } = evaluatorOf(set).explain(toPolicyRequest(parsed.data));
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
