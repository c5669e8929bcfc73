import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ensureOpa } from './helpers/opa.ts';
import { agent, startWrit, tempDir } from './helpers/writ.ts';

/** The policy worker in the running server: restarts never leave the active set behind, and the status says so. */
test.before(() => {
  ensureOpa();
});

/** Allows email; `slow.op` makes four hundred million comparisons (seconds), far past the budget here. */
const SLOW_OP = `package writ

decision := {"allow": true} if input.action == "email.send"

r := numbers.range(1, 20000)

decision := {"allow": true} if {
\tinput.action == "slow.op"
\tcount([1 | some i in r; some j in r; i == j]) > 0
}
`;

test('after any number of policy worker restarts requests are decided by the policy again, and GET /api/v1/status says what the worker holds', async (t) => {
  const dir = await tempDir('writ-policies-');
  await fs.writeFile(path.join(dir, 'rules.rego'), SLOW_OP);
  const w = await startWrit({ policies: dir, config: { policyTimeoutMs: 1000 } });
  try {
    const a = await agent(w);
    const policies = async () => (await w.admin('GET', '/api/v1/status')).body.policies;
    const before = await policies();
    t.like(before.worker, { ready: true, loaded: [before.hash], restarts: 0 });
    for (let n = 1; n <= 3; n++) {
      const slow = await a.call('POST', '/api/v1/permissions', { action: 'slow.op', resource: 'table:t' });
      t.is(slow.body.status, 'denied');
      t.regex(slow.body.reasons[0], /exceeded its 1000 ms budget/, `restart ${n}`);
    }
    const email = await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:a@b.c' });
    t.is(email.body.status, 'approved', email.body.reasons?.join('; '));
    t.deepEqual(email.body.policy.determining, ['rego:rules.rego']);
    const after = await policies();
    t.like(after.worker, { ready: true, loaded: [before.hash], restarts: 3 });
    t.regex(after.worker.last_restart.reason, /exceeded its 1000 ms budget/);
    t.deepEqual((await w.admin('GET', '/api/v1/policies')).body.worker, after.worker);
  } finally {
    await w.close();
  }
});
