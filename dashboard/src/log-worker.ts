/**
 * Verify chain, off the page's thread: downloads the log as stored (GET /api/v1/log/stored, page by
 * page, with the session cookie) and re-derives it as `writ log verify` does (src/log/verify.ts
 * verifyLog): each entry present under its index, canonical, chained to the one before, hashing to
 * its stored leaf; every tree node it completes equal to the stored one; every checkpoint signed by
 * the log's key, with a root equal to the re-derived tree at its size. It stops at the first bad
 * index, because every later hash depends on it.
 *
 * In: { logKey: string } (the discovery document's log_verifier_key). Out: progress messages, then
 * one `done` message.
 */
import { extendRange, rangeRoot, type CompactRange } from '../../src/log/tree.ts';
import { EMPTY_ROOT, canonicalize, decodeBase64Strict, encodeBase64, leafHash, nodeHash, openCheckpoint, parseLogKey, type LogKey } from './log-check.ts';

export type WorkerOut =
  | { type: 'progress'; done: number; size: number }
  | { type: 'done'; ok: true; size: number; checkpoints: number; root: string }
  | { type: 'done'; ok: false; size: number; checkpoints: number; problem: { index?: number; checkpoint_size?: number; message: string } };

interface StoredPage {
  size: number;
  from: number;
  to: number;
  entries: Array<{ index: number; entry: string | null; nodes: Array<string | null> }>;
  checkpoints: Array<{ size: number; note: string }>;
}

const scope = self as unknown as { postMessage(message: WorkerOut): void; onmessage: ((event: MessageEvent<{ logKey: string }>) => void) | null };
const PAGE = 1000;
const utf8 = new TextEncoder();

class Problem extends Error {
  constructor(
    readonly where: { index?: number; checkpoint_size?: number },
    message: string,
  ) {
    super(message);
  }
}

async function page(from: number): Promise<StoredPage> {
  const res = await fetch(`/api/v1/log/stored?from=${from}&limit=${PAGE}`, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  const body = (await res.json().catch(() => undefined)) as (StoredPage & { error?: { message: string; detail?: { index?: number } } }) | undefined;
  if (!res.ok || !body) throw new Problem({ index: body?.error?.detail?.index ?? from }, `the log could not be read from index ${from}: ${body?.error?.message ?? `HTTP ${res.status}`}`);
  return body;
}

async function verify(key: LogKey): Promise<WorkerOut> {
  const range: CompactRange<Uint8Array> = { levels: [], hashes: [] };
  let prev = '';
  let expected = 0;
  let size = 0;
  let checked = 0;
  // The signed roots still to meet, by tree size.
  const wanted = new Map<number, string>();
  const rootNow = () => encodeBase64(rangeRoot(range, EMPTY_ROOT, nodeHash));
  const meet = (n: number) => {
    const want = wanted.get(n);
    if (want === undefined) return;
    if (want !== rootNow()) throw new Problem({ checkpoint_size: n }, `the checkpoint of ${n} entries does not match the re-derived tree`);
    wanted.delete(n);
  };
  try {
    for (let from = 0; ; ) {
      const p = await page(from);
      size = p.size;
      for (const cp of p.checkpoints) {
        let root: string;
        try {
          const opened = await openCheckpoint(cp.note, key);
          if (opened.size !== cp.size) throw new Error(`it says ${opened.size} entries but is stored as the checkpoint of ${cp.size}`);
          root = encodeBase64(opened.rootHash);
        } catch (err) {
          throw new Problem({ checkpoint_size: cp.size }, `the checkpoint of ${cp.size} entries does not verify: ${(err as Error).message}`);
        }
        checked++;
        if (cp.size > p.size) throw new Problem({ checkpoint_size: cp.size }, `a checkpoint of ${cp.size} entries is larger than the log (${p.size})`);
        wanted.set(cp.size, root);
      }
      if (from === 0) meet(0);
      for (const stored of p.entries) {
        if (stored.index !== expected) throw new Problem({ index: expected }, `entry ${expected} is missing from the answer`);
        prev = checkEntry(expected, stored, prev, range);
        expected++;
        meet(expected);
      }
      scope.postMessage({ type: 'progress', done: p.to, size: p.size });
      if (p.to >= p.size) break;
      from = expected;
    }
    return { type: 'done', ok: true, size, checkpoints: checked, root: rootNow() };
  } catch (err) {
    const where = err instanceof Problem ? err.where : {};
    return { type: 'done', ok: false, size, checkpoints: checked, problem: { ...where, message: (err as Error).message } };
  }
}

/** The checks verify.ts checkEntries makes of one entry; advances `range` and returns the entry's leaf hash (the next one's prev). */
function checkEntry(index: number, stored: StoredPage['entries'][number], prev: string, range: CompactRange<Uint8Array>): string {
  const fail = (message: string) => new Problem({ index }, `entry ${index}: ${message}`);
  const raw = stored.entry;
  if (raw === null) throw fail('the entry is missing');
  let entry: { index?: unknown; prev?: unknown };
  try {
    entry = JSON.parse(raw) as typeof entry;
  } catch {
    throw fail('entry is not valid JSON');
  }
  let canonical: string | undefined;
  try {
    canonical = canonicalize(entry);
  } catch {
    canonical = undefined;
  }
  if (canonical !== raw) throw fail('entry is not in canonical (RFC 8785) form');
  if (entry.index !== index) throw fail(`entry says index ${String(entry.index)}`);
  if (entry.prev !== prev) throw fail("prev does not match the previous entry's hash");
  const completed = extendRange(range, index, leafHash(utf8.encode(raw)), nodeHash);
  for (const node of completed) {
    const storedNode = stored.nodes[node.level];
    const storedHash = storedNode == null ? null : decodeBase64Strict(storedNode);
    if (storedHash === null || encodeBase64(storedHash) !== encodeBase64(node.hash)) {
      throw fail(node.level === 0 ? 'entry does not hash to its stored leaf hash' : `stored tree node ${node.level}/${node.index} does not match`);
    }
  }
  return encodeBase64(completed[0]!.hash);
}

scope.onmessage = (event) => {
  let key: LogKey;
  try {
    key = parseLogKey(event.data.logKey);
  } catch (err) {
    scope.postMessage({ type: 'done', ok: false, size: 0, checkpoints: 0, problem: { message: `the log key does not parse: ${(err as Error).message}` } });
    return;
  }
  void verify(key).then((result) => scope.postMessage(result));
};
