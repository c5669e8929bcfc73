import { z } from 'zod';
import { LEGAL_BASES, OVERSIGHT_DECISIONS } from '../../domain/oversight.ts';
import { defineRoute } from '../route.ts';
import { REVOCATION_REASONS, REVOCATION_SCOPES, jwkSchema } from '../schemas.ts';

export const jwks = defineRoute({
  method: 'GET',
  path: '/.well-known/jwks.json',
  summary: 'Receipt keys: the current one and those retired within 90 days',
  auth: 'anyone',
  responses: { 200: { description: 'JWK Set', schema: z.object({ keys: z.array(jwkSchema) }) } },
  handle({ writ }) {
    return { status: 200, body: writ.keys.jwks(), headers: { 'cache-control': 'public, max-age=300' } };
  },
});

const url = z.string().describe('Absolute URL');
const discoverySchema = z.object({
  issuer: url,
  jwks_uri: url,
  permissions_endpoint: url,
  token_consume_endpoint: url,
  token_revocation_endpoint: url,
  log_origin: z.string(),
  log_verifier_key: z.string().describe('C2SP signed-note verifier key of the log'),
  log_checkpoint_endpoint: url,
  receipt_signing_alg_values_supported: z.array(z.string()),
  oap_protocol_versions_supported: z.array(z.string()),
  oversight_attestation_endpoint: url,
  oversight_attestation_heartbeat_endpoint: url,
  oversight_escalation_endpoint: url,
  oversight_revocation_endpoint: url,
  oversight_attestation_decisions_supported: z.array(z.enum(OVERSIGHT_DECISIONS)),
  oversight_attestation_legal_bases_supported: z.array(z.enum(LEGAL_BASES)),
  oversight_revocation_scopes_supported: z.array(z.enum(REVOCATION_SCOPES)),
  oversight_revocation_reasons_supported: z.array(z.enum(REVOCATION_REASONS)),
  opa_decision_logs_endpoint: url,
  openapi_uri: url,
});

export const discovery = defineRoute({
  method: 'GET',
  path: '/.well-known/openid-configuration',
  summary: 'Discovery document',
  auth: 'anyone',
  responses: { 200: { description: 'Discovery', schema: discoverySchema } },
  handle({ writ }) {
    const base = writ.baseUrl();
    return {
      status: 200,
      body: {
        issuer: base,
        jwks_uri: `${base}/.well-known/jwks.json`,
        permissions_endpoint: `${base}/api/v1/permissions`,
        token_consume_endpoint: `${base}/api/v1/tokens/consume`,
        token_revocation_endpoint: `${base}/api/v1/tokens/revoke`,
        log_origin: writ.log.origin,
        log_verifier_key: writ.logVerifierKey,
        log_checkpoint_endpoint: `${base}/api/v1/log/checkpoint`,
        receipt_signing_alg_values_supported: ['EdDSA'],
        oap_protocol_versions_supported: ['1.0'],
        oversight_attestation_endpoint: `${base}/api/v1/oap/attestations`,
        oversight_attestation_heartbeat_endpoint: `${base}/api/v1/oap/attestations/heartbeat`,
        oversight_escalation_endpoint: `${base}/api/v1/oap/escalations`,
        oversight_revocation_endpoint: `${base}/api/v1/oap/revocations`,
        oversight_attestation_decisions_supported: [...OVERSIGHT_DECISIONS],
        oversight_attestation_legal_bases_supported: [...LEGAL_BASES],
        oversight_revocation_scopes_supported: [...REVOCATION_SCOPES],
        oversight_revocation_reasons_supported: [...REVOCATION_REASONS],
        opa_decision_logs_endpoint: `${base}/api/v1/adapters/opa/logs`,
        openapi_uri: `${base}/openapi.json`,
      },
    };
  },
});
