import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PolicyEngine } from '../src/policy/engine.ts';
import { PolicyStore } from '../src/policy/policies.ts';
import { buildPolicySet, type PolicyArtifacts, type PolicySource } from '../src/policy/set.ts';
import type { PolicyRequest } from '../src/policy/types.ts';
import { ensureOpa } from './helpers/opa.ts';
import { eventually, tempDir } from './helpers/writ.ts';

/** The policy worker: answers like the in-process evaluator, and fails closed when it cannot. */
const request: PolicyRequest = {
  agent: { id: 'agt_1', class: 'assistant', trust_tier: 'T2' },
  action: 'email.send',
  resource: 'email:a@b.c',
  scope: {},
  context: {},
  time: new Date(),
};
/** Allows email; `slow.op` makes a hundred million comparisons (over a second), far past any budget here. */
const SLOW_OP = `package writ

decision := {"allow": true} if input.action == "email.send"

r := numbers.range(1, 10000)

decision := {"allow": true} if {
	input.action == "slow.op"
	count([1 | some i in r; some j in r; i == j]) > 0
}
`;
const slowOp: PolicyRequest = { ...request, action: 'slow.op', resource: 'table:t' };

const artifacts = (cedar: PolicySource[]): PolicyArtifacts => ({ cedar, rego: [], unloaded: [] });
const permitAll = artifacts([{ file: 'a.cedar', text: '@id("all") permit (principal, action, resource);' }]);

test('the worker evaluates against exactly the version asked for', async (t) => {
  const engine = new PolicyEngine(1000);
  try {
    await engine.load('v1', permitAll);
    t.like(await engine.evaluate('v1', request), { outcome: 'allow', determining: ['all'] });
    t.like(await engine.evaluate('v-unknown', request), { outcome: 'error', code: 'policy_not_loaded' });
  } finally {
    await engine.close();
  }
});

test('an evaluation over its time budget fails closed, and the restarted worker keeps serving', async (t) => {
  const slow = await buildPolicySet([{ file: 'slow.rego', text: SLOW_OP }], { opa: ensureOpa() });
  t.deepEqual(slow.problems, []);
  const engine = new PolicyEngine(100);
  try {
    await engine.load('v1', permitAll);
    await engine.load('slow', slow.set!.artifacts);
    const started = Date.now();
    const outcome = await engine.evaluate('slow', slowOp);
    t.like(outcome, { outcome: 'error', code: 'policy_timeout' });
    t.regex(outcome.outcome === 'error' ? outcome.errors[0]! : '', /exceeded its 100 ms budget/);
    t.true(Date.now() - started < 2000);
    t.like(await engine.evaluate('v1', request), { outcome: 'allow' });
  } finally {
    await engine.close();
  }
});

test('evaluations wait for a load in flight instead of spending their budget behind it', async (t) => {
  const huge = artifacts([{ file: 'huge.cedar', text: Array.from({ length: 3000 }, (_, i) => `@id("p${i}") permit (principal, action == Action::"a${i}.b", resource);`).join('\n') }]);
  // The load takes well over a second; the evaluation's budget is a quarter of that.
  const engine = new PolicyEngine(250);
  try {
    await engine.load('v1', permitAll);
    const started = Date.now();
    const loading = engine.load('huge', huge);
    t.like(await engine.evaluate('v1', request), { outcome: 'allow' });
    await loading;
    t.true(Date.now() - started > 250, 'the load did outlast the budget, so the test proves something');
  } finally {
    await engine.close();
  }
});

test('a load in flight when the worker restarts is carried over to the new worker, not lost', async (t) => {
  const rules = await buildPolicySet([{ file: 'rules.rego', text: SLOW_OP }], { opa: ensureOpa() });
  const engine = new PolicyEngine(200);
  try {
    await engine.load('v1', rules.set!.artifacts);
    const slow = engine.evaluate('v1', slowOp);
    await null; // the evaluation is sent before the load below
    const loading = engine.load('v2', permitAll);
    t.like(await slow, { outcome: 'error', code: 'policy_timeout' });
    await loading;
    t.like(await engine.evaluate('v2', request), { outcome: 'allow', determining: ['all'] });
    t.like(engine.status('v2'), { ready: true, restarts: 1 });
  } finally {
    await engine.close();
  }
});

test('after close every evaluation is an error, never an allow', async (t) => {
  const engine = new PolicyEngine(1000);
  await engine.load('v1', permitAll);
  await engine.close();
  t.like(await engine.evaluate('v1', request), { outcome: 'error' });
});

async function openStore(files: Record<string, string>, timeoutMs: number): Promise<PolicyStore> {
  const dir = await tempDir('writ-policies-');
  for (const [file, text] of Object.entries(files)) await fs.writeFile(path.join(dir, file), text);
  return PolicyStore.open(dir, { timeoutMs, opa: ensureOpa() });
}

test('however often the worker restarts, it reloads the active set and the next request is decided by the policy', async (t) => {
  const store = await openStore({ 'rules.rego': SLOW_OP }, 200);
  try {
    const set = store.current;
    for (let n = 1; n <= 5; n++) {
      const outcome = await store.evaluate(set, slowOp);
      t.regex(outcome.outcome === 'error' ? outcome.errors[0]! : '', /exceeded its 200 ms budget/, `restart ${n}`);
    }
    t.like(await store.evaluate(set, request), { outcome: 'allow', determining: ['rego:rules.rego'] });
  } finally {
    await store.close();
  }
});

test('the status says how often the worker restarted and why, and whether it holds the active set', async (t) => {
  const store = await openStore({ 'rules.rego': SLOW_OP }, 200);
  try {
    const { hash } = store.current;
    t.like(store.state.worker, { ready: true, loaded: [hash], restarts: 0 });
    t.is(store.state.worker.last_restart, undefined);
    await store.evaluate(store.current, slowOp);
    // The evaluation that ran out of time restarted the worker, which is loading the set again.
    t.like(store.state.worker, { ready: false, loaded: [], restarts: 1 });
    t.regex(store.state.worker.last_restart?.reason ?? '', /exceeded its 200 ms budget/);
    await eventually(() => store.state.worker.ready, 'the restarted worker to hold the set');
    t.like(store.state.worker, { ready: true, loaded: [hash], restarts: 1 });
  } finally {
    await store.close();
  }
});

test('a set serves only once the worker has warmed it up, when it loads and after every restart', async (t) => {
  const store = await openStore({ 'email.cedar': '@id("email") permit (principal, action == Action::"email.send", resource);', 'rules.rego': SLOW_OP }, 200);
  try {
    t.true(store.state.worker.ready);
    t.true((store.state.worker.warm_up?.rounds ?? 0) >= 1, 'the load was warmed up before the set was ready');
    await store.evaluate(store.current, slowOp);
    t.false(store.state.worker.ready);
    t.is(store.state.worker.warm_up, undefined, 'a new worker has warmed up nothing yet');
    await eventually(() => store.state.worker.ready, 'the restarted worker to hold the set');
    t.true((store.state.worker.warm_up?.rounds ?? 0) >= 1, 'the reload was warmed up before the set was ready');
  } finally {
    await store.close();
  }
});


test('while the server is busy elsewhere (atRest false) even a fast Cedar set goes to the worker, and decides the same', async (t) => {
  let atRest = true;
  const cedar = await PolicyStore.open(path.join(import.meta.dirname, '..', 'policies'), { timeoutMs: 1000, atRest: () => atRest });
  try {
    const engine = (cedar as unknown as { engine: { busy: boolean } }).engine;
    const here = cedar.evaluate(cedar.current, request);
    t.false(engine.busy, 'at rest the event loop decides: nothing waits for the worker');
    atRest = false;
    const there = cedar.evaluate(cedar.current, request);
    t.true(engine.busy, 'with the log busy, the worker decides');
    t.deepEqual(await there, await here);
  } finally {
    await cedar.close();
  }
});

test('at rest a Cedar set is decided on the event loop, exactly as the worker decides it under load; a Rego set never is', async (t) => {
  const cedar = await PolicyStore.open(path.join(import.meta.dirname, '..', 'policies'), { timeoutMs: 1000 });
  const rego = await openStore({ 'rules.rego': SLOW_OP }, 1000);
  try {
    const inline = (store: PolicyStore) => (store as unknown as { inline?: unknown }).inline;
    t.truthy(inline(cedar), 'the shipped Cedar policies are fast: taken on the event loop at rest');
    t.is(inline(rego), undefined, 'a Rego rule can iterate without bound over a request: only the worker, which can be stopped, evaluates it');
    const requests: PolicyRequest[] = [
      request,
      { ...request, action: 'bank.transfer', resource: 'account:checking', value: 20_000, currency: 'EUR' },
      { ...request, action: 'shell.execute', resource: 'env:production' },
    ];
    const set = cedar.current;
    const atRest = [];
    for (const r of requests) atRest.push(await cedar.evaluate(set, r));
    // Many at once: all but the first wait for the worker.
    const underLoad = (await Promise.all(Array.from({ length: 30 }, (_, i) => cedar.evaluate(set, requests[i % 3]!)))).slice(3, 6);
    t.deepEqual(underLoad, atRest);
    t.deepEqual(atRest.map((d) => d.outcome), ['allow', 'allow', 'deny']);
    t.not(atRest[0]!.outcome === 'allow' && atRest[1]!.outcome === 'allow' && atRest[0]!.tier === atRest[1]!.tier, true, 'a transfer of 20,000 is allowed at a higher tier than an email');
  } finally {
    await cedar.close();
    await rego.close();
  }
  t.like(await cedar.evaluate(cedar.current, request), { outcome: 'error' }, 'after close nothing is decided here either: never an allow');
});
