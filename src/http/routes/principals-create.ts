import { z } from 'zod';
import { defineRoute } from '../route.ts';
import {
  createAgentSchema,
  createApproverSchema,
  createAttesterSchema,
  createdAgentSchema,
  createdApproverSchema,
  createdAttesterSchema,
  createdResourceServerSchema,
  createResourceServerSchema,
} from '../schemas.ts';

const created = (schema: z.ZodType) => ({ 201: { description: 'Registered; the key is shown once', schema } });

export const agents = defineRoute({
  method: 'POST',
  path: '/api/v1/agents',
  summary: 'Register an agent and mint its API key',
  auth: ['admin'],
  body: createAgentSchema,
  responses: created(createdAgentSchema),
  async handle({ writ, body }) {
    const { agent, api_key } = await writ.principals.createAgent(body);
    return { status: 201, body: { ...agent, api_key } };
  },
});

export const approvers = defineRoute({
  method: 'POST',
  path: '/api/v1/approvers',
  summary: 'Register an approver; the link_code links their Telegram chat (/start <code>, 24 h)',
  auth: ['admin'],
  body: createApproverSchema,
  responses: created(createdApproverSchema),
  async handle({ writ, body }) {
    const { approver, api_key, link_code } = await writ.principals.createApprover(body);
    const { link_code_hash: _hash, ...view } = approver;
    return { status: 201, body: { ...view, api_key, link_code } };
  },
});

export const attesters = defineRoute({
  method: 'POST',
  path: '/api/v1/attesters',
  summary: 'Register an attester (an external policy engine) for one touchpoint',
  auth: ['admin'],
  body: createAttesterSchema,
  responses: created(createdAttesterSchema),
  async handle({ writ, body }) {
    const { attester, api_key } = await writ.principals.createAttester(body);
    return { status: 201, body: { ...attester, api_key } };
  },
});

export const approverLinkCode = defineRoute({
  method: 'POST',
  path: '/api/v1/approvers/:id/link-code',
  summary: "A fresh single-use Telegram link code (24 h) for an approver; the previous one stops working",
  auth: ['admin'],
  responses: { 201: { description: 'Issued', schema: z.object({ approver_id: z.string(), link_code: z.string(), expires_at: z.string() }) } },
  errors: ['not_found', 'conflict'],
  async handle({ writ, params }) {
    return { status: 201, body: await writ.principals.newLinkCode(params.id!) };
  },
});

export const resourceServers = defineRoute({
  method: 'POST',
  path: '/api/v1/resource-servers',
  summary: 'Register a resource server: it spends the tokens of requests that name it as audience (or name none)',
  auth: ['admin'],
  body: createResourceServerSchema,
  responses: created(createdResourceServerSchema),
  async handle({ writ, body }) {
    const { resourceServer, api_key } = await writ.principals.createResourceServer(body);
    return { status: 201, body: { ...resourceServer, api_key } };
  },
});

/** A new key for a principal; its current keys stop working at once, and nothing it did is touched. */
const rotation = (collection: string, role: 'agent' | 'approver' | 'attester' | 'resource_server') =>
  defineRoute({
    method: 'POST',
    path: `/api/v1/${collection}/:id/keys`,
    summary: `Issue a new key for a ${role.replace('_', ' ')} and retire its current ones (its history, tokens and votes stay)`,
    auth: ['admin'],
    responses: {
      201: {
        description: 'The new key, shown once',
        schema: z.object({ id: z.string(), api_key: z.string(), key_id: z.string(), retired_key_ids: z.array(z.string()) }),
      },
    },
    errors: ['not_found', 'conflict'],
    async handle({ writ, params }) {
      return { status: 201, body: await writ.principals.rotateKey(role, params.id!) };
    },
  });

export const agentKeys = rotation('agents', 'agent');
export const approverKeys = rotation('approvers', 'approver');
export const attesterKeys = rotation('attesters', 'attester');
export const resourceServerKeys = rotation('resource-servers', 'resource_server');
