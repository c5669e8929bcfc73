import type { Worker } from 'node:worker_threads';
import { startWorker } from '../workers.ts';
import { WritError, type ReasonCode } from '../errors.ts';
import type { DecisionInput, OpaMapping, Rejected } from './opa-events.ts';
import type { Report } from '../report.ts';

/**
 * OPA uploads decoded on a worker thread: inflating, parsing and checking up to 32 MiB of events
 * takes a second or more of CPU, which on the event loop would hold up every other request. The
 * worker is started by the first upload and stopped after a minute without one; it holds the
 * process open only while it has work. It holds no state: the mapping settings travel with each
 * upload.
 *
 * Failure semantics: an upload the worker refuses keeps its reason code (400, 413); an exception
 * in the worker is a 500. A worker that dies, or that goes silent for STALL_MS while it has work
 * (uploads are decoded one after another, so one stuck upload would hold up all the others), is
 * terminated and fails every upload it held with 503 `overloaded` and Retry-After: nothing of
 * them was recorded yet (sequencing starts only once an upload is decoded in full), OPA re-sends
 * on a non-2xx, and the next upload starts a fresh worker.
 *
 * The worker's heap is not capped with `resourceLimits`: V8 may abort the whole process rather
 * than the worker when the cap is hit during a big JSON.parse (nodejs/node#47224), and an upload
 * is already capped at 32 MiB inflated and decoded one at a time.
 */
export type ToIngestWorker = { id: number; body: ArrayBuffer; gzip: boolean; mapping: OpaMapping };
export type FromIngestWorker =
  | { type: 'ready' }
  | { type: 'chunk'; id: number; inputs: DecisionInput[]; rejected: Rejected[] }
  | { type: 'done'; id: number }
  | { type: 'refused'; id: number; code: ReasonCode; message: string; detail?: Record<string, unknown> }
  | { type: 'failed'; id: number; message: string };

export interface Decoded {
  inputs: DecisionInput[];
  rejected: Rejected[];
}

interface Job {
  decoded: Decoded;
  resolve: (decoded: Decoded) => void;
  reject: (err: Error) => void;
  report: Report;
}

/** The worst upload within the caps (32 MiB of tiny numbers) is silent for a few seconds before its first chunk. */
const STALL_MS = 30_000;
const IDLE_MS = 60_000;

export class OpaIngest {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;
  private idle: NodeJS.Timeout | undefined;
  /** Armed while the booted worker has work; every message from it re-arms it. */
  private watchdog: NodeJS.Timeout | undefined;
  private ready = false;

  constructor(private readonly options: { stallMs?: number } = {}) {}

  /** The upload's events as attestation inputs, in order. `body` is handed over, not copied: do not read it afterwards. */
  decode(body: Buffer, upload: { gzip: boolean; mapping: OpaMapping; report: Report }): Promise<Decoded> {
    const worker = this.running();
    // Held open while it has work, and only then (see receive).
    worker.ref();
    const id = this.nextId++;
    const transferred = ownMemory(body);
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { decoded: { inputs: [], rejected: [] }, resolve, reject, report: upload.report });
      worker.postMessage({ id, body: transferred, gzip: upload.gzip, mapping: upload.mapping } satisfies ToIngestWorker, [transferred]);
      // A new upload does not extend the deadline of the one being decoded.
      if (!this.watchdog) this.watch(worker);
    });
  }

  private running(): Worker {
    clearTimeout(this.idle);
    this.idle = undefined;
    if (this.worker) return this.worker;
    const worker = startWorker('opa-ingest-worker', import.meta.url);
    this.ready = false;
    worker.on('message', (message: FromIngestWorker) => this.receive(worker, message));
    worker.on('error', (err) => this.lost(worker, err.message));
    worker.on('exit', (code) => this.lost(worker, `it exited with code ${code}`));
    this.worker = worker;
    return worker;
  }

  private receive(worker: Worker, message: FromIngestWorker): void {
    if (worker !== this.worker) return;
    if (message.type === 'ready') this.ready = true;
    else this.deliver(message);
    this.watch(worker);
    if (this.jobs.size === 0) {
      worker.unref();
      this.idle = setTimeout(() => this.stop(), IDLE_MS).unref();
    }
  }

  private deliver(message: Exclude<FromIngestWorker, { type: 'ready' }>): void {
    const job = this.jobs.get(message.id);
    if (!job) return;
    if (message.type === 'chunk') {
      for (const input of message.inputs) job.decoded.inputs.push(input);
      for (const rejected of message.rejected) job.decoded.rejected.push(rejected);
      return;
    }
    this.jobs.delete(message.id);
    if (message.type === 'done') job.resolve(job.decoded);
    else if (message.type === 'refused') job.reject(new WritError(message.code, message.message, message.detail));
    else job.reject(new Error(`decoding an OPA upload failed in the ingest worker: ${message.message}`));
  }

  /** (Re)arms the watchdog while there is work. Booting (tsx compiles the sources in tests) is not decoding, so it starts once the worker is up. */
  private watch(worker: Worker): void {
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
    if (!this.ready || this.jobs.size === 0) return;
    const ms = this.options.stallMs ?? STALL_MS;
    this.watchdog = setTimeout(() => this.lost(worker, `it made no progress for ${ms} ms`), ms).unref();
  }

  private lost(worker: Worker, reason: string): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
    void worker.terminate();
    for (const job of this.jobs.values()) {
      job.report(`the OPA ingest worker stopped (${reason}); the upload it was decoding failed with 503 and nothing of it was recorded`, 'error');
      job.reject(new WritError('overloaded', 'the upload could not be decoded right now; nothing was recorded, retry shortly', { retry_after: 1 }));
    }
    this.jobs.clear();
  }

  private stop(): void {
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
  }
}

/**
 * Memory that can be transferred without a copy. A small Buffer is a view into Node's shared
 * pool; transferring that would detach every other buffer in it, so it is copied instead.
 */
function ownMemory(body: Buffer): ArrayBuffer {
  if (body.buffer instanceof ArrayBuffer && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength) return body.buffer;
  return new Uint8Array(body).buffer;
}

/** The one decoder of this process, shared by every server in it. */
export const opaIngest = new OpaIngest();
