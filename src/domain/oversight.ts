import { sha256 } from '../crypto/encoding.ts';
import type { KeyRing } from '../crypto/keys.ts';
import { WritError } from '../errors.ts';
import { canonicalize } from '../log/canonical.ts';
import type { TransparencyLog } from '../log/log.ts';
import type { Json } from '../policy/types.ts';
import { DigestBloom } from '../store/bloom.ts';
import { Conflict, getJson, put, type BatchOp, type Expectation, type Store } from '../store/store.ts';
import { retrying } from './reads.ts';
import type { EventSink, WritEvent } from './events.ts';
import { KeyedMutex } from './lock.ts';
import type { Permissions, PermissionRecord } from './permissions.ts';
import type { Attester } from './principals.ts';
import { signReceipt, signReceiptSoon, type WitnessClaims } from './receipts.ts';
import type { Signer } from '../crypto/signer.ts';

/**
 * Oversight mode: the caller's own engine (OPA, Cedar, …) decided, and Writ witnesses it. An
 * attestation is checked at the door, logged, and answered with a witness receipt; an
 * `escalate` opens an approval on the same state machine as conductor requests, and the humans'
 * decision gets a second receipt. Per touchpoint, sequence numbers only go up; a gap is accepted
 * and logged. Attestation ids are scoped to their touchpoint.
 *
 * Everything one attestation writes — its record, the touchpoint's state, the log entry, the
 * approval of an escalation and the witness receipt itself (signed as the entry is sequenced) —
 * goes to disk in one batch, so a retry after a crash finds either all of it, and gets the very
 * receipt first issued, or none of it. The receipt is handed out only after that batch is durable.
 */
export const LEGAL_BASES = ['consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests'] as const;
export type LegalBasis = (typeof LEGAL_BASES)[number];
export const OVERSIGHT_DECISIONS = ['allow', 'deny', 'escalate'] as const;
export const FUTURE_TOLERANCE_MS = 5 * 60_000;
const WITNESS_RECEIPT_DAYS = 365;
const DEFAULT_CADENCE_SECONDS = 60;
/** How long a big ingest runs on the event loop before it lets other requests in. */
const SLICE_MS = 5;
/**
 * How far a big ingest sequences ahead of the disk. The log commits everything sequenced while
 * its previous batch was written; unchecked, a slow fsync grows the next batch, and LevelDB takes
 * a batch in on the event loop (a few µs per op, about six ops per attestation). Settling as it
 * goes also lets the records of durable attestations be collected.
 */
const IN_FLIGHT = 500;

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

export interface Recorded {
  record: AttestationRecord;
  receipt: string;
  replay: boolean;
  gap?: { expected: number; got: number };
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');
const scoped = (touchpoint: string, id: string) => sha256(`${touchpoint}\n${id}`);
const K = {
  attestations: { gte: 'oap/att/', lt: 'oap/att/~' },
  attestation: (digest: Buffer) => `oap/att/${digest.toString('base64url')}`,
  receipt: (digest: Buffer) => `oap/receipt/${digest.toString('base64url')}`,
  humanReceipt: (digest: Buffer) => `oap/human-receipt/${digest.toString('base64url')}`,
  touchpoint: (id: string) => `oap/tp/${b64(id)}`,
  touchpoints: { gte: 'oap/tp/', lt: 'oap/tp/~' },
};

interface Staged {
  record: AttestationRecord;
  next: Touchpoint;
  digest: Buffer;
  gap?: { expected: number; got: number };
  receipt: () => string;
  done: Promise<unknown>;
  committed: () => void;
}

export class Oversight implements EventSink {
  private readonly mutex = new KeyedMutex();
  /** Touchpoint state, read through: only changed under the touchpoint's lock, after a durable write. */
  private readonly touchpointCache = new Map<string, Touchpoint>();
  /** Attestations already recorded: most are new, and need no read to prove it. */
  private known = new DigestBloom();
  private loaded: Promise<void> | undefined;

  constructor(
    private readonly o: {
      store: Store;
      log: TransparencyLog;
      keys: KeyRing;
      /** Signs witness receipts off the event loop. */
      signer: Signer;
      permissions: Permissions;
      issuer: () => string;
      approvalTimeout: number;
      ttl: number;
      listAttesters: () => Promise<Attester[]>;
      /**
       * Other nodes share the store: the touchpoint is read from it every time, and the filter of
       * recorded attestations only ever says "maybe" (a replay recorded elsewhere is caught by the
       * write's condition that no record exists).
       */
      shared?: boolean;
    },
  ) {}

  /**
   * After the store was reopened: a write that failed may still have landed, so what is known to
   * be recorded is read from the store again.
   */
  forgetCached(): void {
    this.touchpointCache.clear();
    this.known = new DigestBloom();
    this.loaded = undefined;
  }

  /** Records one attestation; a replay (same id, same body) is answered with the first receipt. */
  async attest(attester: Attester, input: AttestationInput): Promise<Recorded> {
    this.doorChecks(attester, input);
    await this.load();
    return this.mutex.run(input.touchpoint_id, () => retrying(() => this.attestLocked(attester, input)));
  }

  private async attestLocked(attester: Attester, input: AttestationInput): Promise<Recorded> {
    const digest = scoped(input.touchpoint_id, input.attestation_id);
    const bodyHash = sha256(canonicalize(input)).toString('base64');
    const existing = this.known.mightContain(digest) ? await getJson<AttestationRecord>(this.o.store, K.attestation(digest)) : undefined;
    if (existing) {
      if (existing.body_hash !== bodyHash) {
        throw new WritError('attestation_conflict', `attestation ${input.attestation_id} was already recorded with a different body`, { field: 'attestation_id' });
      }
      return { record: existing, receipt: await this.storedReceipt(K.receipt(digest)), replay: true };
    }
    const { tp, raw } = await this.touchpoint(input.touchpoint_id);
    if (tp && tp.attestations > 0 && input.sequence_number <= tp.last_sequence) {
      throw new WritError('attestation_out_of_order', `sequence_number ${input.sequence_number} is not above ${tp.last_sequence}, the highest seen for touchpoint ${input.touchpoint_id}`, {
        field: 'sequence_number',
        highest_seen: tp.last_sequence,
      });
    }
    const staged = this.stage(attester, input, tp, raw, digest, bodyHash);
    await this.settle([staged], input.touchpoint_id);
    return { record: staged.record, receipt: staged.receipt(), replay: false, ...(staged.gap ? { gap: staged.gap } : {}) };
  }

  /**
   * OPA decision-log events, in order. A decision already recorded (OPA re-sends uploads it got
   * no 2xx for) is dropped; each new one gets the touchpoint's next sequence number. They are
   * sequenced in slices of a few milliseconds, yielding to the event loop in between, so that an
   * upload of 10,000 does not hold up other requests; the touchpoint's lock is held throughout, so
   * its numbers stay contiguous. Slices sequenced while a batch is being written share the next
   * group commit, and sequencing runs at most IN_FLIGHT entries ahead of the disk. The promise
   * resolves when every one is durable.
   */
  async ingestDecisions(attester: Attester, inputs: Array<Omit<AttestationInput, 'sequence_number' | 'touchpoint_id'>>): Promise<{ recorded: number; duplicates: number }> {
    await this.load();
    const touchpoint = attester.touchpoint_id;
    return this.mutex.run(touchpoint, async () => {
      let { tp, raw } = await this.touchpoint(touchpoint);
      /** Sequenced and not yet settled, oldest first. */
      const unsettled: Staged[] = [];
      const seen = new Set<string>();
      let recorded = 0;
      let duplicates = 0;
      let refused = false;
      let slice = performance.now();
      try {
        for (const partial of inputs) {
          if (unsettled.length >= IN_FLIGHT) {
            const oldest = unsettled.splice(0, IN_FLIGHT / 2);
            await this.settle(oldest, touchpoint);
            recorded += oldest.length;
          }
          if (performance.now() - slice > SLICE_MS) {
            await new Promise((resolve) => setImmediate(resolve));
            slice = performance.now();
          }
          // A refused append (the log is failing or pushing back) fails the upload: stage no more after it.
          if (refused) break;
          const digest = scoped(touchpoint, partial.attestation_id);
          const key = K.attestation(digest);
          if (seen.has(key) || (this.known.mightContain(digest) && (await this.o.store.get(key)) !== undefined)) {
            duplicates++;
            continue;
          }
          seen.add(key);
          // Numbers stay exact (below 2^53 − 1), as for attestations sent directly.
          const sequence = tp && tp.attestations > 0 ? tp.last_sequence + 1 : 0;
          if (sequence >= Number.MAX_SAFE_INTEGER) {
            throw new WritError('attestation_out_of_order', `touchpoint ${touchpoint} has used every sequence number; an admin can reset it`, { field: 'sequence_number', highest_seen: tp!.last_sequence });
          }
          const numbered: AttestationInput = { ...partial, touchpoint_id: touchpoint, sequence_number: sequence };
          const s = this.stage(attester, numbered, tp, raw, digest, sha256(canonicalize(numbered)).toString('base64'));
          s.done.catch(() => (refused = true));
          tp = s.next;
          raw = JSON.stringify(s.next);
          unsettled.push(s);
        }
      } catch (err) {
        // What was sequenced before the failure may still become durable, and must then be known.
        await this.settle(unsettled, touchpoint).catch(() => undefined);
        throw contended(err);
      }
      await this.settle(unsettled, touchpoint).catch((err: unknown) => {
        throw contended(err);
      });
      return { recorded: recorded + unsettled.length, duplicates };
    });
  }

  private doorChecks(attester: Attester, input: AttestationInput): void {
    if (input.touchpoint_id !== attester.touchpoint_id) {
      throw new WritError('forbidden', `this attester reports for touchpoint ${attester.touchpoint_id}, not ${input.touchpoint_id}`, { field: 'touchpoint_id' });
    }
    if (Date.parse(input.decided_at) > Date.now() + FUTURE_TOLERANCE_MS) {
      throw new WritError('decided_at_in_future', 'decided_at is more than 5 minutes in the future', { field: 'decided_at' });
    }
  }

  /** Sequences one attestation's log entries now; its records and receipt ride the same batch. */
  private stage(attester: Attester, input: AttestationInput, tp: Touchpoint | undefined, tpRaw: string | undefined, digest: Buffer, bodyHash: string): Staged {
    const now = new Date().toISOString();
    // A touchpoint with no sequence yet (new, or reset by an admin) expects nothing: no gap.
    const counted = tp !== undefined && tp.attestations > 0 && tp.last_sequence >= 0;
    const gap = counted && input.sequence_number > tp.last_sequence + 1 ? { expected: tp.last_sequence + 1, got: input.sequence_number } : undefined;
    const next: Touchpoint = {
      touchpoint_id: input.touchpoint_id,
      last_sequence: input.sequence_number,
      last_attestation_at: now,
      ...(tp?.last_heartbeat_at ? { last_heartbeat_at: tp.last_heartbeat_at } : {}),
      cadence_seconds: tp?.cadence_seconds ?? DEFAULT_CADENCE_SECONDS,
      attestations: (tp?.attestations ?? 0) + 1,
      gaps: (tp?.gaps ?? 0) + (gap ? 1 : 0),
    };
    const issuer = this.o.issuer();
    const escalation =
      input.decision === 'escalate'
        ? this.o.permissions.buildEscalation({
            attester,
            attestation: input,
            issuer,
            tier: input.context?.tier === 'critical' ? 'critical' : 'sensitive',
            approvalTimeout: this.o.approvalTimeout,
            ttl: this.o.ttl,
          })
        : undefined;
    const record = { id: input.attestation_id, attester_id: attester.id, touchpoint_id: input.touchpoint_id, body_hash: bodyHash, body: input, received_at: now } as AttestationRecord;
    if (escalation) record.permission_id = escalation.record.id;
    let receipt = '';
    // Written only while no node has recorded it, and the touchpoint is as its number was checked against.
    const expect: Expectation[] = [
      { key: K.attestation(digest), value: undefined },
      { key: K.touchpoint(input.touchpoint_id), value: tpRaw },
    ];
    const gapLogged = gap
      ? this.o.log.append('attestation.gap_detected', { touchpoint_id: input.touchpoint_id, expected: gap.expected, got: gap.got, attestation_id: input.attestation_id }, [], { expect })
      : undefined;
    const { context: _context, ...entry } = input;
    const appended = this.o.log.append('attestation.received', { ...entry, attester_id: attester.id, ...(escalation ? { permission_id: escalation.record.id, approval_id: escalation.approval.id } : {}) }, (at) => {
      record.anchor = { index: at.index, leaf_hash: at.leafHash, at: at.time, issuer };
      const signed = signReceiptSoon(this.o.signer, this.o.keys, this.claims(input, record.anchor, {})).then((jws) => {
        receipt = jws;
        return put(K.receipt(digest), jws);
      });
      return [
        put(K.attestation(digest), record),
        signed,
        put(K.touchpoint(input.touchpoint_id), next),
        ...(escalation ? escalation.ops() : []),
      ];
    }, { expect });
    return {
      record,
      next,
      digest,
      ...(gap ? { gap } : {}),
      receipt: () => receipt,
      done: Promise.all([gapLogged, appended]),
      committed: () => escalation?.committed(),
    };
  }

  /** Waits for staged attestations to be durable, then updates what is kept in memory. */
  private async settle(staged: Staged[], touchpoint: string): Promise<void> {
    const outcomes = await Promise.allSettled(staged.map((s) => s.done));
    // Staged across several batches, some may be durable and some not: those that are must be
    // known, or a re-sent upload would record them twice.
    staged.forEach((s, i) => {
      if (outcomes[i]!.status === 'fulfilled') {
        this.known.add(s.digest);
        s.committed();
      }
    });
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) {
      // The touchpoint is read again from the store next time, and the records too.
      this.touchpointCache.delete(touchpoint);
      if (failure.reason instanceof Conflict) for (const s of staged) this.known.add(s.digest);
      throw failure.reason;
    }
    const last = staged.at(-1);
    if (last) this.touchpointCache.set(touchpoint, last.next);
  }

  async get(touchpoint: string, id: string): Promise<{ record: AttestationRecord; receipt: string; escalation?: { approval_id?: string; status: string; human_receipt?: string; approvals: PermissionRecord['approvals']; decided_by?: unknown } }> {
    const digest = scoped(touchpoint, id);
    const record = await getJson<AttestationRecord>(this.o.store, K.attestation(digest));
    if (!record) throw new WritError('not_found', `no attestation ${id} from touchpoint ${touchpoint}`, { field: 'id' });
    const receipt = await this.storedReceipt(K.receipt(digest));
    if (!record.permission_id) return { record, receipt };
    const permission = await this.o.permissions.record(record.permission_id);
    const human = await this.o.store.get(K.humanReceipt(digest));
    return {
      record,
      receipt,
      escalation: {
        ...(permission?.approval_id ? { approval_id: permission.approval_id } : {}),
        status: permission?.status ?? 'unknown',
        approvals: permission?.approvals ?? [],
        ...(permission?.decided?.by ? { decided_by: permission.decided.by } : {}),
        ...(human ? { human_receipt: human } : {}),
      },
    };
  }

  private async storedReceipt(key: string): Promise<string> {
    const receipt = await this.o.store.get(key);
    if (receipt === undefined) throw new Error(`receipt ${key} is missing although its attestation is stored`);
    return receipt;
  }

  /**
   * The humans' decision on an escalation, as a second witness receipt, written in the same
   * batch as the decision itself.
   */
  ops(event: WritEvent): BatchOp[] {
    const oversight = event.data.permission.oversight;
    if (!oversight || !event.log || !['approval.approved', 'approval.denied', 'approval.expired'].includes(event.type)) return [];
    const attestation = oversight.attestation as unknown as AttestationInput;
    const approvals = (event.data.approval?.votes ?? []).filter((v) => v.vote === 'approve').map(({ approver_id, name, at }) => ({ approver_id, name, at }));
    const outcome = event.type === 'approval.approved' ? 'approved' : event.type === 'approval.expired' ? 'expired' : (event.data.approval?.status ?? 'denied');
    const receipt = signReceipt(this.o.keys, this.claims(attestation, { ...event.log, issuer: oversight.issuer }, {
      decision: event.type === 'approval.approved' ? 'allow' : 'deny',
      human_decision: { outcome, decided_at: event.log.at, approvals, ...(event.data.by?.approver_id ? { by: { approver_id: event.data.by.approver_id, name: event.data.by.name } } : {}) },
    }));
    return [put(K.humanReceipt(scoped(oversight.touchpoint_id, oversight.attestation_id)), receipt)];
  }

  private claims(b: AttestationInput, anchor: { index: number; leaf_hash: string; at: string; issuer: string }, extra: Partial<WitnessClaims>): WitnessClaims {
    const iat = Math.floor(Date.parse(anchor.at) / 1000);
    return {
      iss: anchor.issuer,
      iss_role: 'witness',
      sub: b.touchpoint_id,
      jti: `rcpt_${sha256(`${b.touchpoint_id}\n${b.attestation_id}\n${anchor.index}`).toString('base64url').slice(0, 22)}`,
      oap_ver: '1.0',
      attestation_id: b.attestation_id,
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
  }

  /** Fills the filter from the stored keys, once; a failed scan is tried again next time. */
  private load(): Promise<void> {
    this.loaded ??= (async () => {
      for await (const [key] of this.o.store.iterate(K.attestations)) this.known.add(Buffer.from(key.slice('oap/att/'.length), 'base64url'));
    })().catch((err) => {
      this.loaded = undefined;
      throw err;
    });
    return this.loaded;
  }

  /** The touchpoint, with what the store holds for it (the condition of the next write to it). */
  private async touchpoint(id: string): Promise<{ tp: Touchpoint | undefined; raw: string | undefined }> {
    const cached = this.o.shared ? undefined : this.touchpointCache.get(id);
    if (cached) return { tp: cached, raw: JSON.stringify(cached) };
    const raw = await this.o.store.get(K.touchpoint(id));
    const tp = raw === undefined ? undefined : (JSON.parse(raw) as Touchpoint);
    if (tp && !this.o.shared) this.touchpointCache.set(id, tp);
    return { tp, raw };
  }

  /**
   * An admin resets a touchpoint's sequence (its engine restarted from zero, say): the next
   * attestation must be above `to`, or, without it, may have any number. Logged.
   */
  async resetSequence(touchpointId: string, to: number | undefined, by: { role: string; id: string }): Promise<Touchpoint> {
    return this.mutex.run(touchpointId, () =>
      retrying(async () => {
        this.touchpointCache.delete(touchpointId);
        const { tp, raw } = await this.touchpoint(touchpointId);
        if (!tp) throw new WritError('not_found', `no touchpoint ${touchpointId} has reported yet`, { field: 'id' });
        const next: Touchpoint = { ...tp, last_sequence: to ?? -1 };
        await this.o.log.append('touchpoint.sequence_reset', { touchpoint_id: touchpointId, previous: tp.last_sequence, next: next.last_sequence, by }, [put(K.touchpoint(touchpointId), next)], {
          expect: [{ key: K.touchpoint(touchpointId), value: raw }],
        });
        this.touchpointCache.set(touchpointId, next);
        return next;
      }),
    );
  }

  async heartbeat(attester: Attester, touchpointId: string, cadenceSeconds?: number): Promise<Touchpoint> {
    if (touchpointId !== attester.touchpoint_id) {
      throw new WritError('forbidden', `this attester reports for touchpoint ${attester.touchpoint_id}, not ${touchpointId}`, { field: 'touchpoint_id' });
    }
    return this.mutex.run(touchpointId, () =>
      retrying(async () => {
        const { tp: found, raw } = await this.touchpoint(touchpointId);
        const tp = found ?? { touchpoint_id: touchpointId, last_sequence: -1, cadence_seconds: DEFAULT_CADENCE_SECONDS, attestations: 0, gaps: 0 };
        const next: Touchpoint = { ...tp, last_heartbeat_at: new Date().toISOString(), ...(cadenceSeconds ? { cadence_seconds: cadenceSeconds } : {}) };
        try {
          await this.o.store.batch([put(K.touchpoint(touchpointId), next)], { sync: true, expect: [{ key: K.touchpoint(touchpointId), value: raw }] });
        } catch (err) {
          this.touchpointCache.delete(touchpointId);
          throw err;
        }
        this.touchpointCache.set(touchpointId, next);
        return next;
      }),
    );
  }

  /**
   * Every touchpoint with an attester, flagged silent when neither an attestation nor a
   * heartbeat came for three cadences (or ever).
   */
  async touchpoints(now = Date.now()): Promise<Array<Touchpoint & { silent: boolean; last_seen_at?: string }>> {
    const states = new Map<string, Touchpoint>();
    for await (const [, raw] of this.o.store.iterate(K.touchpoints)) {
      const tp = JSON.parse(raw) as Touchpoint;
      states.set(tp.touchpoint_id, tp);
    }
    for (const attester of await this.o.listAttesters()) {
      if (!states.has(attester.touchpoint_id)) {
        states.set(attester.touchpoint_id, { touchpoint_id: attester.touchpoint_id, last_sequence: -1, cadence_seconds: DEFAULT_CADENCE_SECONDS, attestations: 0, gaps: 0 });
      }
    }
    return [...states.values()].map((tp) => {
      const seen = [tp.last_attestation_at, tp.last_heartbeat_at].filter((x): x is string => !!x).sort().at(-1);
      const silent = !seen || now - Date.parse(seen) > 3 * tp.cadence_seconds * 1000;
      return { ...tp, silent, ...(seen ? { last_seen_at: seen } : {}) };
    });
  }

  /**
   * How many attestations of each agent class gave each legal basis, for decisions made since
   * `since` (their decided_at). A read of every attestation, in slices so that other requests
   * are served meanwhile: for a dashboard page, not for a hot path.
   */
  async legalBases(since: Date): Promise<{ scanned: number; classes: Array<{ agent_class: string; total: number; legal_bases: Record<LegalBasis, number> }> }> {
    const from = since.getTime();
    const byClass = new Map<string, Record<LegalBasis, number>>();
    let scanned = 0;
    let slice = performance.now();
    for await (const [, raw] of this.o.store.iterate(K.attestations)) {
      scanned++;
      const { body } = JSON.parse(raw) as AttestationRecord;
      if (Date.parse(body.decided_at) >= from) {
        let counts = byClass.get(body.agent_class);
        if (!counts) byClass.set(body.agent_class, (counts = Object.fromEntries(LEGAL_BASES.map((b) => [b, 0])) as Record<LegalBasis, number>));
        counts[body.legal_basis]++;
      }
      if (performance.now() - slice > SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        slice = performance.now();
      }
    }
    const classes = [...byClass]
      .map(([agent_class, legal_bases]) => ({ agent_class, total: Object.values(legal_bases).reduce((a, b) => a + b, 0), legal_bases }))
      .sort((a, b) => b.total - a.total || (a.agent_class < b.agent_class ? -1 : 1));
    return { scanned, classes };
  }
}

/** An upload that met a concurrent write to its touchpoint (another node) is refused whole, to be sent again; what was recorded of it is then dropped as duplicates. */
function contended(err: unknown): unknown {
  return err instanceof Conflict ? new WritError('conflict', 'another node wrote to this touchpoint meanwhile; send the upload again', { retry_after: 1 }) : err;
}
