import { z } from 'zod';
import type { Passkey } from '../../domain/passkeys.ts';
import type { Principal } from '../../domain/principals.ts';
import { WritError } from '../../errors.ts';
import type { Writ } from '../../writ.ts';
import { defineRoute } from '../route.ts';
import { webauthnBytes } from '../schemas.ts';

/**
 * An approver's passkeys: register one (options, then the browser's answer), list and delete
 * them, and get the options for approving one approval with one (a challenge bound to the approval
 * and its request digest). Only approvers, for themselves.
 */
const passkeySchema = z
  .object({
    id: z.string().describe('The credential id (base64url)'),
    name: z.string(),
    transports: z.array(z.string()),
    device_type: z.enum(['singleDevice', 'multiDevice']),
    backed_up: z.boolean(),
    counter: z.number(),
    created_at: z.string(),
    last_used_at: z.string().optional(),
  })
  .meta({ id: 'Passkey' });

const view = (p: Passkey): z.infer<typeof passkeySchema> => ({
  id: p.id,
  name: p.name,
  transports: p.transports,
  device_type: p.device_type,
  backed_up: p.backed_up,
  counter: p.counter,
  created_at: p.created_at,
  ...(p.last_used_at ? { last_used_at: p.last_used_at } : {}),
});

const credentialDescriptor = z.looseObject({ id: z.string(), type: z.literal('public-key'), transports: z.array(z.string()).optional() });

/** PublicKeyCredentialCreationOptionsJSON, for @simplewebauthn/browser's startRegistration. */
const creationOptionsSchema = z.looseObject({
  challenge: z.string(),
  rp: z.looseObject({ name: z.string(), id: z.string().optional() }),
  user: z.looseObject({ id: z.string(), name: z.string(), displayName: z.string() }),
  pubKeyCredParams: z.array(z.looseObject({ alg: z.number(), type: z.literal('public-key') })),
  timeout: z.number().optional(),
  excludeCredentials: z.array(credentialDescriptor).optional(),
});

/** PublicKeyCredentialRequestOptionsJSON, for @simplewebauthn/browser's startAuthentication. */
const requestOptionsSchema = z.looseObject({
  challenge: z.string(),
  rpId: z.string().optional(),
  timeout: z.number().optional(),
  allowCredentials: z.array(credentialDescriptor).optional(),
  userVerification: z.enum(['required', 'preferred', 'discouraged']).optional(),
});

/** What @simplewebauthn/browser's startRegistration returns. */
const registrationResponseSchema = z.object({
  id: webauthnBytes(1366),
  rawId: webauthnBytes(1366),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: webauthnBytes(8192),
    attestationObject: webauthnBytes(65536),
    authenticatorData: webauthnBytes(65536).optional(),
    transports: z.array(z.enum(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'])).max(8).optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: webauthnBytes(8192).optional(),
  }),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()),
});

const passkeyName = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(/^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$/, 'must not contain control or bidi formatting characters');

/** The approver behind the request, still there and unrevoked. */
async function approverOf(writ: Writ, principal: Principal | undefined): Promise<{ id: string; name: string }> {
  const approver = await writ.principals.getApprover(principal!.id);
  if (!approver || approver.revoked) throw new WritError('forbidden', 'this approver is revoked or no longer exists', { field: 'authorization' });
  return approver;
}

export const registrationOptions = defineRoute({
  method: 'POST',
  path: '/api/v1/passkeys/registration-options',
  summary: 'Start registering a passkey: the options for navigator.credentials.create (the challenge is good for five minutes, once)',
  auth: ['approver'],
  body: z.strictObject({}),
  responses: { 200: { description: 'Creation options', schema: creationOptionsSchema } },
  errors: ['conflict'],
  async handle({ writ, principal }) {
    const approver = await approverOf(writ, principal);
    return { status: 200, headers: { 'cache-control': 'no-store' }, body: await writ.passkeys.registrationOptions(approver) };
  },
});

export const register = defineRoute({
  method: 'POST',
  path: '/api/v1/passkeys',
  summary: 'Finish registering a passkey with what the browser answered; logged',
  auth: ['approver'],
  body: z.strictObject({ name: passkeyName.describe('What you call it, e.g. "laptop"'), response: registrationResponseSchema }),
  responses: { 201: { description: 'Registered', schema: passkeySchema } },
  errors: ['passkey_invalid', 'conflict'],
  async handle({ writ, principal, body }) {
    const approver = await approverOf(writ, principal);
    return { status: 201, body: view(await writ.passkeys.register(approver.id, body.name, body.response)) };
  },
});

export const list = defineRoute({
  method: 'GET',
  path: '/api/v1/passkeys',
  summary: 'Your passkeys, oldest first',
  auth: ['approver'],
  responses: { 200: { description: 'Your passkeys', schema: z.object({ items: z.array(passkeySchema) }) } },
  async handle({ writ, principal }) {
    return { status: 200, body: { items: (await writ.passkeys.list(principal!.id)).map(view) } };
  },
});

export const remove = defineRoute({
  method: 'DELETE',
  path: '/api/v1/passkeys/:id',
  summary: 'Delete one of your passkeys; logged',
  auth: ['approver'],
  responses: { 200: { description: 'Deleted', schema: passkeySchema }, 404: { description: 'You have no such passkey' } },
  errors: ['not_found'],
  async handle({ writ, principal, params }) {
    const approver = await approverOf(writ, principal);
    return { status: 200, body: view(await writ.passkeys.remove(approver.id, params.id!, principal!.id)) };
  },
});

export const approvalOptions = defineRoute({
  method: 'POST',
  path: '/api/v1/approvals/:id/passkey-options',
  summary: 'The options for navigator.credentials.get to approve this approval with your passkey: the challenge is bound to the approval and its request digest, good for five minutes, once',
  auth: ['approver'],
  body: z.strictObject({}),
  responses: {
    200: {
      description: 'Request options, and what they are bound to',
      schema: z.object({ approval_id: z.string(), request_digest: z.string(), options: requestOptionsSchema }),
    },
    404: { description: 'No such approval' },
    409: { description: 'Already decided, or you have voted already' },
  },
  errors: ['not_found', 'already_decided', 'already_voted', 'passkey_required'],
  async handle({ writ, principal, params }) {
    const approver = await approverOf(writ, principal);
    const approval = await writ.permissions.getApproval(params.id!);
    if (approval.status !== 'pending') throw new WritError('already_decided', `approval ${approval.id} is ${approval.status}; there is nothing to approve`, { approval_id: approval.id, status: approval.status });
    if (approval.votes.some((v) => v.approver_id === approver.id)) throw new WritError('already_voted', 'you have already voted on this approval; one approver counts once', { approval_id: approval.id });
    const options = await writ.passkeys.approvalOptions(approver.id, approval);
    return { status: 200, headers: { 'cache-control': 'no-store' }, body: { approval_id: approval.id, request_digest: approval.request_digest, options } };
  },
});
