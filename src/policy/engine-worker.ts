import { parentPort } from 'node:worker_threads';
import { instantiate, type Evaluator } from './set.ts';
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

/**
 * A set's first evaluations in a fresh thread are slow (tens to hundreds of ms) while V8 compiles
 * the engines' Wasm and JS glue; without a warm-up the first real request would spend its budget
 * on that. Every field is set so both engines take their full path; the answers are thrown away.
 */
const WARM_UP_REQUEST: PolicyRequest = {
  agent: { id: 'agt_warm_up', class: 'warm-up', trust_tier: 'unregistered' },
  action: 'writ.warm_up',
  resource: 'writ:warm-up',
  scope: { max: 1 },
  context: { reason: 'warm-up', share: 0.5 },
  value: 1.5,
  currency: 'EUR',
  time: new Date(0),
};
const WARM_UP_ROUNDS = 5;
/** A set slow even when warm stops warming up after this, so it cannot delay serving for long. */
const WARM_UP_MS = 500;

function warmUp(evaluator: Evaluator): WarmUp {
  const started = performance.now();
  let rounds = 0;
  do {
    evaluator.evaluate(WARM_UP_REQUEST);
    rounds++;
  } while (rounds < WARM_UP_ROUNDS && performance.now() - started < WARM_UP_MS);
  return { rounds, ms: Math.round((performance.now() - started) * 1000) / 1000 };
}

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
