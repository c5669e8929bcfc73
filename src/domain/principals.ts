import crypto from 'node:crypto';
import { newId, safeEqual, sha256 } from '../crypto/encoding.ts';
import { WritError } from '../errors.ts';
import type { TransparencyLog } from '../log/log.ts';
import { getJson, put, type BatchOp, type Expectation, type Store } from '../store/store.ts';
import { Reads, retrying } from './reads.ts';
import { KeyedMutex } from './lock.ts';
import type { Page } from './permissions.ts';

/**
 * Agents, approvers, attesters and admins, and their API keys. A key looks like
 * `writ_<role>_<16 hex key id>.<43 chars secret>`; only SHA-256 of the whole key is stored, looked
 * up by key id and compared in constant time. Keys are never logged.
 */
export const ROLES = ['admin', 'agent', 'approver', 'attester', 'resource_server'] as const;
export type Role = (typeof ROLES)[number];
export const TRUST_TIERS = ['T1', 'T2', 'T3', 'T4', 'T5', 'unregistered'] as const;
export type TrustTier = (typeof TRUST_TIERS)[number];

/** Set on a principal once revoked: its keys are gone and it gets no new ones. */
export interface Revoked {
  at: string;
  reason: string;
}

export interface Agent {
  id: string;
  name: string;
  class: string;
  trust_tier: TrustTier;
  created_at: string;
  revoked?: Revoked;
}

/** A service that spends tokens on agents' behalf; a request may name one as its audience. */
export interface ResourceServer {
  id: string;
  name: string;
  created_at: string;
  revoked?: Revoked;
}

export interface Approver {
  id: string;
  name: string;
  /** When set at creation, only this Telegram user may link to the approver. */
  telegram_user_id?: number;
  telegram?: { user_id: number; chat_id: number; username?: string; linked_at: string };
  /** Hash of the current link code (one at a time; a new one replaces it). */
  link_code_hash?: string;
  created_at: string;
  revoked?: Revoked;
}

export type LinkResult =
  | { ok: true; approver: Approver }
  | { ok: false; reason: 'unknown_code' | 'expired_code' | 'wrong_user' | 'already_linked'; message: string };

export interface Attester {
  id: string;
  name: string;
  touchpoint_id: string;
  created_at: string;
  revoked?: Revoked;
}

export interface Principal {
  role: Role;
  id: string;
  name: string;
  /** The key this request came with (`env` for WRIT_ADMIN_TOKEN). */
  key_id: string;
}

/** What a revocation takes away on the principals' side, before it is written. */
export interface RevocationPlan {
  role: 'agent' | 'approver' | 'attester';
  principal_id: string;
  /** With `agent_key`: only these keys; the agent itself stays. */
  key_ids: string[];
  whole: boolean;
  ops: BatchOp[];
  /** What the plan was read from (the principal's activity): a rotation on another node meanwhile makes it be planned again. */
  expect: Expectation[];
  committed(): void;
}

export const REVOCATION_SCOPES = ['agent', 'agent_key', 'approver', 'attester', 'grant'] as const;
export type RevocationScope = (typeof REVOCATION_SCOPES)[number];

interface KeyRecord {
  hash: string;
  /** Absent: SHA-256 of a generated key (256 random bits, nothing to guess). */
  alg?: typeof ADMIN_HASH_ALG;
  role: Role;
  principal_id: string;
  name: string;
}

const K = {
  key: (keyId: string) => `key/${keyId}`,
  envAdmin: 'key/env-admin',
  agent: (id: string) => `agent/${id}`,
  approver: (id: string) => `approver/${id}`,
  attester: (id: string) => `attester/${id}`,
  resourceServer: (id: string) => `rs/${id}`,
  keys: { gte: 'key/', lt: 'key/~' },
  /** A key retired by a rotation: who it belonged to, so it can still be revoked. */
  retired: (keyId: string) => `key-retired/${keyId}`,
  link: (codeHash: string) => `link/${codeHash}`,
  telegramUser: (userId: number) => `tg/user/${userId}`,
  telegramUsers: { gte: 'tg/user/', lt: 'tg/user/~' },
  admin: 'admin/default',
  /** Changed by every act whose effects a revocation sweeps (a request, a vote): a revocation that read it before sweeping is written only if it has not changed. */
  activity: (principalId: string) => `activity/${principalId}`,
};

/** The key a principal's acts change (see Principals.standing). */
export const activityKey = K.activity;

/** The principals an admin can list, each with where its records are kept. */
type Listed = { agent: Agent; approver: Approver; attester: Attester; resource_server: ResourceServer };
const LISTED: { [R in keyof Listed]: (id: string) => string } = { agent: K.agent, approver: K.approver, attester: K.attester, resource_server: K.resourceServer };

const ADMIN_HASH_ALG = 'hmac-sha256';

const KEY_PATTERN = /^writ_(admin|agent|approver|attester|resource_server)_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;
export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;
export const LINK_CODE_TTL_MS = 24 * 3600 * 1000;

function mintKey(role: Role): { key: string; keyId: string; hash: string } {
  const keyId = crypto.randomBytes(8).toString('hex');
  const key = `writ_${role}_${keyId}.${crypto.randomBytes(32).toString('base64url')}`;
  return { key, keyId, hash: sha256(key).toString('base64') };
}

/** A single-use Telegram link code: only its hash is stored. */
function mintLinkCode(): { linkCode: string; linkHash: string } {
  const linkCode = crypto.randomBytes(12).toString('base64url');
  return { linkCode, linkHash: sha256(linkCode).toString('base64url') };
}

export class Principals {
  /** Key records are tiny and read on every request; cache them (revocation deletes from here too). */
  private readonly keys = new Map<string, KeyRecord>();
  private readonly agents = new Map<string, Agent>();
  private readonly attesters = new Map<string, Attester>();
  private readonly revoked = new Set<string>();
  /** Keys a rotation retired: refused at the door even if a read that began before put them in the cache. */
  private readonly retiredKeys = new Set<string>();
  private readonly linking = new KeyedMutex();
  /** Each record object as it was read (its stored text), for the conditions of writes decided from it. */
  private readonly stored = new WeakMap<object, string>();
  /** The stored text of each key record, as last read. */
  private readonly keyTexts = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly log: TransparencyLog,
    /** Keys the HMAC of a configured WRIT_ADMIN_TOKEN (derived from the data key). */
    private readonly adminHashKey: Buffer,
    /**
     * Other nodes share the store (PostgreSQL): a key or principal another node revoked must not
     * live on in this one's memory, so records are read from the store every time.
     */
    private readonly shared = false,
  ) {}

  /**
   * The principal's record and key as stored now, as conditions for a write it makes: a decision,
   * spend or vote is then written only if no revocation or rotation, on any node, changed them
   * meanwhile. Throws 401 when they are gone or revoked already.
   */
  async standing(principalId: string, role: 'agent' | 'approver', keyId?: string): Promise<Expectation[]> {
    const keys = [role === 'agent' ? K.agent(principalId) : K.approver(principalId), ...(keyId !== undefined && KEY_ID_PATTERN.test(keyId) ? [K.key(keyId)] : [])];
    const raws = await this.store.getMany(keys);
    const principal = raws[0] === undefined ? undefined : (JSON.parse(raws[0]) as { revoked?: Revoked });
    if (!principal || principal.revoked || (keys.length > 1 && raws[1] === undefined) || this.refused(principalId) || this.refused(keyId)) {
      throw new WritError('unauthenticated', `the ${role} or its key was revoked`, { field: 'authorization' });
    }
    return keys.map((key, i) => ({ key, value: raws[i] }));
  }

  /**
   * The conditions of a decision made for `agent` (the record the cascade read) and its key: the
   * texts they were read as, without reading again. A cached record is a hint: if another node
   * changed it, the decision's write meets the change and is refused, and `standing` then says why.
   */
  async agentStanding(agent: Agent, keyId: string): Promise<Expectation[]> {
    const agentText = this.stored.get(agent);
    const keyText = this.keyTexts.get(keyId);
    if (agentText === undefined || keyText === undefined || this.refused(agent.id) || this.refused(keyId)) return this.standing(agent.id, 'agent', keyId);
    return [
      { key: K.agent(agent.id), value: agentText },
      { key: K.key(keyId), value: keyText },
    ];
  }

  /** After a write met a change another node made: the agent is read from the store again. */
  forgetAgent(id: string): void {
    this.agents.delete(id);
  }

  /** Reads a record, remembering the text it was read from. */
  private async readRecord<T extends object>(key: string): Promise<T | undefined> {
    const text = await this.store.get(key);
    if (text === undefined) return undefined;
    const record = JSON.parse(text) as T;
    this.stored.set(record, text);
    return record;
  }

  /**
   * There is one admin credential at a time. With WRIT_ADMIN_TOKEN set, that token is it (stored
   * as an HMAC under a key from the data directory, so a stolen database alone cannot be used to
   * guess a chosen token) and any generated admin key is revoked. Without it, a generated key is:
   * made on the first start without one and returned for printing; until `adminKeyShown` records
   * that it was printed, every start makes a new one (revoking the unseen one), so a start that
   * failed before printing never loses the only admin key. Every change is a log entry; `notice`
   * says what changed, for the console.
   */
  async bootstrapAdmin(envToken: string | undefined): Promise<{ key?: string; notice?: string }> {
    this.keys.delete(K.envAdmin);
    const configured = await getJson<KeyRecord>(this.store, K.envAdmin);
    const generated = await getJson<{ key_id: string; shown?: boolean }>(this.store, K.admin);
    if (envToken) {
      const hash = this.adminTokenHash(envToken);
      if (configured?.hash === hash && configured.alg === ADMIN_HASH_ALG && !generated) return {};
      const ops: BatchOp[] = [put(K.envAdmin, { hash, alg: ADMIN_HASH_ALG, role: 'admin', principal_id: 'admin', name: 'admin (WRIT_ADMIN_TOKEN)' } satisfies KeyRecord)];
      if (generated) ops.push({ type: 'del', key: K.key(generated.key_id) }, { type: 'del', key: K.admin });
      if (generated) this.keys.delete(generated.key_id);
      await this.log.append('admin.key_configured', { source: 'WRIT_ADMIN_TOKEN', ...(generated ? { revoked_key_id: generated.key_id } : {}) }, ops);
      return generated ? { notice: `admin: WRIT_ADMIN_TOKEN is now the admin credential; the generated admin key ${generated.key_id} is revoked` } : {};
    }
    if (generated?.shown) {
      if (!configured) return {};
      await this.log.append('admin.key_removed', { source: 'WRIT_ADMIN_TOKEN' }, [{ type: 'del', key: K.envAdmin }]);
      return { notice: 'admin: WRIT_ADMIN_TOKEN is no longer set, so the token it held no longer works; the generated admin key is the admin credential again' };
    }
    const { key, keyId, hash } = mintKey('admin');
    const record: KeyRecord = { hash, role: 'admin', principal_id: 'admin', name: 'admin' };
    const ops: BatchOp[] = [put(K.key(keyId), record), put(K.admin, { key_id: keyId, created_at: new Date().toISOString(), shown: false })];
    if (configured) ops.push({ type: 'del', key: K.envAdmin });
    if (generated) ops.push({ type: 'del', key: K.key(generated.key_id) });
    if (generated) this.revoked.add(generated.key_id);
    await this.log.append('admin.key_generated', { key_id: keyId, ...(configured ? { removed: 'WRIT_ADMIN_TOKEN' } : {}), ...(generated ? { revoked_unshown_key_id: generated.key_id } : {}) }, ops);
    const notice = configured
      ? 'admin: WRIT_ADMIN_TOKEN is no longer set, so the token it held no longer works; a new admin key was generated'
      : generated
        ? `admin: the admin key generated at an earlier start was never shown, so it is revoked and a new one was generated`
        : undefined;
    return { key, ...(notice ? { notice } : {}) };
  }

  /** The generated admin key has been printed: later starts keep it. */
  async adminKeyShown(): Promise<void> {
    const generated = await getJson<{ key_id: string; shown?: boolean }>(this.store, K.admin);
    if (generated && !generated.shown) await this.store.batch([put(K.admin, { ...generated, shown: true })], { sync: true });
  }

  private adminTokenHash(token: string): string {
    return crypto.createHmac('sha256', this.adminHashKey).update(token).digest('base64');
  }

  /** Cached records are read again from the store (after it was reopened); revocations stay in force. */
  forgetCached(): void {
    this.keys.clear();
    this.agents.clear();
    this.attesters.clear();
  }

  /** Resolves a bearer key to its principal, or throws 401. */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    const match = /^Bearer ([^\s]+)$/.exec(authorization ?? '');
    if (!match?.[1]) {
      throw new WritError('unauthenticated', 'missing or malformed Authorization header; expected "Bearer <api key>"', { field: 'authorization' });
    }
    return (await this.authenticateKey(match[1])).principal;
  }

  /**
   * A key to its principal, with the hash its key record holds (a session keeps it, so a rotated,
   * revoked or replaced key ends the sessions opened with it); throws 401.
   */
  async authenticateKey(presented: string): Promise<{ principal: Principal; recordHash: string }> {
    const hash = sha256(presented);
    const parts = KEY_PATTERN.exec(presented);
    const keyId = parts?.[2] ?? 'env';
    const record = await this.keyRecord(keyId);
    const presentedHash = record?.alg === ADMIN_HASH_ALG ? Buffer.from(this.adminTokenHash(presented), 'base64') : hash;
    if (!record || !safeEqual(presentedHash, Buffer.from(record.hash, 'base64')) || (parts && parts[1] !== record.role)) {
      throw new WritError('unauthenticated', 'the API key is not valid', { field: 'authorization' });
    }
    return { principal: { role: record.role, id: record.principal_id, name: record.name, key_id: keyId }, recordHash: record.hash };
  }

  /** Whether the key a session was opened with is still the principal's, unrevoked and unreplaced. */
  async keyStillHeld(principal: Principal, recordHash: string): Promise<boolean> {
    const record = await this.keyRecord(principal.key_id);
    return record !== undefined && record.principal_id === principal.id && safeEqual(Buffer.from(record.hash, 'base64'), Buffer.from(recordHash, 'base64'));
  }

  /** The record of a key by its id (`env` for WRIT_ADMIN_TOKEN), unless revoked or retired. */
  private async keyRecord(keyId: string): Promise<KeyRecord | undefined> {
    if (keyId === 'env') {
      // Cached like the other keys, so an admin can still read /api/v1/status while storage is down.
      const record = this.cached(this.keys, K.envAdmin) ?? (await getJson<KeyRecord>(this.store, K.envAdmin));
      if (record) this.keys.set(K.envAdmin, record);
      return record;
    }
    if (!KEY_ID_PATTERN.test(keyId)) return undefined;
    let record = this.cached(this.keys, keyId);
    if (!record) {
      record = await this.readRecord<KeyRecord>(K.key(keyId));
      const text = record && this.stored.get(record);
      if (text === undefined) this.keyTexts.delete(keyId);
      else this.keyTexts.set(keyId, text);
    }
    // A read that began before a revocation must not put the revoked key back in the cache.
    if (this.revoked.has(keyId) || this.retiredKeys.has(keyId) || (record && this.revoked.has(record.principal_id))) return undefined;
    if (record) this.keys.set(keyId, record);
    return record;
  }

  async createAgent(input: { name: string; class?: string | undefined; trust_tier?: TrustTier | undefined }): Promise<{ agent: Agent; api_key: string }> {
    const agent: Agent = {
      id: newId('agt'),
      name: input.name,
      class: input.class ?? 'default',
      trust_tier: input.trust_tier ?? 'unregistered',
      created_at: new Date().toISOString(),
    };
    const { key, keyId, hash } = mintKey('agent');
    await this.log.append('agent.registered', { agent_id: agent.id, name: agent.name, class: agent.class, trust_tier: agent.trust_tier, key_id: keyId }, [
      put(K.agent(agent.id), agent),
      put(K.key(keyId), { hash, role: 'agent', principal_id: agent.id, name: agent.name } satisfies KeyRecord),
    ]);
    // Cached as written (the text `put` stored), so decisions carry it as their condition unread.
    this.stored.set(agent, JSON.stringify(agent));
    this.agents.set(agent.id, agent);
    return { agent, api_key: key };
  }

  /** A cached record, unless other nodes share the store (then every read goes to it). */
  private cached<T>(cache: Map<string, T>, key: string): T | undefined {
    return this.shared ? undefined : cache.get(key);
  }

  /**
   * An agent's record. Cached even with other nodes sharing the store: every write decided from it
   * is conditional on the text it was read as (see agentStanding), so a stale one is refused there.
   */
  async getAgent(id: string): Promise<Agent | undefined> {
    const cached = this.agents.get(id);
    if (cached) return cached;
    const agent = await this.readRecord<Agent>(K.agent(id));
    if (agent) this.agents.set(id, agent);
    return agent;
  }

  async createApprover(input: { name: string; telegram_user_id?: number | undefined }): Promise<{ approver: Approver; api_key: string; link_code: string }> {
    const { linkCode, linkHash } = mintLinkCode();
    const approver: Approver = { id: newId('apr'), name: input.name, link_code_hash: linkHash, created_at: new Date().toISOString() };
    if (input.telegram_user_id !== undefined) approver.telegram_user_id = input.telegram_user_id;
    const { key, keyId, hash } = mintKey('approver');
    await this.log.append('approver.registered', { approver_id: approver.id, name: approver.name, key_id: keyId }, [
      put(K.approver(approver.id), approver),
      put(K.key(keyId), { hash, role: 'approver', principal_id: approver.id, name: approver.name } satisfies KeyRecord),
      put(K.link(linkHash), { approver_id: approver.id, expires_at: Date.now() + LINK_CODE_TTL_MS }),
    ]);
    return { approver, api_key: key, link_code: linkCode };
  }

  getApprover(id: string): Promise<Approver | undefined> {
    return getJson<Approver>(this.store, K.approver(id));
  }

  /**
   * One page of one kind of principal, in key order: ids are random, so the order is stable but
   * not the order of registration. `after` is where the next page starts, set while more follow.
   */
  async list<R extends keyof Listed>(role: R, limit: number, after?: string): Promise<Page<Listed[R]>> {
    const prefix = LISTED[role]('');
    const items: Listed[R][] = [];
    for await (const [, raw] of this.store.iterate({ gte: after === undefined ? prefix : `${LISTED[role](after)}\u0000`, lt: `${prefix}~`, limit: limit + 1 })) {
      items.push(JSON.parse(raw) as Listed[R]);
    }
    return items.length > limit ? { items: items.slice(0, limit), after: items[limit - 1]!.id } : { items };
  }

  async listAttesters(): Promise<Attester[]> {
    const out: Attester[] = [];
    for await (const [, raw] of this.store.iterate({ gte: 'attester/', lt: 'attester/~' })) out.push(JSON.parse(raw) as Attester);
    return out;
  }

  async getAttester(id: string): Promise<Attester | undefined> {
    const cached = this.cached(this.attesters, id);
    if (cached) return cached;
    const attester = await this.readRecord<Attester>(K.attester(id));
    if (attester) this.attesters.set(id, attester);
    return attester;
  }

  /** The ids of a principal's current keys. */
  private async keyIdsOf(principalId: string, role: Role): Promise<string[]> {
    const ids: string[] = [];
    for await (const [key, raw] of this.store.iterate(K.keys)) {
      if (key === K.envAdmin) continue;
      const record = JSON.parse(raw) as KeyRecord;
      if (record.principal_id === principalId && record.role === role) ids.push(key.slice('key/'.length));
    }
    return ids;
  }

  /** Keys (or whole principals) refused from now on, in memory, before the write that revokes them is durable. */
  private refuse(ids: string[]): void {
    for (const id of ids) {
      this.revoked.add(id);
      this.keys.delete(id);
    }
  }

  /**
   * Whether a key id or a principal id has been revoked, as of now. Checked by the writes that
   * could otherwise slip past a revocation in flight (a decision, a spend, a vote), right before
   * they are sequenced.
   */
  refused(id: string | undefined): boolean {
    return id !== undefined && this.revoked.has(id);
  }

  /**
   * What revoking takes away here: the keys (refused at once, deleted in the revocation's batch),
   * and for a whole principal its record marked revoked (an approver's Telegram link goes too).
   * `agent_key` names an agent (all its keys) or one key id; the agent stays and can get a new key.
   */
  async planRevocation(scope: Exclude<RevocationScope, 'grant'>, id: string, reason: string): Promise<RevocationPlan> {
    const revoked: Revoked = { at: new Date().toISOString(), reason };
    // Read before the keys are listed: a rotation (or request, or vote) on another node meanwhile changes it.
    const activityOf = async (principal: string): Promise<Expectation[]> => [{ key: K.activity(principal), value: await this.store.get(K.activity(principal)) }];
    if (scope === 'agent_key' && KEY_ID_PATTERN.test(id)) {
      // A key retired by a rotation can still be revoked: what it obtained goes with it.
      const record = (await getJson<KeyRecord>(this.store, K.key(id))) ?? (await getJson<KeyRecord>(this.store, K.retired(id)));
      if (!record || record.role !== 'agent') throw new WritError('not_found', `no agent key ${id}`, { field: 'id' });
      this.refuse([id]);
      await this.log.flush();
      const expect = await activityOf(record.principal_id);
      return { role: 'agent', principal_id: record.principal_id, key_ids: [id], whole: false, ops: [{ type: 'del', key: K.key(id) }], expect, committed: () => undefined };
    }
    const role = scope === 'agent_key' ? 'agent' : scope;
    // Refused before anything is read: a rotation, decision or vote sequenced from now on is
    // refused, and what was sequenced before is on disk (the flush) when the keys are listed.
    if (scope !== 'agent_key') this.refuse([id]);
    await this.log.flush();
    const expect = await activityOf(id);
    const ops: BatchOp[] = [];
    let committed = () => {};
    if (role === 'agent') {
      const agent = await this.getAgent(id);
      if (!agent) throw new WritError('not_found', `no agent ${id}`, { field: 'id' });
      if (scope === 'agent' && !agent.revoked) {
        ops.push(put(K.agent(id), { ...agent, revoked }));
        committed = () => this.agents.delete(id);
      }
    } else if (role === 'approver') {
      const approver = await this.getApprover(id);
      if (!approver) throw new WritError('not_found', `no approver ${id}`, { field: 'id' });
      const { telegram, link_code_hash, ...rest } = approver;
      if (!approver.revoked) ops.push(put(K.approver(id), { ...rest, revoked }));
      if (telegram) ops.push({ type: 'del', key: K.telegramUser(telegram.user_id) });
      if (link_code_hash) ops.push({ type: 'del', key: K.link(link_code_hash) });
    } else {
      const attester = await this.getAttester(id);
      if (!attester) throw new WritError('not_found', `no attester ${id}`, { field: 'id' });
      if (!attester.revoked) ops.push(put(K.attester(id), { ...attester, revoked }));
      committed = () => this.attesters.delete(id);
    }
    const keyIds = await this.keyIdsOf(id, role);
    this.refuse(keyIds);
    ops.push(...keyIds.map((k): BatchOp => ({ type: 'del', key: K.key(k) })));
    return { role, principal_id: id, key_ids: keyIds, whole: scope !== 'agent_key', ops, expect, committed };
  }

  /**
   * A new key for an agent, approver, attester or resource server; its current keys are retired at
   * once. Nothing it did is touched: its tokens, votes and records stay.
   */
  async rotateKey(role: 'agent' | 'approver' | 'attester' | 'resource_server', id: string): Promise<{ id: string; api_key: string; key_id: string; retired_key_ids: string[] }> {
    return retrying(() => this.rotateOnce(role, id));
  }

  /** Written only while the principal's record is as read here: a revocation on another node wins, and this is tried again from the store. */
  private async rotateOnce(role: 'agent' | 'approver' | 'attester' | 'resource_server', id: string): Promise<{ id: string; api_key: string; key_id: string; retired_key_ids: string[] }> {
    const subjectKey = role === 'agent' ? K.agent(id) : role === 'approver' ? K.approver(id) : role === 'attester' ? K.attester(id) : K.resourceServer(id);
    // Read from the store, not a cache: the rotation is written only while the record is this text.
    const text = await this.store.get(subjectKey);
    const subject = text === undefined ? undefined : (JSON.parse(text) as { name: string; revoked?: Revoked });
    if (!subject) throw new WritError('not_found', `no ${role.replace('_', ' ')} ${id}`, { field: 'id' });
    if (subject.revoked) throw new WritError('conflict', `${role.replace('_', ' ')} ${id} is revoked; it gets no new key`, { field: 'id' });
    return this.linking.run(`keys:${id}`, async () => {
      const retired = await this.keyIdsOf(id, role);
      const { key, keyId, hash } = mintKey(role);
      // Checked right before it is sequenced: a revocation that began meanwhile wins.
      if (this.refused(id)) throw new WritError('conflict', `${role.replace('_', ' ')} ${id} is revoked; it gets no new key`, { field: 'id' });
      // The activity key changes too: a revocation that listed the keys before this is planned again.
      await this.log.append('key.rotated', { role, principal_id: id, key_id: keyId, retired_key_ids: retired }, [
        ...retired.flatMap((k): BatchOp[] => [{ type: 'del', key: K.key(k) }, put(K.retired(k), { role, principal_id: id, name: subject.name })]),
        put(K.key(keyId), { hash, role, principal_id: id, name: subject.name } satisfies KeyRecord),
        put(K.activity(id), crypto.randomBytes(8).toString('base64url')),
      ], { expect: [{ key: subjectKey, value: text }] });
      // Only once the rotation is durable: a rotation that failed leaves the old key working. A
      // retired key no longer authenticates, but what it obtained stays good (it is not revoked).
      for (const k of retired) {
        this.retiredKeys.add(k);
        this.keys.delete(k);
      }
      return { id, api_key: key, key_id: keyId, retired_key_ids: retired };
    });
  }

  async createResourceServer(input: { name: string }): Promise<{ resourceServer: ResourceServer; api_key: string }> {
    const server: ResourceServer = { id: newId('rs'), name: input.name, created_at: new Date().toISOString() };
    const { key, keyId, hash } = mintKey('resource_server');
    await this.log.append('resource_server.registered', { resource_server_id: server.id, name: server.name, key_id: keyId }, [
      put(K.resourceServer(server.id), server),
      put(K.key(keyId), { hash, role: 'resource_server', principal_id: server.id, name: server.name } satisfies KeyRecord),
    ]);
    return { resourceServer: server, api_key: key };
  }

  getResourceServer(id: string): Promise<ResourceServer | undefined> {
    return getJson<ResourceServer>(this.store, K.resourceServer(id));
  }

  /**
   * `/start <code>` from Telegram user `from` in private chat `chatId`. The code is single-use
   * and expires after 24 h; an approver created with a telegram_user_id links only to that user.
   */
  /** A fresh single-use link code for an approver; the previous one stops working. */
  async newLinkCode(approverId: string): Promise<{ approver_id: string; link_code: string; expires_at: string }> {
    return this.linking.run(approverId, async () => {
      const approver = await this.getApprover(approverId);
      if (!approver) throw new WritError('not_found', `no approver ${approverId}`, { field: 'id' });
      if (approver.revoked) throw new WritError('conflict', `approver ${approverId} is revoked`, { field: 'id' });
      const { linkCode, linkHash } = mintLinkCode();
      const expires = Date.now() + LINK_CODE_TTL_MS;
      const ops: BatchOp[] = [put(K.link(linkHash), { approver_id: approverId, expires_at: expires }), put(K.approver(approverId), { ...approver, link_code_hash: linkHash })];
      if (approver.link_code_hash) ops.push({ type: 'del', key: K.link(approver.link_code_hash) });
      await this.log.append('approver.link_code_issued', { approver_id: approverId }, ops);
      return { approver_id: approverId, link_code: linkCode, expires_at: new Date(expires).toISOString() };
    });
  }

  async linkTelegram(code: string, from: { id: number; username?: string | undefined }, chatId: number): Promise<LinkResult> {
    // Serialised per code: concurrent updates (webhook mode) must not use one code twice.
    const codeHash = sha256(code).toString('base64url');
    return this.linking.run(`code:${codeHash}`, () => retrying(() => this.linkLocked(codeHash, from, chatId)));
  }

  /** Written only while the code, the approver and the Telegram user's link are as read: a code is used once, across nodes too. */
  private async linkLocked(codeHash: string, from: { id: number; username?: string | undefined }, chatId: number): Promise<LinkResult> {
    const key = K.link(codeHash);
    const reads = new Reads(this.store);
    const link = await reads.json<{ approver_id: string; expires_at: number }>(key);
    if (!link) return { ok: false, reason: 'unknown_code', message: 'This link code is not valid. It may have been used already; ask an admin for a new approver link code.' };
    if (Date.now() > link.expires_at) return { ok: false, reason: 'expired_code', message: 'This link code has expired (codes last 24 hours); ask an admin for a new one.' };
    const approver = await reads.json<Approver>(K.approver(link.approver_id));
    if (!approver || approver.revoked) return { ok: false, reason: 'unknown_code', message: 'This link code is not valid.' };
    if (approver.telegram_user_id !== undefined && approver.telegram_user_id !== from.id) {
      return { ok: false, reason: 'wrong_user', message: 'This link code belongs to another Telegram account.' };
    }
    await reads.raw(K.telegramUser(from.id));
    const other = await this.approverByTelegramUser(from.id);
    if (other && other.id !== approver.id) return { ok: false, reason: 'already_linked', message: `Your Telegram account is already linked to approver ${other.name}; send /unlink first.` };
    const { link_code_hash: _used, ...withoutCode } = approver;
    const linked: Approver = {
      ...withoutCode,
      telegram: { user_id: from.id, chat_id: chatId, ...(from.username ? { username: from.username } : {}), linked_at: new Date().toISOString() },
    };
    const ops: BatchOp[] = [put(K.approver(approver.id), linked), put(K.telegramUser(from.id), approver.id), { type: 'del', key }];
    if (approver.telegram && approver.telegram.user_id !== from.id) ops.push({ type: 'del', key: K.telegramUser(approver.telegram.user_id) });
    await this.log.append('approver.telegram_linked', { approver_id: approver.id, telegram_user_id: from.id }, ops, { expect: reads.expect });
    return { ok: true, approver: linked };
  }

  async unlinkTelegram(userId: number): Promise<Approver | undefined> {
    const approver = await this.approverByTelegramUser(userId);
    if (!approver) return undefined;
    const { telegram: _gone, ...rest } = approver;
    await this.log.append('approver.telegram_unlinked', { approver_id: approver.id, telegram_user_id: userId }, [
      put(K.approver(approver.id), rest),
      { type: 'del', key: K.telegramUser(userId) },
    ]);
    return rest;
  }

  async approverByTelegramUser(userId: number): Promise<Approver | undefined> {
    const id = await this.store.get(K.telegramUser(userId));
    const approver = id ? await this.getApprover(id) : undefined;
    return approver?.telegram?.user_id === userId && !approver.revoked ? approver : undefined;
  }

  async linkedApprovers(): Promise<Approver[]> {
    const out: Approver[] = [];
    for await (const [key, id] of this.store.iterate(K.telegramUsers)) {
      const approver = await this.getApprover(id);
      if (approver?.telegram?.user_id === Number(key.slice('tg/user/'.length))) out.push(approver);
    }
    return out;
  }

  async createAttester(input: { name: string; touchpoint_id: string }): Promise<{ attester: Attester; api_key: string }> {
    const attester: Attester = { id: newId('att'), name: input.name, touchpoint_id: input.touchpoint_id, created_at: new Date().toISOString() };
    const { key, keyId, hash } = mintKey('attester');
    await this.log.append('attester.registered', { attester_id: attester.id, name: attester.name, touchpoint_id: attester.touchpoint_id, key_id: keyId }, [
      put(K.attester(attester.id), attester),
      put(K.key(keyId), { hash, role: 'attester', principal_id: attester.id, name: attester.name } satisfies KeyRecord),
    ]);
    return { attester, api_key: key };
  }
}

export function requireRole(principal: Principal, roles: readonly Role[]): void {
  if (!roles.includes(principal.role)) {
    throw new WritError('forbidden', `this endpoint needs a key with role ${roles.join(' or ')}; yours is ${principal.role}`, {
      field: 'authorization',
    });
  }
}
