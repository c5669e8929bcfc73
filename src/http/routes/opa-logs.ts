import { z } from 'zod';
import { opaIngest } from '../../oversight/opa-ingest.ts';
import { defineRoute } from '../route.ts';
import { attesterOf } from './oversight.ts';

/**
 * OPA's decision_logs plugin, spoken as it is: a JSON array of decision events, gzip or plain.
 * Each event becomes an attestation: `result.escalate` → escalate, `result.allow` (or a bare
 * `true`) → allow, anything else → deny (src/oversight/opa-events.ts). OPA re-sends an upload
 * until it gets a 2xx, so the answer comes only once every entry is durable, and decisions seen
 * before are dropped. An upload is decoded on the ingest worker and sequenced in slices, so a big
 * one does not hold up the server's other requests.
 */
export default defineRoute({
  method: 'POST',
  path: '/api/v1/adapters/opa/logs',
  summary: "OPA decision-log upload (the decision_logs plugin's own format, gzip or plain JSON)",
  auth: ['attester'],
  ownBody: true,
  requestDoc: {
    description: 'A JSON array of up to 10,000 OPA decision-log events ({decision_id, path, input, result, timestamp, labels}), plain or with Content-Encoding: gzip (32 MiB inflated at most)',
    content: {
      'application/json': z.array(
        z.looseObject({ decision_id: z.string(), path: z.string().optional(), input: z.unknown().optional(), result: z.unknown().optional(), timestamp: z.string().optional() }),
      ),
    },
  },
  responses: {
    200: {
      description: 'Every new decision is durable; duplicates dropped; events that cannot be attestations are rejected one by one (and logged)',
      schema: z.object({ recorded: z.number(), duplicates: z.number(), rejected: z.array(z.object({ decision_id: z.string(), reason: z.string() })) }),
    },
    413: { description: 'Upload too large' },
  },
  async handle({ writ, principal, headers, rawRequest }) {
    const attester = await attesterOf(writ, principal);
    const body = await rawRequest(writ.config.maxBodyBytes);
    const { inputs, rejected } = await opaIngest.decode(body, {
      gzip: String(headers['content-encoding'] ?? '').toLowerCase() === 'gzip',
      mapping: { agentClassPath: writ.config.opaAgentClassPath, defaultLegalBasis: writ.config.opaDefaultLegalBasis },
      report: writ.report,
    });
    if (rejected.length) {
      await writ.log.append('attestation.rejected', { touchpoint_id: attester.touchpoint_id, source: 'opa', rejected: rejected.slice(0, 100), count: rejected.length });
    }
    const result = await writ.oversight.ingestDecisions(attester, inputs);
    return { status: 200, body: { ...result, rejected } };
  },
});
