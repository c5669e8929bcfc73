import { sortableId } from '../crypto/encoding.ts';
import type { BatchOp } from '../store/store.ts';
import type { Approval } from './approvals.ts';
import type { PermissionRecord } from './permissions.ts';

/**
 * What happened to approvals and permissions, for the surfaces that follow them (Telegram cards,
 * outgoing webhooks). A sink's `ops` are written in the same batch as the change itself, so a
 * durable side effect (a queued webhook delivery) exists exactly when the change does; `after`
 * runs once that batch is on disk, for side effects that need not survive a crash.
 */
export const WEBHOOK_EVENTS = ['approval.requested', 'approval.approved', 'approval.denied', 'approval.expired', 'permission.used', 'grant.revoked'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];
/** `approval.updated` (a vote that did not decide, a critical delay starting) is internal. */
export type WritEventType = WebhookEventType | 'approval.updated';

export interface WritEvent {
  id: string;
  type: WritEventType;
  created_at: string;
  /** The log entry of the change, set once it is sequenced (before `ops` is asked for). */
  log?: { index: number; leaf_hash: string; at: string };
  data: {
    approval?: Approval;
    permission: PermissionSummary;
    /** For approval events: who acted and how (approve, deny, cancel, withdraw), when a person did. */
    by?: { approver_id?: string; name?: string; vote?: string; role?: string; id?: string };
  };
}

export type PermissionSummary = Pick<PermissionRecord, 'id' | 'agent' | 'action' | 'resource' | 'scope' | 'context' | 'value' | 'currency' | 'tier' | 'status' | 'expires_at' | 'policy' | 'oversight'>;

export interface EventSink {
  ops?(event: WritEvent): BatchOp[];
  after?(event: WritEvent): void;
}

export function summary(record: PermissionRecord): PermissionSummary {
  const { id, agent, action, resource, scope, context, value, currency, tier, status, expires_at, policy, oversight } = record;
  return {
    id,
    agent,
    action,
    resource,
    scope,
    context,
    ...(value !== undefined ? { value } : {}),
    ...(currency !== undefined ? { currency } : {}),
    tier,
    status,
    expires_at,
    policy,
    ...(oversight ? { oversight } : {}),
  };
}

export class Events {
  private readonly sinks: EventSink[] = [];
  /** Tells other nodes sharing the store of each event (set by Permissions). */
  publish: (event: WritEvent) => void = () => {};

  /** Adds a sink; the function returned removes it again (a live stream that ends must not stay subscribed). */
  add(sink: EventSink): () => void {
    this.sinks.push(sink);
    return () => {
      const at = this.sinks.indexOf(sink);
      if (at >= 0) this.sinks.splice(at, 1);
    };
  }

  /** How many sinks are subscribed. */
  get size(): number {
    return this.sinks.length;
  }

  make(type: WritEventType, data: WritEvent['data']): WritEvent {
    return { id: sortableId('evt'), type, created_at: new Date().toISOString(), data };
  }

  ops(event: WritEvent): BatchOp[] {
    return this.sinks.flatMap((s) => s.ops?.(event) ?? []);
  }

  /** Once the change is durable: this node's sinks hear of it, and so do other nodes'. */
  after(event: WritEvent): void {
    this.deliver(event);
    this.publish(event);
  }

  /** A sink's failure is its own business: it never reaches the change that caused the event. */
  deliver(event: WritEvent): void {
    // A copy: a sink may remove itself (or another) while it is told.
    for (const sink of [...this.sinks]) {
      try {
        sink.after?.(event);
      } catch {
        // surfaces report their own health
      }
    }
  }
}
