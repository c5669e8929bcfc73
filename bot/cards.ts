import type { Approval } from '../src/domain/approvals.ts';
import type { PermissionSummary } from '../src/domain/events.ts';

/** The approval card's text (Telegram HTML). Everything from agents is escaped. */
const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const when = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')} UTC`;
/** Shortens agent-supplied text on code-point boundaries, then escapes it (never the other way round). */
const cut = (s: string, n: number) => {
  const points = [...s];
  return escape(points.length > n ? `${points.slice(0, n - 1).join('')}…` : s);
};

export function cardText(approval: Approval, permission: PermissionSummary): string {
  const approvals = approval.votes.filter((v) => v.vote === 'approve');
  const lines = [headline(approval), ''];
  const { agent } = permission;
  lines.push(`<b>Agent:</b> ${cut(agent.name, 100)} (${escape(agent.class)}, ${escape(agent.trust_tier)})`);
  lines.push(`<b>Action:</b> <code>${escape(permission.action)}</code>`);
  lines.push(`<b>Resource:</b> <code>${cut(permission.resource, 300)}</code>`);
  if (permission.value !== undefined) lines.push(`<b>Value:</b> ${permission.value}${permission.currency ? ` ${escape(permission.currency)}` : ''}`);
  if (Object.keys(permission.scope).length) lines.push(`<b>Scope:</b> <code>${cut(JSON.stringify(permission.scope), 500)}</code>`);
  const { reason, escalated_by, ...context } = permission.context as Record<string, unknown>;
  if (escalated_by !== undefined) lines.push(`<b>Escalated by:</b> ${cut(String(escalated_by), 200)}`);
  if (reason !== undefined) lines.push(`<b>Reason:</b> ${cut(String(reason), 500)}`);
  if (Object.keys(context).length) lines.push(`<b>Context:</b> <code>${cut(JSON.stringify(context), 800)}</code>`);
  lines.push(`<b>Tier:</b> ${approval.tier}${approval.tier === 'critical' ? ' (two different approvers, then a delay)' : ''}`);
  lines.push(`<b>Votes:</b> ${approvals.length} of ${approval.required}${approvals.length ? ` — ${approvals.map((v) => cut(v.name, 100)).join(', ')}` : ''}`);
  if (approval.status === 'pending') lines.push(`<b>Expires:</b> ${when(approval.expires_at)}`);
  if (approval.status === 'delay' && approval.delay_until) lines.push(`<b>Runs at:</b> ${when(approval.delay_until)} unless an approver cancels`);
  // The digest an approval binds: the token is minted only for this request (REST approvers can send it back).
  if (approval.request_digest) lines.push(`<b>Request:</b> <code>${escape(approval.request_digest.slice(0, 12))}</code>`);
  lines.push('', `<i>${approval.id}</i>`);
  return lines.join('\n');
}

function headline(approval: Approval): string {
  const last = approval.votes.at(-1);
  const by = last ? ` by ${cut(last.name, 100)}` : '';
  const at = approval.decided_at ? ` at ${when(approval.decided_at)}` : '';
  switch (approval.status) {
    case 'pending':
      return `🔔 <b>Approval needed</b> (${approval.tier})`;
    case 'delay':
      return `⏳ <b>Approved by two — in its delay</b>`;
    case 'approved':
      return `✅ <b>Approved</b>${approval.tier === 'critical' ? ' (delay over)' : by}${at}`;
    case 'denied':
      return `❌ <b>Denied</b>${by}${at}`;
    case 'cancelled':
      if (approval.close_reason === 'revoked') return `🛑 <b>Closed — the agent was revoked</b>${at}`;
      return last?.vote === 'cancel' ? `🛑 <b>Cancelled</b>${by}${at}` : `🛑 <b>Withdrawn by the agent</b>${at}`;
    case 'expired':
      return `⌛ <b>Expired</b> — nobody decided in time${at}`;
  }
}
