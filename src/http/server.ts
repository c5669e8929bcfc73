import http from 'node:http';
import crypto from 'node:crypto';
import Koa from 'koa';
import { WritError, toErrorBody } from '../errors.ts';
import { requireRole, type Principal } from '../domain/principals.ts';
import type { Writ } from '../writ.ts';
import { accessLog, type RequestFacts } from '../ops/access-log.ts';
import type { Logger } from '../ops/logger.ts';
import { corsHeadersOf } from './cors.ts';
import type { Route, RouteContext } from './route.ts';
import { authenticate } from './session-auth.ts';
import { ROUTES } from './routes/index.ts';
import { parseJson, parseWith } from './validate.ts';

/**
 * Koa, with one error shape on the wire and an X-Request-Id on every answer. Routing is a table
 * lookup: an unknown path is a JSON 404, a known path with another method a 405 with Allow.
 */
interface Compiled {
  route: Route;
  pattern: RegExp;
  names: string[];
}

const compile = (route: Route): Compiled => {
  const names: string[] = [];
  const source = route.path.replace(/[.]/g, '\\.').replace(/:(\w+)/g, (_, name: string) => (names.push(name), '([^/]+)'));
  return { route, pattern: new RegExp(`^${source}$`), names };
};

const NEVER = new AbortController().signal;

/** One answer as it went out (for the contract check of the test suite). */
export interface Exchange {
  method: string;
  path: string;
  status: number;
  /** The media type, without parameters (`application/json`); empty when there is no body. */
  type: string;
  body: unknown;
  /** The response headers, by lower-case name; when given, the contract check covers those it declares. */
  headers?: Record<string, string>;
}

export interface AppOptions {
  logger: Logger;
  observe?: (exchange: Exchange) => void;
}

export function createApp(writ: Writ, shutdown: AbortSignal, { logger, observe }: AppOptions): Koa {
  const app = new Koa();
  app.proxy = false;
  const table = ROUTES.map(compile);
  // The routes a path matches, in table order; remembered for the paths of routes without
  // parameters (a finite set, and the hot ones), worked out each time for any other path.
  const fixed = new Map<string, Compiled[]>(table.filter((c) => c.names.length === 0).map((c) => [c.route.path, []]));
  for (const [path, list] of fixed) list.push(...table.filter((c) => c.pattern.test(path)));
  const candidatesOf = (path: string) => fixed.get(path) ?? table.filter((c) => c.pattern.test(path));
  // Koa reports a streamed answer that did not finish; a client leaving an event stream is how
  // that stream ends, not a failure. Anything else is reported as every failure is.
  app.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ERR_STREAM_PREMATURE_CLOSE') writ.report(`response failed: ${err.stack ?? String(err)}`, 'error');
  });

  // Outermost, so it sees every answer as it went out, errors included.
  app.use(accessLog(logger, writ.metrics));
  app.use(async (ctx, next) => {
    const requestId = crypto.randomUUID();
    ctx.set('X-Request-Id', requestId);
    if (shutdown.aborted) ctx.set('Connection', 'close');
    try {
      await next();
    } catch (err) {
      const { status, body } = toErrorBody(err);
      // Push-back (overloaded, storage refusing writes) is reported once where it starts, not per request.
      const pushBack = err instanceof WritError && (err.code === 'overloaded' || err.code === 'storage_unavailable');
      if (status >= 500 && !pushBack) writ.report(`request ${requestId} ${ctx.method} ${ctx.path} failed: ${(err as Error).stack ?? String(err)}`, 'error');
      if (pushBack) ctx.set('Retry-After', '1');
      if (err instanceof WritError && err.code === 'method_not_allowed' && Array.isArray(err.detail?.allow)) ctx.set('Allow', err.detail.allow.join(', '));
      ctx.status = status;
      ctx.body = body;
    }
    // An answer sent while the body is still arriving (a 401, a 413) ends the connection: Node
    // would otherwise read and discard the rest, however long it takes, before the next request.
    if (!ctx.req.complete) ctx.set('Connection', 'close');
    // Watching never changes an answer: whatever the observer does, the response stands.
    if (observe) observeSafely(observe, ctx);
  });

  app.use(async (ctx) => {
    const candidates = candidatesOf(ctx.path);
    if (candidates.length === 0) throw new WritError('route_not_found', `no route ${ctx.path}`, { path: ctx.path });
    const facts = ctx.state as RequestFacts;
    facts.route = candidates[0]!.route.path;
    const method = ctx.method === 'HEAD' ? 'GET' : ctx.method;
    const hit = candidates.find((c) => c.route.method === method);
    if (!hit) {
      const methods = new Set(candidates.map((c) => c.route.method));
      // HEAD is answered wherever GET is.
      const allow = [...methods, ...(methods.has('GET') ? ['HEAD'] : [])].sort();
      throw new WritError('method_not_allowed', `${ctx.method} is not allowed on ${ctx.path}; use ${allow.join(' or ')}`, { allow });
    }
    const { route } = hit;
    facts.route = route.path;
    // Set before anything can fail, so a page on another origin can read the errors too.
    ctx.set({ ...corsHeadersOf(route) });
    const match = hit.pattern.exec(ctx.path)!;
    const params: Record<string, string> = {};
    for (const [i, name] of hit.names.entries()) {
      try {
        params[name] = decodeURIComponent(match[i + 1] ?? '');
      } catch {
        throw new WritError('invalid_request', `the ${name} in the path is not valid percent-encoding`, { field: name });
      }
    }

    // Authenticate before reading a body, so strangers cannot make us buffer one.
    let principal;
    let session: RouteContext['session'];
    if (Array.isArray(route.auth) && !route.accepts?.(writ, ctx.get('authorization') || undefined)) {
      ({ principal, session } = await authenticate(writ, ctx, route.auth));
      facts.principal = principal;
      requireRole(principal, route.auth);
    }
    // The cascade reads the body itself, in its validate_body step, after it has authenticated.
    let bodyRead: Promise<unknown> | undefined;
    const readBody = () => (bodyRead ??= route.method === 'POST' ? readJson(ctx.req, writ.config.maxBodyBytes) : Promise.resolve(undefined));
    let body: unknown;
    if (route.auth !== 'cascade' && !route.ownBody) {
      const rawBody = await readBody();
      if (route.body) body = parseWith(route.body, rawBody ?? {}, 'body');
      else if (rawBody !== undefined) throw new WritError('invalid_request', `${route.method} ${route.path} takes no body`, { field: 'body' });
    }
    const query = route.query ? parseWith(route.query, { ...ctx.query }, 'query') : {};
    if (!route.query && Object.keys(ctx.query).length > 0) {
      throw new WritError('invalid_request', `unknown query parameter: ${Object.keys(ctx.query)[0]}`, { field: Object.keys(ctx.query)[0] });
    }

    // Only long polls need to hear about a departed client or a shutdown, and only once they wait:
    // the signal is made when a handler first asks for it (most requests never do).
    let aborted: AbortController | undefined;
    const abort = () => aborted?.abort();
    const signal = (): AbortSignal => {
      if (!route.longPoll) return NEVER;
      if (!aborted) {
        aborted = new AbortController();
        // The response closing before it was sent means the client went away (the request's own
        // 'close' only says its body has been read).
        ctx.res.once('close', abort);
        shutdown.addEventListener('abort', abort);
        if (ctx.res.closed || shutdown.aborted) abort();
      }
      return aborted.signal;
    };
    try {
      const rawRequest = (limit: number) => readRaw(ctx.req, limit);
      const identified = (who: Principal) => {
        facts.principal = who;
      };
      const context: RouteContext = {
        writ,
        principal,
        identified,
        body,
        readBody,
        rawRequest,
        query,
        params,
        headers: ctx.headers,
        session,
        get signal() {
          return signal();
        },
      };
      const result = await route.handle(context);
      ctx.status = result.status;
      if (result.headers) ctx.set(result.headers);
      if (result.type) ctx.type = result.type;
      ctx.body = result.body;
    } finally {
      if (aborted) {
        const release = () => {
          ctx.res.off('close', abort);
          shutdown.removeEventListener('abort', abort);
        };
        // A streamed answer (an event stream) goes on after the handler has returned: its signal
        // must still hear of a departure or a shutdown until the response has closed.
        if (isStream(ctx.body) && !ctx.res.destroyed && !ctx.res.writableFinished) ctx.res.once('close', release);
        else release();
      }
    }
  });
  return app;
}

const isStream = (body: unknown): boolean => body !== null && typeof body === 'object' && typeof (body as { pipe?: unknown }).pipe === 'function';

function observeSafely(observe: (exchange: Exchange) => void, ctx: Koa.Context): void {
  try {
    const body = ctx.body;
    const streamed = isStream(body);
    const wire = streamed || typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.parse(JSON.stringify(body ?? null));
    const headers = Object.fromEntries(Object.entries(ctx.response.headers).map(([name, value]) => [name.toLowerCase(), String(value)]));
    observe({ method: ctx.method, path: ctx.path, status: ctx.status, type: body === undefined || body === null ? '' : ctx.response.type, body: wire, headers });
  } catch {
    // an observer's failure is its own
  }
}

/** Reads the body's bytes within the size limit. */
async function readRaw(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) throw new WritError('payload_too_large', `request body is larger than ${limit} bytes`, { limit });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new WritError('payload_too_large', `request body is larger than ${limit} bytes`, { limit });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads a JSON body within the size limit; an empty body reads as undefined. */
async function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const body = await readRaw(req, limit);
  if (body.length === 0) return undefined;
  const type = String(req.headers['content-type'] ?? 'application/json');
  if (!/^application\/([\w.+-]+\+)?json\b/i.test(type)) {
    throw new WritError('unsupported_media_type', `send JSON with Content-Type: application/json (got ${type.slice(0, 100)})`, { field: 'content-type' });
  }
  return parseJson(body);
}
