import type { KeyObject } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { DECISION_THREAD_LIMITS, startWorker } from '../workers.ts';
import { signature, signingInput } from './jws.ts';
import type { SigningKey } from './keys.ts';

/**
 * Ed25519 signatures for compact JWS off the event loop. One signature costs ~45 µs of CPU here and
 * every allowed decision needs one, so under load they are signed on a thread of their own: the
 * signatures asked for in one turn of the event loop travel to it in one message, and come back
 * while the log's fsync is in flight. A lone signature with nothing in flight is signed inline,
 * where it costs less than the hop. Nothing is lost to a failing thread: what it held is signed
 * inline and the next batch starts a new thread.
 */
export type ToSigner = { type: 'sign'; jobs: Array<{ id: number; kid: string; input: string }> } | { type: 'key'; kid: string; key: KeyObject };
export type FromSigner = { type: 'signed'; results: Array<{ id: number; signature: string }> };

interface Job {
  id: number;
  key: SigningKey;
  input: string;
  resolve: (jws: string) => void;
  reject: (err: unknown) => void;
}

export class Signer {
  private worker: Worker | undefined;
  private sentKeys = new Set<string>();
  private queue: Job[] = [];
  private readonly inFlight = new Map<number, Job>();
  private nextId = 1;
  private scheduled = false;
  private closed = false;

  /** Signs `header.payload` (the compact JWS serialization); the header gets alg EdDSA and the key's kid. */
  sign(header: Record<string, unknown>, payload: unknown, key: SigningKey): Promise<string> {
    const input = signingInput(header, payload, key);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, key, input, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const jobs = this.queue;
    this.queue = [];
    if (this.closed || (jobs.length === 1 && this.inFlight.size === 0)) {
      for (const job of jobs) signInline(job);
      return;
    }
    let worker: Worker;
    try {
      worker = this.running();
      for (const job of jobs) {
        if (!this.sentKeys.has(job.key.kid)) {
          worker.postMessage({ type: 'key', kid: job.key.kid, key: job.key.privateKey } satisfies ToSigner);
          this.sentKeys.add(job.key.kid);
        }
        this.inFlight.set(job.id, job);
      }
      worker.postMessage({ type: 'sign', jobs: jobs.map(({ id, key, input }) => ({ id, kid: key.kid, input })) } satisfies ToSigner);
      // Held while it has work (a caller awaits it), let go when idle so it never holds an exit open.
      worker.ref();
    } catch {
      this.lost();
      for (const job of jobs) if (!this.inFlight.has(job.id)) signInline(job);
    }
  }

  private running(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker('signer-worker', import.meta.url, DECISION_THREAD_LIMITS);
    worker.on('message', (message: FromSigner) => {
      for (const { id, signature } of message.results) {
        const job = this.inFlight.get(id);
        if (!job) continue;
        this.inFlight.delete(id);
        job.resolve(`${job.input}.${signature}`);
      }
      if (this.inFlight.size === 0) worker.unref();
    });
    worker.on('error', () => this.lost(worker));
    worker.on('exit', () => this.lost(worker));
    this.worker = worker;
    this.sentKeys = new Set();
    return worker;
  }

  /** The thread is gone: whatever it held is signed here, and the next batch starts a new one. */
  private lost(worker = this.worker): void {
    if (worker !== this.worker || !worker) return;
    this.worker = undefined;
    worker.removeAllListeners();
    void worker.terminate();
    const held = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const job of held) signInline(job);
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (!worker) return;
    // What is in flight is answered first; nothing new is sent (it is signed inline).
    if (this.inFlight.size > 0) worker.ref();
    while (this.inFlight.size > 0 && this.worker === worker) await new Promise((r) => setImmediate(r));
    this.worker = undefined;
    worker.removeAllListeners();
    await worker.terminate();
  }
}

function signInline(job: Job): void {
  try {
    job.resolve(`${job.input}.${signature(job.input, job.key.privateKey)}`);
  } catch (err) {
    job.reject(err);
  }
}

