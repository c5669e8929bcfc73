import { z } from 'zod';
import type { Session } from '../../domain/sessions.ts';
import { WritError } from '../../errors.ts';
import { defineRoute } from '../route.ts';
import { clearedSessionCookie, sessionCookie } from '../session-auth.ts';

/**
 * Dashboard sessions: sign in with an admin or approver key, or with the one-time link the bot
 * sends on /login; the answer sets an HttpOnly, SameSite=Strict cookie and gives the CSRF token
 * the page sends with every change. Sign out ends the session; an admin lists and revokes them.
 */
const sessionView = (session: Session) => ({
  id: session.id,
  principal: { role: session.principal.role, id: session.principal.id, name: session.principal.name },
  via: session.via.kind,
  created_at: session.created_at,
  expires_at: session.expires_at,
  ...(session.closed ? { closed: session.closed } : {}),
});

const sessionSchema = z.object({
  id: z.string(),
  principal: z.object({ role: z.enum(['admin', 'approver']), id: z.string(), name: z.string() }),
  via: z.enum(['key', 'telegram']),
  created_at: z.string(),
  expires_at: z.string(),
  closed: z.object({ at: z.string(), by: z.string(), reason: z.string() }).optional(),
});

const signedInSchema = sessionSchema.extend({ csrf_token: z.string().describe('Send it as X-CSRF-Token with every POST and DELETE made with the cookie') });

const cookieHeader = { 'set-cookie': { description: 'writ_session: HttpOnly; SameSite=Strict; Path=/ (Secure behind https)' } };

export const signIn = defineRoute({
  method: 'POST',
  path: '/api/v1/session',
  summary: 'Sign in to the dashboard with an admin or approver key, or a login link from the bot; sets the session cookie',
  auth: 'anyone',
  body: z.union([
    z.strictObject({ key: z.string().min(1).max(200) }),
    z.strictObject({ login_token: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be the token of a login link') }),
  ]),
  responses: { 201: { description: 'Signed in', schema: signedInSchema, headers: cookieHeader } },
  errors: ['unauthenticated', 'forbidden', 'storage_unavailable', 'storage_corrupt', 'overloaded'],
  async handle({ writ, body }) {
    const { session, token } = 'key' in body ? await writ.sessions.openWithKey(body.key) : await writ.sessions.openWithLink(body.login_token);
    return {
      status: 201,
      headers: { 'set-cookie': sessionCookie(writ, token, writ.config.sessionTtl), 'cache-control': 'no-store' },
      body: { ...sessionView(session), csrf_token: writ.sessions.csrfToken(token) },
    };
  },
});

export const current = defineRoute({
  method: 'GET',
  path: '/api/v1/session',
  summary: 'The session of the cookie this request came with, and its CSRF token',
  auth: ['admin', 'approver'],
  responses: { 200: { description: 'Signed in', schema: signedInSchema } },
  errors: ['not_found'],
  async handle({ writ, session }) {
    if (!session) throw new WritError('not_found', 'this request came with a key, not a session cookie', { field: 'cookie' });
    const open = (await writ.sessions.get(session.id))!;
    return { status: 200, headers: { 'cache-control': 'no-store' }, body: { ...sessionView(open), csrf_token: session.csrfToken } };
  },
});

export const signOut = defineRoute({
  method: 'DELETE',
  path: '/api/v1/session',
  summary: 'Sign out: ends the session of the cookie and removes the cookie',
  auth: ['admin', 'approver'],
  responses: { 200: { description: 'Signed out', schema: sessionSchema, headers: cookieHeader } },
  errors: ['not_found'],
  async handle({ writ, principal, session }) {
    if (!session) throw new WritError('not_found', 'this request came with a key, not a session cookie', { field: 'cookie' });
    const closed = await writ.sessions.close(session.id, principal!, 'signed out');
    return { status: 200, headers: { 'set-cookie': clearedSessionCookie(writ) }, body: sessionView(closed) };
  },
});

export const list = defineRoute({
  method: 'GET',
  path: '/api/v1/sessions',
  summary: 'Open dashboard sessions (admin), oldest first',
  auth: ['admin'],
  responses: { 200: { description: 'Open sessions', schema: z.object({ items: z.array(sessionSchema) }) } },
  async handle({ writ }) {
    return { status: 200, body: { items: (await writ.sessions.listOpen()).map(sessionView) } };
  },
});

export const revoke = defineRoute({
  method: 'POST',
  path: '/api/v1/sessions/:id/revoke',
  summary: 'End a dashboard session (admin); its next request is refused',
  auth: ['admin'],
  body: z.strictObject({ reason: z.string().min(1).max(500).optional() }),
  responses: { 200: { description: 'The session, closed', schema: sessionSchema } },
  errors: ['not_found'],
  async handle({ writ, principal, params, body }) {
    return { status: 200, body: sessionView(await writ.sessions.close(params.id!, principal!, body.reason ?? 'revoked by an admin')) };
  },
});
