import { z } from 'zod';
import { defineRoute, type Route } from './route.ts';

/**
 * CORS, for the documents anyone may read (keys, discovery, the log's checkpoints and proofs,
 * health, this API's description): a counterparty's page on another origin verifies a receipt
 * with the JWKS, or a proof against a checkpoint, straight from the browser. These answers are the
 * same for everyone, so any origin may read them (`*`, which browsers never combine with
 * credentials). Routes that take a key say nothing, and their paths answer no preflight, so no
 * page can call them from another origin.
 *
 * A plain `fetch` of a document (GET or HEAD, only safelisted headers such as `Accept`, which is
 * all writ-verify sends) is a simple request: the browser sends it as it is and only checks
 * `Access-Control-Allow-Origin` on the answer. A page that adds a header of its own
 * (`Cache-Control`, `If-None-Match`) is preflighted first, so each document's path answers
 * OPTIONS too.
 */
const ANY_ORIGIN = { 'Access-Control-Allow-Origin': '*' } as const;
const PREFLIGHT = {
  ...ANY_ORIGIN,
  'Access-Control-Allow-Methods': 'GET, HEAD',
  // Any header but Authorization (which `*` does not cover): these documents need no key.
  'Access-Control-Allow-Headers': '*',
  'Access-Control-Max-Age': '86400',
} as const;

/** A document anyone may read: a GET that takes no key. (The Telegram webhook takes no key either, but it is a POST with a secret of its own.) */
const isPublicDocument = (route: Route): boolean => route.auth === 'anyone' && route.method === 'GET' && route.crossOrigin !== false;

/** The CORS headers a route answers with, on every answer it gives, errors included. */
export function corsHeadersOf(route: Route): Readonly<Record<string, string>> {
  if (route.auth !== 'anyone' || route.crossOrigin === false) return {};
  if (route.method === 'GET') return ANY_ORIGIN;
  if (route.method === 'OPTIONS') return PREFLIGHT;
  return {};
}

/** A preflight asks about the real request, whatever its query: none is checked here. */
const anyQuery = z.looseObject({});

/** The OPTIONS route of each public document's path, answering the browser's preflight. */
export function preflightsFor(routes: readonly Route[]): Route[] {
  return routes.filter(isPublicDocument).map((document) =>
    defineRoute({
      method: 'OPTIONS',
      path: document.path,
      summary: `CORS preflight for GET ${document.path}: any origin may read it, with any request header but Authorization`,
      auth: 'anyone',
      query: anyQuery,
      responses: { 204: { description: 'The request may be sent' } },
      handle: () => ({ status: 204, body: undefined }),
    }),
  );
}
