import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { randomToken, sha256 } from '../crypto/encoding.ts';
import { WritError } from '../errors.ts';
import { canonicalize } from '../log/canonical.ts';
import type { TransparencyLog } from '../log/log.ts';
import { Conflict, getJson, put, take, type Store } from '../store/store.ts';
import type { Approval } from './approvals.ts';
import { KeyedMutex } from './lock.ts';
import { retrying } from './reads.ts';

/**
 * Approvers' passkeys (WebAuthn credentials), for critical approvals made in the browser. The
 * protocol itself (CBOR, COSE keys, signatures, origin and RP ID checks) is @simplewebauthn/server;
 * this file keeps the credentials and the challenges.
 *
 * Everything lives in the store, so any node of a shared database can verify what another issued:
 * a challenge is a record under its own value with a short expiry, deleted when it is spent (once:
 * a second use finds nothing). An approval's challenge is SHA-256 of the approval id, its request
 * digest and a server nonce, and is re-derived from the approval as it is when the vote is cast, so
 * an assertion made for one approval, or for another version of its request, cannot count for
 * another. Registering and deleting a passkey are logged. (Two nodes spending one challenge at the
 * same instant could both read it before either deletes it; that still gains nothing, since an
 * approver's vote counts once per approval. Within a process the mutex below serialises them.)
 */
export interface Passkey {
  /** The credential id (base64url), as the authenticator gave it. */
  id: string;
  approver_id: string;
  name: string;
  /** The COSE public key, base64url. */
  public_key: string;
  /** The authenticator's signature counter as last seen; a lower one later means a cloned key. */
  counter: number;
  transports: string[];
  device_type: 'singleDevice' | 'multiDevice';
  backed_up: boolean;
  created_at: string;
  last_used_at?: string;
}

type Challenge =
  | { kind: 'registration'; approver_id: string; user_id: string; expires_at: string }
  | { kind: 'approval'; approver_id: string; approval_id: string; request_digest: string; nonce: string; expires_at: string };

/** Where the relying party is: the public base URL's host name is the RP ID, its origin the only one accepted. */
export interface RelyingParty {
  id: string;
  origin: string;
}

const K = {
  passkey: (approverId: string, credentialId: string) => `passkey/${approverId}/${credentialId}`,
  ofApprover: (approverId: string) => ({ gte: `passkey/${approverId}/`, lt: `passkey/${approverId}/~` }),
  challenge: (challenge: string) => `passkey-challenge/${challenge}`,
};

/** How long a ceremony may take, from options to answer. */
export const CHALLENGE_SECONDS = 300;
const TIMEOUT_MS = 120_000;
const MAX_PER_APPROVER = 20;

/** The challenge an approval's assertion signs: bound to the approval, to its request, and to one nonce. */
export function approvalChallenge(approvalId: string, requestDigest: string, nonce: string): string {
  return sha256(canonicalize({ purpose: 'writ approval passkey', approval_id: approvalId, request_digest: requestDigest, nonce })).toString('base64url');
}

export function relyingParty(baseUrl: string): RelyingParty {
  const url = new URL(baseUrl);
  return { id: url.hostname, origin: url.origin };
}

export class Passkeys {
  /** Within one process, two answers with the same challenge are taken one after the other. */
  private readonly spending = new KeyedMutex();

  constructor(
    private readonly store: Store,
    private readonly log: TransparencyLog,
    private readonly baseUrl: () => string,
  ) {}

  async list(approverId: string): Promise<Passkey[]> {
    const out: Passkey[] = [];
    for await (const [, value] of this.store.iterate(K.ofApprover(approverId))) out.push(JSON.parse(value) as Passkey);
    return out.sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  get(approverId: string, credentialId: string): Promise<Passkey | undefined> {
    return getJson<Passkey>(this.store, K.passkey(approverId, credentialId));
  }

  /** What navigator.credentials.create needs; the approver's passkeys are excluded so one authenticator registers once. */
  async registrationOptions(approver: { id: string; name: string }): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const rp = this.rp();
    const existing = await this.list(approver.id);
    if (existing.length >= MAX_PER_APPROVER) throw new WritError('conflict', `an approver has at most ${MAX_PER_APPROVER} passkeys; delete one first`, { field: 'passkeys' });
    const options = await generateRegistrationOptions({
      rpName: 'Writ',
      rpID: rp.id,
      userName: approver.name,
      userDisplayName: approver.name,
      // The same user handle every time: an authenticator keeps one discoverable passkey per approver.
      userID: new TextEncoder().encode(approver.id),
      attestationType: 'none',
      timeout: TIMEOUT_MS,
      excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
    });
    await this.keep(options.challenge, { kind: 'registration', approver_id: approver.id, user_id: options.user.id, expires_at: expiry() });
    return options;
  }

  /** Verifies what navigator.credentials.create answered and keeps the credential; logged. */
  async register(approverId: string, name: string, response: RegistrationResponseJSON): Promise<Passkey> {
    const rp = this.rp();
    let challenge: Challenge | undefined;
    const verified = await this.verifying(() =>
      verifyRegistrationResponse({
        response,
        expectedChallenge: async (value) => {
          challenge = await this.spend(value);
          return challenge?.kind === 'registration' && challenge.approver_id === approverId;
        },
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        requireUserVerification: true,
      }),
    );
    if (!verified.verified) throw invalid('the passkey could not be verified');
    const { credential, credentialDeviceType, credentialBackedUp } = verified.registrationInfo;
    if (await this.get(approverId, credential.id)) throw new WritError('conflict', 'this passkey is registered already', { field: 'response.id' });
    const passkey: Passkey = {
      id: credential.id,
      approver_id: approverId,
      name,
      public_key: Buffer.from(credential.publicKey).toString('base64url'),
      counter: credential.counter,
      transports: credential.transports ?? response.response.transports ?? [],
      device_type: credentialDeviceType,
      backed_up: credentialBackedUp,
      created_at: new Date().toISOString(),
    };
    await this.log.append('passkey.registered', { approver_id: approverId, credential_id: passkey.id, name, device_type: passkey.device_type }, [
      put(K.passkey(approverId, passkey.id), passkey),
    ]);
    return passkey;
  }

  /** Deletes one of the approver's passkeys; logged. */
  async remove(approverId: string, credentialId: string, by: string): Promise<Passkey> {
    return retrying(async () => {
      const key = K.passkey(approverId, credentialId);
      const text = await this.store.get(key);
      if (text === undefined) throw new WritError('not_found', `you have no passkey ${credentialId}`, { field: 'id' });
      const passkey = JSON.parse(text) as Passkey;
      // Conditional, like the counter's update: of a deletion and an assertion at once, on any nodes, the second sees the first.
      await this.log.append('passkey.deleted', { approver_id: approverId, credential_id: credentialId, name: passkey.name, by }, [{ type: 'del', key }], { expect: [{ key, value: text }] });
      return passkey;
    });
  }

  /** What navigator.credentials.get needs to approve this approval: a challenge bound to it and to its request digest. */
  async approvalOptions(approverId: string, approval: Pick<Approval, 'id' | 'request_digest'>): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const passkeys = await this.list(approverId);
    if (passkeys.length === 0) throw required();
    const nonce = randomToken();
    const challenge = approvalChallenge(approval.id, approval.request_digest, nonce);
    const options = await generateAuthenticationOptions({
      rpID: this.rp().id,
      challenge: Buffer.from(challenge, 'base64url'),
      timeout: TIMEOUT_MS,
      userVerification: 'required',
      allowCredentials: passkeys.map((p) => ({ id: p.id, transports: p.transports })),
    });
    await this.keep(options.challenge, { kind: 'approval', approver_id: approverId, approval_id: approval.id, request_digest: approval.request_digest, nonce, expires_at: expiry() });
    return options;
  }

  /** Refuses an approval that needed a passkey and came without one, saying what to do next. */
  async refuseWithoutAssertion(approverId: string): Promise<never> {
    if ((await this.list(approverId)).length === 0) throw required();
    throw new WritError('passkey_required', 'a critical approval on the web needs your passkey: confirm it with one of your passkeys (send the assertion as webauthn)', { field: 'webauthn' });
  }

  /**
   * Checks an assertion for an approval as it is now: one of this approver's passkeys, user
   * verified, its counter moving forward, over a challenge issued for this approval and this
   * request digest and not spent before. Returns the passkey used; throws passkey_invalid.
   */
  verifyApproval(approverId: string, approval: Pick<Approval, 'id' | 'request_digest'>, response: AuthenticationResponseJSON): Promise<Passkey> {
    // One assertion per credential at a time, so two in flight cannot both pass the same counter.
    return this.spending.run(K.passkey(approverId, response.id), () => this.verifyLocked(approverId, approval, response));
  }

  private async verifyLocked(approverId: string, approval: Pick<Approval, 'id' | 'request_digest'>, response: AuthenticationResponseJSON): Promise<Passkey> {
    const passkey = await this.get(approverId, response.id);
    if (!passkey) {
      throw (await this.list(approverId)).length === 0 ? required() : invalid('this assertion was not made with one of your passkeys');
    }
    const rp = this.rp();
    let challenge: Challenge | undefined;
    const verified = await this.verifying(() =>
      verifyAuthenticationResponse({
        response,
        expectedChallenge: async (value) => {
          challenge = await this.spend(value);
          return (
            challenge?.kind === 'approval' &&
            challenge.approver_id === approverId &&
            approvalChallenge(approval.id, approval.request_digest, challenge.nonce) === value
          );
        },
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        credential: { id: passkey.id, publicKey: Buffer.from(passkey.public_key, 'base64url'), counter: passkey.counter, transports: passkey.transports },
        requireUserVerification: true,
      }),
    );
    if (!verified.verified || !verified.authenticationInfo.userVerified) throw invalid('the passkey assertion could not be verified');
    const used: Passkey = { ...passkey, counter: verified.authenticationInfo.newCounter, last_used_at: new Date().toISOString() };
    // The counter moves only from where it was checked: an assertion spent at the same moment on another node loses.
    try {
      await this.store.batch([put(K.passkey(approverId, passkey.id), used)], { sync: true, expect: [{ key: K.passkey(approverId, passkey.id), value: JSON.stringify(passkey) }] });
    } catch (err) {
      if (err instanceof Conflict) throw invalid('this passkey was used for another answer at the same moment; answer again');
      throw err;
    }
    return used;
  }

  private rp(): RelyingParty {
    const rp = relyingParty(this.baseUrl());
    // WebAuthn takes a domain as the RP ID, never an IP address: browsers refuse the ceremony.
    if (/^[\d.]+$/.test(rp.id) || rp.id.startsWith('[')) {
      throw new WritError('invalid_request', `passkeys need the dashboard on a host name, not an IP address (${rp.id}); set WRIT_PUBLIC_URL, e.g. http://localhost:${new URL(rp.origin).port || 80}`, { field: 'public_url' });
    }
    return rp;
  }

  private async keep(challenge: string, record: Challenge): Promise<void> {
    await this.store.batch([put(K.challenge(challenge), record)], { sync: true });
  }

  /** Takes a challenge out of the store: it answers once, and not after it expired. */
  private spend(challenge: string): Promise<Challenge | undefined> {
    if (!/^[A-Za-z0-9_-]{16,128}$/.test(challenge)) return Promise.resolve(undefined);
    const key = K.challenge(challenge);
    return this.spending.run(key, async () => {
      const raw = await take(this.store, key);
      if (raw === undefined) return undefined;
      const record = JSON.parse(raw) as Challenge;
      return Date.parse(record.expires_at) > Date.now() ? record : undefined;
    });
  }

  /** The library throws on anything wrong with what the browser sent; that is a refusal, never a 500. */
  private async verifying<T>(verify: () => Promise<T>): Promise<T> {
    try {
      return await verify();
    } catch (err) {
      if (err instanceof WritError) throw err;
      throw invalid(`the passkey answer was refused: ${(err as Error).message}`);
    }
  }
}

const expiry = () => new Date(Date.now() + CHALLENGE_SECONDS * 1000).toISOString();

const required = () =>
  new WritError('passkey_required', 'a critical approval on the web needs a passkey; register one on the Passkeys page (/passkeys) first', { field: 'webauthn' });

const invalid = (message: string) => new WritError('passkey_invalid', message, { field: 'webauthn' });
