import { z } from 'zod';
import { defineRoute } from '../route.ts';
import { createAgentSchema, createApproverSchema, createAttesterSchema, errorSchema } from '../schemas.ts';

const created = (description: string, extra: z.ZodRawShape) => ({
  201: { description, schema: z.object({ id: z.string(), api_key: z.string().describe('Shown once; only its hash is stored'), ...extra }) },
  403: { description: 'Not an admin key', schema: errorSchema },
});

export const agents = defineRoute({
  method: 'POST',
  path: '/api/v1/agents',
  summary: 'Register an agent and mint its API key',
  auth: ['admin'],
  body: createAgentSchema,
  responses: created('Registered', { name: z.string(), class: z.string(), trust_tier: z.string() }),
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
  responses: created('Registered', { name: z.string(), link_code: z.string() }),
  async handle({ writ, body }) {
    const { approver, api_key, link_code } = await writ.principals.createApprover(body);
    return { status: 201, body: { ...approver, api_key, link_code } };
  },
});

export const attesters = defineRoute({
  method: 'POST',
  path: '/api/v1/attesters',
  summary: 'Register an attester (an external policy engine) for one touchpoint',
  auth: ['admin'],
  body: createAttesterSchema,
  responses: created('Registered', { name: z.string(), touchpoint_id: z.string() }),
  async handle({ writ, body }) {
    const { attester, api_key } = await writ.principals.createAttester(body);
    return { status: 201, body: { ...attester, api_key } };
  },
});
