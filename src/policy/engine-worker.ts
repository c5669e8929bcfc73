import { parentPort } from 'node:worker_threads';
import { instantiate, warmUp, type Evaluator } from './set.ts';
import { failure, type PolicyRequest } from './types.ts';
import type { ToWorker, FromWorker, HeldSet, WarmUp } from './engine.ts';

/**
 * Evaluates policies off the event loop. Holds a few compiled versions so that requests pinned
 * to the previous set finish on it after a reload.
 */
const KEEP = 4;
const sets = new Map<string, { evaluator: Evaluator; warmUp: WarmUp }>();
const port = parentPort!;
const send = (message: FromWorker) => port.postMessage(message);
const holds = (): HeldSet[] => [...sets].map(([version, { warmUp }]) => ({ version, warmUp }));

port.on('message', (message: ToWorker) => {
  if (message.type === 'load') {
    let evaluator: Evaluator;
    try {
      evaluator = instantiate(message.artifacts);
    } catch (err) {
      return send({ type: 'loaded', version: message.version, error: (err as Error).message, holds: holds() });
    }
    sets.delete(message.version);
    sets.set(message.version, { evaluator, warmUp: warmUp(evaluator) });
    while (sets.size > KEEP) sets.delete(sets.keys().next().value!);
    return send({ type: 'loaded', version: message.version, holds: holds() });
  }
  const results: FromWorker & { type: 'results' } = { type: 'results', results: [] };
  for (const job of message.jobs) {
    const set = sets.get(job.version);
    results.results.push({
      id: job.id,
      outcome: set ? set.evaluator.evaluate(job.request as PolicyRequest) : failure('policy_not_loaded', `policy set ${job.version} is not loaded`),
    });
  }
  send(results);
});

send({ type: 'ready' });
