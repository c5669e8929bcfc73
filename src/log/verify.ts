import { canonicalize } from './canonical.ts';
import { KEYS, type LogEntry } from './log.ts';
import { Frontier, leafHash } from './merkle.ts';
import { openNote, parseCheckpoint } from './note.ts';
import type { Store } from '../store/store.ts';

/**
 * fsck for the log: re-derives every leaf hash, chain link and stored tree node from the entries
 * alone, then checks every checkpoint's signature and root against the re-derived tree. Stops at
 * the first bad index, because every later hash depends on it.
 */
export interface LogVerification {
  ok: boolean;
  size: number;
  checkpoints: number;
  root: string;
  problem?: { index?: number; checkpoint_size?: number; message: string };
}

export async function verifyLog(store: Store, logKey: { name: string; publicKeyRaw: Uint8Array }): Promise<LogVerification> {
  const meta = await store.get(KEYS.meta);
  const size = meta === undefined ? 0 : (JSON.parse(meta) as { size: number }).size;
  const checkpointNotes: string[] = [];
  for await (const [, note] of store.iterate(KEYS.checkpointRange)) checkpointNotes.push(note);
  const wanted = new Map<number, string>();
  const parsed: Array<{ size: number; root: string; note: string }> = [];
  for (const note of checkpointNotes) {
    try {
      const opened = openNote(note, [logKey]);
      const cp = parseCheckpoint(opened.text);
      if (cp.origin !== logKey.name) throw new Error(`origin ${cp.origin} is not ${logKey.name}`);
      parsed.push({ size: cp.size, root: cp.rootHash.toString('base64'), note });
    } catch (err) {
      const firstLine = note.split('\n', 2)[1] ?? '?';
      return fail(size, 0, { checkpoint_size: Number(firstLine), message: `checkpoint does not verify: ${(err as Error).message}` });
    }
  }
  for (const cp of parsed) wanted.set(cp.size, cp.root);

  const frontier = new Frontier();
  const roots = new Map<number, string>();
  if (wanted.has(0)) roots.set(0, frontier.root().toString('base64'));
  let prev = '';
  let expected = 0;
  for await (const [key, raw] of store.iterate(KEYS.entryRange)) {
    const index = expected;
    if (key !== KEYS.entry(index)) return fail(size, parsed.length, { index, message: `entry ${index} is missing (found ${key})` });
    let entry: LogEntry;
    try {
      entry = JSON.parse(raw) as LogEntry;
    } catch {
      return fail(size, parsed.length, { index, message: 'entry is not valid JSON' });
    }
    if (canonicalize(entry) !== raw) return fail(size, parsed.length, { index, message: 'entry is not in canonical (RFC 8785) form' });
    if (entry.index !== index) return fail(size, parsed.length, { index, message: `entry says index ${entry.index}` });
    if (entry.prev !== prev) return fail(size, parsed.length, { index, message: 'prev does not match the previous entry\'s hash' });
    const leaf = leafHash(Buffer.from(raw, 'utf8'));
    for (const node of frontier.append(leaf)) {
      const stored = await store.get(KEYS.node(node.level, node.index));
      if (stored !== node.hash.toString('base64')) {
        return fail(size, parsed.length, {
          index,
          message: node.level === 0 ? 'entry does not hash to its stored leaf hash' : `stored tree node ${node.level}/${node.index} does not match`,
        });
      }
    }
    prev = leaf.toString('base64');
    expected++;
    if (wanted.has(expected)) roots.set(expected, frontier.root().toString('base64'));
  }
  if (expected !== size) return fail(size, parsed.length, { index: expected, message: `the log claims ${size} entries but holds ${expected}` });
  for (const cp of parsed) {
    if (cp.size > size) return fail(size, parsed.length, { checkpoint_size: cp.size, message: 'checkpoint is larger than the log' });
    if (roots.get(cp.size) !== cp.root) {
      return fail(size, parsed.length, { checkpoint_size: cp.size, message: 'checkpoint root does not match the re-derived tree' });
    }
  }
  return { ok: true, size, checkpoints: parsed.length, root: frontier.root().toString('base64') };
}

function fail(size: number, checkpoints: number, problem: NonNullable<LogVerification['problem']>): LogVerification {
  return { ok: false, size, checkpoints, root: '', problem };
}
