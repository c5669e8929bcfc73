import type { ApprovalWithRequest } from '../../domain/permissions.ts';

/** The wire view of an approval: the state machine's record plus the request it decides, as approvers must see it. */
export function approvalView({ approval, permission }: ApprovalWithRequest) {
  const { agent, action, resource, scope, context, value, currency, policy } = permission;
  return {
    ...approval,
    request: {
      permission_id: permission.id,
      agent: { id: agent.id, name: agent.name, class: agent.class, trust_tier: agent.trust_tier },
      action,
      resource,
      scope,
      context,
      ...(value !== undefined ? { value } : {}),
      ...(currency !== undefined ? { currency } : {}),
      digest: approval.request_digest,
      policy: { hash: policy.hash, escalated_by: policy.determining },
    },
  };
}
