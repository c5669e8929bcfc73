import test from 'ava';
import { PolicyEngine } from '../src/policy/engine.ts';
import { hashSources } from '../src/policy/policies.ts';
import type { PolicyRequest } from '../src/policy/types.ts';

/** The policy worker: answers like the in-process evaluator, and fails closed when it cannot. */
const request: PolicyRequest = {
  agent: { id: 'agt_1', class: 'assistant', trust_tier: 'T2' },
  action: 'email.send',
  resource: 'email:a@b.c',
  scope: {},
  context: {},
  time: new Date(),
};
const permitAll = [{ file: 'a.cedar', text: '@id("all") permit (principal, action, resource);' }];
// Thousands of policies take the worker far longer to compile than a 20 ms budget.
const huge = [{ file: 'huge.cedar', text: Array.from({ length: 4000 }, (_, i) => `@id("p${i}") permit (principal, action == Action::"a${i}.b", resource) when { context.scope has x${i} };`).join('\n') }];

test('the worker evaluates against exactly the version asked for', async (t) => {
  const engine = new PolicyEngine(1000);
  try {
    await engine.load('v1', permitAll);
    t.like(await engine.evaluate('v1', request), { outcome: 'allow', determining: ['all'] });
    t.like(await engine.evaluate('v-unknown', request), { outcome: 'error' });
  } finally {
    await engine.close();
  }
});

test('an evaluation over its time budget fails closed, and the restarted worker keeps serving', async (t) => {
  const engine = new PolicyEngine(20);
  try {
    await engine.load('v1', permitAll);
    const slowLoad = engine.load(hashSources(huge), huge).catch((err: Error) => err);
    const outcome = await engine.evaluate('v1', request);
    t.is(outcome.outcome, 'error');
    t.regex(outcome.outcome === 'error' ? outcome.errors[0]! : '', /exceeded its 20 ms budget/);
    t.true((await slowLoad) instanceof Error, 'the interrupted load is reported, not silently dropped');
    t.like(await engine.evaluate('v1', request), { outcome: 'allow' });
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
