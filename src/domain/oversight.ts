import { sha256 } from '../crypto/encoding.ts';
import type { KeyRing } from '../crypto/keys.ts';
import { signCompact } from '../crypto/jws.ts';
import { WritError } from '../errors.ts';
import { canonicalize } from '../log/canonical.ts';
import type { TransparencyLog } from '../log/log.ts';
import type { Json } from '../policy/types.ts';
import { getJson, put, type Store } from '../store/store.ts';
import { KeyedMutex } from './lock.ts';
import { DigestBloom } from '../store/bloom.ts';
import type { Permissions, PermissionRecord } from './permissions.ts';
import type { Attester } from './principals.ts';
import { RECEIPT_TYP } from './receipts.ts';

/**
 * Oversight mode: the caller's own engine (OPA, Cedar, …) decided, and Writ witnesses it. An
 * attestation is checked at the door, logged, and answered with a witness receipt; an
 * `escalate` opens an approval on the same state machine as conductor requests, and the humans'
 * decision gets a second receipt. Per touchpoint, sequence numbers only go up; a gap is accepted
 * and logged. Everything one attestation writes goes in one batch, so a retry after a crash
 * finds either all of it (and gets the same receipt back) or none of it.
 */
export const LEGAL_BASES = ['consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests'] as const;
export type LegalBasis = (typeof LEGAL_BASES)[number];
export const OVERSIGHT_DECISIONS = ['allow', 'deny', 'escalate'] as const;
export const FUTURE_TOLERANCE_MS = 5 * 60_000;
const WITNESS_RECEIPT_DAYS = 365;

export interface AttestationInput {
  attestation_id: string;
  touchpoint_id: string;
  agent_class: string;
  action_class: string;
  decision: (typeof OVERSIGHT_DECISIONS)[number];
  decided_at: string;
  sequence_number: number;
  legal_basis: LegalBasis;
  evidence_digest: string;
  context?: Record<string, Json> | undefined;
}

export interface AttestationRecord {
  id: string;
  attester_id: string;
  touchpoint_id: string;
  /** SHA-256 of the canonical body: the same id with another body is a conflict. */
  body_hash: string;
  body: AttestationInput;
  received_at: string;
  anchor: { index: number; leaf_hash: string; at: string; issuer: string };
  /** For escalations: the permission whose approval the humans decide. */
  permission_id?: string;
}

export interface Touchpoint {
  touchpoint_id: string;
  last_sequence: number;
  last_attestation_at?: string;
  last_heartbeat_at?: string;
  cadence_seconds: number;
  attestations: number;
  gaps: number;
}

const idDigest = (id: string) => sha256(id);
const K = {
  attestations: { gte: 'oap/att/', lt: 'oap/att/~' },
  attestation: (id: string) => `oap/att/${idDigest(id).toString('base64url')}`,
  receipt: (id: string) => `oap/receipt/${sha256(id).toString('base64url')}`,
  humanReceipt: (id: string) => `oap/human-receipt/${sha256(id).toString('base64url')}`,
  touchpoint: (id: string) => `oap/tp/${id}`,
  touchpoints: { gte: 'oap/tp/', lt: 'oap/tp/~' },
};

const DEFAULT_CADENCE_SECONDS = 60;

export class Oversight {
  private readonly mutex = new KeyedMutex();
  /** Touchpoint state, read through: only changed under the touchpoint's lock, after a durable write. */
  private readonly touchpointCache = new Map<string, Touchpoint>();
  /** Attestation ids already recorded: most attestations are new, and need no read to prove it. */
  private readonly known = new DigestBloom();
  private loaded: Promise<void> | undefined;

  constructor(
    private readonly o: { store: Store; log: TransparencyLog; keys: KeyRing; permissions: Permissions; issuer: () => string; approvalTimeout: number; ttl: number },
  ) {}

  /**
   * Records one attestation. Answers `{record, receipt, replay}`; a replay is the same id with
   * the same body, answered with the receipt first issued.
   */
  async attest(attester: Attester, input: AttestationInput): Promise<{ record: AttestationRecord; receipt: string; replay: boolean; gap?: { expected: number; got: number } }> {
    if (input.touchpoint_id !== attester.touchpoint_id) {
      throw new WritError('forbidden', `this attester reports for touchpoint ${attester.touchpoint_id}, not ${input.touchpoint_id}`, { field: 'touchpoint_id' });
    }
    if (Date.parse(input.decided_at) > Date.now() + FUTURE_TOLERANCE_MS) {
      throw new WritError('decided_at_in_future', 'decided_at is more than 5 minutes in the future', { field: 'decided_at' });
    }
    return this.mutex.run(input.touchpoint_id, () => this.recordLocked(attester, input));
  }

  /**
   * OPA decision-log events, in order. A decision already recorded (OPA re-sends whole uploads
   * it got no 2xx for) is dropped; each new one gets the touchpoint's next sequence number.
   * Resolves once every new entry is durable.
   */
  async ingestDecisions(attester: Attester, inputs: Array<Omit<AttestationInput, 'sequence_number' | 'touchpoint_id'>>): Promise<{ recorded: number; duplicates: number }> {
    await this.load();
    return this.mutex.run(attester.touchpoint_id, async () => {
      let recorded = 0;
      let duplicates = 0;
      for (const input of inputs) {
        if (this.known.mightContain(idDigest(input.attestation_id)) && (await this.o.store.get(K.attestation(input.attestation_id)))) {
          duplicates++;
          continue;
        }
        const tp = await this.touchpoint(attester.touchpoint_id);
        await this.recordLocked(attester, { ...input, touchpoint_id: attester.touchpoint_id, sequence_number: (tp?.last_sequence ?? -1) + 1 });
        recorded++;
      }
      return { recorded, duplicates };
    });
  }

  /** Fills the filter from the stored ids (keys only), once, before the first attestation. */
  private load(): Promise<void> {
    this.loaded ??= (async () => {
      for await (const [key] of this.o.store.iterate(K.attestations)) this.known.add(Buffer.from(key.slice('oap/att/'.length), 'base64url'));
    })();
    return this.loaded;
  }

  private async recordLocked(attester: Attester, input: AttestationInput): Promise<{ record: AttestationRecord; receipt: string; replay: boolean; gap?: { expected: number; got: number } }> {
    await this.load();
    const bodyHash = sha256(canonicalize(input)).toString('base64');
    const digest = idDigest(input.attestation_id);
    const existing = this.known.mightContain(digest) ? await getJson<AttestationRecord>(this.o.store, K.attestation(input.attestation_id)) : undefined;
    if (existing) {
      if (existing.body_hash !== bodyHash) {
        throw new WritError('attestation_conflict', `attestation ${input.attestation_id} was already recorded with a different body`, { field: 'attestation_id' });
      }
      return { record: existing, receipt: await this.receipt(existing), replay: true };
    }
    const tp = await this.touchpoint(input.touchpoint_id);
    const seen = tp !== undefined && tp.attestations > 0;
    if (seen && input.sequence_number <= tp.last_sequence) {
      throw new WritError('attestation_out_of_order', `sequence_number ${input.sequence_number} is not above ${tp.last_sequence}, the highest seen for touchpoint ${input.touchpoint_id}`, {
        field: 'sequence_number',
        highest_seen: tp.last_sequence,
      });
    }
    const now = new Date().toISOString();
    const gap = seen && input.sequence_number > tp.last_sequence + 1 ? { expected: tp.last_sequence + 1, got: input.sequence_number } : undefined;
    const next: Touchpoint = {
      touchpoint_id: input.touchpoint_id,
      last_sequence: input.sequence_number,
      last_attestation_at: now,
      ...(tp?.last_heartbeat_at ? { last_heartbeat_at: tp.last_heartbeat_at } : {}),
      cadence_seconds: tp?.cadence_seconds ?? DEFAULT_CADENCE_SECONDS,
      attestations: (tp?.attestations ?? 0) + 1,
      gaps: (tp?.gaps ?? 0) + (gap ? 1 : 0),
    };
    const record: Omit<AttestationRecord, 'anchor'> & { anchor?: AttestationRecord['anchor'] } = {
      id: input.attestation_id,
      attester_id: attester.id,
      touchpoint_id: input.touchpoint_id,
      body_hash: bodyHash,
      body: input,
      received_at: now,
    };
    const escalation =
      input.decision === 'escalate'
        ? this.o.permissions.buildEscalation({
            attester,
            attestation: input,
            tier: input.context?.tier === 'critical' ? 'critical' : 'sensitive',
            approvalTimeout: this.o.approvalTimeout,
            ttl: this.o.ttl,
          })
        : undefined;
    if (escalation) record.permission_id = escalation.record.id;
    // The gap entry and the attestation entry are sequenced in the same tick, so they share a batch.
    const gapLogged = gap
      ? this.o.log.append('attestation.gap_detected', { touchpoint_id: input.touchpoint_id, expected: gap.expected, got: gap.got, attestation_id: input.attestation_id })
      : undefined;
    const appended = this.o.log.append('attestation.received', { ...entryData(input), attester_id: attester.id, ...(escalation ? { permission_id: escalation.record.id, approval_id: escalation.approval.id } : {}) }, (at) => {
      record.anchor = { index: at.index, leaf_hash: at.leafHash, at: at.time, issuer: this.o.issuer() };
      return [put(K.attestation(input.attestation_id), record), put(K.touchpoint(input.touchpoint_id), next), ...(escalation ? escalation.ops() : [])];
    });
    await Promise.all([gapLogged, appended]);
    this.known.add(digest);
    this.touchpointCache.set(input.touchpoint_id, next);
    if (escalation) escalation.committed();
    const stored = record as AttestationRecord;
    return { record: stored, receipt: await this.receipt(stored, { fresh: true }), replay: false, ...(gap ? { gap } : {}) };
  }

  async get(id: string): Promise<{ record: AttestationRecord; receipt: string; escalation?: { approval_id?: string; status: string; human_receipt?: string; approvals: PermissionRecord['approvals'] } }> {
    const record = await getJson<AttestationRecord>(this.o.store, K.attestation(id));
    if (!record) throw new WritError('not_found', `no attestation ${id}`, { field: 'id' });
    const receipt = await this.receipt(record);
    if (!record.permission_id) return { record, receipt };
    const permission = await this.o.permissions.record(record.permission_id);
    const human = permission ? await this.humanReceipt(record, permission) : undefined;
    return {
      record,
      receipt,
      escalation: {
        ...(permission?.approval_id ? { approval_id: permission.approval_id } : {}),
        status: permission?.status ?? 'unknown',
        approvals: permission?.approvals ?? [],
        ...(human ? { human_receipt: human } : {}),
      },
    };
  }

  /** The witness receipt, signed once the entry is durable and then kept; re-signed if that write was lost. */
  private async receipt(record: AttestationRecord, options: { fresh?: boolean } = {}): Promise<string> {
    const kept = options.fresh ? undefined : await this.o.store.get(K.receipt(record.id));
    if (kept !== undefined) return kept;
    const receipt = this.sign(record, record.anchor, {});
    void this.o.log.write([put(K.receipt(record.id), receipt)]).catch(() => undefined);
    return receipt;
  }

  /** The humans' decision on an escalation, once there is one, as a second witness receipt. */
  async humanReceipt(record: AttestationRecord, permission: PermissionRecord): Promise<string | undefined> {
    if (!permission.decided) return undefined;
    const kept = await this.o.store.get(K.humanReceipt(record.id));
    if (kept !== undefined) return kept;
    const decision = permission.status === 'approved' || permission.status === 'used' ? 'allow' : 'deny';
    const receipt = this.sign(record, { ...permission.decided, issuer: record.anchor.issuer }, {
      decision,
      human_decision: { outcome: permission.decided.outcome, decided_at: permission.decided.at, approvals: permission.approvals, ...(permission.decided.by ? { by: permission.decided.by } : {}) },
    });
    void this.o.log.write([put(K.humanReceipt(record.id), receipt)]).catch(() => undefined);
    return receipt;
  }

  private sign(record: AttestationRecord, anchor: { index: number; leaf_hash: string; at: string; issuer: string }, extra: Record<string, unknown>): string {
    const iat = Math.floor(Date.parse(anchor.at) / 1000);
    const b = record.body;
    const claims = {
      iss: anchor.issuer,
      iss_role: 'witness',
      sub: b.touchpoint_id,
      jti: `rcpt_${sha256(`${record.id}:${anchor.index}`).toString('base64url').slice(0, 22)}`,
      oap_ver: '1.0',
      attestation_id: record.id,
      touchpoint_id: b.touchpoint_id,
      agent_class: b.agent_class,
      action_class: b.action_class,
      decision: b.decision,
      decided_at: b.decided_at,
      sequence_number: b.sequence_number,
      legal_basis: b.legal_basis,
      evidence_digest: b.evidence_digest,
      log: { origin: this.o.log.origin, index: anchor.index, leaf_hash: anchor.leaf_hash },
      iat,
      exp: iat + WITNESS_RECEIPT_DAYS * 86_400,
      ...extra,
    };
    return signCompact({ typ: RECEIPT_TYP }, claims, this.o.keys.current);
  }

  private async touchpoint(id: string): Promise<Touchpoint | undefined> {
    const cached = this.touchpointCache.get(id);
    if (cached) return cached;
    const stored = await getJson<Touchpoint>(this.o.store, K.touchpoint(id));
    if (stored) this.touchpointCache.set(id, stored);
    return stored;
  }

  async heartbeat(attester: Attester, touchpointId: string, cadenceSeconds?: number): Promise<Touchpoint> {
    if (touchpointId !== attester.touchpoint_id) {
      throw new WritError('forbidden', `this attester reports for touchpoint ${attester.touchpoint_id}, not ${touchpointId}`, { field: 'touchpoint_id' });
    }
    return this.mutex.run(touchpointId, async () => {
      const tp = (await this.touchpoint(touchpointId)) ?? { touchpoint_id: touchpointId, last_sequence: -1, cadence_seconds: DEFAULT_CADENCE_SECONDS, attestations: 0, gaps: 0 };
      const next: Touchpoint = { ...tp, last_heartbeat_at: new Date().toISOString(), ...(cadenceSeconds ? { cadence_seconds: cadenceSeconds } : {}) };
      await this.o.store.batch([put(K.touchpoint(touchpointId), next)], { sync: true });
      this.touchpointCache.set(touchpointId, next);
      return next;
    });
  }

  /** Every touchpoint, flagged silent when neither an attestation nor a heartbeat came for three cadences. */
  async touchpoints(now = Date.now()): Promise<Array<Touchpoint & { silent: boolean; last_seen_at?: string }>> {
    const out: Array<Touchpoint & { silent: boolean; last_seen_at?: string }> = [];
    for await (const [, raw] of this.o.store.iterate(K.touchpoints)) {
      const tp = JSON.parse(raw) as Touchpoint;
      const seen = [tp.last_attestation_at, tp.last_heartbeat_at].filter((x): x is string => !!x).sort().at(-1);
      const silent = !seen || now - Date.parse(seen) > 3 * tp.cadence_seconds * 1000;
      out.push({ ...tp, silent, ...(seen ? { last_seen_at: seen } : {}) });
    }
    return out;
  }
}

function entryData(input: AttestationInput): Record<string, unknown> {
  const { context: _context, ...rest } = input;
  return rest;
}
