// Builds the dashboard into dist/dashboard: the page script and the log verifier's worker,
// bundled and minified by esbuild (ES2022 modules: every browser of the last three years), the
// stylesheet, and the HTML shell. No CDN, nothing fetched at run time.
import * as esbuild from 'esbuild';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, '..', 'dist', 'dashboard');
await fs.rm(out, { recursive: true, force: true });
await fs.mkdir(out, { recursive: true });
const entries = (await fs.readdir(path.join(here, 'src'))).filter((f) => /^(app|.*-worker)\.ts$/.test(f)).map((f) => path.join(here, 'src', f));
await esbuild.build({
  entryPoints: entries,
  outdir: out,
  bundle: true,
  format: 'esm',
  // Code only some pages need (the log's and receipts' crypto) is a chunk loaded when one opens.
  splitting: true,
  chunkNames: 'chunk-[hash]',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
await fs.copyFile(path.join(here, 'style.css'), path.join(out, 'app.css'));
await fs.copyFile(path.join(here, 'index.html'), path.join(out, 'index.html'));
for (const file of await fs.readdir(path.join(here, 'assets')).catch(() => [])) await fs.copyFile(path.join(here, 'assets', file), path.join(out, file));
