#!/usr/bin/env node
// Builds the OPA binary pinned in adapters/opa/go.mod (a Go `tool` dependency) into
// adapters/opa/bin/opa (or --out FILE). Go fetches the modules from its module proxy; nothing else
// is downloaded. A first build takes a minute or two, so each phase says what it is doing: on a
// terminal one live status line, elsewhere a line per phase plus one every 10 s, and under CI=true
// only a line as each phase starts and ends.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const outFlag = process.argv.indexOf('--out');
const pinned = path.join(dir, 'bin', 'opa');
const out = outFlag > 0 && process.argv[outFlag + 1] ? path.resolve(process.argv[outFlag + 1]) : pinned;
const PACKAGE = 'github.com/open-policy-agent/opa';
const version = new RegExp(`${PACKAGE.replaceAll('.', '\\.')} (v\\S+)`).exec(readFileSync(path.join(dir, 'go.mod'), 'utf8'))?.[1] ?? '(version in go.mod)';

if (existsSync(out) && !process.argv.includes('--force')) {
  console.log(`opa: ${out} is already built (--force rebuilds)`);
  process.exit(0);
}
let goVersion;
try {
  goVersion = execFileSync('go', ['version'], { encoding: 'utf8' }).trim();
} catch {
  console.error('opa: Go is not installed; install Go 1.24+ or point WRIT_OPA at an opa binary');
  process.exit(1);
}

const ci = Boolean(process.env.CI) && process.env.CI !== 'false';
const live = Boolean(process.stdout.isTTY) && !ci;
const started = Date.now();
const since = (t) => `${((Date.now() - t) / 1000).toFixed(1)} s`;

/**
 * Runs one `go` phase, turning the lines it prints on stderr into a count (`onLine` says whether
 * a line is progress); any other line is kept and shown if the phase fails.
 */
function phase(title, args, onLine) {
  const t = Date.now();
  let count = 0;
  const other = [];
  let stdout = '';
  const status = () => `opa: ${title}… ${onLine.describe(count, false)} (${since(t)})`;
  if (live) process.stdout.write(status());
  else console.log(`opa: ${title}…`);
  // The live line is redrawn each second so its clock runs during a long link, which prints nothing.
  const heartbeat = live ? setInterval(() => process.stdout.write(`\r\x1b[K${status()}`), 1000) : ci ? undefined : setInterval(() => console.log(status()), 10_000);
  let lastDraw = 0;
  return new Promise((resolve) => {
    const child = spawn('go', args, { cwd: dir, env: { ...process.env, CGO_ENABLED: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk) => (stdout += chunk));
    let partial = '';
    child.stderr.on('data', (chunk) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (onLine.counts(line)) count++;
        else if (line.trim()) other.push(line);
      }
      if (live && Date.now() - lastDraw > 100) {
        lastDraw = Date.now();
        process.stdout.write(`\r\x1b[K${status()}`);
      }
    });
    child.on('close', (code) => {
      if (partial.trim()) onLine.counts(partial) ? count++ : other.push(partial);
      clearInterval(heartbeat);
      const summary = `opa: ${title}: ${code === 0 ? 'done' : 'FAILED'}, ${onLine.describe(count, true)} (${since(t)})`;
      if (live) process.stdout.write(`\r\x1b[K${summary}\n`);
      else console.log(summary);
      if (code !== 0) {
        console.error(other.join('\n') || `go ${args.join(' ')} exited with ${code}`);
        process.exit(1);
      }
      resolve(stdout);
    });
  });
}

console.log(`opa: building OPA ${version} with ${goVersion} into ${out}`);
// `go list -deps` resolves the build's packages, which makes Go download (and print "go:
// downloading …" for) every module the build needs, so the build that follows is compile only.
const packages = await phase('downloading modules', ['list', '-deps', '-f', '{{.ImportPath}}', PACKAGE], {
  counts: (line) => line.startsWith('go: downloading '),
  describe: (n, finished) => (n ? `${n} module(s) fetched` : finished ? 'all in the module cache' : 'checking the module cache'),
});
const total = packages.split('\n').filter(Boolean).length;
// `go build -v` prints each package as it compiles it (not the ones its cache already holds).
await phase(`building opa ${version}`, ['build', '-v', '-o', out, PACKAGE], {
  counts: (line) => /^[\w.-]+(\/[\w.~-]+)*$/.test(line.trim()),
  describe: (n, finished) => `${n} of ${total} packages compiled${finished && n < total ? ', the rest from Go\'s build cache' : ''}`,
});
console.log(`opa: built ${out} (OPA ${version}) in ${since(started)}; ${out === pinned ? 'Writ finds it there' : `set WRIT_OPA=${out} for Writ to use it`}`);
