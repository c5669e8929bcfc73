import { z } from 'zod';
import { defineRoute } from '../route.ts';
import { createWebhookSchema, webhookSchema, webhookStatsSchema } from '../schemas.ts';

export const create = defineRoute({
  method: 'POST',
  path: '/api/v1/webhooks',
  summary: 'Subscribe a URL to events; deliveries are signed (Writ-Signature) and retried with backoff until 2xx',
  auth: ['admin'],
  body: createWebhookSchema,
  responses: { 201: { description: 'Subscribed', schema: webhookSchema }, 422: { description: 'Bad URL, event or secret' } },
  async handle({ writ, body }) {
    return { status: 201, body: await writ.webhooks.create(body) };
  },
});

export const list = defineRoute({
  method: 'GET',
  path: '/api/v1/webhooks',
  summary: 'Subscriptions and delivery health',
  auth: ['admin'],
  responses: { 200: { description: 'Subscriptions', schema: z.object({ webhooks: z.array(webhookSchema), deliveries: webhookStatsSchema }) } },
  handle({ writ }) {
    return { status: 200, body: { webhooks: writ.webhooks.list(), deliveries: writ.webhooks.health } };
  },
});

export const remove = defineRoute({
  method: 'DELETE',
  path: '/api/v1/webhooks/:id',
  summary: 'Unsubscribe; queued deliveries to it are dropped',
  auth: ['admin'],
  responses: { 200: { description: 'Removed', schema: webhookSchema }, 404: { description: 'No such webhook' } },
  errors: ['not_found'],
  async handle({ writ, params }) {
    return { status: 200, body: await writ.webhooks.remove(params.id!) };
  },
});
