import { WritError } from '../errors.ts';
import type { Appended, TransparencyLog } from '../log/log.ts';
import type { BatchOp, Expectation } from '../store/store.ts';
import { retrying } from './reads.ts';
import type { Permissions } from './permissions.ts';
import type { Principal, Principals, RevocationScope } from './principals.ts';

/**
 * Revocation takes effect at once and in one log batch. The keys are refused in memory before
 * anything is written; then one `revocation` entry carries everything that goes with it: the keys
 * deleted, the principal marked revoked, and for an agent every open permission closed (tokens
 * revoked, pending requests denied, their approvals cancelled), for an approver its votes on open
 * approvals voided.
 */
export interface RevocationResult {
  scope: RevocationScope;
  id: string;
  reason: string;
  revoked_keys: number;
  tokens_revoked?: number;
  approvals_closed?: number;
  votes_voided?: number;
  effective_at: string;
  log_index: number;
}

export class Revocations {
  constructor(private readonly o: { principals: Principals; permissions: Permissions; log: TransparencyLog }) {}

  async revoke(input: { scope: RevocationScope; id: string; reason: string; comment?: string | undefined }, by: Principal): Promise<RevocationResult> {
    if (input.scope === 'grant') throw new WritError('not_found', `no grant ${input.id} (standing grants are not available yet)`, { field: 'id' });
    // Swept again if a request or vote of the principal was written on any node meanwhile.
    const scope = input.scope;
    return retrying(() => this.attempt({ ...input, scope }, by));
  }

  private async attempt(input: { scope: Exclude<RevocationScope, 'grant'>; id: string; reason: string; comment?: string | undefined }, by: Principal): Promise<RevocationResult> {
    const plan = await this.o.principals.planRevocation(input.scope, input.id, input.reason);
    const effectiveAt = new Date().toISOString();
    let appended: Appended | undefined;
    const write = async (ops: (at: Appended) => BatchOp[], counts: Record<string, number | string[]>, expect: Expectation[] = []) => {
      const data = {
        scope: input.scope,
        id: input.id,
        reason: input.reason,
        ...(input.comment ? { comment: input.comment } : {}),
        by: { role: by.role, id: by.id },
        principal: { role: plan.role, id: plan.principal_id },
        revoked_key_ids: plan.key_ids,
        ...counts,
      };
      appended = await this.o.log.append('revocation', data, (at) => [...plan.ops, ...ops(at)], { expect: [...plan.expect, ...expect] });
      return appended;
    };
    let counts: Record<string, number> = {};
    if (plan.role === 'agent') {
      counts = await this.o.permissions.closeOpenOf(plan.principal_id, plan.whole ? undefined : plan.key_ids, input.reason, by, write);
    } else if (plan.role === 'approver') {
      counts = await this.o.permissions.voidVotesOf(plan.principal_id, write);
    } else {
      await write(() => [], {});
    }
    plan.committed();
    return { scope: input.scope, id: input.id, reason: input.reason, revoked_keys: plan.key_ids.length, ...counts, effective_at: effectiveAt, log_index: appended!.index };
  }
}
