import test from 'ava';
import { PolicyEngine } from '../src/policy/engine.ts';
import { buildPolicySet, type PolicyArtifacts, type PolicySource } from '../src/policy/set.ts';
import type { PolicyRequest } from '../src/policy/types.ts';
import { ensureOpa } from './helpers/opa.ts';

/** The policy worker: answers like the in-process evaluator, and fails closed when it cannot. */
const request: PolicyRequest = {
  agent: { id: 'agt_1', class: 'assistant', trust_tier: 'T2' },
  action: 'email.send',
  resource: 'email:a@b.c',
  scope: {},
  context: {},
  time: new Date(),
};
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
  // 25 million iterations: a rule that, for a request, might as well never finish.
  const slow = await buildPolicySet(
    [{ file: 'slow.rego', text: 'package writ\n\ndecision := {"allow": true} if {\n\tevery i in numbers.range(1, 5000) {\n\t\tevery j in numbers.range(1, 5000) {\n\t\t\ti + j > 0\n\t\t}\n\t}\n}\n' }],
    { opa: ensureOpa() },
  );
  t.deepEqual(slow.problems, []);
  const engine = new PolicyEngine(100);
  try {
    await engine.load('v1', permitAll);
    await engine.load('slow', slow.set!.artifacts);
    const started = Date.now();
    const outcome = await engine.evaluate('slow', request);
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

test('after close every evaluation is an error, never an allow', async (t) => {
  const engine = new PolicyEngine(1000);
  await engine.load('v1', permitAll);
  await engine.close();
  t.like(await engine.evaluate('v1', request), { outcome: 'error' });
});
