/**
 * One table of reason codes and the one place that maps them to HTTP statuses. A WritError's
 * message is written for the client (fixed words for 5xx); anything else thrown is reported as
 * `internal_error` and its message stays in the server's log.
 */
export const REASON_STATUS = {
  invalid_request: 400,
  malformed_json: 400,
  invalid_encoding: 400,
  duplicate_key: 400,
  unsupported_version: 400,
  unauthenticated: 401,
  forbidden: 403,
  csrf_failed: 403,
  passkey_required: 403,
  passkey_invalid: 403,
  scope_violation: 403,
  token_invalid: 404,
  not_found: 404,
  route_not_found: 404,
  method_not_allowed: 405,
  unsupported_media_type: 415,
  token_used: 409,
  conflict: 409,
  already_decided: 409,
  already_voted: 409,
  request_mismatch: 409,
  not_in_delay: 409,
  token_expired: 410,
  token_revoked: 410,
  payload_too_large: 413,
  invalid_value: 422,
  invalid_action: 422,
  invalid_resource: 422,
  ttl_out_of_range: 422,
  action_mismatch: 403,
  resource_mismatch: 403,
  attestation_conflict: 409,
  attestation_out_of_order: 409,
  legal_basis_invalid: 422,
  evidence_digest_invalid: 422,
  decided_at_invalid: 422,
  decided_at_in_future: 422,
  overloaded: 503,
  storage_unavailable: 503,
  internal_error: 500,
  storage_corrupt: 500,
} as const;

export type ReasonCode = keyof typeof REASON_STATUS;
export const REASON_CODES = Object.keys(REASON_STATUS) as ReasonCode[];

export class WritError extends Error {
  readonly code: ReasonCode;
  readonly detail: Record<string, unknown> | undefined;
  constructor(code: ReasonCode, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.name = 'WritError';
    this.code = code;
    this.detail = detail;
  }
  get status(): number {
    return REASON_STATUS[this.code];
  }
}

export interface ErrorBody {
  error: { reason_code: string; message: string; detail?: Record<string, unknown> };
}

/** Turns anything thrown into the wire shape; internal failures never leak their message. */
export function toErrorBody(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof WritError && err.status < 500) {
    const body: ErrorBody = { error: { reason_code: err.code, message: err.message } };
    if (err.detail) body.error.detail = err.detail;
    return { status: err.status, body };
  }
  if (err instanceof WritError) {
    return { status: err.status, body: { error: { reason_code: err.code, message: err.message } } };
  }
  return { status: 500, body: { error: { reason_code: 'internal_error', message: 'internal error' } } };
}
