import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { buildPolicySet, evaluate, evaluatorOf, readPolicySources, type PolicySource } from '../src/policy/set.ts';
import { formatProblem, type PolicyRequest } from '../src/policy/types.ts';
import { compileCedar } from '../src/policy/cedar.ts';
import { ROOT } from './helpers/writ.ts';

/** Cedar as policy authors rely on it: entity mapping, tiers, forbid-wins, default deny, fail closed. */
const request = (over: Partial<PolicyRequest> = {}): PolicyRequest => ({
  agent: { id: 'agt_1', class: 'assistant', trust_tier: 'T2' },
  action: 'email.send',
  resource: 'email:client@acme.com',
  scope: {},
  context: {},
  time: new Date('2026-11-18T10:30:00Z'),
  ...over,
});

const compilePolicySet = (sources: PolicySource[]) => buildPolicySet(sources);
const compile = async (files: Record<string, string>) => {
  const { set, problems } = await compilePolicySet(Object.entries(files).map(([file, text]) => ({ file, text })));
  if (!set) throw new Error(problems.map(formatProblem).join('\n'));
  return set;
};

test('actions are members of their category and of "*"; resources expose type and id', async (t) => {
  const set = await compile({
    'a.cedar': `@id("cat") permit (principal, action in Action::"email.*", resource) when { resource.type == "email" && resource.id == "client@acme.com" };`,
    'b.cedar': `@id("all") @tier("sensitive") permit (principal, action in Action::"*", resource) when { resource.type == "file" };`,
  });
  t.like(evaluate(set, request()), { outcome: 'allow', determining: ['cat'], tier: 'standard' });
  t.like(evaluate(set, request({ action: 'file.read', resource: 'file:/srv/a.txt' })), { outcome: 'allow', tier: 'sensitive' });
  t.like(evaluate(set, request({ action: 'email.send', resource: 'email:other@acme.com' })), { outcome: 'deny' });
});

test('principal attributes, scope, context, value, currency and time reach the policy', async (t) => {
  const set = await compile({
    'p.cedar': `@id("p") permit (principal, action, resource) when {
      principal.class == "assistant" && principal.trust_tier == "T2" &&
      context.scope.max_emails == 1 && context.context.reason == "invoice" &&
      context.value == 13 && context.currency == "EUR" &&
      context.time.hour == 10 && context.time.weekday == 3 };`,
  });
  const good = request({ scope: { max_emails: 1 }, context: { reason: 'invoice' }, value: 12.5, currency: 'EUR' });
  t.like(evaluate(set, good), { outcome: 'allow' });
  t.like(evaluate(set, { ...good, agent: { ...good.agent, trust_tier: 'T1' } }), { outcome: 'deny' });
});

test('the highest tier among the determining permits wins', async (t) => {
  const set = await compile({
    'p.cedar': `@id("s") @tier("sensitive") permit (principal, action, resource);
                @id("c") @tier("critical") permit (principal, action, resource) when { context has value && context.value > 100 };`,
  });
  t.like(evaluate(set, request({ value: 5 })), { outcome: 'allow', tier: 'sensitive' });
  t.like(evaluate(set, request({ value: 500 })), { outcome: 'allow', tier: 'critical' });
});

test('forbid beats permit, and the deny names the forbid', async (t) => {
  const set = await compile({
    'p.cedar': `@id("yes") permit (principal, action, resource);
                @id("no") forbid (principal, action == Action::"shell.execute", resource);`,
  });
  t.like(evaluate(set, request({ action: 'shell.execute', resource: 'env:prod' })), { outcome: 'deny', determining: ['no'], languages: ['cedar'] });
});

test('when no permit and no forbid matches, Cedar does not apply and the request is denied by default', async (t) => {
  const set = await compile({ 'p.cedar': `permit (principal, action == Action::"x.y", resource);` });
  const { outcome, parts } = evaluatorOf(set).explain(request());
  t.like(parts, [{ engine: 'cedar', outcome: { outcome: 'not_applicable', reasons: ['no Cedar policy permits or forbids this request'] } }]);
  t.like(outcome, { outcome: 'deny', determining: [], languages: [] });
  t.is(outcome.outcome === 'deny' ? outcome.reasons[0] : '', 'no policy applies to this request (default deny)');
  t.like(evaluate((await compilePolicySet([])).set!, request()), { outcome: 'deny', determining: [], languages: [] });
});

test('a forbid that errors does not let the request through: Writ fails closed where Cedar would skip it', async (t) => {
  const set = await compile({
    'p.cedar': `@id("yes") permit (principal, action, resource);
                @id("broken") forbid (principal, action, resource) when { context.value > 10 };`,
  });
  const outcome = evaluate(set, request());
  t.like(outcome, { outcome: 'error', code: 'policy_error' });
  t.regex(outcome.outcome === 'error' ? outcome.errors[0]! : '', /broken/);
});

test('a syntax error is reported with file, line and column', async (t) => {
  const { set, problems } = await compilePolicySet([{ file: 'bad.cedar', text: '// fine\npermit (principal, action, resource)\nwhen { context.x = };\n' }]);
  t.is(set, undefined);
  t.like(problems[0], { file: 'bad.cedar', line: 3 });
  t.regex(formatProblem(problems[0]!), /^bad\.cedar:3:\d+: /);
});

test('an unknown @tier and a @tier on forbid are refused', async (t) => {
  const a = await compilePolicySet([{ file: 'a.cedar', text: '\n@tier("urgent") permit (principal, action, resource);' }]);
  t.like(a.problems[0], { file: 'a.cedar', line: 2 });
  t.regex(a.problems[0]!.message, /not one of standard, sensitive, critical/);
  const b = await compilePolicySet([{ file: 'b.cedar', text: '@tier("critical") forbid (principal, action, resource);' }]);
  t.regex(b.problems[0]!.message, /permit policies only/);
});

test('with a schema, policies are validated and type errors point at the policy', async (t) => {
  const schema = {
    file: 'schema.cedarschema',
    text: `entity Agent = { class: String, trust_tier: String };
           entity Resource = { type: String, id: String };
           action "*";
           action "email.*" in ["*"];
           action "email.send" in ["email.*"] appliesTo { principal: Agent, resource: Resource, context: {} };`,
  };
  const good = await compilePolicySet([{ file: 'ok.cedar', text: 'permit (principal, action == Action::"email.send", resource) when { principal.class == "x" };' }, schema]);
  t.deepEqual(good.problems, []);
  const bad = await compilePolicySet([{ file: 'bad.cedar', text: '\n\npermit (principal, action == Action::"email.send", resource) when { principal.colour == "x" };' }, schema]);
  t.is(bad.set, undefined);
  t.like(bad.problems[0], { file: 'bad.cedar', line: 3 });
});

test('the policy-set hash changes with any file and only then', async (t) => {
  const sources = await readPolicySources(path.join(ROOT, 'policies'));
  const one = (await compilePolicySet(sources)).set!;
  const same = (await compilePolicySet(sources.map((s) => ({ ...s })))).set!;
  t.is(one.hash, same.hash);
  const changed = (await compilePolicySet(sources.map((s, i) => (i === 0 ? { ...s, text: `${s.text}\n// edit` } : s)))).set!;
  t.not(one.hash, changed.hash);
});

test('the shipped policies: email standard, bank sensitive, large transfers critical, shell forbidden, unregistered agents kept from money', async (t) => {
  const set = (await compilePolicySet(await readPolicySources(path.join(ROOT, 'policies')))).set!;
  t.like(evaluate(set, request()), { outcome: 'allow', tier: 'standard' });
  t.like(evaluate(set, request({ action: 'bank.transfer', resource: 'account:checking', value: 50 })), { outcome: 'allow', tier: 'sensitive' });
  t.like(evaluate(set, request({ action: 'bank.transfer', resource: 'account:checking', value: 10_001 })), { outcome: 'allow', tier: 'critical' });
  t.like(evaluate(set, request({ action: 'shell.execute', resource: 'env:production' })), { outcome: 'deny' });
  t.like(evaluate(set, request({ action: 'bank.transfer', resource: 'account:checking', agent: { id: 'x', class: 'c', trust_tier: 'unregistered' } })), { outcome: 'deny' });
  t.like(evaluate(set, request({ action: 'file.read', resource: 'file:/srv/reports/q3.pdf' })), { outcome: 'allow' });
  t.like(evaluate(set, request({ action: 'file.read', resource: 'file:/etc/passwd' })), { outcome: 'deny' });
});

test('files outside the top level of the policies directory are not part of the active set', async (t) => {
  const dir = await fs.mkdtemp(path.join(ROOT, 'node_modules', '.writ-pol-'));
  await fs.mkdir(path.join(dir, 'examples'));
  await fs.writeFile(path.join(dir, 'examples', 'x.cedar'), 'permit (principal, action, resource);');
  t.deepEqual(await readPolicySources(dir), []);
  await fs.rm(dir, { recursive: true });
});

test('only attributes some policy reads are sent to Cedar, unless a policy uses the whole context', async (t) => {
  const narrow = compileCedar([{ file: 'p.cedar', text: 'permit (principal, action, resource) when { context has currency && principal.class == "x" };' }]).set!;
  t.deepEqual([...narrow.reads!].sort(), ['class', 'currency']);
  const whole = compileCedar([{ file: 'p.cedar', text: 'permit (principal, action, resource) when { context != {} };' }]).set!;
  t.is(whole.reads, undefined);
  // Pruning never changes a decision: a `has` test on a key the request carries still sees it.
  const has = await compile({ 'p.cedar': '@id("f") forbid (principal, action, resource) when { context has currency }; @id("p") permit (principal, action, resource);' });
  t.like(evaluate(has, request({ value: 5, currency: 'EUR' })), { outcome: 'deny', determining: ['f'] });
  t.like(evaluate(has, request()), { outcome: 'allow' });
});

test('a schema that leaves an action outside its category is refused, so `action in` forbids cannot fail open', async (t) => {
  const schema = {
    file: 'schema.cedarschema',
    text: 'entity Agent = { class: String, trust_tier: String };\nentity Resource = { type: String, id: String };\naction "*";\naction "bank.*";\naction "bank.transfer" appliesTo { principal: Agent, resource: Resource, context: {} };',
  };
  const { set, problems } = await compilePolicySet([{ file: 'p.cedar', text: 'forbid (principal, action in Action::"bank.*", resource) when { principal.trust_tier == "unregistered" };' }, schema]);
  t.is(set, undefined);
  t.true(problems.some((p) => p.file === 'schema.cedarschema' && p.line === 5 && /"bank.transfer" must be a member of "bank\.\*" and "\*"/.test(p.message)));
  t.true(problems.some((p) => /"bank\.\*" must be a member of "\*"/.test(p.message)));
});

test('with a schema, requests are validated too: a context the schema declares evaluates, anything else fails closed', async (t) => {
  const text = (context: string) => `entity Agent = { class: String, trust_tier: String };
    entity Resource = { type: String, id: String };
    action "*";
    action "email.*" in ["*"];
    action "email.send" in ["email.*"] appliesTo { principal: Agent, resource: Resource, context: ${context} };`;
  const policy = { file: 'p.cedar', text: '@id("ok") permit (principal, action in Action::"email.*", resource);' };
  const declared = await compile({ 'p.cedar': policy.text, 'schema.cedarschema': text('{ scope: {}, context: {}, time: { hour: Long, weekday: Long } }') });
  t.like(evaluate(declared, request()), { outcome: 'allow', determining: ['ok'] });
  const undeclared = await compile({ 'p.cedar': policy.text, 'schema.cedarschema': text('{}') });
  t.is(evaluate(undeclared, request()).outcome, 'error');
});
