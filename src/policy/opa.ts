import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBundle, type WasmBundle } from './bundle.ts';
import type { PolicyProblem } from './types.ts';

/**
 * OPA's own compiler, as a separate binary: the one pinned in adapters/opa (built by
 * `npm run build:opa`), or any other named by WRIT_OPA. Only compiling and formatting need it;
 * evaluation runs the compiled Wasm in-process, so prebuilt bundles work without it.
 */
export const ENTRYPOINT = 'writ/decision';
/** The package root, from src/ or from the compiled dist/src/ alike. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}
const ROOT = packageRoot();
export const PINNED_OPA = path.join(ROOT, 'adapters/opa/bin/opa');
export const HOW_TO_GET_OPA = 'run `npm run build:opa` (builds the OPA version pinned in adapters/opa/go.mod with Go) or set WRIT_OPA to an opa binary';

/** WRIT_OPA if it names an existing file, else the pinned build if it exists. */
export function findOpa(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.WRIT_OPA) return fs.existsSync(env.WRIT_OPA) ? env.WRIT_OPA : undefined;
  return fs.existsSync(PINNED_OPA) ? PINNED_OPA : undefined;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function runOpa(opa: string, args: string[], options: { cwd?: string; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(opa, args, { cwd: options.cwd, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') return reject(new Error(`could not run ${opa}: ${err.message}`));
      resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Parse and type-check with `opa check`; problems carry file:line:col. */
export async function checkRego(opa: string, dir: string, files: string[]): Promise<PolicyProblem[]> {
  const run = await runOpa(opa, ['check', '--format', 'json', ...files], { cwd: dir });
  if (run.code === 0) return [];
  try {
    const { errors } = JSON.parse(run.stdout || run.stderr) as { errors?: Array<{ message: string; code?: string; location?: { file?: string; row?: number; col?: number } }> };
    if (errors?.length) {
      return errors.map((e) => ({
        file: path.relative(dir, path.resolve(dir, e.location?.file ?? files[0] ?? '?')),
        line: e.location?.row ?? 1,
        column: e.location?.col ?? 1,
        message: `${e.code ? `${e.code}: ` : ''}${e.message}`,
      }));
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return [{ file: files[0] ?? '?', line: 1, column: 1, message: (run.stderr || run.stdout).trim() }];
}

/** Compiles Rego files into one Wasm module with the `writ/decision` entrypoint. */
export async function buildRego(opa: string, dir: string, files: string[]): Promise<{ bundle?: WasmBundle; problems: PolicyProblem[] }> {
  const problems = await checkRego(opa, dir, files);
  if (problems.length) return { problems };
  const out = await fsp.mkdtemp(path.join(os.tmpdir(), 'writ-opa-'));
  try {
    const target = path.join(out, 'bundle.tar.gz');
    const run = await runOpa(opa, ['build', '-t', 'wasm', '-e', ENTRYPOINT, '-o', target, ...files], { cwd: dir });
    if (run.code !== 0) return { problems: [{ file: files[0] ?? '?', line: 1, column: 1, message: (run.stderr || run.stdout).trim() }] };
    return { bundle: readBundle(await fsp.readFile(target)), problems: [] };
  } finally {
    await fsp.rm(out, { recursive: true, force: true });
  }
}
