import test from 'ava';
import crypto from 'node:crypto';
import { agent, caller, startWrit, type TestWrit } from './helpers/writ.ts';

/**
 * The admin's views behind the dashboard's policies and oversight pages: "try a request" answers
 * what a real request would get and changes nothing; the active set is listed file by file with
 * the ids decisions name; legal bases are counted per agent class over a window.
 */
let w: TestWrit;
test.before(async () => {
  w = await startWrit();
});
test.after.always(() => w?.close());

const tried = (body: Record<string, unknown>) => w.admin('POST', '/api/v1/policies/eval', body);

test('try a request gives the decision, tier and determining policies a real request of the same agent gets', async (t) => {
  const a = await agent(w, { name: 'payer', trust_tier: 'T2' });
  const cases = [
    { action: 'bank.transfer', resource: 'bank:acct-1', value: 50, currency: 'EUR' },
    { action: 'bank.transfer', resource: 'bank:acct-1', value: 50_000, currency: 'EUR' },
    { action: 'shell.execute', resource: 'host:build-1' },
    { action: 'email.send', resource: 'email:client@acme.com', scope: { max_emails: 1 } },
  ];
  const seen: string[] = [];
  for (const request of cases) {
    const dry = await tried({ ...request, agent_id: a.id });
    t.is(dry.status, 200, dry.text);
    const real = await a.call('POST', '/api/v1/permissions', request);
    t.is(real.status, 201, real.text);
    t.is(dry.body.decision, real.body.policy_decision, request.action);
    t.is(dry.body.tier, real.body.tier, request.action);
    // Cedar names determining policies in no fixed order.
    const policy = ({ determining, ...rest }: { determining: string[] }) => ({ ...rest, determining: [...determining].sort() });
    t.deepEqual(policy(dry.body.policy), policy(real.body.policy), 'the same set, determining policies and languages');
    t.deepEqual(dry.body.reasons, real.body.reasons);
    // The dry run ran the real cascade's own steps (less authentication and grants), with the same outcomes.
    const steps = (trace: Array<{ step: string; outcome: string }>) => trace.map(({ step, outcome }) => ({ step, outcome }));
    const ran = new Set(dry.body.trace.map((s: { step: string }) => s.step));
    t.deepEqual([...ran], ['validate_body', 'policy_evaluation', ...(request.action === 'shell.execute' ? [] : ['escalation_routing'])]);
    t.deepEqual(steps(dry.body.trace), steps(real.body.trace.filter((s: { step: string }) => ran.has(s.step))));
    seen.push(`${dry.body.decision}/${dry.body.tier}`);
  }
  t.deepEqual(seen, ['escalate/sensitive', 'escalate/critical', 'deny/standard', 'allow/standard']);
});

test('an agent can be described instead of named: an unregistered one never moves money, a T2 one escalates', async (t) => {
  const anonymous = await tried({ action: 'bank.transfer', resource: 'bank:acct-1', value: 10, currency: 'EUR' });
  t.like(anonymous.body, { decision: 'deny', agent: { class: 'default', trust_tier: 'unregistered' }, policy: { determining: ['bank-registered-only'] } });
  const t2 = await tried({ action: 'bank.transfer', resource: 'bank:acct-1', value: 10, currency: 'EUR', agent: { trust_tier: 'T2' } });
  t.like(t2.body, { decision: 'escalate', tier: 'sensitive', agent: { trust_tier: 'T2' } });
  const marketing = await tried({ action: 'email.send', resource: 'email:all@acme.com', scope: { max_emails: 5000 }, agent: { class: 'marketing', trust_tier: 'T2' } });
  t.like(marketing.body, { decision: 'deny', policy: { determining: ['email-no-marketing-agents'] } });
});

test('try a request has no side effects: no log entry, no permission, no approval', async (t) => {
  const own = await startWrit();
  try {
    const a = await agent(own, { trust_tier: 'T2' });
    const before = {
      log: (await own.admin('GET', '/api/v1/status')).body.log.size,
      permissions: (await own.admin('GET', '/api/v1/permissions')).body.items.length,
      approvals: (await own.admin('GET', '/api/v1/approvals?status=all')).body.approvals.length,
    };
    for (const request of [
      { action: 'bank.transfer', resource: 'bank:acct-1', value: 20_000, currency: 'EUR', agent_id: a.id },
      { action: 'email.send', resource: 'email:x@acme.com', scope: { max_emails: 1 }, agent_id: a.id },
      { action: 'shell.execute', resource: 'host:x' },
    ]) {
      t.is((await own.admin('POST', '/api/v1/policies/eval', request)).status, 200);
    }
    t.is((await own.admin('GET', '/api/v1/status')).body.log.size, before.log, 'nothing was logged');
    t.is((await own.admin('GET', '/api/v1/permissions')).body.items.length, before.permissions, 'no permission was created');
    t.is((await own.admin('GET', '/api/v1/approvals?status=all')).body.approvals.length, before.approvals, 'no approval was opened');
    // The same request for real does each of those: the counts above could have moved.
    t.is((await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'bank:acct-1', value: 20_000, currency: 'EUR' })).status, 201);
    t.true((await own.admin('GET', '/api/v1/status')).body.log.size > before.log);
    t.is((await own.admin('GET', '/api/v1/approvals?status=all')).body.approvals.length, before.approvals + 1);
  } finally {
    await own.close();
  }
});

test('bad input to try a request is refused naming the field (422 for a bad value)', async (t) => {
  const a = await agent(w);
  const base = { action: 'email.send', resource: 'email:x@acme.com' };
  const refusals: Array<[Record<string, unknown>, number, string, string]> = [
    [{ ...base, action: 'send' }, 422, 'invalid_action', 'action'],
    [{ ...base, resource: 'no spaces allowed' }, 422, 'invalid_resource', 'resource'],
    [{ ...base, scope: { max_emails: 'many' } }, 422, 'invalid_value', 'scope.max_emails'],
    [{ ...base, currency: 'eur' }, 422, 'invalid_value', 'currency'],
    [{ ...base, value: -1 }, 422, 'invalid_value', 'value'],
    [{ ...base, agent: { trust_tier: 'T9' } }, 422, 'invalid_value', 'agent.trust_tier'],
    [{ ...base, agent: { class: 'Not A Class' } }, 422, 'invalid_value', 'agent.class'],
    [{ ...base, agent_id: 'agt_nobody' }, 422, 'invalid_value', 'agent_id'],
    [{ ...base, time: 'yesterday' }, 422, 'invalid_value', 'time'],
    [{ ...base, agent_id: a.id, agent: { trust_tier: 'T2' } }, 400, 'invalid_request', 'agent'],
    [{ ...base, ttl: 60 }, 400, 'invalid_request', 'ttl'],
    [{ resource: 'email:x@acme.com' }, 400, 'invalid_request', 'action'],
  ];
  for (const [body, status, code, field] of refusals) {
    const res = await tried(body);
    t.is(res.status, status, JSON.stringify(body));
    t.is(res.body.error.reason_code, code, JSON.stringify(body));
    t.is(res.body.error.detail.field, field, JSON.stringify(body));
  }
});

test('try a request is for admins only', async (t) => {
  const a = await agent(w);
  const body = { action: 'email.send', resource: 'email:x@acme.com' };
  t.is((await a.call('POST', '/api/v1/policies/eval', body)).status, 403);
  t.is((await caller(w.url)('POST', '/api/v1/policies/eval', body)).status, 401);
  t.is((await a.call('GET', '/api/v1/policies/files')).status, 403);
  t.is((await a.call('GET', '/api/v1/oap/legal-bases')).status, 403);
});

test('the active set is listed file by file with the policy ids decisions name', async (t) => {
  const { body } = await w.admin('GET', '/api/v1/policies/files');
  t.is(body.hash, (await w.admin('GET', '/api/v1/policies')).body.hash);
  t.deepEqual(body.files.map((f: { file: string }) => f.file), ['bank.cedar', 'email.cedar', 'shell.cedar']);
  const shell = body.files.find((f: { file: string }) => f.file === 'shell.cedar');
  t.like(shell.policies.find((p: { id: string }) => p.id === 'no-shell'), { effect: 'forbid', line: 2 });
  const bank = body.files.find((f: { file: string }) => f.file === 'bank.cedar');
  t.like(bank.policies.find((p: { id: string }) => p.id === 'bank-large-critical'), { effect: 'permit', tier: 'critical' });
  const listed = new Set(body.files.flatMap((f: { policies: Array<{ id: string }> }) => f.policies.map((p) => p.id)));
  const dry = await tried({ action: 'bank.transfer', resource: 'bank:acct-1', value: 50_000, currency: 'EUR', agent: { trust_tier: 'T2' } });
  for (const id of dry.body.policy.determining) t.true(listed.has(id), `${id} is listed`);
});

test('legal bases are counted per agent class over the window of decided_at', async (t) => {
  const made = await w.admin('POST', '/api/v1/attesters', { name: 'engine', touchpoint_id: 'tp-legal' });
  const attester = caller(w.url, made.body.api_key);
  let seq = 0;
  const attest = (agent_class: string, legal_basis: string, daysAgo = 0) =>
    attester('POST', '/api/v1/oap/attestations', {
      attestation_id: `att-${++seq}`,
      touchpoint_id: 'tp-legal',
      agent_class,
      action_class: 'refund.issue',
      decision: 'allow',
      decided_at: new Date(Date.now() - daysAgo * 86_400_000).toISOString(),
      sequence_number: seq,
      legal_basis,
      evidence_digest: crypto.createHash('sha256').update(String(seq)).digest('hex'),
    });
  for (const [cls, basis, ago] of [['support-bot', 'contract', 0], ['support-bot', 'contract', 1], ['support-bot', 'consent', 2], ['hr-bot', 'legal_obligation', 3], ['hr-bot', 'consent', 40]] as const) {
    t.is((await attest(cls, basis, ago)).status, 201);
  }
  const month = (await w.admin('GET', '/api/v1/oap/legal-bases?days=30')).body;
  t.is(month.days, 30);
  t.true(month.scanned >= 5);
  const support = month.classes.find((c: { agent_class: string }) => c.agent_class === 'support-bot');
  t.like(support, { total: 3, legal_bases: { contract: 2, consent: 1, legitimate_interests: 0 } });
  t.like(month.classes.find((c: { agent_class: string }) => c.agent_class === 'hr-bot'), { total: 1, legal_bases: { legal_obligation: 1, consent: 0 } }, 'the 40-day-old decision is outside the window');
  t.is((await w.admin('GET', '/api/v1/oap/legal-bases')).body.days, 30, '30 days unless told');
  const quarter = (await w.admin('GET', '/api/v1/oap/legal-bases?days=90')).body;
  t.like(quarter.classes.find((c: { agent_class: string }) => c.agent_class === 'hr-bot'), { total: 2, legal_bases: { consent: 1 } });
  for (const days of ['0', '367', 'abc', '1.5']) {
    const res = await w.admin('GET', `/api/v1/oap/legal-bases?days=${days}`);
    t.is(res.status, 422, days);
    t.is(res.body.error.detail.field, 'days');
  }
});
