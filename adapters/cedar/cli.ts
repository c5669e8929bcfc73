#!/usr/bin/env -S node --import=tsx
/**
 * writ-cedar-attest: submit one Cedar decision to Writ as an attestation.
 *   npx tsx adapters/cedar/cli.ts --url http://127.0.0.1:8080 --key "$WRIT_ATTESTER_KEY" \
 *     --touchpoint tp-1 --agent-class assistant --legal-basis contract --sequence 7 \
 *     --request request.json --answer answer.json [--escalate] [--reason "…"]
 * request.json holds {principal, action, resource, context}; answer.json is cedar-wasm's answer or
 * AVP's IsAuthorized response. Prints Writ's answer (with the witness receipt).
 */
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { attestationFromCedar, submitAttestation, type LegalBasis } from './attest.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    key: { type: 'string' },
    touchpoint: { type: 'string' },
    'agent-class': { type: 'string' },
    'legal-basis': { type: 'string' },
    sequence: { type: 'string' },
    request: { type: 'string' },
    answer: { type: 'string' },
    id: { type: 'string' },
    escalate: { type: 'boolean' },
    reason: { type: 'string' },
  },
});
const missing = ['url', 'touchpoint', 'agent-class', 'legal-basis', 'sequence', 'request', 'answer'].filter((k) => !values[k as keyof typeof values]);
const key = values.key ?? process.env.WRIT_ATTESTER_KEY;
if (missing.length || !key) {
  process.stderr.write(`writ-cedar-attest: missing ${[...missing.map((m) => `--${m}`), ...(key ? [] : ['--key (or WRIT_ATTESTER_KEY)'])].join(', ')}\n`);
  process.exit(2);
}
const attestation = attestationFromCedar({
  request: JSON.parse(await fs.readFile(values.request!, 'utf8')),
  answer: JSON.parse(await fs.readFile(values.answer!, 'utf8')),
  touchpointId: values.touchpoint!,
  agentClass: values['agent-class']!,
  legalBasis: values['legal-basis'] as LegalBasis,
  sequenceNumber: Number(values.sequence),
  ...(values.id ? { attestationId: values.id } : {}),
  ...(values.escalate ? { escalate: true } : {}),
  ...(values.reason ? { reason: values.reason } : {}),
});
const { status, body } = await submitAttestation(values.url!, key, attestation);
process.stdout.write(`${JSON.stringify({ status, ...body }, null, 2)}\n`);
process.exit(status < 300 ? 0 : 1);
