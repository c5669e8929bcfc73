/**
 * The log's checks in the browser, on the server's own code: the tree math (src/log/tree.ts), note
 * and checkpoint parsing (src/log/signed-note.ts) and canonical JSON (src/log/jcs.ts) are the
 * modules the server runs; only SHA-256 (@noble/hashes) and Ed25519 (@noble/ed25519) are the
 * browser's. Shared by the permission page (one inclusion proof) and the log worker (the whole log).
 */
import { hashes, verifyAsync } from '@noble/ed25519';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { ED25519_SIGNATURE_SIZE, NoteError, decodeBase64Strict, encodeBase64, keyIdWith, parseCheckpoint, parseVerifierKeyWith, splitNote, toHex, type ParsedCheckpoint } from '../../src/log/signed-note.ts';
import { rootFromInclusion } from '../../src/log/tree.ts';

// WebCrypto exists only in secure contexts; a dashboard reached over plain http on a LAN still verifies.
if (!globalThis.crypto?.subtle) hashes.sha512Async = async (message: Uint8Array) => sha512(message);

export { canonicalize } from '../../src/log/jcs.ts';
export { decodeBase64Strict, encodeBase64 };

export const EMPTY_ROOT = sha256(new Uint8Array(0));

/** SHA-256(0x00 ‖ entry). */
export function leafHash(entry: Uint8Array): Uint8Array {
  const input = new Uint8Array(entry.length + 1);
  input.set(entry, 1);
  return sha256(input);
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const input = new Uint8Array(1 + left.length + right.length);
  input[0] = 1;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return sha256(input);
}

export interface LogKey {
  name: string;
  publicKeyRaw: Uint8Array;
}

/** The discovery document's `log_verifier_key`, parsed and its key ID checked. */
export const parseLogKey = (text: string): LogKey => parseVerifierKeyWith(sha256, text);

/**
 * Opens a checkpoint note with the log's key: its signature line for that key must verify over the
 * note's text (Ed25519, RFC 8032 strict), and the checkpoint's origin must be the key's name.
 */
export async function openCheckpoint(note: string, key: LogKey): Promise<ParsedCheckpoint> {
  const { text, signatures } = splitNote(note);
  const id = toHex(keyIdWith(sha256, key.name, key.publicKeyRaw));
  const mine = signatures.filter((s) => s.name === key.name && toHex(s.keyId) === id);
  if (mine.length === 0) throw new NoteError('UNVERIFIED_NOTE', 'note has no signature from a known key');
  for (const s of mine) {
    const ok = s.signature.length === ED25519_SIGNATURE_SIZE && (await verifyAsync(s.signature, new TextEncoder().encode(text), key.publicKeyRaw, { zip215: false }).catch(() => false));
    if (!ok) throw new NoteError('INVALID_SIGNATURE', `invalid signature for key ${key.name}+${id}`);
  }
  const checkpoint = parseCheckpoint(text);
  if (checkpoint.origin !== key.name) throw new Error(`origin ${checkpoint.origin} is not ${key.name}`);
  return checkpoint;
}

/** RFC 9162 inclusion: the root the proof leads to, or null when its shape does not fit. */
export const inclusionRoot = (index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Uint8Array | null => rootFromInclusion(nodeHash, index, size, leaf, proof);

export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
