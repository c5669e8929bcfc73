import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { runOpa } from '../src/policy/opa.ts';
import { buildPolicySet, evaluate, evaluatorOf, readPolicySources, type PolicySource } from '../src/policy/set.ts';
import { decisionOf } from '../src/policy/testing.ts';
import { regoInput } from '../src/policy/rego.ts';
import { formatProblem, type PolicyRequest } from '../src/policy/types.ts';
import { ensureOpa } from './helpers/opa.ts';
import { ROOT, tempDir } from './helpers/writ.ts';

/** Rego as policy authors rely on it: OPA's own semantics, in-process, failing closed. */
const EXAMPLES = path.join(ROOT, 'policies/examples');
let opa: string;
test.before(() => {
  opa = ensureOpa();
});

const build = async (sources: PolicySource[]) => buildPolicySet(sources, { opa });
const rego = (text: string, file = 'p.rego'): PolicySource => ({ file, text: `package writ\n\n${text}\n` });
const base: PolicyRequest = { agent: { id: 'a', class: 'c', trust_tier: 'T2' }, action: 'email.send', resource: 'email:a@b.c', scope: {}, context: {}, time: new Date() };

/** A spread of requests over actions, resources, agents, values, scopes and hours. */
function spread(): PolicyRequest[] {
  const out: PolicyRequest[] = [];
  const actions: Array<[string, string[]]> = [
    ['email.send', ['email:client@acme.com', 'file:/srv/x']],
    ['email.draft', ['email:a@b.c']],
    ['bank.transfer', ['account:checking']],
    ['bank.pay', ['api:stripe.com']],
    ['file.read', ['file:/srv/reports/q3.pdf', 'file:/srv/reportsX', 'file:/etc/passwd']],
    ['db.query', ['table:users']],
    ['shell.execute', ['env:production']],
    ['calendar.invite', ['user:bob']],
  ];
  const tiers = ['T1', 'T2', 'T3', 'unregistered'];
  const values = [undefined, 0, 10000, 10000.5, 25000];
  const scopes: Array<Record<string, number>> = [{}, { max_emails: 5 }, { max_emails: 500 }];
  const hours = [3, 8, 12, 17, 18, 23];
  let n = 0;
  for (const [action, resources] of actions) {
    for (const resource of resources) {
      for (const trust_tier of tiers) {
        for (let k = 0; k < 3; k++, n++) {
          const value = values[n % values.length];
          out.push({
            agent: { id: `agt_${n}`, class: 'assistant', trust_tier },
            action,
            resource,
            scope: scopes[(n + k) % scopes.length]!,
            context: { reason: 'differential' },
            ...(value !== undefined ? { value, currency: 'EUR' } : {}),
            time: new Date(Date.UTC(2026, 10, 18, hours[(n * 7 + k) % hours.length]!, 30)),
          });
        }
      }
    }
  }
  return out;
}

test('differential: in-process Rego equals `opa eval` on the same input, and the Cedar twin decides the same', async (t) => {
  const regoSet = (await build(await readPolicySources(path.join(EXAMPLES, 'rego')))).set!;
  const cedarSet = (await build(await readPolicySources(path.join(EXAMPLES, 'cedar')))).set!;
  const requests = spread();
  t.true(requests.length >= 60);

  // One `opa eval` for all of them: the query evaluates writ.decision once per input.
  const dir = await tempDir('writ-diff-');
  await fs.writeFile(path.join(dir, 'requests.json'), JSON.stringify({ requests: requests.map(regoInput) }));
  const run = await runOpa(opa, ['eval', '--format', 'json', '-d', path.join(EXAMPLES, 'rego/rules.rego'), '-d', path.join(dir, 'requests.json'), '[d | some r in data.requests; d := data.writ.decision with input as r]']);
  t.is(run.code, 0, run.stderr);
  const fromOpa = JSON.parse(run.stdout).result[0].expressions[0].value as Array<{ allow: boolean; tier: 'standard' | 'sensitive' | 'critical'; reasons: string[] }>;
  t.is(fromOpa.length, requests.length);

  const seen = new Set<string>();
  requests.forEach((request, i) => {
    const inProcess = evaluate(regoSet, request);
    const expected = fromOpa[i]!;
    const label = `${request.action} ${request.resource} ${request.agent.trust_tier} value=${request.value} hour=${request.time.getUTCHours()}`;
    t.is(inProcess.outcome, expected.allow ? 'allow' : 'deny', label);
    if (inProcess.outcome !== 'error') t.deepEqual(inProcess.reasons, expected.reasons, label);
    if (inProcess.outcome === 'allow') t.is(inProcess.tier, expected.tier, label);
    const twin = decisionOf(evaluate(cedarSet, request));
    t.deepEqual(twin, decisionOf(inProcess), `Cedar twin: ${label}`);
    seen.add(`${twin.decision}/${twin.tier}`);
  });
  // The spread exercises every kind of answer, or the comparison proves little.
  t.deepEqual([...seen].sort(), ['allow/standard', 'deny/standard', 'escalate/critical', 'escalate/sensitive']);
});

test('mixed set: a Cedar forbid overrides a Rego allow, and tiers combine to the highest', async (t) => {
  const { set, problems } = await build([
    { file: 'c.cedar', text: '@id("cedar-ok") permit (principal, action, resource);\n@id("no-shell") forbid (principal, action == Action::"shell.execute", resource);' },
    rego('decision := {"allow": true, "tier": "sensitive", "reasons": ["rego says yes"]}'),
  ]);
  t.deepEqual(problems, []);
  t.like(evaluate(set!, { ...base, action: 'shell.execute', resource: 'env:prod' }), { outcome: 'deny', determining: ['no-shell'] });
  const both = evaluate(set!, base);
  t.like(both, { outcome: 'allow', tier: 'sensitive', reasons: ['rego says yes'], languages: ['cedar', 'rego'] });
  t.deepEqual(both.outcome === 'allow' ? both.determining : [], ['cedar-ok', 'rego:p.rego']);
});

test('mixed set: a Rego deny overrides a Cedar permit, and the set hash covers both languages', async (t) => {
  const cedar = { file: 'c.cedar', text: 'permit (principal, action, resource);' };
  const one = (await build([cedar, rego('decision := {"allow": false, "reasons": ["rego says no"]}')])).set!;
  const other = (await build([cedar, rego('decision := {"allow": true}')])).set!;
  t.like(evaluate(one, base), { outcome: 'deny', reasons: ['rego says no'], languages: ['rego'] });
  t.like(evaluate(other, base), { outcome: 'allow' });
  t.not(one.hash, other.hash);
});

test('a Cedar file of forbids beside Rego rules only takes away: what it does not forbid, Rego decides', async (t) => {
  const { set, problems } = await build([
    { file: 'no-offshore.cedar', text: '@id("no-offshore") forbid (principal, action, resource == Resource::"email:x@offshore.example");' },
    rego('decision := {"allow": true, "reasons": ["email is fine"]} if input.action == "email.send"'),
  ]);
  t.deepEqual(problems, []);
  t.like(evaluate(set!, base), { outcome: 'allow', tier: 'standard', determining: ['rego:p.rego'], reasons: ['email is fine'], languages: ['rego'] });
});

test('a Cedar forbid that matches beats a Rego allow, and the deny names the forbid', async (t) => {
  const set = (await build([
    { file: 'no-offshore.cedar', text: '@id("no-offshore") forbid (principal, action, resource == Resource::"email:x@offshore.example");' },
    rego('decision := {"allow": true, "reasons": ["email is fine"]} if input.action == "email.send"'),
  ])).set!;
  const outcome = evaluate(set, { ...base, resource: 'email:x@offshore.example' });
  t.like(outcome, { outcome: 'deny', determining: ['no-offshore'], languages: ['cedar'] });
});

test('an undefined Rego decision does not apply: a Cedar permit beside it decides, and the explanation says Rego did not apply', async (t) => {
  const set = (await build([
    { file: 'db.cedar', text: '@id("db-read") permit (principal, action == Action::"db.read", resource);' },
    rego('decision := {"allow": true} if input.action == "email.send"'),
  ])).set!;
  const read = { ...base, action: 'db.read', resource: 'table:t' };
  t.like(evaluate(set, read), { outcome: 'allow', determining: ['db-read'], languages: ['cedar'] });
  const { parts } = evaluatorOf(set).explain(read);
  t.like(parts[1], { engine: 'rego:p.rego', outcome: { outcome: 'not_applicable' } });
  t.regex(parts[1]!.outcome.outcome === 'not_applicable' ? parts[1]!.outcome.reasons[0]! : '', /writ\/decision is undefined for this request/);
  t.like(evaluate(set, base), { outcome: 'allow', determining: ['rego:p.rego'], languages: ['rego'] });
});

test('when no policy in either language applies, the request is denied by default', async (t) => {
  const set = (await build([
    { file: 'db.cedar', text: '@id("db-read") permit (principal, action == Action::"db.read", resource);' },
    rego('decision := {"allow": true} if input.action == "email.send"'),
  ])).set!;
  const outcome = evaluate(set, { ...base, action: 'file.read', resource: 'file:/etc/passwd' });
  t.like(outcome, { outcome: 'deny', determining: [], languages: [] });
  t.is(outcome.outcome === 'deny' ? outcome.reasons[0] : '', 'no policy applies to this request (default deny)');
});

test('an error in either language makes the outcome an error with a stable code, whatever the other says', async (t) => {
  const permitAll = { file: 'all.cedar', text: '@id("all") permit (principal, action, resource);' };
  const wrongShape = (await build([permitAll, rego('decision := {"allow": "yes"}')])).set!;
  t.like(evaluate(wrongShape, base), { outcome: 'error', code: 'policy_error' });
  const erroringForbid = { file: 'f.cedar', text: '@id("big") forbid (principal, action, resource) when { context.value > 10 };' };
  const cedarError = (await build([erroringForbid, rego('decision := {"allow": true}')])).set!;
  t.like(evaluate(cedarError, base), { outcome: 'error', code: 'policy_error' });
  const regoTrap = (await build([permitAll, rego('decision := {"allow": true} if input.action == "email.send"\n\ndecision := {"allow": false} if startswith(input.action, "email.")')])).set!;
  t.like(evaluate(regoTrap, base), { outcome: 'error', code: 'policy_error' });
});

test('a Rego syntax error is refused with file, line and column', async (t) => {
  const { set, problems } = await build([rego('decision := {"allow": true\n\nbroken := {', 'bad.rego')]);
  t.is(set, undefined);
  t.is(problems[0]?.file, 'bad.rego');
  t.true((problems[0]?.line ?? 0) >= 3);
  t.regex(formatProblem(problems[0]!), /^bad\.rego:\d+:\d+: rego_parse_error/);
});

test('a decision of the wrong shape fails closed and says what shape is expected', async (t) => {
  const request: PolicyRequest = { agent: { id: 'a', class: 'c', trust_tier: 'T2' }, action: 'email.send', resource: 'email:a@b.c', scope: {}, context: {}, time: new Date() };
  const wrong = (await build([rego('decision := {"allow": "yes"}')])).set!;
  const outcome = evaluate(wrong, request);
  t.is(outcome.outcome, 'error');
  t.regex(outcome.outcome === 'error' ? outcome.errors[0]! : '', /must be \{allow: bool, tier\?, reasons\?\}; allow:/);
  const badTier = evaluate((await build([rego('decision := {"allow": true, "tier": "urgent"}')])).set!, request);
  t.is(badTier.outcome, 'error');
});

test('a runtime error in Rego fails closed', async (t) => {
  // Two complete definitions that both match with different values: OPA's eval_conflict_error.
  const { set } = await build([rego('decision := {"allow": true} if input.action == "email.send"\n\ndecision := {"allow": false} if startswith(input.action, "email.")')]);
  const request: PolicyRequest = { agent: { id: 'a', class: 'c', trust_tier: 'T2' }, action: 'email.send', resource: 'email:a@b.c', scope: {}, context: {}, time: new Date() };
  const outcome = evaluate(set!, request);
  t.is(outcome.outcome, 'error');
  t.regex(outcome.outcome === 'error' ? outcome.errors[0]! : '', /rego p\.rego: evaluation failed/);
});

test('a Rego rule that exhausts its Wasm memory fails closed, and the error says so', async (t) => {
  // Each of the 25 million additions allocates, and OPA's Wasm frees nothing until the evaluation ends.
  const { set } = await build([rego('decision := {"allow": true} if {\n\tevery i in numbers.range(1, 5000) {\n\t\tevery j in numbers.range(1, 5000) {\n\t\t\ti + j > 0\n\t\t}\n\t}\n}')]);
  const outcome = evaluate(set!, base);
  t.like(outcome, { outcome: 'error', code: 'policy_error' });
  t.regex(outcome.outcome === 'error' ? outcome.errors[0]! : '', /rego p\.rego: evaluation failed: opa_malloc: failed/);
});

test('without a compiler, .rego files are reported as not loaded and every request is denied, saying how to get one', async (t) => {
  const { set, warnings } = await buildPolicySet([{ file: 'c.cedar', text: 'permit (principal, action, resource);' }, rego('decision := {"allow": true}')], { opa: undefined });
  t.deepEqual(set?.artifacts.unloaded, ['p.rego']);
  t.regex(warnings[0]!, /not loaded: p\.rego — no OPA compiler; run `npm run build:opa`/);
  const outcome = evaluate(set!, { agent: { id: 'a', class: 'c', trust_tier: 'T2' }, action: 'email.send', resource: 'email:a@b.c', scope: {}, context: {}, time: new Date() });
  t.like(outcome, { outcome: 'error', code: 'policy_not_loaded' });
  t.regex(outcome.outcome === 'error' ? outcome.errors[0]! : '', /policies not loaded: p\.rego/);
});

test('a prebuilt OPA Wasm bundle is used as it is, with no compiler present', async (t) => {
  const dir = await tempDir('writ-bundle-');
  const run = await runOpa(opa, ['build', '-t', 'wasm', '-e', 'writ/decision', '-o', path.join(dir, 'rules.tar.gz'), path.join(EXAMPLES, 'rego/rules.rego')]);
  t.is(run.code, 0, run.stderr);
  const { set, problems } = await buildPolicySet(await readPolicySources(dir), { opa: undefined });
  t.deepEqual(problems, []);
  t.deepEqual(set!.artifacts.unloaded, []);
  const outcome = evaluate(set!, { agent: { id: 'a', class: 'c', trust_tier: 'T2' }, action: 'bank.transfer', resource: 'account:x', value: 20000, scope: {}, context: {}, time: new Date() });
  t.like(outcome, { outcome: 'allow', tier: 'critical', determining: ['rego:rules.tar.gz'] });
});

test('a bundle built for another entrypoint is refused at load, naming the fix', async (t) => {
  const dir = await tempDir('writ-bundle-');
  await fs.writeFile(path.join(dir, 'x.rego'), 'package other\n\nallow := true\n');
  const run = await runOpa(opa, ['build', '-t', 'wasm', '-e', 'other/allow', '-o', path.join(dir, 'other.tar.gz'), path.join(dir, 'x.rego')]);
  t.is(run.code, 0, run.stderr);
  await fs.rm(path.join(dir, 'x.rego'));
  const { set, problems } = await buildPolicySet(await readPolicySources(dir), { opa: undefined });
  t.is(set, undefined);
  t.regex(problems[0]!.message, /has no writ\/decision entrypoint .* build it with -e writ\/decision/);
});
