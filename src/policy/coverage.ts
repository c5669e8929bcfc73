import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compileCedar } from './cedar.ts';
import { ENTRYPOINT, runOpa } from './opa.ts';
import { regoInput } from './rego.ts';
import { SCHEMA_FILE, type PolicyArtifacts, type PolicySource } from './set.ts';
import type { CaseResult } from './testing.ts';
import type { PolicyRequest } from './types.ts';

/**
 * What a test run exercised (`writ policy test --coverage`), per language and in that language's
 * own unit. Cedar: the policies (by id) that were determining in at least one case — a permit
 * that matched while a forbid decided is not counted, since Cedar does not report it. Rego: OPA's
 * own line coverage when the cases' inputs are replayed through `opa eval --coverage` on the
 * `.rego` sources (opa-wasm cannot trace); a prebuilt bundle has no sources to replay, so it is
 * listed as unmeasured.
 */
export interface Coverage {
  language: 'cedar' | 'rego';
  unit: 'policies' | 'lines';
  /** Cedar: policies determining; Rego: lines OPA counts as covered. */
  covered: number;
  /** Cedar: all policies; Rego: covered plus not covered lines, as OPA counts them (a line partly evaluated counts in both). */
  total: number;
  /** 100 when there is nothing to cover. */
  percent: number;
  /** What no case reached: a Cedar policy (with its id) or a run of Rego lines. */
  missed: Array<{ file: string; line: number; end_line?: number; id?: string }>;
  unmeasured: string[];
}

const percentOf = (covered: number, total: number) => (total === 0 ? 100 : Math.round((covered / total) * 1000) / 10);

export function cedarCoverage(artifacts: PolicyArtifacts, results: CaseResult[]): Coverage | undefined {
  const files = artifacts.cedar.filter((s) => s.file.endsWith('.cedar'));
  if (!files.length) return undefined;
  // checkOnly: the set was already built once; this pass only lists its policies.
  const policies = [...(compileCedar(files, artifacts.cedar.find((s) => s.file === SCHEMA_FILE), { checkOnly: true }).set?.policies.values() ?? [])];
  const determining = new Set<string>();
  for (const part of results.flatMap((r) => r.explanation.parts)) {
    if (part.engine === 'cedar' && (part.outcome.outcome === 'allow' || part.outcome.outcome === 'deny')) part.outcome.determining.forEach((id) => determining.add(id));
  }
  const missed = policies.filter((p) => !determining.has(p.id)).map((p) => ({ file: p.file, line: p.line, id: p.id }));
  const covered = policies.length - missed.length;
  return { language: 'cedar', unit: 'policies', covered, total: policies.length, percent: percentOf(covered, policies.length), missed, unmeasured: [] };
}

interface OpaRange {
  start: { row: number; col: number };
  end: { row: number; col: number };
}
type OpaCoverage = { files?: Record<string, { covered?: OpaRange[]; not_covered?: OpaRange[] }> };

/** OPA's line coverage of the `.rego` sources over every case's input, merged across runs. */
export async function regoCoverage(opa: string, sources: PolicySource[], requests: PolicyRequest[]): Promise<Coverage | undefined> {
  const rego = sources.filter((s) => s.file.endsWith('.rego'));
  const bundles = sources.filter((s) => s.file.endsWith('.tar.gz')).map((s) => s.file);
  if (!rego.length && !bundles.length) return undefined;
  const reports = rego.length ? await traceCases(opa, rego, requests.map(regoInput)) : [];
  // OPA 1.x reports expression ranges; one is covered if any run covered it. A line is covered when
  // some range on it is, and not covered when some range on it is not: like OPA, a line partly
  // evaluated (a rule whose body ran but which never succeeded) counts on both sides.
  const ranges = new Map<string, { file: string; range: OpaRange; covered: boolean }>();
  for (const report of reports) {
    for (const [file, entry] of Object.entries(report.files ?? {})) {
      if (!rego.some((s) => s.file === file)) continue;
      for (const [list, covered] of [[entry.covered, true], [entry.not_covered, false]] as const) {
        for (const range of list ?? []) {
          const key = `${file}\0${range.start.row}:${range.start.col}-${range.end.row}:${range.end.col}`;
          ranges.set(key, { file, range, covered: covered || (ranges.get(key)?.covered ?? false) });
        }
      }
    }
  }
  const rowsOf = (file: string, covered: boolean) => {
    const rows = new Set<number>();
    for (const r of ranges.values()) if (r.file === file && r.covered === covered) for (let n = r.range.start.row; n <= r.range.end.row; n++) rows.add(n);
    return [...rows].sort((a, b) => a - b);
  };
  const missed: Coverage['missed'] = [];
  let hit = 0;
  let total = 0;
  for (const source of rego) {
    const covered = rowsOf(source.file, true).length;
    const notCovered = rowsOf(source.file, false);
    hit += covered;
    total += covered + notCovered.length;
    for (const n of notCovered) {
      const last = missed.at(-1);
      if (last?.file === source.file && (last.end_line ?? last.line) === n - 1) last.end_line = n;
      else missed.push({ file: source.file, line: n });
    }
  }
  return { language: 'rego', unit: 'lines', covered: hit, total, percent: percentOf(hit, total), missed, unmeasured: bundles };
}

/**
 * Every input evaluated in one `opa eval --coverage`. An evaluation error stops OPA's run where it
 * happens, so when the batch fails each input is traced on its own and the reports are merged.
 */
async function traceCases(opa: string, sources: PolicySource[], inputs: unknown[]): Promise<OpaCoverage[]> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'writ-coverage-'));
  try {
    await Promise.all(sources.map((s) => fsp.writeFile(path.join(dir, s.file), s.text)));
    const files = sources.flatMap((s) => ['-d', s.file]);
    const query = `count([1 | some c in input; data.${ENTRYPOINT.replaceAll('/', '.')} with input as c])`;
    const trace = async (batch: unknown[]) => {
      const run = await runOpa(opa, ['eval', '--coverage', '--format', 'json', ...files, '--stdin-input', query], { cwd: dir, input: JSON.stringify(batch) });
      let answer: { coverage?: OpaCoverage; errors?: unknown[] };
      try {
        answer = JSON.parse(run.stdout);
      } catch {
        throw new Error(`opa eval --coverage failed: ${(run.stderr || run.stdout).trim()}`);
      }
      return { coverage: answer.coverage ?? {}, failed: run.code !== 0 || Boolean(answer.errors?.length) };
    };
    const all = await trace(inputs);
    if (!all.failed || inputs.length <= 1) return [all.coverage];
    const each: OpaCoverage[] = [];
    for (const input of inputs) each.push((await trace([input])).coverage);
    return each;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** The languages below `min` percent (`--min-coverage`). */
export const belowMinimum = (coverages: Coverage[], min: number): Coverage[] => coverages.filter((c) => c.percent < min);
