import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { ensureOpa } from './helpers/opa.ts';
import { ROOT, tempDir } from './helpers/writ.ts';

/** `npm run build:opa` says what it is doing while it builds, instead of a minute of silence. */
function build(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'adapters/opa/build.js'), ...args], { env: { ...process.env, ...env }, timeout: 14 * 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test.before(() => {
  // Built once already, Go's caches are warm, so the rebuild below is a relink, not a first build.
  ensureOpa();
});

test('under CI=true the OPA build prints one line as each phase starts and one as it ends, then where the binary is', async (t) => {
  t.timeout(15 * 60_000);
  const out = path.join(await tempDir('writ-opa-build-'), 'opa');
  const run = await build({ CI: 'true' }, '--force', '--out', out);
  t.is(run.code, 0, run.stdout + run.stderr);
  const lines = run.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^opa: building OPA v\d+\.\d+\.\d+ with go version go\S+ .* into /);
  t.is(lines[1], 'opa: downloading modules…');
  t.regex(lines[2]!, /^opa: downloading modules: done, (all in the module cache|\d+ module\(s\) fetched) \(\d+\.\d s\)$/);
  t.regex(lines[3]!, /^opa: building opa v\d+\.\d+\.\d+…$/);
  t.regex(lines[4]!, /^opa: building opa v\d+\.\d+\.\d+: done, \d+ of \d+ packages compiled.* \(\d+\.\d s\)$/);
  t.regex(lines[5]!, new RegExp(`^opa: built ${out.replaceAll('/', '\\/')} \\(OPA v\\d+\\.\\d+\\.\\d+\\) in \\d+\\.\\d s; set WRIT_OPA=`));
  t.is(lines.length, 6);
  t.regex(execFileSync(out, ['version'], { encoding: 'utf8' }), /^Version: \d+\.\d+\.\d+/);
  const again = await build({ CI: 'true' }, '--out', out);
  t.is(again.code, 0);
  t.regex(again.stdout, /is already built \(--force rebuilds\)/);
});
