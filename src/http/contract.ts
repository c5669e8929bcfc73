import { REASON_STATUS, type ReasonCode } from '../errors.ts';
import { SESSION_ROLES } from '../domain/sessions.ts';
import type { Route } from './route.ts';

/**
 * Every answer a route can give, derived once from what it is: the codes any route can answer
 * with, those that come with authentication, a body, parameters or a write, and the ones its
 * handler declares. The OpenAPI document lists exactly these per status, and the test suite
 * checks every response of every end-to-end test against that document.
 */
const ANY: ReasonCode[] = ['invalid_request', 'internal_error'];
const AUTHENTICATED: ReasonCode[] = ['unauthenticated', 'forbidden', 'storage_unavailable', 'storage_corrupt'];
const WITH_BODY: ReasonCode[] = ['malformed_json', 'invalid_encoding', 'duplicate_key', 'payload_too_large', 'unsupported_media_type', 'invalid_value'];
const WITH_PARAMETERS: ReasonCode[] = ['invalid_value'];
const WRITES: ReasonCode[] = ['storage_unavailable', 'storage_corrupt', 'overloaded'];

export function reasonCodesOf(route: Route): ReasonCode[] {
  const codes = new Set<ReasonCode>(ANY);
  const add = (list: readonly ReasonCode[]) => list.forEach((c) => codes.add(c));
  if (route.auth !== 'anyone') add(AUTHENTICATED);
  if (route.auth === 'cascade') add(['unsupported_version']);
  if (route.body || route.ownBody || route.auth === 'cascade') add(WITH_BODY);
  if (route.query || route.path.includes(':')) add(WITH_PARAMETERS);
  if (route.method !== 'GET') add(WRITES);
  // A change made with the dashboard's session cookie must carry its CSRF token.
  if (route.method !== 'GET' && Array.isArray(route.auth) && route.auth.some((role) => (SESSION_ROLES as readonly string[]).includes(role))) add(['csrf_failed']);
  add(route.errors ?? []);
  return [...codes].sort();
}

/** The error statuses a route can answer with, each with its reason codes. */
export function errorStatusesOf(route: Route): Map<number, ReasonCode[]> {
  const byStatus = new Map<number, ReasonCode[]>();
  for (const code of reasonCodesOf(route)) {
    const status = REASON_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return new Map([...byStatus].sort(([a], [b]) => a - b));
}
