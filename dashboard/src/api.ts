/**
 * The dashboard talks to the same API as everyone else, with its session cookie (HttpOnly: this
 * script never sees it) and, on every change, the session's CSRF token in X-CSRF-Token.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reasonCode: string,
    message: string,
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
  }
}

let csrfToken: string | undefined;
export const setCsrfToken = (token: string | undefined): void => {
  csrfToken = token;
};

/** Called when the session has ended (401): the app sends the reader to sign in. */
let onSignedOut: () => void = () => undefined;
export const whenSignedOut = (fn: () => void): void => {
  onSignedOut = fn;
};

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  } catch {
    throw new ApiError(0, 'unreachable', 'Writ cannot be reached; is the server running?');
  }
  const type = res.headers.get('content-type') ?? '';
  const parsed: unknown = type.startsWith('application/json') ? await res.json().catch(() => undefined) : await res.text();
  if (!res.ok) {
    const error = (parsed as { error?: { reason_code: string; message: string; detail?: Record<string, unknown> } } | undefined)?.error;
    if (res.status === 401 && !path.startsWith('/api/v1/session')) onSignedOut();
    throw new ApiError(res.status, error?.reason_code ?? 'error', error?.message ?? `${res.status} ${res.statusText}`, error?.detail);
  }
  return parsed as T;
}

/** The query string of defined values. */
export function qs(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(name, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}
