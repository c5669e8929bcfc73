import { z } from 'zod';
import { TRUST_TIERS } from '../domain/principals.ts';
import { action, resource } from '../http/schemas.ts';
import type { Evaluator } from './set.ts';
import { decisionForTier, TIERS, type Json, type PolicyOutcome, type PolicyRequest, type Tier } from './types.ts';

/**
 * Policy tests as policy authors write them: `*.test.json` files holding
 * `[{name, request, expect: {decision, tier?}}]`, run against a policy set in-process.
 */
export const requestDocumentSchema = z.strictObject({
  action,
  resource,
  scope: z.record(z.string(), z.unknown()).optional(),
  context: z.record(z.string(), z.unknown()).optional(),
  value: z.number().min(0).optional(),
  currency: z.string().optional(),
  agent: z.strictObject({ id: z.string().optional(), class: z.string().optional(), trust_tier: z.enum(TRUST_TIERS).optional() }).optional(),
  time: z.iso.datetime({ offset: true }).optional().describe('Decision time (default: now)'),
});
export type RequestDocument = z.infer<typeof requestDocumentSchema>;

export const testFileSchema = z.array(
  z.strictObject({
    name: z.string().min(1),
    request: requestDocumentSchema,
    expect: z.strictObject({ decision: z.enum(['allow', 'deny', 'escalate']), tier: z.enum(TIERS).optional() }),
  }),
);

/** Defaults match a freshly registered agent. */
export function toPolicyRequest(doc: RequestDocument): PolicyRequest {
  return {
    agent: { id: doc.agent?.id ?? 'agt_test', class: doc.agent?.class ?? 'default', trust_tier: doc.agent?.trust_tier ?? 'unregistered' },
    action: doc.action,
    resource: doc.resource,
    scope: (doc.scope ?? {}) as Record<string, Json>,
    context: (doc.context ?? {}) as Record<string, Json>,
    ...(doc.value !== undefined ? { value: doc.value } : {}),
    ...(doc.currency !== undefined ? { currency: doc.currency } : {}),
    time: doc.time ? new Date(doc.time) : new Date(),
  };
}

/** What the cascade makes of a policy outcome: standard is auto-approved, higher tiers escalate. */
export function decisionOf(outcome: PolicyOutcome): { decision: 'allow' | 'deny' | 'escalate'; tier: Tier } {
  if (outcome.outcome !== 'allow') return { decision: 'deny', tier: 'standard' };
  return { decision: decisionForTier(outcome.tier), tier: outcome.tier };
}

export interface CaseResult {
  name: string;
  passed: boolean;
  expected: { decision: string; tier?: string | undefined };
  actual: { decision: string; tier: Tier };
  explanation: ReturnType<Evaluator['explain']>;
  /** The request exactly as the engines saw it (coverage replays it through OPA). */
  request: PolicyRequest;
  ms: number;
}

export function runCases(evaluator: Evaluator, cases: z.infer<typeof testFileSchema>): CaseResult[] {
  // The first evaluation pays for compiling the engines' Wasm; one untimed run keeps that out of the first case's time.
  if (cases[0]) evaluator.evaluate(toPolicyRequest(cases[0].request));
  return cases.map((c) => {
    const request = toPolicyRequest(c.request);
    const started = performance.now();
    const explanation = evaluator.explain(request);
    const ms = Math.round((performance.now() - started) * 1000) / 1000;
    const actual = decisionOf(explanation.outcome);
    const passed = actual.decision === c.expect.decision && (c.expect.tier === undefined || c.expect.tier === actual.tier);
    return { name: c.name, passed, expected: c.expect, actual, explanation, request, ms };
  });
}

/** One test file's run: its results, or why it could not be read. */
export interface TestFileRun {
  file: string;
  results: CaseResult[];
  error?: string;
}

/** "expected escalate at sensitive, got deny" */
export function mismatch(result: CaseResult): string {
  const expected = `${result.expected.decision}${result.expected.tier ? ` at ${result.expected.tier}` : ''}`;
  return `expected ${expected}, got ${result.actual.decision}${result.actual.decision === 'deny' ? '' : ` at ${result.actual.tier}`}`;
}

/** Each engine's part, one line each ("cedar: deny by no-shell (0.2 ms)"); the set's outcome when no engine ran. */
export function traceLines(result: CaseResult): string[] {
  const { outcome, parts } = result.explanation;
  if (parts.length === 0) return [describeOutcome(outcome)];
  return parts.map((part) => `${part.engine}: ${describeOutcome(part.outcome)} (${part.ms} ms)`);
}

const outcomeJson = (outcome: PolicyOutcome) => ({
  outcome: outcome.outcome,
  ...(outcome.outcome === 'allow' ? { tier: outcome.tier } : {}),
  ...(outcome.outcome === 'allow' || outcome.outcome === 'deny' ? { determining: outcome.determining } : {}),
  ...(outcome.outcome === 'error' ? { failure: outcome.code, errors: outcome.errors } : { reasons: outcome.reasons }),
});

/** `writ policy test --format json`: every case with what was expected, what came, and each engine's part. */
export function testReportJson(runs: TestFileRun[]) {
  const cases = runs.flatMap((run) =>
    run.results.map((r) => ({
      name: r.name,
      file: run.file,
      passed: r.passed,
      expected: r.expected,
      actual: r.actual,
      ...outcomeJson(r.explanation.outcome),
      ms: r.ms,
      parts: r.explanation.parts.map((p) => ({ engine: p.engine, ...outcomeJson(p.outcome), ms: p.ms, detail: describeOutcome(p.outcome) })),
    })),
  );
  const errors = runs.filter((run) => run.error !== undefined).map((run) => ({ file: run.file, message: run.error! }));
  return { passed: cases.filter((c) => c.passed).length, failed: cases.filter((c) => !c.passed).length, errors, cases };
}

// XML 1.0 cannot carry these at all, not even as character references; they become U+FFFD.
const NOT_XML = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' };
/** Attribute values: markup characters and quotes escaped, and whitespace too (parsers would turn it into spaces). */
const xmlAttr = (text: string) => text.replace(NOT_XML, '\uFFFD').replace(/[&<>"'\t\n\r]/g, (c) => XML_ESCAPES[c]!);
/** Text content: markup characters escaped (which also breaks any "]]>"), and CR kept as CR. */
const xmlText = (text: string) => text.replace(NOT_XML, '\uFFFD').replace(/[&<>\r]/g, (c) => XML_ESCAPES[c]!);
const seconds = (ms: number) => (ms / 1000).toFixed(6);

/**
 * `writ policy test --format junit`: one <testsuite> per test file, one <testcase> per case, a
 * <failure> with the engines' trace for a wrong decision, an <error> for a file that cannot be
 * read; with `verbose`, passing cases carry their trace in <system-out> too.
 */
export function testReportJunit(runs: TestFileRun[], options: { verbose?: boolean } = {}): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = (pick: (run: TestFileRun) => number) => runs.reduce((n, run) => n + pick(run), 0);
  const failures = (run: TestFileRun) => run.results.filter((r) => !r.passed).length;
  const errors = (run: TestFileRun) => (run.error === undefined ? 0 : 1);
  const tests = (run: TestFileRun) => run.results.length + errors(run);
  const time = (run: TestFileRun) => run.results.reduce((ms, r) => ms + r.ms, 0);
  lines.push(`<testsuites name="writ policy test" tests="${total(tests)}" failures="${total(failures)}" errors="${total(errors)}" time="${seconds(total(time))}">`);
  for (const run of runs) {
    const file = xmlAttr(run.file);
    lines.push(`  <testsuite name="${file}" tests="${tests(run)}" failures="${failures(run)}" errors="${errors(run)}" skipped="0" time="${seconds(time(run))}">`);
    if (run.error !== undefined) {
      lines.push(`    <testcase name="${file}" classname="${file}" file="${file}" time="0">`);
      lines.push(`      <error message="${xmlAttr(`not a valid test file: ${run.error}`)}" type="invalid_test_file"/>`);
      lines.push('    </testcase>');
    }
    for (const r of run.results) {
      const open = `    <testcase name="${xmlAttr(r.name)}" classname="${file}" file="${file}" time="${seconds(r.ms)}"`;
      const trace = xmlText(`${traceLines(r).join('\n')}\n`);
      if (r.passed && !options.verbose) {
        lines.push(`${open}/>`);
        continue;
      }
      lines.push(`${open}>`);
      if (r.passed) lines.push(`      <system-out>${trace}</system-out>`);
      else lines.push(`      <failure message="${xmlAttr(mismatch(r))}" type="wrong_decision">${trace}</failure>`);
      lines.push('    </testcase>');
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}

/** One line per engine: what it decided and why. */
export function describeOutcome(outcome: PolicyOutcome): string {
  if (outcome.outcome === 'error') return `error (${outcome.code}): ${outcome.errors.join('; ')}`;
  if (outcome.outcome === 'not_applicable') return `not applicable (${outcome.reasons.join('; ')})`;
  const by = outcome.determining.length ? ` by ${outcome.determining.join(', ')}` : '';
  const why = outcome.reasons.length ? ` (${outcome.reasons.join('; ')})` : '';
  return outcome.outcome === 'allow' ? `allow at ${outcome.tier}${by}${why}` : `deny${by}${why}`;
}
