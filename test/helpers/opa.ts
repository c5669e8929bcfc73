import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { findOpa } from '../../src/policy/opa.ts';
import { ROOT } from './writ.ts';

/** The pinned OPA binary, built on first use when missing (the suite must run from a fresh clone). */
export function ensureOpa(): string {
  const found = findOpa();
  if (found) return found;
  execFileSync(process.execPath, [path.join(ROOT, 'adapters/opa/build.js')], { stdio: 'inherit', timeout: 15 * 60_000 });
  const built = findOpa();
  if (!built) throw new Error('the OPA build did not produce adapters/opa/bin/opa');
  return built;
}
