/**
 * The agent builder's client: ask Writ for permission, wait for humans when needed, spend the
 * token. Runs anywhere with `fetch` (Node 18+, browsers, Deno, Workers); no Node-only APIs.
 */
export type PermissionStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'used' | 'revoked';

export interface TraceStep {
  step: string;
  outcome: string;
  ms: number;
  reason?: string;
}

export interface Permission {
  id: string;
  status: PermissionStatus;
  decision: 'allow' | 'deny' | 'escalate';
  tier: 'standard' | 'sensitive' | 'critical';
  action: string;
  resource: string;
  scope: Record<string, unknown>;
  reasons: string[];
  /** One-time token, present while approved and unused. */
  token?: string;
  /** Compact JWS receipt; check it with `verifyReceipt` from `writ-verify`. */
  receipt?: string;
  expires_at: string;
  created_at: string;
  approval?: { id: string; status: string; tier: string; required: number; votes: unknown[]; expires_at: string; delay_until?: string };
  policy: { hash: string; determining: string[] };
  trace: TraceStep[];
}

export interface PermissionRequest {
  action: string;
  resource: string;
  scope?: Record<string, unknown>;
  context?: Record<string, unknown>;
  value?: number;
  currency?: string;
  /** Token lifetime in seconds. */
  ttl?: number;
  /** Seconds a pending request may wait for humans before it expires. */
  approvalTimeout?: number;
  /** Resolve only once humans have decided (or the request expired). */
  waitForApproval?: boolean;
  /** With waitForApproval: give up after this many seconds (default 900) with WritTimeoutError. */
  timeout?: number;
}

export interface ClientOptions {
  /** Writ's base URL, http or https. */
  url: string;
  apiKey: string;
  fetch?: typeof fetch;
  /** How long to wait for each answer, in milliseconds (a long poll's wait comes on top). Default 30 000. */
  timeoutMs?: number;
}

interface Failure {
  method: string;
  url: string;
  cause?: unknown;
}

/** Every error the client throws says which request failed (`method`, `url`) and, in `cause`, why. */
export class WritClientError extends Error {
  readonly method: string;
  readonly url: string;

  constructor(message: string, failure: Failure) {
    super(message, 'cause' in failure ? { cause: failure.cause } : undefined);
    this.name = 'WritClientError';
    this.method = failure.method;
    this.url = failure.url;
  }
}

/**
 * Writ answered, in its error shape, and refused: `status` and the stable `reasonCode`. `cause`
 * is the error object it answered with (or the raw text, when the answer was not Writ's shape).
 */
export class WritApiError extends WritClientError {
  readonly status: number;
  readonly reasonCode: string;
  readonly detail: Record<string, unknown> | undefined;

  constructor(message: string, failure: Failure & { status: number; reasonCode: string; detail?: Record<string, unknown> | undefined }) {
    super(message, failure);
    this.name = 'WritApiError';
    this.status = failure.status;
    this.reasonCode = failure.reasonCode;
    this.detail = failure.detail;
  }
}

/**
 * Writ could not be reached or cannot answer now: connection refused, DNS failure, no answer
 * within `timeoutMs`, or a 502/503/504. Worth retrying later; `retryAfter` (seconds) says when,
 * if the server said. `cause` is the network error, or the answer when there was one.
 */
export class WritUnavailableError extends WritClientError {
  /** The HTTP status, when something answered (503 from Writ, 502/504 from a gateway). */
  readonly status: number | undefined;
  /** Writ's reason code (`overloaded`, `storage_unavailable`), when Writ itself answered. */
  readonly reasonCode: string | undefined;
  /** Seconds to wait before retrying, from `Retry-After`. */
  readonly retryAfter: number | undefined;

  constructor(message: string, failure: Failure & { status?: number; reasonCode?: string | undefined; retryAfter?: number | undefined }) {
    super(message, failure);
    this.name = 'WritUnavailableError';
    this.status = failure.status;
    this.reasonCode = failure.reasonCode;
    this.retryAfter = failure.retryAfter;
  }
}

/**
 * waitForApproval ran out of time; the request is still pending on the server. Nothing failed,
 * so there is no `cause`: `url` is the pending permission's, to look it up later.
 */
export class WritTimeoutError extends WritClientError {
  constructor(readonly permission: Permission, url: string) {
    super(`no human decided on permission ${permission.id} in time; it is still pending`, { method: 'GET', url });
    this.name = 'WritTimeoutError';
  }
}

const LONG_POLL_MAX = 60;
const DEFAULT_TIMEOUT_MS = 30_000;
/** Statuses that mean "not now" rather than "no": Writ's push-back, or a gateway with no Writ behind it. */
const UNAVAILABLE_STATUSES = new Set([502, 503, 504]);

export class WritClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;

  constructor(private readonly options: ClientOptions) {
    // A bad URL is the caller's mistake, so it fails here rather than as an unreachable server later.
    const parsed = new URL(options.url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError('WritClient: url must be http or https');
    if (parsed.username || parsed.password) throw new TypeError('WritClient: url must not carry credentials (fetch refuses them)');
    this.base = options.url.replace(/\/+$/, '');
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async requestPermission(request: PermissionRequest): Promise<Permission> {
    const { waitForApproval, timeout, approvalTimeout, ...rest } = request;
    const body: Record<string, unknown> = { ...rest };
    if (approvalTimeout !== undefined) body.approval_timeout = approvalTimeout;
    const deadline = Date.now() + (timeout ?? 900) * 1000;
    const wait = waitForApproval ? Math.min(LONG_POLL_MAX, Math.max(0, Math.floor((deadline - Date.now()) / 1000))) : 0;
    if (waitForApproval) body.wait = wait;
    const permission = await this.call<Permission>('POST', '/api/v1/permissions', body, wait);
    return waitForApproval ? this.waitForDecision(permission, deadline) : permission;
  }

  getPermission(id: string, options: { wait?: number } = {}): Promise<Permission> {
    const wait = options.wait ? Math.min(LONG_POLL_MAX, options.wait) : 0;
    return this.call<Permission>('GET', `${permissionPath(id)}${wait ? `?wait=${wait}` : ''}`, undefined, wait);
  }

  /** Spends the token for one use; rejects with WritApiError (token_used, token_expired, scope_violation…). */
  consume(input: { token: string; action: string; resource: string; use?: Record<string, unknown> }): Promise<{ valid: true; permission_id: string; receipt: string }> {
    return this.call('POST', '/api/v1/tokens/consume', input);
  }

  revoke(permissionId: string, reason?: string): Promise<Permission> {
    return this.call('POST', '/api/v1/tokens/revoke', { permission_id: permissionId, ...(reason ? { reason } : {}) });
  }

  private async waitForDecision(permission: Permission, deadline: number): Promise<Permission> {
    let current = permission;
    while (current.status === 'pending') {
      const left = Math.floor((deadline - Date.now()) / 1000);
      if (left <= 0) throw new WritTimeoutError(current, `${this.base}${permissionPath(current.id)}`);
      current = await this.getPermission(current.id, { wait: Math.min(LONG_POLL_MAX, left) });
    }
    return current;
  }

  /** One request; `waitSeconds` is how long the server may hold it (a long poll), added to the timeout. */
  private async call<T>(method: string, path: string, body?: unknown, waitSeconds = 0): Promise<T> {
    const url = `${this.base}${path}`;
    const budgetMs = this.timeoutMs + waitSeconds * 1000;
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(url, {
        method,
        headers: { authorization: `Bearer ${this.options.apiKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(budgetMs),
      });
      text = await res.text();
    } catch (cause) {
      const why = isTimeout(cause) ? `no answer within ${budgetMs / 1000} s` : describeFailure(cause);
      throw new WritUnavailableError(`Writ is unavailable at ${method} ${url}: ${why}`, { method, url, cause });
    }
    const parsed = parseJson(text);
    if (res.ok) {
      if ('error' in parsed) {
        throw new WritApiError(`${method} ${url} answered ${res.status} with a body that is not JSON`, {
          method, url, cause: parsed.error, status: res.status, reasonCode: 'invalid_response',
        });
      }
      return parsed.value as T;
    }
    const answer = 'value' in parsed ? writErrorOf(parsed.value) : undefined;
    const cause = answer ?? text;
    if (UNAVAILABLE_STATUSES.has(res.status)) {
      const retryAfter = retryAfterSeconds(res.headers.get('retry-after'));
      const why = `${res.status}${answer?.reason_code ? ` ${answer.reason_code}` : ''}${retryAfter !== undefined ? `, retry after ${retryAfter} s` : ''}`;
      throw new WritUnavailableError(`Writ is unavailable at ${method} ${url}: ${why}`, {
        method, url, cause, status: res.status, reasonCode: answer?.reason_code, retryAfter,
      });
    }
    const reasonCode = answer?.reason_code ?? 'http_error';
    throw new WritApiError(`${answer?.message ?? `HTTP ${res.status}`} (${method} ${url} answered ${res.status} ${reasonCode})`, {
      method, url, cause, status: res.status, reasonCode, detail: answer?.detail,
    });
  }
}

const permissionPath = (id: string): string => `/api/v1/permissions/${encodeURIComponent(id)}`;

function parseJson(text: string): { value: unknown } | { error: unknown } {
  if (text === '') return { value: undefined };
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error };
  }
}

interface WritErrorAnswer {
  reason_code: string;
  message?: string;
  detail?: Record<string, unknown>;
}

/** Writ's error shape, `{ error: { reason_code, message, detail? } }`, or undefined for anything else. */
function writErrorOf(body: unknown): WritErrorAnswer | undefined {
  const error = (body as { error?: unknown } | undefined)?.error;
  if (typeof error !== 'object' || error === null || typeof (error as WritErrorAnswer).reason_code !== 'string') return undefined;
  return error as WritErrorAnswer;
}

const isTimeout = (error: unknown): boolean => (error as { name?: unknown } | null)?.name === 'TimeoutError';

/** The most specific words for a network failure: Node's fetch keeps the system error (ECONNREFUSED, ENOTFOUND) in `cause`. */
function describeFailure(error: unknown): string {
  let deepest = error;
  while (deepest instanceof Error && deepest.cause instanceof Error) deepest = deepest.cause;
  if (!(deepest instanceof Error)) return String(deepest);
  const code = (deepest as { code?: unknown }).code;
  return deepest.message || (typeof code === 'string' ? code : deepest.name);
}

/** `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
function retryAfterSeconds(header: string | null): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}
