import { sha256 } from '../crypto/encoding.ts';
import { canonicalize } from '../log/canonical.ts';
import type { ActionRequest, Tier } from '../policy/types.ts';

/**
 * The approval state machine, independent of any surface (REST now, Telegram later). Pure
 * functions from (approval, event, now) to the next approval; persistence lives in permissions.ts.
 *
 *   pending ──approve (quorum: sensitive 1; critical 2 distinct approvers)──▶ approved
 *   pending ──critical quorum──▶ delay ──delay elapses──▶ approved
 *   delay ──cancel (any approver)──▶ cancelled
 *   pending ──deny (any approver)──▶ denied
 *   pending | delay ──timeout──▶ expired (only pending; a delay always ends in approved or cancelled)
 */
export type ApprovalStatus = 'pending' | 'delay' | 'approved' | 'denied' | 'expired' | 'cancelled';
export const OPEN_STATUSES: readonly ApprovalStatus[] = ['pending', 'delay'];

export interface Vote {
  approver_id: string;
  name: string;
  vote: 'approve' | 'deny' | 'cancel';
  at: string;
  comment?: string;
  /** The passkey (credential id) the approver confirmed the vote with, when one was needed or sent. */
  passkey?: string;
}

export interface Approval {
  id: string;
  permission_id: string;
  agent_id: string;
  action: string;
  resource: string;
  tier: Exclude<Tier, 'standard'>;
  required: number;
  votes: Vote[];
  status: ApprovalStatus;
  created_at: string;
  expires_at: string;
  delay_until?: string;
  decided_at?: string;
  /** Why a cancelled approval closed without an approver: its agent withdrew the request, or was revoked. */
  close_reason?: 'withdrawn' | 'revoked';
  /**
   * SHA-256 (standard base64) of exactly what the approvers are shown and decide: action,
   * resource, scope, value, currency, context and the policy set that escalated it. A token is
   * minted only for a request with this digest; an approver may send the digest they saw.
   */
  request_digest: string;
}

/** The digest an approval binds (RFC 8785 canonical JSON, so any surface can recompute it). */
export function requestDigest(request: ActionRequest & { policy: { hash: string } }): string {
  const { action, resource, scope, context, value, currency } = request;
  return sha256(canonicalize({ action, resource, scope, context, ...(value !== undefined ? { value } : {}), ...(currency !== undefined ? { currency } : {}), policy_hash: request.policy.hash })).toString('base64');
}

export const requiredApprovals = (tier: Exclude<Tier, 'standard'>): number => (tier === 'critical' ? 2 : 1);

export type Transition =
  | { ok: true; approval: Approval; outcome: 'recorded' | 'approved' | 'denied' | 'delay' | 'cancelled' | 'expired' }
  | { ok: false; reason: 'already_decided' | 'already_voted' | 'not_in_delay'; message: string };

const closed = (a: Approval): Transition => ({
  ok: false,
  reason: 'already_decided',
  message:
    a.status === 'delay'
      ? `approval ${a.id} has its approvals and is in its critical delay until ${a.delay_until}; an approver can still cancel it`
      : `approval ${a.id} is already ${a.status}`,
});

/** Lazily applies a timeout that is due; returns the same object when nothing is due. */
export function settle(a: Approval, now: number): { approval: Approval; outcome?: 'expired' | 'approved' } {
  if (a.status === 'pending' && now >= Date.parse(a.expires_at)) {
    return { approval: { ...a, status: 'expired', decided_at: new Date(now).toISOString() }, outcome: 'expired' };
  }
  if (a.status === 'delay' && a.delay_until && now >= Date.parse(a.delay_until)) {
    return { approval: { ...a, status: 'approved', decided_at: new Date(now).toISOString() }, outcome: 'approved' };
  }
  return { approval: a };
}

export function vote(
  a: Approval,
  voter: { approver_id: string; name: string; passkey?: string },
  choice: 'approve' | 'deny',
  now: number,
  criticalDelaySeconds: number,
  comment?: string,
): Transition {
  if (a.status !== 'pending') return closed(a);
  const at = new Date(now).toISOString();
  if (a.votes.some((v) => v.approver_id === voter.approver_id)) {
    return { ok: false, reason: 'already_voted', message: 'you have already voted on this approval; one approver counts once' };
  }
  const cast: Vote = { ...voter, vote: choice, at, ...(comment ? { comment } : {}) };
  const votes = [...a.votes, cast];
  if (choice === 'deny') return { ok: true, approval: { ...a, votes, status: 'denied', decided_at: at }, outcome: 'denied' };
  const approvals = votes.filter((v) => v.vote === 'approve').length;
  if (approvals < a.required) return { ok: true, approval: { ...a, votes }, outcome: 'recorded' };
  if (a.tier === 'critical' && criticalDelaySeconds > 0) {
    const delayUntil = new Date(now + criticalDelaySeconds * 1000).toISOString();
    return { ok: true, approval: { ...a, votes, status: 'delay', delay_until: delayUntil }, outcome: 'delay' };
  }
  return { ok: true, approval: { ...a, votes, status: 'approved', decided_at: at }, outcome: 'approved' };
}

/** The approval without one approver's votes (a revoked approver): a delay whose quorum needed them waits again. */
export function withoutVotesOf(a: Approval, approverId: string): Approval {
  const votes = a.votes.filter((v) => v.approver_id !== approverId);
  if (votes.length === a.votes.length) return a;
  if (a.status === 'delay' && votes.filter((v) => v.vote === 'approve').length < a.required) {
    const { delay_until: _gone, ...rest } = a;
    return { ...rest, votes, status: 'pending' };
  }
  return { ...a, votes };
}

export function cancel(a: Approval, voter: { approver_id: string; name: string }, now: number, reason?: string): Transition {
  if (a.status !== 'delay') {
    if (a.status !== 'pending') return closed(a);
    return { ok: false, reason: 'not_in_delay', message: 'cancel applies only during a critical approval delay; use deny instead' };
  }
  const at = new Date(now).toISOString();
  const cast: Vote = { ...voter, vote: 'cancel', at, ...(reason ? { comment: reason } : {}) };
  return { ok: true, approval: { ...a, votes: [...a.votes, cast], status: 'cancelled', decided_at: at }, outcome: 'cancelled' };
}
