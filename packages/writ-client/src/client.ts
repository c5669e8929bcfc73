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
  url: string;
  apiKey: string;
  fetch?: typeof fetch;
}

/** An answer from Writ in its error shape, with the stable reason code. */
export class WritApiError extends Error {
  constructor(
    readonly status: number,
    readonly reasonCode: string,
    message: string,
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'WritApiError';
  }
}

/** waitForApproval ran out of time; the request is still pending on the server. */
export class WritTimeoutError extends Error {
  constructor(readonly permission: Permission) {
    super(`no human decided on permission ${permission.id} in time; it is still pending`);
    this.name = 'WritTimeoutError';
  }
}

const LONG_POLL_MAX = 60;

export class WritClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  async requestPermission(request: PermissionRequest): Promise<Permission> {
    const { waitForApproval, timeout, approvalTimeout, ...rest } = request;
    const body: Record<string, unknown> = { ...rest };
    if (approvalTimeout !== undefined) body.approval_timeout = approvalTimeout;
    const deadline = Date.now() + (timeout ?? 900) * 1000;
    if (waitForApproval) body.wait = Math.min(LONG_POLL_MAX, Math.max(0, Math.floor((deadline - Date.now()) / 1000)));
    const permission = await this.call<Permission>('POST', '/api/v1/permissions', body);
    return waitForApproval ? this.waitForDecision(permission, deadline) : permission;
  }

  getPermission(id: string, options: { wait?: number } = {}): Promise<Permission> {
    const query = options.wait ? `?wait=${Math.min(LONG_POLL_MAX, options.wait)}` : '';
    return this.call<Permission>('GET', `/api/v1/permissions/${encodeURIComponent(id)}${query}`);
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
      if (left <= 0) throw new WritTimeoutError(current);
      current = await this.getPermission(current.id, { wait: Math.min(LONG_POLL_MAX, left) });
    }
    return current;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetch(`${this.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.options.apiKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const error = (parsed as { error?: { reason_code?: string; message?: string; detail?: Record<string, unknown> } } | undefined)?.error;
      throw new WritApiError(res.status, error?.reason_code ?? 'http_error', error?.message ?? `HTTP ${res.status}`, error?.detail);
    }
    return parsed as T;
  }
}
