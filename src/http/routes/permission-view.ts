import type { Approval } from '../../domain/approvals.ts';
import type { PermissionRecord } from '../../domain/permissions.ts';

/** The wire view of a permission: never the token hash, sealed token or internal anchors. */
export function permissionView(record: PermissionRecord, token?: string, approval?: Approval) {
  return {
    id: record.id,
    status: record.status,
    decision: record.decision,
    policy_decision: record.policy_decision ?? record.decision,
    tier: record.tier,
    action: record.action,
    resource: record.resource,
    scope: record.scope,
    ...(record.value !== undefined ? { value: record.value, currency: record.currency } : {}),
    reasons: record.reasons,
    ...(token ? { token } : {}),
    ...(record.receipt ? { receipt: record.receipt } : {}),
    expires_at: record.expires_at,
    created_at: record.created_at,
    ...(approval ? { approval } : {}),
    ...(record.anchor ? { log: { index: record.anchor.index, leaf_hash: record.anchor.leaf_hash } } : {}),
    policy: record.policy,
    ...(record.failure ? { failure: record.failure } : {}),
    trace: record.trace,
  };
}
