import { z } from 'zod';
import { defineRoute } from '../route.ts';

export const jwks = defineRoute({
  method: 'GET',
  path: '/.well-known/jwks.json',
  summary: 'Receipt keys: the current one and those retired within 90 days',
  auth: 'anyone',
  responses: { 200: { description: 'JWK Set', schema: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }) } },
  handle({ writ }) {
    return { status: 200, body: writ.keys.jwks(), headers: { 'cache-control': 'public, max-age=300' } };
  },
});

export const discovery = defineRoute({
  method: 'GET',
  path: '/.well-known/openid-configuration',
  summary: 'Discovery document',
  auth: 'anyone',
  responses: { 200: { description: 'Discovery', schema: z.record(z.string(), z.unknown()) } },
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
        openapi_uri: `${base}/openapi.json`,
      },
    };
  },
});
