#!/usr/bin/env node
// Builds the OPA binary pinned in adapters/opa/go.mod (a Go `tool` dependency) into
// adapters/opa/bin/opa. Go fetches the modules from its module proxy; nothing else is downloaded.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(dir, 'bin', 'opa');
if (existsSync(out) && !process.argv.includes('--force')) {
  console.log(`opa: ${out} is already built (--force rebuilds)`);
  process.exit(0);
}
try {
  execFileSync('go', ['version'], { stdio: 'ignore' });
} catch {
  console.error('opa: Go is not installed; install Go 1.24+ or point WRIT_OPA at an opa binary');
  process.exit(1);
}
console.log('opa: building the pinned OPA with `go build` (first time: a minute or two)…');
execFileSync('go', ['build', '-o', out, 'github.com/open-policy-agent/opa'], { cwd: dir, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0' } });
console.log(`opa: built ${out}`);
