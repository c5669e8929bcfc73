import { WritError } from '../../errors.ts';
import { defineRoute, type Route } from '../route.ts';
import { approvalSchema, approveSchema, reasonSchema } from '../schemas.ts';
import { approvalView } from './approval-view.ts';

const passkeyAnswers = (action: string): Route['responses'] =>
  action === 'approve' ? { 403: { description: 'passkey_required: a critical approval approved with the session cookie needs a passkey assertion; passkey_invalid: the one sent does not hold' } } : {};

/** approve · deny · cancel: the same rules for every surface, applied by the state machine. */
const decide = (action: 'approve' | 'deny' | 'cancel', summary: string) =>
  defineRoute({
    method: 'POST',
    path: `/api/v1/approvals/:id/${action}`,
    summary,
    auth: ['approver'],
    body: action === 'approve' ? approveSchema : reasonSchema,
    responses: {
      200: { description: 'The approval after this vote', schema: approvalSchema },
      404: { description: 'No such approval' },
      409: { description: 'Already decided, already voted, not in its delay, or request_mismatch (the request_digest sent is not this approval\'s)' },
      ...passkeyAnswers(action),
    },
    errors: ['not_found', 'already_decided', 'already_voted', 'not_in_delay', 'request_mismatch', ...(action === 'approve' ? (['passkey_required', 'passkey_invalid'] as const) : [])],
    async handle({ writ, params, body, principal, session }) {
      const approver = await writ.principals.getApprover(principal!.id);
      if (!approver || approver.revoked) throw new WritError('forbidden', 'this approver is revoked or no longer exists', { field: 'authorization' });
      const note = 'comment' in body ? body.comment : 'reason' in body ? body.reason : undefined;
      let seen = 'request_digest' in body ? body.request_digest : undefined;
      let passkey: string | undefined;
      if (action === 'approve') {
        // Critical approvals on the web need a passkey; keys (CLI, API) and the bot are unchanged.
        const assertion = 'webauthn' in body ? body.webauthn : undefined;
        const current = await writ.permissions.getApproval(params.id!);
        if (assertion) {
          passkey = (await writ.passkeys.verifyApproval(approver.id, current, assertion)).id;
          // The vote counts only for the request the passkey signed for.
          seen ??= current.request_digest;
        } else if (session && current.tier === 'critical' && current.status === 'pending') {
          await writ.passkeys.refuseWithoutAssertion(approver.id);
        }
      }
      const voter = { approver_id: approver.id, name: approver.name, ...(passkey ? { passkey } : {}) };
      const approval = await writ.permissions.decide(params.id!, voter, action, note, seen);
      const view = await writ.permissions.approvalWithPermission(approval.id);
      return { status: 200, body: view ? approvalView({ ...view, approval }) : approval };
    },
  });

export const approve = decide('approve', 'Approve (critical approvals need two different approvers, then a delay)');
export const deny = decide('deny', 'Deny; one deny ends the approval');
export const cancel = decide('cancel', 'Cancel a critical approval during its delay');
