#!/usr/bin/env node
// The CLI runs the compiled JavaScript in dist/ (built by `npm ci`/`npm run build`): no loader
// threads, no transpiling at start.
import { existsSync } from 'node:fs';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('writ: dist/ is missing; run `npm run build` (npm ci does it) first\n');
  process.exit(1);
}
await import(main.href);
