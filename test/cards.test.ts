import test from 'ava';
import { cardText } from '../bot/cards.ts';
import type { Approval } from '../src/domain/approvals.ts';
import type { PermissionSummary } from '../src/domain/events.ts';

/** What an approver reads on a card. */
const approval: Approval = {
  id: 'appr_1',
  permission_id: 'perm_1',
  agent_id: 'attester:att_1',
  action: 'refund.issue',
  resource: 'touchpoint:support',
  tier: 'sensitive',
  required: 1,
  votes: [],
  status: 'pending',
  created_at: '2026-11-21T10:00:00.000Z',
  expires_at: '2026-11-21T10:15:00.000Z',
  request_digest: 'q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c=',
};
const permission: PermissionSummary = {
  id: 'perm_1',
  agent: { id: 'attester:att_1', name: 'support OPA', class: 'support-bot', trust_tier: 'unregistered' },
  action: 'refund.issue',
  resource: 'touchpoint:support',
  scope: {},
  context: { escalated_by: 'support OPA (touchpoint support)', reason: 'refund <b>above</b> the limit', amount: 900 },
  tier: 'sensitive',
  status: 'pending',
  expires_at: '2026-11-21T10:15:00.000Z',
  policy: { hash: 'oversight', determining: [] },
};

test("an escalation's card says which engine escalated and why", (t) => {
  const text = cardText(approval, permission);
  t.regex(text, /<b>Escalated by:<\/b> support OPA \(touchpoint support\)/);
  t.regex(text, /<b>Reason:<\/b> refund &lt;b&gt;above&lt;\/b&gt; the limit/);
  t.regex(text, /<b>Context:<\/b> <code>\{"amount":900\}<\/code>/);
  t.regex(text, /<b>Votes:<\/b> 0 of 1/);
});

test('a card shows the digest of exactly the request it asks about', (t) => {
  t.regex(cardText(approval, permission), /<b>Request:<\/b> <code>q1w2e3r4t5y6<\/code>/);
});

test('long agent text is cut on character boundaries before it is escaped', (t) => {
  const reason = `${'&'.repeat(498)}😀😀😀`;
  const text = cardText(approval, { ...permission, context: { reason } });
  const line = text.split('\n').find((l) => l.startsWith('<b>Reason:'))!;
  t.false(/&(?!amp;|lt;|gt;)/.test(line.replace('<b>Reason:</b> ', '')), 'no bare ampersand');
  t.false(/[\ud800-\udbff](?![\udc00-\udfff])/.test(line), 'no half of an emoji');
  t.true(line.endsWith('…'));
});
