import { Worker } from 'node:worker_threads';

/**
 * Starts the worker module `name` that sits next to `from` (a module's import.meta.url).
 * Compiled (dist/*.js) the worker runs as it is; from TypeScript sources (tests) it boots tsx first.
 */
export function startWorker(name: string, from: string): Worker {
  const compiled = from.endsWith('.js');
  const entry = new URL(`./${name}.${compiled ? 'js' : 'ts'}`, from);
  return compiled ? new Worker(entry) : new Worker(new URL('./worker-boot.js', import.meta.url), { workerData: { entry: entry.href } });
}
