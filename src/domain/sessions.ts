import { newId, randomToken, safeEqual, sha256 } from '../crypto/encoding.ts';
import { WritError } from '../errors.ts';
import type { TransparencyLog } from '../log/log.ts';
import { getJson, put, take, type Store } from '../store/store.ts';
import type { Principal, Principals } from './principals.ts';

/**
 * Dashboard sessions: a browser signs in with an admin or approver key, or with a one-time link
 * the bot sends an approver, and gets a random token in an HttpOnly cookie. Only the token's
 * SHA-256 is stored, beside the session; every request checks that the session is unexpired and
 * unrevoked and that what it was opened with still holds (the key unrevoked and unreplaced, the
 * approver still linked to that Telegram user), so revoking a key or an approver ends its
 * sessions at once, on every node. The CSRF token is derived from the session token, so it needs
 * no storage and cannot be guessed without it. Opening and closing a session are logged.
 */
export interface Session {
  id: string;
  principal: Principal;
  /** How it was opened: with a key (its record's hash), or with a login link from the bot. */
  via: { kind: 'key'; record_hash: string } | { kind: 'telegram'; user_id: number };
  created_at: string;
  expires_at: string;
  closed?: { at: string; by: string; reason: string };
}

/** The roles that may sign in to the dashboard. */
export const SESSION_ROLES = ['admin', 'approver'] as const;

const K = {
  session: (id: string) => `session/${id}`,
  byToken: (tokenHash: string) => `session-token/${tokenHash}`,
  loginLink: (tokenHash: string) => `login-link/${tokenHash}`,
  sessions: { gte: 'session/', lt: 'session/~' },
};

const LOGIN_LINK_SECONDS = 600;

interface LoginLink {
  approver_id: string;
  user_id: number;
  expires_at: string;
}

export class Sessions {
  constructor(
    private readonly store: Store,
    private readonly log: TransparencyLog,
    private readonly principals: Principals,
    private readonly ttlSeconds: number,
  ) {}

  /** Signs in with a key; only admins and approvers have a dashboard. */
  async openWithKey(key: string): Promise<{ session: Session; token: string }> {
    const { principal, recordHash } = await this.principals.authenticateKey(key).catch((err: unknown) => {
      // The same refusal as a bearer key's, naming the field this key came in.
      throw err instanceof WritError && err.code === 'unauthenticated' ? new WritError('unauthenticated', err.message, { field: 'key' }) : err;
    });
    if (!(SESSION_ROLES as readonly string[]).includes(principal.role)) {
      throw new WritError('forbidden', `a ${principal.role} key cannot sign in to the dashboard; use an admin or approver key`, { field: 'key' });
    }
    return this.open(principal, { kind: 'key', record_hash: recordHash });
  }

  /** A one-time login link for a linked approver, asked for in Telegram with /login. */
  async newLoginLink(approverId: string, userId: number): Promise<{ token: string; expires_at: string }> {
    const token = randomToken();
    const expires_at = new Date(Date.now() + LOGIN_LINK_SECONDS * 1000).toISOString();
    await this.store.batch([put(K.loginLink(sha256(token).toString('base64url')), { approver_id: approverId, user_id: userId, expires_at } satisfies LoginLink)], { sync: true });
    return { token, expires_at };
  }

  /** Spends a login link (once: a second use, or one after ten minutes, is refused). */
  async openWithLink(token: string): Promise<{ session: Session; token: string }> {
    const key = K.loginLink(sha256(token).toString('base64url'));
    // Spent as it is read: of two uses at once, on any nodes, one gets it.
    const raw = await take(this.store, key);
    if (raw === undefined) throw new WritError('unauthenticated', 'this login link is not valid, or was used already; send /login to the bot for a new one', { field: 'token' });
    const link = JSON.parse(raw) as LoginLink;
    if (Date.parse(link.expires_at) <= Date.now()) throw new WritError('unauthenticated', 'this login link has expired; send /login to the bot for a new one', { field: 'token' });
    const approver = await this.principals.getApprover(link.approver_id);
    if (!approver || approver.revoked || approver.telegram?.user_id !== link.user_id) {
      throw new WritError('unauthenticated', 'the approver of this login link is no longer linked to that Telegram account', { field: 'token' });
    }
    return this.open({ role: 'approver', id: approver.id, name: approver.name, key_id: `telegram:${link.user_id}` }, { kind: 'telegram', user_id: link.user_id });
  }

  private async open(principal: Principal, via: Session['via']): Promise<{ session: Session; token: string }> {
    const token = randomToken();
    const now = new Date();
    const session: Session = {
      id: newId('ses'),
      principal,
      via,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + this.ttlSeconds * 1000).toISOString(),
    };
    await this.log.append('session.opened', { session_id: session.id, role: principal.role, principal_id: principal.id, via: via.kind, expires_at: session.expires_at }, [
      put(K.session(session.id), session),
      put(K.byToken(tokenHash(token)), session.id),
    ]);
    return { session, token };
  }

  /** The session a cookie names, if it is open and what it was opened with still holds; else 401. */
  async authenticate(token: string): Promise<Session> {
    const id = await this.store.get(K.byToken(tokenHash(token)));
    const session = id === undefined ? undefined : await getJson<Session>(this.store, K.session(id));
    if (!session || session.closed) throw new WritError('unauthenticated', 'the session has ended; sign in again', { field: 'cookie' });
    if (Date.parse(session.expires_at) <= Date.now()) throw new WritError('unauthenticated', 'the session has expired; sign in again', { field: 'cookie' });
    if (!(await this.holds(session))) throw new WritError('unauthenticated', 'the key or link this session was opened with has been revoked or replaced; sign in again', { field: 'cookie' });
    return session;
  }

  private async holds(session: Session): Promise<boolean> {
    if (session.via.kind === 'key') return this.principals.keyStillHeld(session.principal, session.via.record_hash);
    const approver = await this.principals.getApprover(session.principal.id);
    return approver !== undefined && !approver.revoked && approver.telegram?.user_id === session.via.user_id;
  }

  /** The CSRF token of a session: a state change must send it in X-CSRF-Token. */
  csrfToken(token: string): string {
    return sha256(`writ csrf\n${token}`).toString('base64url');
  }

  checkCsrf(token: string, presented: string | undefined): void {
    const expected = Buffer.from(this.csrfToken(token));
    if (!presented || !safeEqual(Buffer.from(presented), expected)) {
      throw new WritError('csrf_failed', 'a change made with a session cookie must send the session\'s X-CSRF-Token header', { field: 'x-csrf-token' });
    }
  }

  async get(id: string): Promise<Session | undefined> {
    return getJson<Session>(this.store, K.session(id));
  }

  /** Open sessions, newest last (an admin's view; closed and expired ones are left out). */
  async listOpen(): Promise<Session[]> {
    const now = Date.now();
    const out: Session[] = [];
    for await (const [, value] of this.store.iterate(K.sessions)) {
      const session = JSON.parse(value) as Session;
      if (!session.closed && Date.parse(session.expires_at) > now) out.push(session);
    }
    return out.sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  /** Ends a session (signing out, or an admin revoking it); logged. */
  async close(id: string, by: Principal, reason: string): Promise<Session> {
    const session = await this.get(id);
    if (!session) throw new WritError('not_found', `no session ${id}`, { field: 'id' });
    if (session.closed) return session;
    const closed: Session = { ...session, closed: { at: new Date().toISOString(), by: by.id, reason } };
    await this.log.append('session.closed', { session_id: id, principal_id: session.principal.id, by: by.id, reason }, [put(K.session(id), closed)]);
    return closed;
  }
}

const tokenHash = (token: string) => sha256(token).toString('base64url');
