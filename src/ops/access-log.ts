import type Koa from 'koa';
import type { Principal } from '../domain/principals.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

/**
 * One access-log line and one latency observation per request, written once the answer has gone
 * out (or the client has gone away), as a wrapper around everything else the server does. A line
 * says who asked for what and how it went: the request id, the method, the route's path template
 * (never the raw path or its query string, which can carry secrets), the status, the time, and
 * the principal when one was authenticated. Headers, keys, tokens and bodies never appear.
 */
export interface RequestFacts {
  /** The matched route's path template, e.g. `/api/v1/permissions/:id`. */
  route?: string;
  principal?: Principal;
}

/** The route label of a request no route matched: one series for all of them, whatever the path. */
const UNMATCHED = 'unmatched';
/** The status of a request whose client left before any answer was sent (nginx's "client closed request"). */
const CLIENT_LEFT = 499;

export function accessLog(logger: Logger, metrics: Metrics): Koa.Middleware {
  return async (ctx, next) => {
    const started = performance.now();
    ctx.res.once('close', () => {
      const ms = performance.now() - started;
      const { route, principal } = ctx.state as RequestFacts;
      const status = ctx.res.headersSent ? ctx.res.statusCode : CLIENT_LEFT;
      metrics.answered({ route: route ?? UNMATCHED, method: ctx.method, status, seconds: ms / 1000 });
      logger.info(
        {
          request_id: ctx.res.getHeader('x-request-id'),
          method: ctx.method,
          route: route ?? null,
          status,
          ms: Math.round(ms * 100) / 100,
          ...(principal ? { principal_id: principal.id, role: principal.role } : {}),
          // The client left before the whole answer was sent (a long poll it gave up on, a backup cut short).
          ...(ctx.res.writableFinished ? {} : { aborted: true }),
        },
        'request',
      );
    });
    await next();
  };
}
