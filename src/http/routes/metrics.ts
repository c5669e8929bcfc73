import { defineRoute } from '../route.ts';

/**
 * Prometheus metrics. Closed by default like /api/v1/status, which reports the same facts: the
 * admin key may always scrape, and WRIT_METRICS_TOKEN adds a credential that can do nothing but
 * scrape, so a Prometheus server never holds the admin key.
 */
export default defineRoute({
  method: 'GET',
  path: '/metrics',
  summary: 'Metrics in the Prometheus text format: decisions, HTTP latency per route, the log, policy evaluation, approvals, outboxes, storage, the process. Bearer WRIT_METRICS_TOKEN or the admin key',
  auth: ['admin'],
  accepts: (writ, authorization) => writ.metrics.acceptsScrape(authorization),
  responses: { 200: { description: 'Prometheus text exposition format 0.0.4', type: 'text/plain; version=0.0.4' } },
  async handle({ writ }) {
    return { status: 200, body: await writ.metrics.exposition(), type: writ.metrics.contentType };
  },
});
