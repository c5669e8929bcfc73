import { parentPort } from 'node:worker_threads';
import { checkChunk } from './verify-chunk.ts';
import type { FromVerifier, ToVerifier } from './verify.ts';

/** A verification thread: checks the chunks it is sent, in order, and hands the leaf hashes back. */
const port = parentPort!;
port.on('message', ({ id, work }: ToVerifier) => {
  const checked = checkChunk(work);
  port.postMessage({ id, checked } satisfies FromVerifier, [checked.leaves.buffer as ArrayBuffer]);
});
