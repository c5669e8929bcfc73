import type { KeyObject } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { signature } from './jws.ts';
import type { FromSigner, ToSigner } from './signer.ts';

/** The signing thread: holds the receipt keys it was sent and signs what it is given, in order. */
const keys = new Map<string, KeyObject>();
const port = parentPort!;
port.on('message', (message: ToSigner) => {
  if (message.type === 'key') {
    keys.set(message.kid, message.key);
    return;
  }
  // An unknown kid throws: the thread dies and the signer signs its jobs inline instead.
  const results = message.jobs.map(({ id, kid, input }) => ({ id, signature: signature(input, keys.get(kid)!) }));
  port.postMessage({ type: 'signed', results } satisfies FromSigner);
});
