import { parentPort } from 'node:worker_threads';
import { WritError } from '../errors.ts';
import { decodeUpload, mapEvents } from './opa-events.ts';
import type { FromIngestWorker, ToIngestWorker } from './opa-ingest.ts';

/**
 * Decodes OPA uploads off the event loop, one at a time: inflate, parse, check and map every
 * event. What goes back is only the compact attestation inputs, in chunks, so that the main
 * thread never spends long deserialising one message.
 */
const CHUNK = 500;
const port = parentPort!;
const send = (message: FromIngestWorker) => port.postMessage(message);

port.on('message', ({ id, body, gzip, mapping }: ToIngestWorker) => {
  try {
    const events = decodeUpload(Buffer.from(body), gzip);
    for (let from = 0; from < events.length; from += CHUNK) {
      send({ type: 'chunk', id, ...mapEvents(events.slice(from, from + CHUNK), mapping, from) });
    }
    send({ type: 'done', id });
  } catch (err) {
    if (err instanceof WritError) send({ type: 'refused', id, code: err.code, message: err.message, ...(err.detail ? { detail: err.detail } : {}) });
    else send({ type: 'failed', id, message: (err as Error).stack ?? String(err) });
  }
});

send({ type: 'ready' });
