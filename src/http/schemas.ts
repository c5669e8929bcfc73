import { z } from 'zod';
import { REVOCATION_SCOPES, TRUST_TIERS } from '../domain/principals.ts';
import { WEBHOOK_EVENTS } from '../domain/events.ts';
import { LEGAL_BASES, OVERSIGHT_DECISIONS } from '../domain/oversight.ts';
import { REASON_CODES, type ReasonCode } from '../errors.ts';
import { TIERS, type Json } from '../policy/types.ts';

/**
 * The wire contract. These schemas validate requests and generate the OpenAPI document, so the
 * two cannot drift apart.
 */
export const ACTION_PATTERN = /^[a-z][a-z0-9_-]{0,63}\.[a-z][a-z0-9_-]{0,63}$/;
/**
 * The identifier excludes what would make a resource display as something else on an approval
 * card: whitespace, C0, DEL and C1 controls, bidi marks, embeddings, overrides and isolates, and
 * zero-width characters.
 */
export const RESOURCE_PATTERN = /^[a-z][a-z0-9_-]{0,63}:[^\s\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]{1,1024}$/;
/** Names are shown to people (cards, votes): no controls, no bidi marks, embeddings, overrides or isolates. */
const NAME_PATTERN = /^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$/;

/** Keys starting with "__" are refused at every depth so input cannot forge Cedar entity or extension values. */
const jsonKey = z.string().min(1).max(128).regex(/^(?!__)/, 'keys must not start with "__"');
const json: z.ZodType<Json> = z
  .lazy(() => z.union([z.string().max(4096), z.number(), z.boolean(), z.null(), z.array(json).max(256), z.record(jsonKey, json)]))
  .meta({ id: 'JsonValue' });
const jsonObject = z.record(jsonKey, json).refine((o) => Object.keys(o).length <= 64, 'at most 64 keys');

export const action = z.string().regex(ACTION_PATTERN, 'must look like category.operation, e.g. email.send');
export const resource = z.string().regex(RESOURCE_PATTERN, 'must look like type:identifier, e.g. email:client@acme.com, with no spaces, control, bidi or zero-width characters');
const displayName = z.string().min(1).max(200).regex(NAME_PATTERN, 'must not contain control or bidi formatting characters');

/**
 * Numbers in paths and query strings, as plain decimal digits: `z.coerce.number()` would read ""
 * as 0 and " 7", "1e3" or "0x10" as numbers, and a parameter is taken as written or refused.
 */
export const wholeNumberParam = z.string().regex(/^\d{1,15}$/, 'must be a whole number of at least 0, in at most 15 decimal digits').transform(Number);
/** A list's page size: 1 to 200, 50 when not given. */
export const limitParam = wholeNumberParam.pipe(z.number().min(1).max(200)).default(50).describe('Items per page, 1 to 200 (default 50)');
/** Only its alphabet is checked here; what it says is checked against the list it is passed to (routes/cursor.ts). */
export const cursorParam = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,512}$/, "must be a previous page's next_cursor, as given")
  .describe("The previous page's next_cursor, with the same filters");
export const secondsParam = z.string().regex(/^\d{1,15}(\.\d{1,15})?$/, 'must be a number of seconds of at least 0, in decimal digits').transform(Number);

export const permissionRequestSchema = z
  .strictObject({
    action,
    resource,
    scope: jsonObject.optional().describe('Constraints the token is bound to: max_X, X_pattern, X_allowed, or exact values'),
    context: jsonObject.optional().describe('Facts for the policy and the approver, e.g. reason'),
    value: z.number().finite().min(0).optional(),
    currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as EUR').optional(),
    ttl: z.number().int().min(1).optional().describe('Token lifetime in seconds (default 300)'),
    approval_timeout: z.number().int().min(1).optional().describe('Seconds a pending request waits for humans (default 900)'),
    wait: z.number().min(0).max(60).optional().describe('Long-poll up to this many seconds while pending'),
    audience: z.string().min(1).max(128).optional().describe('The resource server (its id) that will spend the token: then only it, or this agent, may; it becomes the receipt\'s aud'),
  })
  .meta({ id: 'PermissionRequest' });
export type PermissionRequest = z.infer<typeof permissionRequestSchema>;

export const traceSchema = z.array(
  z.object({ step: z.string(), outcome: z.string(), ms: z.number(), reason: z.string().optional(), failure: z.string().optional() }),
);

export const voteSchema = z.object({
  approver_id: z.string(),
  name: z.string(),
  vote: z.enum(['approve', 'deny', 'cancel']),
  at: z.string(),
  comment: z.string().optional(),
  passkey: z.string().optional().describe('The credential id of the passkey the approver confirmed this vote with (a critical approval on the web)'),
});

export const approvalSchema = z
  .object({
    id: z.string(),
    permission_id: z.string(),
    agent_id: z.string(),
    action: z.string(),
    resource: z.string(),
    tier: z.enum(['sensitive', 'critical']),
    required: z.number(),
    votes: z.array(voteSchema),
    status: z.enum(['pending', 'delay', 'approved', 'denied', 'expired', 'cancelled']),
    created_at: z.string(),
    expires_at: z.string(),
    delay_until: z.string().optional(),
    decided_at: z.string().optional(),
    close_reason: z.enum(['withdrawn', 'revoked']).optional().describe('Why a cancelled approval closed without an approver'),
    request_digest: z.string().describe('SHA-256 (base64) of the canonical {action, resource, scope, context, value, currency, policy_hash}: a token is minted only for this request'),
    request: z
      .object({
        permission_id: z.string(),
        agent: z.object({ id: z.string(), name: z.string(), class: z.string(), trust_tier: z.string() }),
        action: z.string(),
        resource: z.string(),
        scope: z.record(z.string(), json),
        context: z.record(z.string(), json),
        value: z.number().optional(),
        currency: z.string().optional(),
        digest: z.string(),
        policy: z.object({ hash: z.string(), escalated_by: z.array(z.string()) }),
      })
      .optional()
      .describe('The request this approval decides, as approvers must see it'),
  })
  .meta({ id: 'Approval' });

export const permissionSchema = z
  .object({
    id: z.string(),
    status: z.enum(['pending', 'approved', 'denied', 'expired', 'used', 'revoked']),
    decision: z.enum(['allow', 'deny', 'escalate']).describe('The decision as it stands, as in the receipt: escalate while humans decide, then allow or deny'),
    policy_decision: z.enum(['allow', 'deny', 'escalate']).describe('What the policies answered when the request came'),
    tier: z.enum(TIERS),
    action: z.string(),
    resource: z.string(),
    scope: z.record(z.string(), json),
    value: z.number().optional(),
    currency: z.string().optional(),
    reasons: z.array(z.string()),
    token: z.string().optional().describe('One-time token; present while the permission is approved and unused'),
    receipt: z.string().optional().describe('Compact JWS receipt (typ oap-receipt+jwt)'),
    expires_at: z.string(),
    created_at: z.string(),
    approval: approvalSchema.optional(),
    log: z.object({ index: z.number(), leaf_hash: z.string() }).optional().describe('Where the allow was logged; the receipt points here'),
    policy: z.object({ hash: z.string(), determining: z.array(z.string()), languages: z.array(z.enum(['cedar', 'rego'])).optional() }),
    failure: z
      .object({ step: z.string(), code: z.enum(['policy_error', 'policy_timeout', 'policy_not_loaded']) })
      .optional()
      .describe('Present when nothing could be decided: the request is denied, but no policy denied it'),
    trace: traceSchema,
  })
  .meta({ id: 'Permission' });

export const consumeSchema = z
  .strictObject({
    token: z.string().min(1).max(256),
    action,
    resource,
    use: jsonObject.optional().describe('What this use does, checked against the scope, e.g. {"emails": 1}'),
  })
  .meta({ id: 'ConsumeRequest' });

export const revokeSchema = z.strictObject({ permission_id: z.string().min(1).max(128), reason: z.string().max(1024).optional() });

/** base64url as WebAuthn's JSON forms carry it (credential ids, client data, signatures). */
export const webauthnBytes = (max: number) => z.string().max(max).regex(/^[A-Za-z0-9_-]*$/, 'must be base64url');

/** What @simplewebauthn/browser's startAuthentication returns (the JSON form of a WebAuthn assertion). */
export const passkeyAssertionSchema = z
  .object({
    id: webauthnBytes(1366),
    rawId: webauthnBytes(1366),
    type: z.literal('public-key'),
    response: z.object({
      clientDataJSON: webauthnBytes(8192),
      authenticatorData: webauthnBytes(8192),
      signature: webauthnBytes(2048),
      userHandle: webauthnBytes(128).optional(),
    }),
    authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
    clientExtensionResults: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'PasskeyAssertion' });

export const approveSchema = z.strictObject({
  comment: z.string().max(4096).optional(),
  request_digest: z.string().max(64).optional().describe('The digest of the request you were shown; the vote counts only if it is still that request'),
  webauthn: passkeyAssertionSchema
    .optional()
    .describe('A passkey assertion over the challenge of POST /api/v1/approvals/{id}/passkey-options: required to approve a critical approval with the dashboard session cookie; checked whenever sent'),
});
export const reasonSchema = z.strictObject({ reason: z.string().max(4096).optional() });

export const createAgentSchema = z.strictObject({
  name: displayName,
  class: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'lowercase letters, digits, "_", "." or "-"').optional(),
  trust_tier: z.enum(TRUST_TIERS).optional(),
});

export const createApproverSchema = z.strictObject({
  name: displayName,
  telegram_user_id: z.number().int().positive().optional(),
});

export const createResourceServerSchema = z.strictObject({ name: displayName });

export const createAttesterSchema = z.strictObject({
  name: displayName,
  touchpoint_id: z.string().min(1).max(200),
});

export const reasonCodeSchema = z.enum(REASON_CODES).meta({ id: 'ReasonCode' });

/** What an error can say besides its message: the field at fault first, and whatever else helps the caller. */
export const errorDetailSchema = z
  .strictObject({
    field: z.string().optional().describe('The request field, parameter or header at fault'),
    trace: traceSchema.optional().describe('The cascade up to the step that refused the request'),
    allow: z.array(z.string()).optional(),
    limit: z.number().optional(),
    max: z.number().optional(),
    size: z.number().optional(),
    index: z.number().optional(),
    path: z.string().optional(),
    retry_after: z.number().optional(),
    status: z.string().optional(),
    permission_id: z.string().optional(),
    approval_id: z.string().optional(),
    used_at: z.string().optional(),
    expired_at: z.string().optional(),
    expected: z.string().optional(),
    violations: z.array(z.string()).optional(),
    supported: z.array(z.string()).optional(),
    highest_seen: z.number().optional(),
    request_digest: z.string().optional(),
  })
  .meta({ id: 'ErrorDetail' });

/** The one error shape; per status, the document narrows reason_code to the codes that status carries. */
export const errorOf = (codes: readonly ReasonCode[]) =>
  z.strictObject({ error: z.strictObject({ reason_code: codes.length ? z.enum(codes as [ReasonCode, ...ReasonCode[]]) : reasonCodeSchema, message: z.string(), detail: errorDetailSchema.optional() }) });

export const errorSchema = errorOf([]).meta({ id: 'Error' });

export const createWebhookSchema = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .refine((u) => !new URL(u).username && !new URL(u).password, 'must not carry a user name or password; put credentials in the query (stored sealed, shown redacted) or rely on the signature')
      .describe('Stored sealed; shown and logged with its query values redacted'),
    events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).describe(`Any of ${WEBHOOK_EVENTS.join(', ')}`),
    secret: z.string().min(16, 'must be at least 16 characters').max(256).describe('HMAC key for Writ-Signature; stored encrypted, never shown again'),
  })
  .meta({ id: 'WebhookRequest' });

export const webhookSchema = z
  .object({ id: z.string(), url: z.string(), events: z.array(z.string()), created_at: z.string() })
  .meta({ id: 'Webhook' });

export const attestationSchema = z
  .strictObject({
    attestation_id: z.string().min(1).max(200),
    touchpoint_id: displayName,
    agent_class: displayName.describe('Shown to approvers: no control or bidi characters'),
    action_class: displayName,
    decision: z.enum(OVERSIGHT_DECISIONS),
    decided_at: z.iso.datetime({ offset: true, error: 'must be an RFC 3339 date-time' }),
    // Below 2^53 − 1, so the next number after any accepted one is still exact.
    sequence_number: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER - 1),
    legal_basis: z.enum(LEGAL_BASES, { error: `must be one of ${LEGAL_BASES.join(', ')} (GDPR Art. 6(1))` }),
    evidence_digest: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (SHA-256)'),
    context: jsonObject.optional(),
  })
  .meta({ id: 'Attestation' });

export const escalationSchema = attestationSchema.extend({ decision: z.literal('escalate').optional() }).meta({ id: 'Escalation' });

export const heartbeatSchema = z.strictObject({
  touchpoint_id: z.string().min(1).max(200),
  cadence_seconds: z.number().int().min(1).max(86_400).optional().describe('How often this touchpoint reports; silent after three of these'),
});

export { REVOCATION_SCOPES };
export const REVOCATION_REASONS = ['compromised', 'superseded', 'policy_violation', 'decommissioned', 'other'] as const;
export const revocationSchema = z.strictObject({
  scope: z.enum(REVOCATION_SCOPES),
  id: z.string().min(1).max(200).describe('The agent, approver, attester or grant id; for agent_key an agent id (all its keys) or one key id (the 16 hex digits after writ_agent_)'),
  reason: z.enum(REVOCATION_REASONS),
  comment: z.string().max(1000).optional(),
});

// ---------------------------------------------------------------------------
// What the routes answer. Objects are closed (additionalProperties: false in the document), so a
// field added to an answer without its schema fails the suite's contract check.

export const jsonObjectOut = z.record(z.string(), json);
const timestamp = z.string().describe('RFC 3339 date-time');
const revokedSchema = z.object({ at: timestamp, reason: z.string() });
const withKey = { api_key: z.string().describe('Shown once; only its hash is stored') };

export const agentSchema = z
  .object({ id: z.string(), name: z.string(), class: z.string(), trust_tier: z.enum(TRUST_TIERS), created_at: timestamp, revoked: revokedSchema.optional() })
  .meta({ id: 'Agent' });
export const approverSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    telegram_user_id: z.number().optional(),
    telegram: z.object({ user_id: z.number(), chat_id: z.number(), username: z.string().optional(), linked_at: timestamp }).optional(),
    created_at: timestamp,
    revoked: revokedSchema.optional(),
  })
  .meta({ id: 'Approver' });
export const attesterSchema = z
  .object({ id: z.string(), name: z.string(), touchpoint_id: z.string(), created_at: timestamp, revoked: revokedSchema.optional() })
  .meta({ id: 'Attester' });
export const resourceServerSchema = z.object({ id: z.string(), name: z.string(), created_at: timestamp, revoked: revokedSchema.optional() }).meta({ id: 'ResourceServer' });
export const createdAgentSchema = agentSchema.extend(withKey);
export const createdApproverSchema = approverSchema.extend({ ...withKey, link_code: z.string().describe('Single use, 24 hours: /start <code> in a private chat with the bot') });
export const createdAttesterSchema = attesterSchema.extend(withKey);
export const createdResourceServerSchema = resourceServerSchema.extend(withKey);

export const logEntrySchema = z
  .object({ v: z.literal(1), index: z.number(), time: timestamp, type: z.string(), prev: z.string(), data: jsonObjectOut })
  .meta({ id: 'LogEntry' });

export const touchpointSchema = z
  .object({
    touchpoint_id: z.string(),
    last_sequence: z.number().describe('-1 before the first attestation, or after a reset'),
    last_attestation_at: timestamp.optional(),
    last_heartbeat_at: timestamp.optional(),
    cadence_seconds: z.number(),
    attestations: z.number(),
    gaps: z.number(),
  })
  .meta({ id: 'Touchpoint' });

const workerSchema = z.object({
  ready: z.boolean(),
  loaded: z.array(z.string()),
  restarts: z.number(),
  last_restart: z.object({ at: timestamp, reason: z.string() }).optional(),
  warm_up: z.object({ rounds: z.number(), ms: z.number() }).optional(),
});
export const policyStatusSchema = z
  .object({
    hash: z.string(),
    files: z.array(z.string()),
    not_loaded: z.array(z.string()),
    loaded_at: timestamp,
    last_error: z.object({ at: timestamp, problems: z.array(z.string()) }).optional(),
    worker: workerSchema,
  })
  .meta({ id: 'PolicyStatus' });

export const storageHealthSchema = z.object({
  driver: z.enum(['leveldb', 'postgresql']).describe('where the state lives: LevelDB in the data directory, or PostgreSQL (WRIT_DATABASE_URL)'),
  state: z.enum(['ok', 'unsafe', 'recovering', 'damaged']),
  reason: z.string().optional(),
  since: timestamp.optional(),
  failures: z.number(),
  recoveries: z.number(),
  last_attempt: z.object({ at: timestamp, error: z.string() }).optional(),
});

export const webhookStatsSchema = z.object({
  subscriptions: z.number(),
  delivered: z.number(),
  failed_attempts: z.number(),
  dead: z.number(),
  last_error: z.object({ at: timestamp, url: z.string(), message: z.string() }).optional(),
});

export const telegramHealthSchema = z.union([
  z.object({ enabled: z.literal(false) }),
  z.object({
    enabled: z.literal(true),
    mode: z.enum(['polling', 'webhook']),
    leader: z.boolean(),
    connected: z.boolean(),
    bot_username: z.string().optional(),
    linked_approvers: z.number(),
    queued: z.number(),
    sent: z.number(),
    failed: z.number(),
    last_ok_at: timestamp.optional(),
    last_error: z.object({ at: timestamp, message: z.string() }).optional(),
  }),
]);

/**
 * A page of a list. `next_cursor` is present while more may follow; a page can hold fewer than
 * `limit` items (even none) and still have one, when its scan reached its bound first.
 */
export const nextCursorSchema = z.string().optional().describe('Pass as `cursor` for the next page; absent on the last');
export const pageOf = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next_cursor: nextCursorSchema });

/** A permission in a list: as GET /api/v1/permissions/:id shows it, without the token (lists never carry one) or the approval. */
export const listedPermissionSchema = permissionSchema.omit({ token: true, approval: true }).meta({ id: 'ListedPermission' });

export const jwkSchema = z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string(), kid: z.string(), alg: z.literal('EdDSA'), use: z.literal('sig') }).meta({ id: 'Jwk' });
