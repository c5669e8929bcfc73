import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ensureOpa } from './helpers/opa.ts';
import { ROOT, tempDir, writCli } from './helpers/writ.ts';

/** The policy author's toolchain, run as they run it. */
const EXAMPLES = path.join(ROOT, 'policies/examples');
test.before(() => {
  ensureOpa();
});

test('`writ policy check` accepts the shipped and example policies', async (t) => {
  for (const dir of [path.join(ROOT, 'policies'), path.join(EXAMPLES, 'cedar'), path.join(EXAMPLES, 'rego')]) {
    const run = await writCli('policy', 'check', '--policies', dir);
    t.is(run.code, 0, run.out);
    t.regex(run.out, /^OK /m);
  }
});

test('`writ policy check` names file:line:col for broken Cedar and Rego, and exits 1', async (t) => {
  const dir = await tempDir('writ-check-');
  await fs.writeFile(path.join(dir, 'a.cedar'), 'permit (principal, action, resource)\nwhen { context.x = };\n');
  await fs.writeFile(path.join(dir, 'b.rego'), 'package writ\n\ndecision := {\n');
  const run = await writCli('policy', 'check', '--policies', dir);
  t.is(run.code, 1);
  t.regex(run.out, /a\.cedar:2:\d+: /);
  t.regex(run.out, /b\.rego:\d+:\d+: rego_parse_error/);
});

test('`writ policy test`: one test file passes against both the Cedar and the Rego twin', async (t) => {
  for (const twin of ['cedar', 'rego']) {
    const run = await writCli('policy', 'test', '--policies', path.join(EXAMPLES, twin), path.join(EXAMPLES, 'examples.test.json'));
    t.is(run.code, 0, run.out);
    t.regex(run.out, /^13 passed, 0 failed$/m);
  }
});

test('`writ policy test` reports a failure with the actual decision and each engine\'s trace, and exits 1', async (t) => {
  const dir = await tempDir('writ-test-');
  await fs.writeFile(path.join(dir, 'p.cedar'), '@id("email") permit (principal, action in Action::"email.*", resource);\n');
  await fs.writeFile(
    path.join(dir, 'p.test.json'),
    JSON.stringify([
      { name: 'email is fine', request: { action: 'email.send', resource: 'email:a@b.c' }, expect: { decision: 'allow', tier: 'standard' } },
      { name: 'bank needs a person', request: { action: 'bank.transfer', resource: 'account:x' }, expect: { decision: 'escalate', tier: 'sensitive' } },
    ]),
  );
  const run = await writCli('policy', 'test', '--policies', dir);
  t.is(run.code, 1);
  t.regex(run.out, /✔ email is fine/);
  t.regex(run.out, /✘ bank needs a person\n\s+expected escalate at sensitive, got deny\n\s+cedar: not applicable \(no Cedar policy permits or forbids this request\)/);
  t.regex(run.out, /^1 passed, 1 failed$/m);
});

test('`writ policy fmt` formats Cedar and Rego in place; --check lists what it would change', async (t) => {
  const dir = await tempDir('writ-fmt-');
  await fs.writeFile(path.join(dir, 'p.cedar'), 'permit(principal,action,resource);\n');
  await fs.writeFile(path.join(dir, 'p.rego'), 'package writ\ndecision := {"allow": true}   \n');
  const check = await writCli('policy', 'fmt', '--check', '--policies', dir);
  t.is(check.code, 1);
  t.regex(check.out, /would format .*p\.cedar/);
  t.regex(check.out, /would format .*p\.rego/);
  t.is((await writCli('policy', 'fmt', '--policies', dir)).code, 0);
  t.is(await fs.readFile(path.join(dir, 'p.cedar'), 'utf8'), 'permit (principal, action, resource);\n');
  const again = await writCli('policy', 'fmt', '--check', '--policies', dir);
  t.is(again.code, 0, again.out);
  t.regex(again.out, /all policy files are formatted/);
});

test('`writ policy fmt --check` passes on the shipped policies and the examples', async (t) => {
  for (const dir of [path.join(ROOT, 'policies'), path.join(EXAMPLES, 'cedar'), path.join(EXAMPLES, 'rego')]) {
    const run = await writCli('policy', 'fmt', '--check', '--policies', dir);
    t.is(run.code, 0, run.out);
  }
});

test('`writ policy eval` prints the decision, tier, determining policies and trace for one request', async (t) => {
  const run = await writCli('policy', 'eval', '--request', path.join(ROOT, 'fixtures/requests/bank-transfer-large.json'), '--policies', path.join(EXAMPLES, 'cedar'));
  t.is(run.code, 0, run.out);
  const result = JSON.parse(run.out);
  t.like(result, { decision: 'escalate', tier: 'critical' });
  t.deepEqual(result.determining.sort(), ['bank', 'bank-large']);
  t.is(result.trace[0].step, 'cedar');
});

test('`writ policy eval` shows each language\'s part, including one that does not apply', async (t) => {
  const dir = await tempDir('writ-eval-');
  await fs.writeFile(path.join(dir, 'no-offshore.cedar'), '@id("no-offshore") forbid (principal, action, resource == Resource::"email:x@offshore.example");\n');
  await fs.writeFile(path.join(dir, 'rules.rego'), 'package writ\n\ndecision := {"allow": true} if input.action == "email.send"\n');
  await fs.writeFile(path.join(dir, 'request.json'), JSON.stringify({ action: 'email.send', resource: 'email:a@b.c' }));
  const run = await writCli('policy', 'eval', '--request', path.join(dir, 'request.json'), '--policies', dir);
  t.is(run.code, 0, run.out);
  const result = JSON.parse(run.out);
  t.like(result, { decision: 'allow', determining: ['rego:rules.rego'] });
  t.like(result.trace, [{ step: 'cedar', outcome: 'not_applicable' }, { step: 'rego:rules.rego', outcome: 'allow' }]);
});

test('`writ policy test` passes the shipped policies\' own cases, including the bounds a request leaves out', async (t) => {
  const run = await writCli('policy', 'test', '--policies', path.join(ROOT, 'policies'));
  t.is(run.code, 0, run.out);
  t.regex(run.out, /✔ a transfer that names no value is treated as the largest/);
  t.regex(run.out, /✔ a marketing agent that leaves the bound out is unbounded, so refused/);
});
