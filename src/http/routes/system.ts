import { z } from 'zod';
import { defineRoute } from '../route.ts';
import { jsonObjectOut, policyStatusSchema, storageHealthSchema, telegramHealthSchema, webhookStatsSchema } from '../schemas.ts';

export const healthz = defineRoute({
  method: 'GET',
  path: '/healthz',
  summary: 'Health: 200 while Writ can decide and record; 503 while storage refuses writes (after a failed write, until re-verified) or is damaged',
  auth: 'anyone',
  responses: {
    200: { description: 'Healthy', schema: z.object({ status: z.literal('ok'), log_size: z.number() }) },
    503: { description: 'Storage refuses writes; `reason` says why', schema: z.object({ status: z.enum(['unavailable', 'damaged']), reason: z.string(), log_size: z.number() }) },
  },
  handle({ writ }) {
    const storage = writ.store.health;
    if (storage.state === 'ok' && !writ.log.fault) return { status: 200, body: { status: 'ok', log_size: writ.log.size } };
    // Anyone may ask, so the answer is in fixed words; the details (paths, errors) are in /api/v1/status.
    const reason =
      storage.state === 'damaged'
        ? 'storage is damaged; writes are refused until an operator restores it'
        : 'a write failed; writes are refused until the database is reopened and re-verified';
    return { status: 503, headers: { 'retry-after': '1' }, body: { status: storage.state === 'damaged' ? 'damaged' : 'unavailable', reason, log_size: writ.log.size } };
  },
});

/** Why Writ is not ready, in fixed words (anyone may ask; the details are in /api/v1/status). */
const NOT_READY = ['starting', 'stopping', 'storage_unavailable', 'storage_damaged', 'log_refusing_appends', 'policy_worker_not_ready'] as const;

export const readyz = defineRoute({
  method: 'GET',
  path: '/readyz',
  summary:
    'Readiness: 200 once start-up has finished and Writ can serve requests (storage accepts writes, the log appends, the policy worker holds the active set); 503 with every reason it cannot, while starting, stopping or degraded',
  auth: 'anyone',
  responses: {
    200: { description: 'Ready', schema: z.object({ status: z.literal('ready') }) },
    503: { description: 'Not ready; `reasons` says why', schema: z.object({ status: z.literal('not_ready'), reasons: z.array(z.enum(NOT_READY)).min(1) }) },
  },
  handle({ writ }) {
    const reasons: Array<(typeof NOT_READY)[number]> = [];
    if (writ.phase !== 'serving') reasons.push(writ.phase);
    const storage = writ.store.health.state;
    if (storage === 'damaged') reasons.push('storage_damaged');
    else if (storage !== 'ok') reasons.push('storage_unavailable');
    if (writ.log.fault) reasons.push('log_refusing_appends');
    if (!writ.policies.state.worker.ready) reasons.push('policy_worker_not_ready');
    if (reasons.length === 0) return { status: 200, body: { status: 'ready' } };
    return { status: 503, headers: { 'retry-after': '1' }, body: { status: 'not_ready', reasons } };
  },
});

export const policies = defineRoute({
  method: 'GET',
  path: '/api/v1/policies',
  summary: 'The active policy set (hash, files), what the policy worker holds, and the last refused change, if any',
  auth: ['admin'],
  responses: { 200: { description: 'Status', schema: policyStatusSchema } },
  handle({ writ }) {
    return { status: 200, body: writ.policies.state };
  },
});

export const rotateKeys = defineRoute({
  method: 'POST',
  path: '/api/v1/keys/rotate',
  summary: 'Rotate the receipt signing key; the old key stays in the JWKS for 90 days',
  auth: ['admin'],
  responses: { 200: { description: 'Rotated', schema: z.object({ retired: z.string(), current: z.string() }) } },
  async handle({ writ }) {
    return { status: 200, body: await writ.rotateKeys() };
  },
});

export const status = defineRoute({
  method: 'GET',
  path: '/api/v1/status',
  summary: 'Health of the parts: storage, log, policies, Telegram bot, webhook deliveries, and the nodes serving the store with their policy sets',
  auth: ['admin'],
  responses: {
    200: {
      description: 'Status',
      schema: z.object({
        storage: storageHealthSchema,
        log: z.object({
          origin: z.string(),
          size: z.number(),
          checkpoint_size: z.number(),
          /** Whether this node signs the checkpoints of the interval (of nodes sharing a database, one does). */
          signs_checkpoints: z.boolean(),
          fault: z.string().optional(),
        }),
        policies: policyStatusSchema,
        telegram: telegramHealthSchema,
        webhooks: webhookStatsSchema,
        node: z.string(),
        nodes: z.array(
          z.object({ id: z.string(), started_at: z.string(), seen_at: z.string(), policy_hash: z.string(), url: z.string() }),
        ),
        warnings: z.array(z.string()),
      }),
    },
  },
  async handle({ writ }) {
    const checkpoint = await writ.log.newest();
    // The log as stored (other nodes may have added to it), or as this node knows it while storage cannot be read.
    const size = await writ.log.storedSize().catch(() => writ.log.size);
    const { nodes, policy_sets_differ } = await writ.nodes.list();
    const warnings = policy_sets_differ
      ? [`the nodes serving this database have different policy sets loaded (${[...new Set(nodes.map((n) => n.policy_hash.slice(0, 12)))].join(', ')}): they decide alike only once every node has the same policies directory`]
      : [];
    return {
      status: 200,
      body: {
        storage: writ.store.health,
        log: { origin: writ.log.origin, size, checkpoint_size: checkpoint?.size ?? 0, signs_checkpoints: writ.checkpointLease?.held ?? true, ...(writ.log.fault ? { fault: writ.log.fault } : {}) },
        policies: writ.policies.state,
        telegram: writ.telegram?.health ?? { enabled: false },
        webhooks: writ.webhooks.health,
        node: writ.nodes.id,
        nodes,
        warnings,
      },
    };
  },
});

/** Built once per base URL: the routes and their schemas do not change while the server runs. */
const documents = new Map<string, Record<string, unknown>>();

export const openapi = defineRoute({
  method: 'GET',
  path: '/openapi.json',
  summary: 'This API as an OpenAPI 3.1 document, generated from the zod schemas that validate requests',
  auth: 'anyone',
  responses: {
    200: {
      description: 'OpenAPI 3.1',
      schema: z.object({
        openapi: z.literal('3.1.0'),
        info: z.object({ title: z.string(), version: z.string(), description: z.string() }),
        servers: z.array(z.object({ url: z.string() })),
        components: z.object({ schemas: jsonObjectOut, securitySchemes: jsonObjectOut }),
        security: z.array(jsonObjectOut),
        paths: jsonObjectOut,
      }),
    },
  },
  async handle({ writ }) {
    const base = writ.baseUrl();
    let document = documents.get(base);
    if (!document) {
      // Imported here: the document is built from the route table, which lists this route.
      const [{ openApiDocument }, { ROUTES }] = await Promise.all([import('../openapi.ts'), import('./index.ts')]);
      document = openApiDocument(ROUTES, base);
      documents.set(base, document);
    }
    return { status: 200, body: document };
  },
});
