import { PassThrough } from 'node:stream';
import type { WritEvent } from '../../domain/events.ts';
import { defineRoute } from '../route.ts';

/**
 * The approval queue, live: one Server-Sent Event per change of any approval (created, voted on,
 * decided, in its delay, cancelled, expired), naming the approval and its status and nothing of
 * the request, so a reader refetches what it may see. A comment line every HEARTBEAT_MS keeps
 * proxies from closing a quiet stream. The stream is a sink of the permission events for as long
 * as it is open, and leaves them when the client goes away or the server shuts down.
 */
export const HEARTBEAT_MS = 15_000;
/** A reader this far behind is cut off; its EventSource reconnects and refetches. */
const MAX_BUFFERED = 1 << 20;

const frame = (event: WritEvent): string | undefined => {
  const approval = event.data.approval;
  if (!approval) return undefined;
  const data = { approval_id: approval.id, permission_id: approval.permission_id, status: approval.status, type: event.type, at: event.created_at };
  return `id: ${event.id}\nevent: approval\ndata: ${JSON.stringify(data)}\n\n`;
};

export default defineRoute({
  method: 'GET',
  path: '/api/v1/approvals/events',
  summary:
    'The approval queue, live (Server-Sent Events): an `approval` event {approval_id, permission_id, status, type, at} whenever an approval is created or changes; a comment line every 15 s',
  auth: ['approver', 'admin'],
  longPoll: true,
  responses: {
    200: { description: 'An event stream that stays open until the client leaves or the server shuts down; refetch the approval (or the queue) on each event, and on every (re)connection', type: 'text/event-stream' },
  },
  handle({ writ, signal }) {
    const stream = new PassThrough();
    let ended = false;
    const send = (text: string) => {
      if (ended) return;
      stream.write(text);
      if (stream.writableLength > MAX_BUFFERED) end();
    };
    const unsubscribe = writ.permissions.events.add({
      after(event) {
        const text = frame(event);
        if (text) send(text);
      },
    });
    const heartbeat = setInterval(() => send(': heartbeat\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    function end(): void {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe();
      signal.removeEventListener('abort', end);
      stream.end();
    }
    signal.addEventListener('abort', end);
    // Koa destroys the stream when the response closes: the client left.
    stream.once('close', end);
    if (signal.aborted) end();
    // Written at once, so the headers go out and the client knows it is connected.
    send(`retry: 3000\n: connected\n\n`);
    return {
      status: 200,
      type: 'text/event-stream',
      headers: { 'cache-control': 'no-cache, no-store', 'x-accel-buffering': 'no' },
      body: stream,
    };
  },
});
