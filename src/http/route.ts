import type { z } from 'zod';
import type { Principal, Role } from '../domain/principals.ts';
import type { ReasonCode } from '../errors.ts';
import type { Writ } from '../writ.ts';

/**
 * One route per file: its method, path, who may call it, its schemas (used for validation and for
 * the OpenAPI document) and its handler.
 */
export interface RouteContext<Body = unknown, Query = unknown> {
  writ: Writ;
  principal: Principal | undefined;
  /** For handlers that authenticate themselves (the cascade): who asked, for the access log. */
  identified: (principal: Principal) => void;
  body: Body;
  /** The parsed JSON body (read once, on first call); routes that validate it get `body` instead. */
  readBody: () => Promise<unknown>;
  /** The raw body bytes, up to `limit` (413 beyond), for routes that decode it themselves. */
  rawRequest: (limit: number) => Promise<Buffer>;
  query: Query;
  params: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  /** Aborts when the client goes away or the server shuts down. */
  signal: AbortSignal;
  /** When the request came with the dashboard's session cookie rather than a key. */
  session?: { id: string; csrfToken: string } | undefined;
}

export interface RouteResult {
  status: number;
  body: unknown;
  type?: string;
  headers?: Record<string, string>;
}

export interface Route<B extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType> {
  method: 'GET' | 'POST' | 'DELETE' | 'OPTIONS';
  path: string;
  summary: string;
  /** Roles allowed; 'anyone' for public documents; 'cascade' when the handler authenticates as a step. */
  auth: readonly Role[] | 'anyone' | 'cascade';
  /** Public documents answer CORS so pages on other origins can read them; false for those that are for this origin only (the dashboard). */
  crossOrigin?: false;
  /** A credential this route takes besides its roles' keys (the metrics scrape token); it stands for no principal. */
  accepts?: (writ: Writ, authorization: string | undefined) => boolean;
  body?: B;
  query?: Q;
  /** The handler reads the body itself (`readBody`): bodies whose shape is someone else's. */
  ownBody?: boolean;
  /** The handler may wait (long poll); it gets a signal that aborts on disconnect or shutdown. */
  longPoll?: boolean;
  /** For routes that read their own body: what it is, per media type (`'binary'` for bytes), for the document. */
  requestDoc?: { description: string; content: Record<string, z.ZodType | 'binary'> };
  /**
   * What the route answers when it works, per status: a JSON schema, or a non-JSON media type
   * (`type`, with `also` for a second representation of the same answer). Error answers are not
   * listed here: they follow from `errors` and the route's kind (see contract.ts).
   */
  responses: Record<number, { description: string; schema?: z.ZodType; type?: string; also?: Record<string, z.ZodType | 'text'>; headers?: Record<string, { description: string }> }>;
  /** Reason codes the handler itself can answer with, besides those every route of its kind can. */
  errors?: readonly ReasonCode[];
  handle(ctx: RouteContext<z.infer<B>, z.infer<Q>>): Promise<RouteResult> | RouteResult;
}

export const defineRoute = <B extends z.ZodType, Q extends z.ZodType>(route: Route<B, Q>): Route => route as unknown as Route;
