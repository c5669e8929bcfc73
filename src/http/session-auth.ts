import type Koa from 'koa';
import type { Principal, Role } from '../domain/principals.ts';
import { SESSION_ROLES } from '../domain/sessions.ts';
import type { Writ } from '../writ.ts';
import type { RouteContext } from './route.ts';

/** The dashboard's session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site sends it). */
export const SESSION_COOKIE = 'writ_session';

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/**
 * Who a request is: a key in the Authorization header, or else, on routes an admin or approver
 * may call, the dashboard's session cookie. A state change made with the cookie must also send the
 * session's CSRF token in X-CSRF-Token (a header no other origin can set), so neither a form on
 * another site nor a link can act for the signed-in person.
 */
export async function authenticate(writ: Writ, ctx: Koa.Context, roles: readonly Role[]): Promise<{ principal: Principal; session?: RouteContext['session'] }> {
  const authorization = ctx.get('authorization') || undefined;
  const token = authorization === undefined && roles.some((role) => (SESSION_ROLES as readonly string[]).includes(role)) ? sessionToken(ctx) : undefined;
  if (token === undefined) return { principal: await writ.principals.authenticate(authorization) };
  const session = await writ.sessions.authenticate(token);
  if (!SAFE_METHODS.has(ctx.method)) writ.sessions.checkCsrf(token, ctx.get('x-csrf-token') || undefined);
  return { principal: session.principal, session: { id: session.id, csrfToken: writ.sessions.csrfToken(token) } };
}

/** The session token of the request's cookie, if it sent one. */
export function sessionToken(ctx: Koa.Context): string | undefined {
  const value = ctx.cookies.get(SESSION_COOKIE, { signed: false });
  return value && /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
}

/** The Set-Cookie value that opens a session in the browser (Secure when the public URL is https). */
export function sessionCookie(writ: Writ, token: string, maxAgeSeconds: number): string {
  const secure = writ.baseUrl().startsWith('https:') ? '; Secure' : '';
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

/** The Set-Cookie value that removes it. */
export function clearedSessionCookie(writ: Writ): string {
  return sessionCookie(writ, '', 0);
}
