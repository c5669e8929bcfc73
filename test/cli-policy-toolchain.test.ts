import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ensureOpa } from './helpers/opa.ts';
import { ROOT, tempDir, writCli, writCliWith } from './helpers/writ.ts';

/**
 * The policy author's toolchain beyond pass/fail: reports for CI (JSON, JUnit), traces, coverage,
 * local entities and data for `eval`, and `check` step by step. Run as authors run it: the real
 * CLI, real cedar-wasm, the real OPA binary and opa-wasm.
 */
const EXAMPLES = path.join(ROOT, 'policies/examples');
const EXAMPLE_TESTS = path.join(EXAMPLES, 'examples.test.json');
let opa: string;
test.before(() => {
  opa = ensureOpa();
});

async function writeFiles(files: Record<string, string | unknown>): Promise<string> {
  const dir = await tempDir('writ-toolchain-');
  for (const [name, content] of Object.entries(files)) await fs.writeFile(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

const EMAIL_POLICY = '@id("email") permit (principal, action in Action::"email.*", resource);\n';
const MIXED_CASES = [
  { name: 'email is fine', request: { action: 'email.send', resource: 'email:a@b.c' }, expect: { decision: 'allow', tier: 'standard' } },
  { name: 'bank needs a person', request: { action: 'bank.transfer', resource: 'account:x' }, expect: { decision: 'escalate', tier: 'sensitive' } },
];

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/**
 * A strict well-formedness check (Node has no XML parser and the project has none): the XML
 * declaration, then one root element; every character is consumed by a declaration, a tag with
 * double-quoted attributes, or text; tags nest and close in order; `&` appears only in the five
 * predefined entities or character references; no character XML 1.0 forbids. Returns the tree,
 * with entities decoded, or throws saying where it broke.
 */
function parseXml(xml: string): XmlElement {
  if (/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u.test(xml)) throw new Error('a character XML 1.0 does not allow');
  const decode = (raw: string, where: number) => {
    if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(raw)) throw new Error(`a bare & at ${where}`);
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    return raw.replace(/&(#x[0-9a-fA-F]+|#\d+|\w+);/g, (_, ref: string) =>
      ref.startsWith('#x') ? String.fromCodePoint(parseInt(ref.slice(2), 16)) : ref.startsWith('#') ? String.fromCodePoint(Number(ref.slice(1))) : named[ref]!,
    );
  };
  const declaration = /^<\?xml version="1\.0" encoding="UTF-8"\?>\n/.exec(xml);
  if (!declaration) throw new Error('no XML declaration');
  const token = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>|([^<]+)/y;
  token.lastIndex = declaration[0].length;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (token.lastIndex < xml.length) {
    const at = token.lastIndex;
    const m = token.exec(xml);
    if (!m) throw new Error(`not XML at offset ${at}: ${JSON.stringify(xml.slice(at, at + 40))}`);
    const [, closing, name, attrText, selfClosing, text] = m;
    if (text !== undefined) {
      if (text.includes(']]>')) throw new Error(`"]]>" in text at ${at}`);
      if (stack.length) stack.at(-1)!.text += decode(text, at);
      else if (text.trim()) throw new Error(`text outside the root at ${at}`);
      continue;
    }
    if (closing) {
      const open = stack.pop();
      if (open?.name !== name || attrText || selfClosing) throw new Error(`</${name}> at ${at} closes ${open ? `<${open.name}>` : 'nothing'}`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const [, key, value] of attrText!.matchAll(/([A-Za-z_][\w.-]*)="([^"]*)"/g)) {
      if (key! in attrs) throw new Error(`attribute ${key} twice at ${at}`);
      attrs[key!] = decode(value!, at);
    }
    const element: XmlElement = { name: name!, attrs, children: [], text: '' };
    if (stack.length) stack.at(-1)!.children.push(element);
    else if (root) throw new Error(`a second root element at ${at}`);
    else root = element;
    if (!selfClosing) stack.push(element);
  }
  if (stack.length) throw new Error(`<${stack.at(-1)!.name}> is never closed`);
  if (!root) throw new Error('no root element');
  return root;
}

test('the XML check itself refuses what is not well-formed', (t) => {
  const head = '<?xml version="1.0" encoding="UTF-8"?>\n';
  t.notThrows(() => parseXml(`${head}<a x="1 &amp; 2"><b/>t &lt; u</a>\n`));
  for (const bad of ['<a><b></a></b>', '<a x="1 & 2"/>', '<a>1 < 2</a>', '<a x=1/>', '<a/><b/>', '<a>', '<a>\u0001</a>', '<a>]]></a>']) {
    t.throws(() => parseXml(`${head}${bad}\n`), undefined, bad);
  }
});

test('`writ policy test` with no arguments, in a fresh checkout, runs the shipped policies\' own cases and passes', async (t) => {
  const run = await writCliWith({ WRIT_POLICIES: '' }, 'policy', 'test');
  t.is(run.code, 0, run.out);
  t.regex(run.out, /^policies\/default\.test\.json$/m);
  t.regex(run.out, /^\d+ passed, 0 failed$/m);
  t.notRegex(run.out, /usage:/);
});

test('`writ policy test --format json` prints one document: each case with file, expected, actual and every engine\'s part; exit 1 on a failure', async (t) => {
  const dir = await writeFiles({ 'p.cedar': EMAIL_POLICY, 'p.test.json': MIXED_CASES });
  const run = await writCli('policy', 'test', '--format', 'json', '--policies', dir);
  t.is(run.code, 1);
  const report = JSON.parse(run.out);
  t.like(report, { passed: 1, failed: 1, errors: [] });
  t.is(typeof report.policy_set, 'string');
  const file = path.relative(ROOT, path.join(dir, 'p.test.json'));
  t.like(report.cases[0], { name: 'email is fine', file, passed: true, expected: { decision: 'allow', tier: 'standard' }, actual: { decision: 'allow', tier: 'standard' }, determining: ['email'] });
  t.like(report.cases[0].parts[0], { engine: 'cedar', outcome: 'allow', tier: 'standard', determining: ['email'] });
  t.is(typeof report.cases[0].parts[0].ms, 'number');
  t.like(report.cases[1], { name: 'bank needs a person', passed: false, expected: { decision: 'escalate' }, actual: { decision: 'deny' }, outcome: 'deny' });
  t.like(report.cases[1].parts[0], { engine: 'cedar', outcome: 'not_applicable', reasons: ['no Cedar policy permits or forbids this request'] });
});

test('`writ policy test --format json` lists a test file that cannot be read as an error, and exits 1', async (t) => {
  const dir = await writeFiles({ 'p.cedar': EMAIL_POLICY, 'a.test.json': MIXED_CASES.slice(0, 1), 'b.test.json': [{ name: 'no request' }] });
  const run = await writCli('policy', 'test', '--format', 'json', '--policies', dir);
  t.is(run.code, 1);
  const report = JSON.parse(run.out);
  t.like(report, { passed: 1, failed: 0 });
  t.is(report.errors.length, 1);
  t.regex(report.errors[0].file, /b\.test\.json$/);
  t.regex(report.errors[0].message, /request/);
});

test('`writ policy test --format junit` is well-formed JUnit XML: a suite per file, a case per case, a failure with the trace; names are escaped', async (t) => {
  const awkward = 'quotes " and \' <tags> & ]]> a\nnewline and a \u0001 control';
  const cases = [...MIXED_CASES, { ...MIXED_CASES[0], name: awkward }];
  const dir = await writeFiles({ 'p.cedar': EMAIL_POLICY, 'p.test.json': cases, 'q.test.json': [{ name: 'no request' }] });
  const run = await writCli('policy', 'test', '--format', 'junit', '--policies', dir);
  t.is(run.code, 1);
  const root = parseXml(run.out);
  t.is(root.name, 'testsuites');
  t.like(root.attrs, { tests: '4', failures: '1', errors: '1' });
  const [p, q] = root.children;
  t.is(root.children.length, 2);
  t.like(p!, { name: 'testsuite', attrs: { name: path.relative(ROOT, path.join(dir, 'p.test.json')), tests: '3', failures: '1', errors: '0' } });
  t.deepEqual(
    p!.children.map((c) => c.name),
    ['testcase', 'testcase', 'testcase'],
  );
  const [passing, failing, escaped] = p!.children;
  t.deepEqual(passing!.children, []);
  t.regex(passing!.attrs.time!, /^\d+\.\d+$/);
  t.is(failing!.attrs.name, 'bank needs a person');
  t.is(failing!.children[0]!.name, 'failure');
  t.is(failing!.children[0]!.attrs.message, 'expected escalate at sensitive, got deny');
  t.regex(failing!.children[0]!.text, /cedar: not applicable \(no Cedar policy permits or forbids this request\)/);
  t.is(escaped!.attrs.name, awkward.replace('\u0001', '\uFFFD'));
  t.like(q!, { attrs: { tests: '1', errors: '1' } });
  t.is(q!.children[0]!.children[0]!.name, 'error');
});

test('`writ policy test --format junit` on passing cases exits 0, and with --verbose carries each trace in system-out', async (t) => {
  const run = await writCli('policy', 'test', '--format', 'junit', '--verbose', '--policies', path.join(EXAMPLES, 'rego'), EXAMPLE_TESTS);
  t.is(run.code, 0, run.out);
  const suite = parseXml(run.out).children[0]!;
  t.is(suite.children.length, 13);
  for (const testcase of suite.children) {
    t.deepEqual(
      testcase.children.map((c) => c.name),
      ['system-out'],
    );
    t.regex(testcase.children[0]!.text, /^rego:rules\.rego: (allow|deny)/);
  }
});

test('`writ policy test --verbose` shows every case\'s per-engine outcome, what determined it, and timings', async (t) => {
  const dir = await writeFiles({
    'no-shell.cedar': '@id("no-shell") forbid (principal, action == Action::"shell.execute", resource);\n',
    'rules.rego': 'package writ\n\ndecision := {"allow": true, "reasons": ["email is routine"]} if startswith(input.action, "email.")\n',
    'p.test.json': [
      { name: 'email', request: { action: 'email.send', resource: 'email:a@b.c' }, expect: { decision: 'allow' } },
      { name: 'shell', request: { action: 'shell.execute', resource: 'env:prod' }, expect: { decision: 'deny' } },
    ],
  });
  const run = await writCli('policy', 'test', '--verbose', '--policies', dir);
  t.is(run.code, 0, run.out);
  t.regex(run.out, /✔ email \([\d.]+ ms\)\n\s+cedar: not applicable \(.*\) \([\d.]+ ms\)\n\s+rego:rules\.rego: allow at standard by rego:rules\.rego \(email is routine\) \([\d.]+ ms\)\n/);
  t.regex(run.out, /✔ shell \([\d.]+ ms\)\n\s+cedar: deny by no-shell \([\d.]+ ms\)\n\s+rego:rules\.rego: not applicable/);
  const quiet = await writCli('policy', 'test', '--policies', dir);
  t.notRegex(quiet.out, /cedar:/);
});

test('`writ policy test --coverage`: every shipped Cedar policy determines at least one of the shipped cases', async (t) => {
  const run = await writCli('policy', 'test', '--coverage', '--min-coverage', '100', '--policies', path.join(ROOT, 'policies'));
  t.is(run.code, 0, run.out);
  const cedarFiles = (await fs.readdir(path.join(ROOT, 'policies'))).filter((f) => f.endsWith('.cedar'));
  let ids = 0;
  for (const file of cedarFiles) ids += ((await fs.readFile(path.join(ROOT, 'policies', file), 'utf8')).match(/^@id\(/gm) ?? []).length;
  t.regex(run.out, new RegExp(`cedar: 100% — ${ids}/${ids} policies were determining in at least one case`));
  t.regex(run.out, /coverage meets --min-coverage 100%/);
});

test('`writ policy test --coverage` names the Cedar policies no case determined, with file:line; --min-coverage fails under the threshold', async (t) => {
  const dir = await writeFiles({
    'p.cedar': `${EMAIL_POLICY}\n@id("reports") permit (principal, action == Action::"file.read", resource);\n`,
    'p.test.json': MIXED_CASES.slice(0, 1),
  });
  const run = await writCli('policy', 'test', '--coverage', '--policies', dir);
  t.is(run.code, 0, run.out);
  t.regex(run.out, /cedar: 50% — 1\/2 policies were determining in at least one case\n\s+never determining: reports \(.*p\.cedar:3\)/);
  const strict = await writCli('policy', 'test', '--min-coverage', '80', '--policies', dir);
  t.is(strict.code, 1);
  t.regex(strict.out, /1 passed, 0 failed/);
  t.regex(strict.out, /coverage below --min-coverage 80%: cedar 50%/);
  t.is((await writCli('policy', 'test', '--min-coverage', '50', '--policies', dir)).code, 0);
  const json = JSON.parse((await writCli('policy', 'test', '--format', 'json', '--min-coverage', '80', '--policies', dir)).out);
  t.like(json.coverage, { minimum: 80, below: ['cedar'], languages: [{ language: 'cedar', unit: 'policies', covered: 1, total: 2, percent: 50 }] });
  t.like(json.coverage.languages[0].missed, [{ id: 'reports', file: path.relative(ROOT, path.join(dir, 'p.cedar')), line: 3 }]);
  const bad = await writCli('policy', 'test', '--min-coverage', '150', '--policies', dir);
  t.is(bad.code, 2);
  t.regex(bad.out, /--min-coverage must be a percentage from 0 to 100/);
});

test('`writ policy test --coverage` on Rego is OPA\'s line coverage over the cases\' inputs: the example cases cover every line, fewer cases name the lines they miss', async (t) => {
  const rego = path.join(EXAMPLES, 'rego');
  const all = await writCli('policy', 'test', '--coverage', '--min-coverage', '100', '--policies', rego, EXAMPLE_TESTS);
  t.is(all.code, 0, all.out);
  t.regex(all.out, /rego: 100% — OPA line coverage: \d+ lines covered, 0 not/);

  const emailOnly = (JSON.parse(await fs.readFile(EXAMPLE_TESTS, 'utf8')) as Array<{ request: { action: string } }>).filter((c) => c.request.action.startsWith('email.'));
  const dir = await writeFiles({ 'email.test.json': emailOnly });
  const run = await writCli('policy', 'test', '--format', 'json', '--coverage', '--policies', rego, path.join(dir, 'email.test.json'));
  t.is(run.code, 0, run.out);
  const coverage = JSON.parse(run.out).coverage.languages[0];
  t.like(coverage, { language: 'rego', unit: 'lines' });
  t.true(coverage.percent < 100);
  const source = (await fs.readFile(path.join(rego, 'rules.rego'), 'utf8')).split('\n');
  const lineOf = (text: string) => source.findIndex((l) => l.includes(text)) + 1;
  const missed = (line: number) => coverage.missed.some((m: { line: number; end_line?: number }) => m.line <= line && line <= (m.end_line ?? m.line));
  t.true(missed(lineOf('forbids contains "no agent gets a shell"')), 'the shell forbid was never reached');
  t.true(missed(lineOf('startswith(resource_id, "/srv/reports/")')), 'the reports rule body was never evaluated');
  t.false(missed(lineOf('small_mailing if')), 'the email cases evaluate the bound');
});

test('Rego coverage still counts the cases after one whose evaluation fails', async (t) => {
  const dir = await writeFiles({
    'p.rego': [
      'package writ',
      '',
      'x := 1 if input.scope.conflict',
      '',
      'x := 2 if input.scope.conflict',
      '',
      'decision := {"allow": x == 1} if input.scope.conflict',
      '',
      'decision := {"allow": true} if input.scope.fine',
      '',
    ].join('\n'),
    'p.test.json': [
      { name: 'a conflict fails closed', request: { action: 'a.b', resource: 'r:1', scope: { conflict: true } }, expect: { decision: 'deny' } },
      { name: 'the next case', request: { action: 'a.b', resource: 'r:1', scope: { fine: true } }, expect: { decision: 'allow' } },
    ],
  });
  const run = await writCli('policy', 'test', '--format', 'json', '--coverage', '--policies', dir);
  t.is(run.code, 0, run.out);
  const report = JSON.parse(run.out);
  t.is(report.cases[0].outcome, 'error');
  t.like(report.coverage.languages[0], { language: 'rego', percent: 100, missed: [] });
});

test('`writ policy eval --entities`: Cedar entities add parents and attributes to the request\'s agent, and entities of their own', async (t) => {
  const dir = await writeFiles({
    'p.cedar': '@id("treasury") @tier("sensitive") permit (principal in Team::"finance", action in Action::"bank.*", resource) when { principal has desk && principal.desk == "treasury" };\n',
    'request.json': { action: 'bank.transfer', resource: 'account:x', value: 50, agent: { id: 'agt_1', trust_tier: 'T2' } },
    'entities.json': [
      { uid: { type: 'Agent', id: 'agt_1' }, attrs: { desk: 'treasury' }, parents: [{ type: 'Team', id: 'finance' }] },
      { uid: { type: 'Team', id: 'finance' }, attrs: {}, parents: [] },
    ],
    'other-desk.json': [{ uid: { type: 'Agent', id: 'agt_1' }, attrs: { desk: 'sales' }, parents: [{ type: 'Team', id: 'finance' }] }],
  });
  const eval_ = (...extra: string[]) => writCli('policy', 'eval', '--policies', dir, '--request', path.join(dir, 'request.json'), ...extra);
  const without = await eval_();
  t.is(without.code, 0, without.out);
  t.like(JSON.parse(without.out), { decision: 'deny', trace: [{ step: 'cedar', outcome: 'not_applicable' }] });
  const withEntities = await eval_('--entities', path.join(dir, 'entities.json'));
  t.is(withEntities.code, 0, withEntities.out);
  t.like(JSON.parse(withEntities.out), { decision: 'escalate', tier: 'sensitive', determining: ['treasury'] });
  t.like(JSON.parse((await eval_('--entities', path.join(dir, 'other-desk.json'))).out), { decision: 'deny' });
});

test('`writ policy eval --entities` cannot replace what Writ takes from the request (the agent\'s trust tier), and says so', async (t) => {
  const dir = await writeFiles({
    'p.cedar': EMAIL_POLICY,
    'request.json': { action: 'email.send', resource: 'email:a@b.c', agent: { id: 'agt_1' } },
    'entities.json': [{ uid: { type: 'Agent', id: 'agt_1' }, attrs: { trust_tier: 'T1' } }],
    'malformed.json': [{ uid: { type: 'Agent' } }],
  });
  const run = await writCli('policy', 'eval', '--policies', dir, '--request', path.join(dir, 'request.json'), '--entities', path.join(dir, 'entities.json'));
  t.is(run.code, 2);
  t.regex(run.out, /--entities cannot set Agent::"agt_1"\.trust_tier: Writ takes them from the request/);
  const malformed = await writCli('policy', 'eval', '--policies', dir, '--request', path.join(dir, 'request.json'), '--entities', path.join(dir, 'malformed.json'));
  t.is(malformed.code, 2);
  t.regex(malformed.out, /--entities must be Cedar's JSON entity format/);
});

test('`writ policy eval --data` sets OPA\'s data document for Rego, as `opa eval -d` does', async (t) => {
  const dir = await writeFiles({
    'limits.rego': 'package writ\n\ndecision := {"allow": input.value <= data.limits.max, "reasons": [sprintf("limit %v", [data.limits.max])]} if input.action == "bank.transfer"\n',
    'request.json': { action: 'bank.transfer', resource: 'account:x', value: 50 },
    'low.json': { limits: { max: 10 } },
    'high.json': { limits: { max: 100 } },
  });
  const eval_ = (data: string) => writCli('policy', 'eval', '--policies', dir, '--request', path.join(dir, 'request.json'), '--data', path.join(dir, data));
  const high = await eval_('high.json');
  t.is(high.code, 0, high.out);
  t.like(JSON.parse(high.out), { decision: 'allow', reasons: ['limit 100'] });
  t.like(JSON.parse((await eval_('low.json')).out), { decision: 'deny', reasons: ['limit 10'] });
  const none = JSON.parse((await writCli('policy', 'eval', '--policies', dir, '--request', path.join(dir, 'request.json'))).out);
  t.like(none, { decision: 'deny', trace: [{ outcome: 'not_applicable' }] });
});

test('`writ policy eval --data` merges over a bundle\'s own data, and refuses a value both define', async (t) => {
  const src = await writeFiles({
    'limits.rego': 'package writ\n\ndecision := {"allow": input.value <= data.limits.max, "reasons": [data.limits.owner]}\n',
    'data.json': { limits: { owner: 'finance' } },
  });
  const dir = await writeFiles({
    'request.json': { action: 'bank.transfer', resource: 'account:x', value: 50 },
    'max.json': { limits: { max: 100 } },
    'owner.json': { limits: { owner: 'someone else' } },
  });
  const { execFileSync } = await import('node:child_process');
  execFileSync(opa, ['build', '-t', 'wasm', '-e', 'writ/decision', '-o', path.join(dir, 'limits.tar.gz'), 'limits.rego', 'data.json'], { cwd: src });
  const merged = await writCli('policy', 'eval', '--policies', dir, '--request', path.join(dir, 'request.json'), '--data', path.join(dir, 'max.json'));
  t.is(merged.code, 0, merged.out);
  t.like(JSON.parse(merged.out), { decision: 'allow', reasons: ['finance'] });
  const conflict = await writCli('policy', 'eval', '--policies', dir, '--request', path.join(dir, 'request.json'), '--data', path.join(dir, 'owner.json'));
  t.is(conflict.code, 2);
  t.regex(conflict.out, /--data: data\.limits\.owner is defined by the policy bundle and by the data given/);
});

const SCHEMA = `entity Agent = { class: String, trust_tier: String };
entity Resource = { type: String, id: String };
action "*";
action "email.*" in ["*"];
action "email.send" in ["email.*"] appliesTo { principal: Agent, resource: Resource, context: { scope: {}, context: {}, time: { hour: Long, weekday: Long } } };
`;

test('`writ policy check` reports each step: parse, schema, rego compile', async (t) => {
  const shipped = await writCli('policy', 'check', '--policies', path.join(ROOT, 'policies'));
  t.is(shipped.code, 0, shipped.out);
  t.regex(shipped.out, /^ {2}parse: OK \(3 Cedar file\(s\), \d+ policies: bank\.cedar, email\.cedar, shell\.cedar\)$/m);
  t.regex(shipped.out, /^ {2}schema: skipped \(no schema\.cedarschema\)$/m);
  t.regex(shipped.out, /^ {2}rego compile: skipped \(no \.rego files or bundles\)$/m);
  const valid = await writeFiles({ 'p.cedar': '@id("email") permit (principal, action == Action::"email.send", resource) when { principal.class == "x" };\n', 'schema.cedarschema': SCHEMA, 'p.rego': 'package writ\n\ndecision := {"allow": true} if input.action == "email.send"\n' });
  const run = await writCli('policy', 'check', '--policies', valid);
  t.is(run.code, 0, run.out);
  t.regex(run.out, /parse: OK \(1 Cedar file\(s\), 1 policy: p\.cedar\)\n\s+schema: OK \(1 policy valid against schema\.cedarschema\)\n\s+rego compile: OK \(1 module\(s\) with writ\/decision: p\.rego\)\nOK /);
});

test('`writ policy check` names a schema violation under the schema step, with file:line:col, and exits 1', async (t) => {
  const dir = await writeFiles({ 'p.cedar': '// a comment\n@id("colour")\npermit (principal, action == Action::"email.send", resource) when { principal.colour == "x" };\n', 'schema.cedarschema': SCHEMA });
  const run = await writCli('policy', 'check', '--policies', dir);
  t.is(run.code, 1);
  t.regex(run.out, /parse: OK .*\n\s+schema: 1 problem\n\s+\S*p\.cedar:3:\d+: .*colour/);
  t.regex(run.out, /^FAILED .*: 1 problem$/m);
  const json = await writCli('policy', 'check', '--format', 'json', '--policies', dir);
  t.is(json.code, 1);
  const report = JSON.parse(json.out);
  t.false(report.ok);
  t.like(report.steps, [{ step: 'parse', status: 'ok' }, { step: 'schema', status: 'problems' }, { step: 'rego compile', status: 'skipped' }]);
  t.like(report.steps[1].problems[0], { line: 3 });
  t.regex(report.steps[1].problems[0].file, /p\.cedar$/);
  t.is(report.policy_set, undefined);
});

test('`writ policy check --format json` on a good set says ok, with every step and the set hash', async (t) => {
  const run = await writCli('policy', 'check', '--format', 'json', '--policies', path.join(EXAMPLES, 'rego'));
  t.is(run.code, 0, run.out);
  const report = JSON.parse(run.out);
  t.like(report, { ok: true, steps: [{ step: 'parse', status: 'skipped' }, { step: 'schema', status: 'skipped' }, { step: 'rego compile', status: 'ok', problems: [] }] });
  t.regex(report.policy_set, /^[A-Za-z0-9+/]{43}=$/);
  const bad = await writCli('policy', 'check', '--format', 'yaml', '--policies', path.join(EXAMPLES, 'rego'));
  t.is(bad.code, 2);
});
