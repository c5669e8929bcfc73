import { decrypt, encrypt, type KeyRing } from '../crypto/keys.ts';
import { randomToken, sha256, sortableId } from '../crypto/encoding.ts';
import { WritError } from '../errors.ts';
import type { Appended, Companion, TransparencyLog } from '../log/log.ts';
import type { ActionRequest, Json, PolicyFailureCode, PolicyLanguage, Tier } from '../policy/types.ts';
import { Conflict, getJson, put, type BatchOp, type Expectation, type Range, type Store } from '../store/store.ts';
import { Reads, retrying } from './reads.ts';
import { localBus, RECHECK_MS, type Bus, type BusMessage } from '../store/bus.ts';
import * as machine from './approvals.ts';
import type { Approval } from './approvals.ts';
import { Deadlines, KeyedMutex, Watchers } from './lock.ts';
import { activityKey, type Agent, type Principal, type Principals } from './principals.ts';
import { signReceipt, signReceiptSoon, type AuthorizerClaims } from './receipts.ts';
import type { Signer } from '../crypto/signer.ts';
import { Events, summary, type PermissionSummary, type WritEvent } from './events.ts';
import { scopeViolations, tokenBounds } from './scope.ts';

/**
 * Permissions, their approvals and their one-time tokens. Every state change is one log entry
 * whose batch also carries the new records, so state and log never disagree after a crash; work on
 * one permission is serialised by a per-permission mutex.
 */
export const PERMISSION_STATUSES = ['pending', 'approved', 'denied', 'expired', 'used', 'revoked'] as const;
export type PermissionStatus = (typeof PERMISSION_STATUSES)[number];
export type TraceEntry = { step: string; outcome: string; ms: number; reason?: string; failure?: PolicyFailureCode };

export interface PermissionRecord extends ActionRequest {
  id: string;
  /** Who asked, with the key they asked with (revoking that key revokes what it obtained). */
  agent: Pick<Agent, 'id' | 'name' | 'class' | 'trust_tier'> & { key_id?: string };
  /** The resource server the token is for (its id): only it, or the agent, may spend it. */
  audience?: string;
  /**
   * The decision as it stands, the same as a receipt's: `escalate` while humans decide, then
   * `allow` or `deny`. `policy_decision` is what the cascade answered when the request came.
   */
  decision: 'allow' | 'deny' | 'escalate';
  policy_decision?: 'allow' | 'deny' | 'escalate';
  tier: Tier;
  status: PermissionStatus;
  reasons: string[];
  ttl: number;
  created_at: string;
  /** Pending: when the approval times out. Approved: when the token expires. */
  expires_at: string;
  approval_id?: string;
  /** The policy set, the policies that determined the decision and their languages. */
  policy: { hash: string; determining: string[]; languages?: PolicyLanguage[] };
  /** Set when nothing could be decided (the request is denied, but no policy denied it). */
  failure?: { step: string; code: PolicyFailureCode };
  trace: TraceEntry[];
  approvals: Array<{ approver_id: string; name: string; at: string }>;
  token_hash?: string;
  /** The issued token, AES-256-GCM sealed, kept only while it can still be used. */
  token_sealed?: string;
  /** Where the allow (or approval) was logged; the receipt points here. */
  anchor?: { index: number; leaf_hash: string; at: string; issuer: string };
  receipt?: string;
  used_at?: string;
  closed_at?: string;
  /** Where and how the approval was decided (approved, denied, cancelled, expired). */
  decided?: { index: number; leaf_hash: string; at: string; outcome: string; by?: { approver_id: string; name: string } };
  /** Set for an escalation from an external engine (oversight mode): no token, witness receipts. */
  oversight?: { attestation_id: string; touchpoint_id: string; attester_id: string; attestation: Record<string, unknown>; issuer: string };
}

/** One page of a list: its items, and the id to continue after while the range may hold more. */
export interface Page<T> {
  items: T[];
  after?: string;
}

/** What a list of permissions is narrowed to. */
export interface PermissionFilter {
  /** Only this agent's: its index is scanned, not every permission. */
  agent?: string | undefined;
  status?: PermissionStatus | undefined;
  /** `category.operation`, or `category.*` for every operation of a category. */
  action?: string | undefined;
  /** Created at or after this RFC 3339 date-time. */
  since?: string | undefined;
}

/**
 * Keys one page reads at most: a filter that matches little answers a short (even empty) page
 * that continues, rather than let one request read the whole database.
 */
export const PAGE_SCAN_LIMIT = 1000;

export interface ApprovalWithRequest {
  approval: Approval;
  permission: PermissionSummary;
}

export interface NewPermission {
  agent: Agent;
  keyId: string;
  audience?: string | undefined;
  action: string;
  resource: string;
  scope: Record<string, Json>;
  context: Record<string, Json>;
  value?: number | undefined;
  currency?: string | undefined;
  ttl: number;
  approvalTimeout: number;
  decision: 'allow' | 'deny' | 'escalate';
  tier: Tier;
  reasons: string[];
  policy: { hash: string; determining: string[]; languages?: PolicyLanguage[] };
  failure?: { step: string; code: PolicyFailureCode } | undefined;
  trace: TraceEntry[];
}

export interface PermissionsOptions {
  store: Store;
  log: TransparencyLog;
  keys: KeyRing;
  /** Signs the receipts of decisions off the event loop. */
  signer: Signer;
  dataKey: Buffer;
  issuer: () => string;
  criticalDelaySeconds: number;
  /**
   * Whether a principal or key is revoked as of now, and its standing (record and key as read) as
   * the conditions of what it does: a revocation on any node then wins over a decision or vote.
   */
  principals: Pick<Principals, 'refused' | 'standing' | 'agentStanding' | 'forgetAgent'>;
  /** Other nodes sharing the store, told of every change (long polls there wake, their timers arm). */
  bus?: Bus;
}


/** The token a revocation is written with: the acts it swept, and the conditions they were read under. */
export type RevocationWrite<S> = (ops: (at: Appended) => BatchOp[], summary: S, expect: Expectation[]) => Promise<Appended>;

const K = {
  permission: (id: string) => `perm/${id}`,
  token: (hash: string) => `token/${hash}`,
  receipt: (id: string) => `receipt/${id}`,
  approval: (id: string) => `appr/${id}`,
  approvalRange: { gte: 'appr/', lt: 'appr/~' },
  open: (id: string) => `appr-open/${id}`,
  openRange: { gte: 'appr-open/', lt: 'appr-open/~' },
  /** An agent's permissions that are pending or hold a token (value: the key that asked), for revocation. */
  agentOpen: (agentId: string, id: string) => `agent-open/${agentId}/${id}`,
  agentOpenRange: (agentId: string) => ({ gte: `agent-open/${agentId}/`, lt: `agent-open/${agentId}/~` }),
  agentOpenBuilt: 'meta/agent-open-index',
  permissionRange: { gte: 'perm/', lt: 'perm/~' },
  /** Every permission an agent asked for (value empty), so one agent's list is a range scan. */
  agentPermission: (agentId: string, id: string) => `agent-perm/${agentId}/${id}`,
  agentPermissionPrefix: (agentId: string) => `agent-perm/${agentId}/`,
  agentPermissionBuilt: 'meta/agent-perm-index',
};

const TOKEN_PREFIX = 'wtk_';
const iso = (ms: number) => new Date(ms).toISOString();
const seconds = (isoTime: string) => Math.floor(Date.parse(isoTime) / 1000);

export class Permissions {
  private readonly mutex = new KeyedMutex();
  readonly watchers = new Watchers();
  private readonly deadlines = new Deadlines();
  /** Approval and permission events for the Telegram bot and outgoing webhooks. */
  readonly events = new Events();

  private readonly bus: Bus;
  private readonly recheckMs: number;

  constructor(private readonly o: PermissionsOptions) {
    this.bus = o.bus ?? localBus();
    this.recheckMs = o.bus ? RECHECK_MS : Infinity;
    this.events.publish = (event) => this.bus.publish({ t: 'event', event });
    this.bus.subscribe((message) => this.heard(message));
  }

  /** Wakes whoever waits on the permission, here and on every other node. */
  private notify(id: string): void {
    this.watchers.notify(id);
    this.bus.publish({ t: 'permission', id });
  }

  /** Another node changed something: its waiters here wake, its approvals' timers arm here too, its events reach this node's surfaces. */
  private heard(message: BusMessage): void {
    if (message.t === 'permission') this.watchers.notify(message.id);
    if (message.t !== 'event') return;
    const event = message.event as WritEvent;
    const approval = event.data?.approval;
    if (approval) {
      if (machine.OPEN_STATUSES.includes(approval.status)) this.arm(approval);
      else this.deadlines.cancel(approval.id);
    }
    if (event.data?.permission?.id) this.watchers.notify(event.data.permission.id);
    this.events.deliver(event);
  }

  /** An op that changes the principal's activity key: a revocation sweeping its acts then sees this one, or is written again. */
  private acted(principalId: string): BatchOp {
    return put(activityKey(principalId), randomToken(8));
  }

  private refused(id: string | undefined): boolean {
    return this.o.principals.refused(id);
  }

  /** Re-arms approval timers after a restart; indexes open permissions by agent if an older version left none. */
  async start(): Promise<void> {
    await this.armOpen();
    if ((await this.o.store.get(K.agentOpenBuilt)) === undefined) {
      const ops: BatchOp[] = [put(K.agentOpenBuilt, '1')];
      for await (const [, raw] of this.o.store.iterate({ gte: 'perm/', lt: 'perm/~' })) {
        const record = effective(JSON.parse(raw) as PermissionRecord);
        if (!record.oversight && (record.status === 'pending' || record.status === 'approved')) ops.push(put(K.agentOpen(record.agent.id, record.id), record.agent.key_id ?? ''));
      }
      await this.o.store.batch(ops, { sync: true });
    }
    if ((await this.o.store.get(K.agentPermissionBuilt)) === undefined) await this.indexPermissionsByAgent();
  }

  /**
   * Arms the timer of every open approval. Every node sharing the store arms them all (so one
   * that dies leaves none unwatched); the first to settle a due one writes it, the others then
   * find it settled.
   */
  async armOpen(): Promise<void> {
    // Read through the open index a hundred records at a time, not one read each.
    for await (const [, raw] of entries(this.o.store, 'appr-open/', K.openRange, K.approval)) {
      if (raw !== undefined) this.arm(JSON.parse(raw) as Approval);
    }
  }

  /** Indexes every agent's permissions, for a store an older version wrote; the marker goes last, so a start that stops midway does it again. */
  private async indexPermissionsByAgent(): Promise<void> {
    let ops: BatchOp[] = [];
    for await (const [, raw] of this.o.store.iterate(K.permissionRange)) {
      const record = JSON.parse(raw) as PermissionRecord;
      if (!record.oversight) ops.push(put(K.agentPermission(record.agent.id, record.id), ''));
      if (ops.length >= 1000) {
        await this.o.store.batch(ops, { sync: true });
        ops = [];
      }
    }
    await this.o.store.batch([...ops, put(K.agentPermissionBuilt, '1')], { sync: true });
  }

  /**
   * For a revocation: every open permission of an agent (or only those asked with `keyIds`) is
   * closed in the revocation's own log batch — a token is revoked (consume → 410), a pending
   * request denied and its approval cancelled (cards and webhooks say so). The permissions stay
   * locked until that batch is durable, so no consume or vote can slip in between.
   */
  async closeOpenOf(
    agentId: string,
    keyIds: string[] | undefined,
    reason: string,
    by: Principal,
    write: RevocationWrite<{ tokens_revoked: number; approvals_closed: number; permission_ids: string[] }>,
  ): Promise<{ tokens_revoked: number; approvals_closed: number }> {
    const reads = new Reads(this.o.store);
    // Read before the sweep: a request made meanwhile on any node changes it, and this is written again.
    await reads.raw(activityKey(agentId));
    const ids: string[] = [];
    for await (const [key, keyId] of this.o.store.iterate(K.agentOpenRange(agentId))) {
      if (!keyIds || keyIds.includes(keyId)) ids.push(key.slice(K.agentOpenRange(agentId).gte.length));
    }
    return this.mutex.runAll(ids, async () => {
      const now = iso(Date.now());
      const ops: BatchOp[] = [];
      const events: WritEvent[] = [];
      const closed: string[] = [];
      const counts = { tokens_revoked: 0, approvals_closed: 0 };
      const raws = await reads.many(ids.map(K.permission));
      for (const [i, raw] of raws.entries()) {
        const id = ids[i]!;
        ops.push({ type: 'del', key: K.agentOpen(agentId, id) });
        const record = raw === undefined ? undefined : effective(JSON.parse(raw) as PermissionRecord);
        if (!record || (record.status !== 'approved' && record.status !== 'pending')) continue;
        const next: PermissionRecord = {
          ...record,
          status: record.status === 'approved' ? 'revoked' : 'denied',
          ...(record.status === 'pending' ? { decision: 'deny' as const } : {}),
          reasons: [...record.reasons, `revoked: ${reason}`],
          closed_at: now,
        };
        delete next.token_sealed;
        ops.push(put(K.permission(id), next));
        closed.push(id);
        if (record.status === 'approved') counts.tokens_revoked++;
        const approval = record.approval_id ? await reads.json<Approval>(K.approval(record.approval_id)) : undefined;
        if (approval && machine.OPEN_STATUSES.includes(approval.status)) {
          const cancelled: Approval = { ...approval, status: 'cancelled', decided_at: now, close_reason: 'revoked' };
          ops.push(put(K.approval(approval.id), cancelled), { type: 'del', key: K.open(approval.id) });
          events.push(this.events.make('approval.denied', { approval: cancelled, permission: summary(next), by: { vote: 'revoke', role: by.role, id: by.id } }));
          counts.approvals_closed++;
        }
      }
      await write((at) => {
        for (const event of events) event.log = { index: at.index, leaf_hash: at.leafHash, at: at.time };
        return [...ops, ...events.flatMap((e) => this.events.ops(e))];
      }, { ...counts, permission_ids: closed }, reads.expect);
      for (const event of events) {
        this.deadlines.cancel(event.data.approval!.id);
        this.events.after(event);
      }
      for (const id of closed) this.notify(id);
      return counts;
    });
  }

  /**
   * For a revoked approver: its votes on open approvals stop counting, in the revocation's batch.
   * A critical approval whose quorum depended on them leaves its delay and waits again.
   */
  async voidVotesOf(
    approverId: string,
    write: RevocationWrite<{ votes_voided: number }>,
  ): Promise<{ votes_voided: number }> {
    const reads = new Reads(this.o.store);
    // Read before the sweep: a vote cast meanwhile on any node changes it, and this is written again.
    await reads.raw(activityKey(approverId));
    const open: Approval[] = [];
    for await (const [key] of this.o.store.iterate(K.openRange)) {
      const approval = await getJson<Approval>(this.o.store, K.approval(key.slice('appr-open/'.length)));
      if (approval?.votes.some((v) => v.approver_id === approverId)) open.push(approval);
    }
    return this.mutex.runAll(open.map((a) => a.permission_id), async () => {
      const ops: BatchOp[] = [];
      const events: WritEvent[] = [];
      const changed: Approval[] = [];
      let voided = 0;
      for (const { id } of open) {
        const current = await reads.json<Approval>(K.approval(id));
        if (!current || !machine.OPEN_STATUSES.includes(current.status)) continue;
        const next = machine.withoutVotesOf(current, approverId);
        if (next === current) continue;
        voided += current.votes.length - next.votes.length;
        const record = await getJson<PermissionRecord>(this.o.store, K.permission(current.permission_id));
        ops.push(put(K.approval(id), next));
        changed.push(next);
        if (record) events.push(this.events.make('approval.updated', { approval: next, permission: summary(record) }));
      }
      await write((at) => {
        for (const event of events) event.log = { index: at.index, leaf_hash: at.leafHash, at: at.time };
        return [...ops, ...events.flatMap((e) => this.events.ops(e))];
      }, { votes_voided: voided }, reads.expect);
      for (const approval of changed) this.arm(approval);
      for (const event of events) this.events.after(event);
      return { votes_voided: voided };
    });
  }

  stop(): void {
    this.deadlines.clear();
    this.watchers.notifyAll();
  }

  /** Records a decision; an allow gets its token and receipt only after the entry is durable. */
  async create(input: NewPermission): Promise<{ record: PermissionRecord; token?: string; approval?: Approval }> {
    // Nothing below awaits before the entry is sequenced, so a revocation that has begun is seen.
    if (this.refused(input.agent.id) || this.refused(input.keyId)) {
      throw new WritError('unauthenticated', 'the agent or its key was revoked', { field: 'authorization' });
    }
    const now = Date.now();
    const record: PermissionRecord = {
      id: sortableId('perm', now),
      agent: { id: input.agent.id, name: input.agent.name, class: input.agent.class, trust_tier: input.agent.trust_tier, key_id: input.keyId },
      ...(input.audience !== undefined ? { audience: input.audience } : {}),
      action: input.action,
      resource: input.resource,
      scope: input.scope,
      context: input.context,
      ...(input.value !== undefined ? { value: input.value } : {}),
      ...(input.currency !== undefined ? { currency: input.currency } : {}),
      decision: input.decision,
      policy_decision: input.decision,
      tier: input.tier,
      status: input.decision === 'allow' ? 'approved' : input.decision === 'deny' ? 'denied' : 'pending',
      reasons: input.reasons,
      ttl: input.ttl,
      created_at: iso(now),
      expires_at: iso(input.decision === 'escalate' ? now + input.approvalTimeout * 1000 : now + input.ttl * 1000),
      policy: input.policy,
      ...(input.failure ? { failure: input.failure } : {}),
      trace: input.trace,
      approvals: [],
    };
    const ops: BatchOp[] = [];
    let token: string | undefined;
    let approval: Approval | undefined;
    if (record.status === 'approved') {
      token = this.issueToken(record, ops);
    } else if (record.status === 'denied') {
      record.closed_at = record.created_at;
    } else {
      approval = openApproval(record, now);
      ops.push(put(K.approval(approval.id), approval), put(K.open(approval.id), ''));
    }
    if (record.status !== 'denied') ops.push(put(K.agentOpen(record.agent.id, record.id), input.keyId));
    ops.push(put(K.agentPermission(record.agent.id, record.id), ''));
    ops.push(this.acted(record.agent.id));
    const event = approval ? this.events.make('approval.requested', { approval, permission: summary(record) }) : undefined;
    let receipt: Promise<string> | undefined;
    // Written only while the agent and its key are as the decision read them: a revocation on any node wins.
    const expect = await this.o.principals.agentStanding(input.agent, input.keyId);
    const append = () => this.o.log.append('permission.decided', decisionEntry(record), (at) => {
      const signed: Companion[] = [];
      if (record.status === 'approved') {
        anchor(record, at, this.o.issuer());
        const soon = signReceiptSoon(this.o.signer, this.o.keys, this.claimsFor(record));
        signed.push(soon.then((jws) => put(K.receipt(record.id), jws)));
        receipt = soon;
      }
      return [put(K.permission(record.id), record), ...ops, ...signed, ...(event ? this.events.ops(event) : [])];
    }, { expect });
    try {
      await append();
    } catch (err) {
      if (!(err instanceof Conflict)) throw err;
      // Decided from an agent or key another node changed meanwhile: revoked (401), or changed otherwise.
      this.o.principals.forgetAgent(input.agent.id);
      await this.o.principals.standing(input.agent.id, 'agent', input.keyId);
      throw new WritError('conflict', 'the agent changed while this request was decided; ask again', { retry_after: 1 });
    }
    // Handed out only now that the batch holding it, and its entry, is durable.
    if (receipt) record.receipt = await receipt;
    if (approval) this.arm(approval);
    if (event) this.events.after(event);
    return { record, ...(token !== undefined ? { token } : {}), ...(approval ? { approval } : {}) };
  }

  /**
   * An escalation from an external engine, built but not written: the caller puts `ops` in the
   * batch of its own log entry and calls `committed` once that batch is durable.
   */
  buildEscalation(input: {
    attester: { id: string; name: string };
    attestation: { attestation_id: string; touchpoint_id: string; agent_class: string; action_class: string; context?: Record<string, Json> | undefined };
    issuer: string;
    tier: 'sensitive' | 'critical';
    approvalTimeout: number;
    ttl: number;
  }): { record: PermissionRecord; approval: Approval; ops: () => BatchOp[]; committed: () => void } {
    const now = Date.now();
    const a = input.attestation;
    const context = { ...(a.context ?? {}), escalated_by: `${input.attester.name} (touchpoint ${a.touchpoint_id})`, attestation_id: a.attestation_id };
    delete (context as Record<string, unknown>).tier;
    const record: PermissionRecord = {
      id: sortableId('perm', now),
      agent: { id: `attester:${input.attester.id}`, name: input.attester.name, class: a.agent_class, trust_tier: 'unregistered' },
      action: a.action_class,
      resource: `touchpoint:${a.touchpoint_id}`,
      scope: {},
      context,
      decision: 'escalate',
      policy_decision: 'escalate',
      tier: input.tier,
      status: 'pending',
      reasons: typeof a.context?.reason === 'string' ? [a.context.reason] : [],
      ttl: input.ttl,
      created_at: iso(now),
      expires_at: iso(now + input.approvalTimeout * 1000),
      policy: { hash: 'oversight', determining: [] },
      trace: [],
      approvals: [],
      oversight: { attestation_id: a.attestation_id, touchpoint_id: a.touchpoint_id, attester_id: input.attester.id, attestation: { ...a }, issuer: input.issuer },
    };
    const approval = openApproval(record, now);
    const event = this.events.make('approval.requested', { approval, permission: summary(record) });
    return {
      record,
      approval,
      ops: () => [put(K.permission(record.id), record), put(K.approval(approval.id), approval), put(K.open(approval.id), ''), ...this.events.ops(event)],
      committed: () => {
        this.arm(approval);
        this.events.after(event);
      },
    };
  }

  /** A permission record as stored (no owner check: for other services, never for the wire). */
  record(id: string): Promise<PermissionRecord | undefined> {
    return getJson<PermissionRecord>(this.o.store, K.permission(id));
  }

  /** The record as its owner may see it, with lazily applied expiry and the token while usable. */
  async get(id: string, viewer: Principal): Promise<{ record: PermissionRecord; token?: string; approval?: Approval }> {
    let record = await getJson<PermissionRecord>(this.o.store, K.permission(id));
    if (!record || (viewer.role !== 'admin' && record.agent.id !== viewer.id)) {
      throw new WritError('not_found', `no permission ${id}`, { field: 'id' });
    }
    let approval = record.approval_id ? await getJson<Approval>(this.o.store, K.approval(record.approval_id)) : undefined;
    if (approval && machine.settle(approval, Date.now()).outcome) {
      await this.settle(approval.id);
      record = (await getJson<PermissionRecord>(this.o.store, K.permission(id)))!;
      approval = await getJson<Approval>(this.o.store, K.approval(approval.id));
    }
    record = effective(record);
    const token = record.status === 'approved' && record.token_sealed ? decrypt(this.o.dataKey, record.token_sealed) : undefined;
    if (record.anchor && record.status !== 'revoked') record.receipt = await this.receipt(record);
    return { record, ...(token ? { token } : {}), ...(approval ? { approval } : {}) };
  }

  /** Waits up to `seconds` for a pending permission to change. */
  async waitWhilePending(id: string, viewer: Principal, seconds: number, signal?: AbortSignal) {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      const current = await this.get(id, viewer);
      const left = deadline - Date.now();
      if (current.record.status !== 'pending' || left <= 0 || signal?.aborted) return current;
      await this.watchers.wait(id, Math.min(left, this.recheckMs), signal);
    }
  }

  /** The agent withdraws a pending request (it becomes denied) or an unused token (revoked). */
  async revoke(id: string, by: Principal, reason: string): Promise<PermissionRecord> {
    // Ownership check and any due approval timeout first: `get` may take this permission's lock.
    await this.get(id, by);
    return this.mutex.run(id, () => retrying(async () => {
      const reads = new Reads(this.o.store);
      const record = effective((await reads.json<PermissionRecord>(K.permission(id)))!);
      if (record.oversight) {
        throw new WritError('conflict', `permission ${id} is an escalation from ${record.oversight.touchpoint_id}; its approvers decide it`, { status: record.status });
      }
      if (record.status === 'revoked' || (record.status === 'denied' && record.reasons.includes(reason))) return record;
      if (record.status !== 'pending' && record.status !== 'approved') {
        throw new WritError('conflict', `permission ${id} is already ${record.status}`, { status: record.status });
      }
      const now = Date.now();
      const next: PermissionRecord = { ...record, status: record.status === 'pending' ? 'denied' : 'revoked', reasons: [...record.reasons, reason], closed_at: iso(now) };
      delete next.token_sealed;
      const ops: BatchOp[] = [put(K.permission(id), next), { type: 'del', key: K.agentOpen(record.agent.id, id) }];
      let event: WritEvent | undefined;
      if (record.approval_id) {
        const approval = await reads.json<Approval>(K.approval(record.approval_id));
        if (approval && machine.OPEN_STATUSES.includes(approval.status)) {
          const withdrawn: Approval = { ...approval, status: 'cancelled', decided_at: iso(now), close_reason: 'withdrawn' };
          ops.push(put(K.approval(approval.id), withdrawn), { type: 'del', key: K.open(approval.id) });
          event = this.events.make('approval.denied', { approval: withdrawn, permission: summary(next), by: { vote: 'withdraw', role: by.role, id: by.id } });
          ops.push(...this.events.ops(event));
        }
      }
      await this.o.log.append('permission.revoked', { permission_id: id, by: { role: by.role, id: by.id }, previous_status: record.status, reason }, ops, { expect: reads.expect });
      if (record.approval_id) this.deadlines.cancel(record.approval_id);
      this.notify(id);
      if (event) this.events.after(event);
      return next;
    }));
  }

  /** Spends a one-time token. Exactly one of many concurrent calls succeeds. */
  async consume(input: { token: string; action: string; resource: string; use: Record<string, Json> }, by: Principal) {
    if (!input.token.startsWith(TOKEN_PREFIX)) throw new WritError('token_invalid', 'unknown token', { field: 'token' });
    const hash = sha256(input.token).toString('base64url');
    const id = await this.o.store.get(K.token(hash));
    if (id === undefined) throw new WritError('token_invalid', 'unknown token', { field: 'token' });
    return this.mutex.run(id, () => retrying(async () => {
      // Spent only while the record is as read here: of concurrent spends on any node, one is written.
      const reads = new Reads(this.o.store);
      const stored = await reads.json<PermissionRecord>(K.permission(id));
      if (!stored || stored.token_hash !== hash) throw new WritError('token_invalid', 'unknown token', { field: 'token' });
      // Only its agent, or the resource server it names (or any, when it names none), may spend a token.
      if (by.role === 'agent' ? stored.agent.id !== by.id : by.role !== 'resource_server' || (stored.audience !== undefined && stored.audience !== by.id)) {
        throw new WritError('forbidden', by.role === 'agent' ? 'this token was issued to another agent' : 'this token is for another audience', { field: 'token' });
      }
      const record = effective(stored);
      const detail = { permission_id: id, status: record.status };
      if (record.status === 'used') throw new WritError('token_used', 'this one-time token has already been used', { ...detail, used_at: record.used_at });
      if (record.status === 'revoked') throw new WritError('token_revoked', 'this token was revoked', detail);
      if (record.status === 'expired') throw new WritError('token_expired', 'this token has expired', { ...detail, expired_at: record.expires_at });
      if (record.status !== 'approved') throw new WritError('token_invalid', 'unknown token', { field: 'token' });
      if (input.action !== record.action) {
        throw new WritError('action_mismatch', `the token is for action ${record.action}`, { field: 'action', expected: record.action });
      }
      if (input.resource !== record.resource) {
        throw new WritError('resource_mismatch', `the token is for resource ${record.resource}`, { field: 'resource', expected: record.resource });
      }
      const violations = scopeViolations(tokenBounds(record), input.use);
      if (violations.length > 0) {
        throw new WritError('scope_violation', `the use is outside the token's scope: ${violations.join('; ')}`, { field: 'use', violations });
      }
      const now = iso(Date.now());
      const next: PermissionRecord = { ...record, status: 'used', used_at: now, closed_at: now };
      delete next.token_sealed;
      const receipt = await this.receipt(next);
      // Right before it is sequenced: a revocation in flight that has not closed this token yet still stops it.
      if (this.refused(record.agent.id) || this.refused(record.agent.key_id)) throw new WritError('token_revoked', 'this token was revoked', detail);
      const event = this.events.make('permission.used', { permission: summary(next), by: { role: by.role, id: by.id } });
      await this.o.log.append('token.used', { permission_id: id, by: { role: by.role, id: by.id }, action: input.action, resource: input.resource, use: input.use }, [
        put(K.permission(id), next),
        { type: 'del', key: K.agentOpen(record.agent.id, id) },
        ...this.events.ops(event),
      ], { expect: reads.expect });
      this.notify(id);
      this.events.after(event);
      return { permission_id: id, receipt };
    }));
  }

  /**
   * One page of permissions in id order (oldest first), each as stored with its expiry applied and
   * its receipt; a due approval timeout is left to its timer (a list writes nothing). With
   * `filter.agent` only that agent's index is read; `since` is where the scan starts, since ids
   * sort by creation time.
   */
  async permissionsPage(filter: PermissionFilter, limit: number, after?: string): Promise<Page<PermissionRecord>> {
    const prefix = filter.agent === undefined ? 'perm/' : K.agentPermission(filter.agent, '');
    const since = filter.since === undefined ? undefined : Date.parse(filter.since);
    const from = since === undefined ? prefix : `${prefix}${sortableIdFloor('perm', since)}`;
    const gte = after === undefined || `${prefix}${after}` < from ? from : `${prefix}${after}\u0000`;
    const source = entries(this.o.store, prefix, { gte, lt: `${prefix}~` }, filter.agent === undefined ? undefined : K.permission);
    const category = filter.action?.endsWith('.*') ? filter.action.slice(0, -1) : undefined;
    const page = await collectPage(source, limit, (raw) => {
      const record = effective(JSON.parse(raw) as PermissionRecord);
      if (filter.status !== undefined && record.status !== filter.status) return undefined;
      if (filter.action !== undefined && (category === undefined ? record.action !== filter.action : !record.action.startsWith(category))) return undefined;
      if (since !== undefined && Date.parse(record.created_at) < since) return undefined;
      return record;
    });
    const signed = page.items.filter((r) => r.anchor && r.status !== 'revoked');
    const receipts = await this.o.store.getMany(signed.map((r) => K.receipt(r.id)));
    signed.forEach((record, i) => {
      const receipt = receipts[i];
      if (receipt !== undefined) record.receipt = receipt;
    });
    return page;
  }

  /**
   * One page of approvals with the request each decides: `pending` is every open one (delays
   * included), oldest first; any other status newest first.
   */
  async approvalsPage(status: machine.ApprovalStatus | 'all', limit: number, after?: string): Promise<Page<ApprovalWithRequest>> {
    const now = Date.now();
    const source =
      status === 'pending'
        ? entries(this.o.store, 'appr-open/', { gte: after === undefined ? K.openRange.gte : `${K.open(after)}\u0000`, lt: K.openRange.lt }, K.approval)
        : entries(this.o.store, 'appr/', { gte: K.approvalRange.gte, lt: after === undefined ? K.approvalRange.lt : K.approval(after), reverse: true });
    const page = await collectPage(source, limit, (raw) => {
      const approval = machine.settle(JSON.parse(raw) as Approval, now).approval;
      const wanted = status === 'all' || (status === 'pending' ? machine.OPEN_STATUSES.includes(approval.status) : approval.status === status);
      return wanted ? approval : undefined;
    });
    const records = await this.o.store.getMany(page.items.map((a) => K.permission(a.permission_id)));
    const items = page.items.flatMap((approval, i) => {
      const raw = records[i];
      return raw === undefined ? [] : [{ approval, permission: summary(JSON.parse(raw) as PermissionRecord) }];
    });
    return { items, ...(page.after !== undefined ? { after: page.after } : {}) };
  }

  /** The first page of approvals (see approvalsPage), for surfaces that show a queue at once. */
  async listApprovals(status: machine.ApprovalStatus | 'all', limit: number): Promise<ApprovalWithRequest[]> {
    return (await this.approvalsPage(status, limit)).items;
  }

  /** An approval with the permission it decides, for approval surfaces (cards, REST). */
  async approvalWithPermission(approvalId: string): Promise<ApprovalWithRequest | undefined> {
    const approval = await getJson<Approval>(this.o.store, K.approval(approvalId));
    const record = approval ? await getJson<PermissionRecord>(this.o.store, K.permission(approval.permission_id)) : undefined;
    return approval && record ? { approval: machine.settle(approval, Date.now()).approval, permission: summary(record) } : undefined;
  }

  async getApproval(id: string): Promise<Approval> {
    const approval = await getJson<Approval>(this.o.store, K.approval(id));
    if (!approval) throw new WritError('not_found', `no approval ${id}`, { field: 'id' });
    return machine.settle(approval, Date.now()).approval;
  }

  /**
   * Applies an approver's vote or cancel through the state machine and persists its outcome. An
   * approver who names the request digest they were shown votes only if it is still that request.
   */
  async decide(
    approvalId: string,
    approver: { approver_id: string; name: string; passkey?: string },
    action: 'approve' | 'deny' | 'cancel',
    comment?: string,
    seenDigest?: string,
  ): Promise<Approval> {
    const approval = await this.getApproval(approvalId);
    return this.mutex.run(approval.permission_id, () => retrying(async () => {
      // Written only while the approval and its request are as read here: votes on other nodes are seen, never lost.
      const reads = new Reads(this.o.store);
      const settled = await this.settleLocked(approvalId, reads);
      if (seenDigest !== undefined && seenDigest !== settled.request_digest) {
        throw new WritError('request_mismatch', 'this approval is for another request than the one you were shown; look at it again', {
          field: 'request_digest',
          request_digest: settled.request_digest,
        });
      }
      const now = Date.now();
      const t =
        action === 'cancel'
          ? machine.cancel(settled, approver, now, comment)
          : machine.vote(settled, approver, action, now, this.o.criticalDelaySeconds, comment);
      if (!t.ok) throw new WritError(t.reason, t.message, { approval_id: approvalId, status: settled.status });
      reads.add(await this.o.principals.standing(approver.approver_id, 'approver'));
      return this.persistTransition(t.approval, t.outcome, { approver_id: approver.approver_id, name: approver.name, action, comment, passkey: approver.passkey }, reads);
    }));
  }

  /** Applies a due timeout or delay end; safe to call any number of times. */
  private settle(approvalId: string): Promise<Approval> {
    return getJson<Approval>(this.o.store, K.approval(approvalId)).then((a) =>
      a ? this.mutex.run(a.permission_id, () => retrying(() => this.settleLocked(approvalId, new Reads(this.o.store)))) : Promise.reject(new WritError('not_found', `no approval ${approvalId}`)),
    );
  }

  /** A due timeout or delay end, written once: every node may try, and the first to write it wins. */
  private async settleLocked(approvalId: string, reads: Reads): Promise<Approval> {
    const approval = await reads.json<Approval>(K.approval(approvalId));
    if (!approval) throw new WritError('not_found', `no approval ${approvalId}`, { field: 'id' });
    const { approval: next, outcome } = machine.settle(approval, Date.now());
    return outcome ? this.persistTransition(next, outcome, undefined, reads) : next;
  }

  /** One log entry per transition; the permission follows the approval's outcome in the same batch. */
  private async persistTransition(
    decided: Approval,
    decidedOutcome: 'recorded' | 'approved' | 'denied' | 'delay' | 'cancelled' | 'expired',
    by: { approver_id: string; name: string; action: string; comment?: string | undefined; passkey?: string | undefined } | undefined,
    reads: Reads,
  ): Promise<Approval> {
    const record = await reads.json<PermissionRecord>(K.permission(decided.permission_id));
    if (!record) throw new Error(`permission ${decided.permission_id} of approval ${decided.id} is missing`);
    const now = Date.now();
    let approval = decided;
    let outcome = decidedOutcome;
    // From here to the append nothing awaits, so a revocation in flight is seen.
    if (by && this.refused(by.approver_id)) throw new WritError('forbidden', 'this approver is revoked', { field: 'authorization' });
    let refusal: string | undefined;
    // A token only for the very request the approvers saw (approvals made before digests existed have none)…
    if (outcome === 'approved' && approval.request_digest !== undefined && machine.requestDigest(record) !== approval.request_digest) {
      refusal = 'the request changed after the approvers saw it';
    }
    // …and never for an agent, or a key, revoked meanwhile.
    if (outcome === 'approved' && (this.refused(record.agent.id) || this.refused(record.agent.key_id))) refusal = 'the agent or its key was revoked';
    if (refusal) {
      approval = { ...approval, status: 'denied', decided_at: iso(now) };
      outcome = 'denied';
    }
    const ops: BatchOp[] = [put(K.approval(approval.id), approval)];
    if (by) ops.push(this.acted(by.approver_id));
    const closing = !machine.OPEN_STATUSES.includes(approval.status);
    if (closing) ops.push({ type: 'del', key: K.open(approval.id) });
    if (closing && outcome !== 'approved') ops.push({ type: 'del', key: K.agentOpen(record.agent.id, record.id) });
    let next: PermissionRecord | undefined;
    if (outcome === 'approved') {
      next = {
        ...record,
        status: 'approved',
        decision: 'allow',
        approvals: approval.votes.filter((v) => v.vote === 'approve').map(({ approver_id, name, at }) => ({ approver_id, name, at })),
        expires_at: iso(now + record.ttl * 1000),
      };
      if (!record.oversight) this.issueToken(next, ops);
    } else if (outcome === 'denied' || outcome === 'cancelled' || outcome === 'expired') {
      const status = outcome === 'expired' ? 'expired' : 'denied';
      const why = refusal ?? `approval ${outcome}`;
      next = { ...record, status, decision: 'deny', reasons: [...record.reasons, why], closed_at: iso(now) };
    }
    const type = by ? `approval.${by.action === 'cancel' ? 'cancelled' : 'vote'}` : `approval.${outcome}`;
    const entry: Record<string, unknown> = {
      approval_id: approval.id,
      permission_id: approval.permission_id,
      tier: approval.tier,
      outcome,
      status: approval.status,
      votes: approval.votes.filter((v) => v.vote === 'approve').length,
      required: approval.required,
    };
    if (by) entry.by = { approver_id: by.approver_id, name: by.name, vote: by.action, ...(by.comment ? { comment: by.comment } : {}), ...(by.passkey ? { passkey: by.passkey } : {}) };
    if (approval.delay_until && outcome === 'delay') entry.delay_until = approval.delay_until;
    const eventType = outcome === 'approved' ? 'approval.approved' : outcome === 'expired' ? 'approval.expired' : outcome === 'denied' || outcome === 'cancelled' ? 'approval.denied' : 'approval.updated';
    const event = this.events.make(eventType, {
      approval,
      permission: summary(next ?? record),
      ...(by ? { by: { approver_id: by.approver_id, name: by.name, vote: by.action } } : {}),
    });
    await this.o.log.append(type, entry, (at) => {
      event.log = { index: at.index, leaf_hash: at.leafHash, at: at.time };
      const signed: BatchOp[] = [];
      if (next) {
        next.decided = { index: at.index, leaf_hash: at.leafHash, at: at.time, outcome, ...(by ? { by: { approver_id: by.approver_id, name: by.name } } : {}) };
        if (next.status === 'approved' && !next.oversight) {
          anchor(next, at, this.o.issuer());
          signed.push(put(K.receipt(next.id), signReceipt(this.o.keys, this.claimsFor(next))));
        }
      }
      return [...ops, ...signed, ...this.events.ops(event), ...(next ? [put(K.permission(record.id), next)] : [])];
    }, { expect: reads.expect });
    if (closing) this.deadlines.cancel(approval.id);
    else this.arm(approval);
    this.notify(approval.permission_id);
    this.events.after(event);
    return approval;
  }

  private arm(approval: Approval): void {
    const when = approval.status === 'delay' && approval.delay_until ? approval.delay_until : approval.expires_at;
    this.deadlines.at(approval.id, Date.parse(when), () => {
      void this.settle(approval.id).catch(() => undefined);
    });
  }

  private issueToken(record: PermissionRecord, ops: BatchOp[]): string {
    const token = `${TOKEN_PREFIX}${randomToken(32)}`;
    record.token_hash = sha256(token).toString('base64url');
    record.token_sealed = encrypt(this.o.dataKey, token);
    ops.push(put(K.token(record.token_hash), record.id));
    return token;
  }

  /**
   * The receipt is signed as its log entry is sequenced and stored in the same batch, under a
   * write-once key (never in the record, so it cannot race a later status change); it is handed
   * out only once that batch is durable, and a read always returns those same bytes.
   */
  private async receipt(record: PermissionRecord): Promise<string> {
    const kept = await this.o.store.get(K.receipt(record.id));
    if (kept !== undefined) return kept;
    throw new Error(`the receipt of permission ${record.id} is missing although its entry is stored`);
  }

  private claimsFor(record: PermissionRecord): AuthorizerClaims {
    if (!record.anchor) throw new Error(`permission ${record.id} has no log anchor`);
    return {
      iss: record.anchor.issuer,
      iss_role: 'authorizer',
      ...(record.audience !== undefined ? { aud: record.audience } : {}),
      sub: record.agent.id,
      jti: `rcpt_${record.id.slice('perm_'.length)}`,
      oap_ver: '1.0',
      permission_id: record.id,
      action: record.action,
      resource: record.resource,
      scope: record.scope,
      ...(record.value !== undefined ? { value: record.value } : {}),
      ...(record.currency !== undefined ? { currency: record.currency } : {}),
      decision: 'allow',
      tier: record.tier,
      approvals: record.approvals,
      single_use: true,
      policy: { hash: record.policy.hash, determining: record.policy.determining },
      log: { origin: this.o.log.origin, index: record.anchor.index, leaf_hash: record.anchor.leaf_hash },
      iat: seconds(record.anchor.at),
      exp: seconds(record.expires_at),
    };
  }
}

function openApproval(record: PermissionRecord, now: number): Approval {
  const tier = record.tier === 'standard' ? 'sensitive' : record.tier;
  const approval: Approval = {
    id: sortableId('appr', now),
    permission_id: record.id,
    agent_id: record.agent.id,
    action: record.action,
    resource: record.resource,
    tier,
    required: machine.requiredApprovals(tier),
    votes: [],
    status: 'pending',
    created_at: record.created_at,
    expires_at: record.expires_at,
    request_digest: machine.requestDigest(record),
  };
  record.approval_id = approval.id;
  return approval;
}

/** The least id `sortableId` can make at or after `ms`: where a scan for what was created since then starts. */
function sortableIdFloor(prefix: string, ms: number): string {
  return `${prefix}_${Math.max(0, Math.ceil(ms)).toString(16).padStart(12, '0')}`;
}

/**
 * A range's ids (its keys less `prefix`), each with its record: the value itself or, for an index,
 * the record under `recordKey(id)`, read a chunk at a time (undefined where none is left).
 */
async function* entries(store: Store, prefix: string, range: Range, recordKey?: (id: string) => string): AsyncGenerator<[string, string | undefined]> {
  if (!recordKey) {
    for await (const [key, raw] of store.iterate(range)) yield [key.slice(prefix.length), raw];
    return;
  }
  let ids: string[] = [];
  const records = async function* () {
    const raws = await store.getMany(ids.map(recordKey));
    for (const [i, id] of ids.entries()) yield [id, raws[i]] as [string, string | undefined];
  };
  for await (const [key] of store.iterate(range)) {
    ids.push(key.slice(prefix.length));
    if (ids.length === 100) {
      yield* records();
      ids = [];
    }
  }
  yield* records();
}

/**
 * Reads a range until it has `limit` items that `pick` keeps, the range ends, or PAGE_SCAN_LIMIT
 * keys were read. `after` is where the next page starts, and is set only while more may follow:
 * after the last item when one more was found, after the last key read when the budget ran out.
 */
async function collectPage<T>(source: AsyncIterable<[string, string | undefined]>, limit: number, pick: (raw: string) => T | undefined): Promise<Page<T>> {
  const items: T[] = [];
  let lastItem = '';
  let scanned = 0;
  for await (const [id, raw] of source) {
    const item = raw === undefined ? undefined : pick(raw);
    if (item !== undefined && items.length === limit) return { items, after: lastItem };
    if (item !== undefined) {
      items.push(item);
      lastItem = id;
    }
    if (++scanned >= PAGE_SCAN_LIMIT) return { items, after: id };
  }
  return { items };
}

function anchor(record: PermissionRecord, at: Appended, issuer: string): void {
  record.anchor = { index: at.index, leaf_hash: at.leafHash, at: at.time, issuer };
}

/** An approved token past its expiry reads as expired; nothing needs to be written for that. */
function effective(record: PermissionRecord): PermissionRecord {
  if (record.status === 'approved' && Date.now() >= Date.parse(record.expires_at)) {
    const { token_sealed: _sealed, ...rest } = record;
    return { ...rest, status: 'expired' };
  }
  return record;
}

function decisionEntry(r: PermissionRecord): Record<string, unknown> {
  return {
    permission_id: r.id,
    agent_id: r.agent.id,
    action: r.action,
    resource: r.resource,
    scope: r.scope,
    ...(r.value !== undefined ? { value: r.value } : {}),
    ...(r.currency !== undefined ? { currency: r.currency } : {}),
    decision: r.decision,
    tier: r.tier,
    status: r.status,
    reasons: r.reasons,
    policy: r.policy,
    ...(r.failure ? { failure: r.failure } : {}),
    expires_at: r.expires_at,
    ...(r.approval_id ? { approval_id: r.approval_id } : {}),
  };
}
