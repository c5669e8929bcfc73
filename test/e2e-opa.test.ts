import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { ensureOpa } from './helpers/opa.ts';
import { ROOT, approver, caller, eventually, startWrit, tempDir } from './helpers/writ.ts';

/** OPA listens on a Unix socket of the test's own: no port to choose, none to collide. */
function opaCall(socketPath: string, method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath, method, path: urlPath, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * A real OPA server (the pinned binary) with its decision_logs plugin pointed at Writ: every
 * decision it makes shows up once in Writ's log with a witness receipt; escalations reach the
 * approvers.
 */
test('every decision of a real OPA server is witnessed once, and its escalations reach the approvers', async (t) => {
  const opa = ensureOpa();
  const w = await startWrit();
  const dir = await tempDir('writ-opa-');
  const attester = (await w.admin('POST', '/api/v1/attesters', { name: 'payments OPA', touchpoint_id: 'payments-opa' })).body;
  const socket = path.join(dir, 'opa.sock');
  const config = (await fs.readFile(path.join(ROOT, 'adapters/opa/example/opa-config.yaml'), 'utf8'))
    .replace('http://127.0.0.1:8080', w.url)
    .replace('"${WRIT_ATTESTER_KEY}"', JSON.stringify(attester.api_key))
    .replace('max_delay_seconds: 5', 'max_delay_seconds: 1');
  await fs.writeFile(path.join(dir, 'config.yaml'), config);
  const server = spawn(opa, ['run', '--server', '--addr', `unix://${socket}`, '--log-level', 'error', '--config-file', path.join(dir, 'config.yaml'), path.join(ROOT, 'adapters/opa/example/policy.rego')], { stdio: 'ignore' });
  const alice = await approver(w, 'Alice');
  try {
    const ask = (amount: number) => opaCall(socket, 'POST', '/v1/data/payments/authz', { input: { amount, agent: { class: 'billing-bot' } } });
    await eventually(async () => (await opaCall(socket, 'GET', '/health').catch(() => undefined))?.status === 200, 'OPA up');
    const decisions: Array<{ id: string; result: Record<string, unknown> }> = [];
    for (const amount of [50, 500, 50_000, 70]) {
      const res = await ask(amount);
      t.is(res.status, 200);
      t.truthy(res.body.decision_id, 'OPA numbers its decisions');
      decisions.push({ id: res.body.decision_id, result: res.body.result });
    }
    const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
    const attesterCall = caller(w.url, attester.api_key);
    for (const d of decisions) {
      const got = await eventually(async () => {
        const r = await attesterCall('GET', `/api/v1/oap/attestations/${d.id}`);
        return r.status === 200 ? r.body : undefined;
      }, `decision ${d.id} in Writ`, 15_000);
      const expected = d.result.escalate ? 'escalate' : d.result.allow ? 'allow' : 'deny';
      t.like(got.attestation.body, { decision: expected, agent_class: 'billing-bot', action_class: 'payments.authz', legal_basis: 'contract' });
      const { claims } = await verifyReceipt(got.receipt, { jwks });
      t.like(claims, { iss_role: 'witness', attestation_id: d.id, touchpoint_id: 'payments-opa', decision: expected });
    }
    // One more decision, uploaded in a later round than the others: once it is in, nothing before it may be there twice.
    const later = (await ask(60)).body.decision_id;
    await eventually(async () => (await attesterCall('GET', `/api/v1/oap/attestations/${later}`)).status === 200, 'a later upload round', 15_000);
    const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
    for (const d of decisions) {
      t.is(records.filter((r: { type: string; data: { attestation_id?: string } }) => r.type === 'attestation.received' && r.data.attestation_id === d.id).length, 1);
    }
    const escalated = decisions.filter((d) => d.result.escalate).map((d) => d.id);
    t.is(escalated.length, 1);
    const queue = (await alice.call('GET', '/api/v1/approvals')).body.approvals;
    const open = queue.find((a: { resource: string }) => a.resource === 'touchpoint:payments-opa');
    t.truthy(open, 'the escalation reached the approvers');
    await alice.call('POST', `/api/v1/approvals/${open.id}/approve`, {});
    const decided = (await attesterCall('GET', `/api/v1/oap/attestations/${escalated[0]}`)).body;
    t.is(decided.escalation.status, 'approved');
    t.truthy(decided.escalation.human_receipt);
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await w.close();
  }
});
