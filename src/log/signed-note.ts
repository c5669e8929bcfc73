// C2SP signed notes and tlog checkpoints, the parts that need no Node API: the server (note.ts,
// with node:crypto) and the dashboard's log verifier parse notes with this same code, each bringing
// its own SHA-256 where a key ID is computed.

export type NoteErrorCode =
  | 'MALFORMED_NOTE'
  | 'MALFORMED_CHECKPOINT'
  | 'MALFORMED_KEY'
  | 'KEY_MISMATCH'
  | 'AMBIGUOUS_KEY'
  | 'INVALID_SIGNATURE'
  | 'UNVERIFIED_NOTE';

/** Every failure in this module, with a stable `code` so callers can branch without parsing messages. */
export class NoteError extends Error {
  readonly code: NoteErrorCode;

  constructor(code: NoteErrorCode, message: string) {
    super(message);
    this.name = 'NoteError';
    this.code = code;
  }
}

export type Sha256 = (bytes: Uint8Array) => Uint8Array;
export type ParsedCheckpoint = { origin: string; size: number; rootHash: Uint8Array; extensions: string[] };
/** One signature line: the signer's name, the 4-byte key ID and the signature bytes. */
export type SignatureLine = { name: string; keyId: Uint8Array; signature: Uint8Array; line: string };

export const ED25519_SIGNATURE_TYPE = 0x01;
export const ED25519_KEY_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;
export const ROOT_HASH_SIZE = 32;
export const SIGNATURE_PREFIX = '\u2014 ';
// The spec requires accepting at least 16; Go's sumdb/note stops at 100, and so do we to bound verification work.
const MAX_SIGNATURES = 100;

// ---------------------------------------------------------------------------
// Keys.

/** SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[:4]: identifies (name, algorithm, key) without being a security boundary. */
export function keyIdWith(sha256: Sha256, name: string, publicKeyRaw: Uint8Array): Uint8Array {
  assertKeyName(name, 'MALFORMED_KEY');
  assertEd25519PublicKey(publicKeyRaw);
  const nameBytes = new TextEncoder().encode(name);
  const input = new Uint8Array(nameBytes.length + 2 + publicKeyRaw.length);
  input.set(nameBytes);
  input.set([0x0a, ED25519_SIGNATURE_TYPE], nameBytes.length);
  input.set(publicKeyRaw, nameBytes.length + 2);
  return sha256(input).subarray(0, 4);
}

/** Parses a verifier key string "name+keyid+base64(0x01 ‖ pubkey)", checking the algorithm byte, key length and that the key ID matches. */
export function parseVerifierKeyWith(sha256: Sha256, s: string): { name: string; publicKeyRaw: Uint8Array } {
  // Names cannot contain '+', but base64 can, so only the first two '+' are separators.
  const first = s.indexOf('+');
  const second = first < 0 ? -1 : s.indexOf('+', first + 1);
  if (second < 0) throw new NoteError('MALFORMED_KEY', 'verifier key must look like name+keyid+base64key');
  const name = s.slice(0, first);
  const idHex = s.slice(first + 1, second);
  const typed = decodeBase64Strict(s.slice(second + 1));
  assertKeyName(name, 'MALFORMED_KEY');
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) throw new NoteError('MALFORMED_KEY', 'verifier key ID must be 8 hex digits');
  if (typed === null || typed.length !== 1 + ED25519_KEY_SIZE || typed[0] !== ED25519_SIGNATURE_TYPE) {
    throw new NoteError('MALFORMED_KEY', 'verifier key must be base64(0x01 ‖ 32-byte Ed25519 public key)');
  }
  const publicKeyRaw = typed.subarray(1);
  if (toHex(keyIdWith(sha256, name, publicKeyRaw)) !== idHex.toLowerCase()) {
    throw new NoteError('KEY_MISMATCH', 'verifier key ID does not match its name and public key');
  }
  return { name, publicKeyRaw };
}

// ---------------------------------------------------------------------------
// Notes.

/** Splits a signed note into its text (what was signed) and its signature lines, refusing any malformed note; verifies nothing. */
export function splitNote(message: string): { text: string; signatures: SignatureLine[] } {
  assertNoteCharacters(message, 'MALFORMED_NOTE');
  // The text ends at the last blank line; everything after it must be signature lines.
  const split = message.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('MALFORMED_NOTE', 'note has no blank line before its signatures');
  const text = message.slice(0, split + 1);
  const block = message.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) {
    throw new NoteError('MALFORMED_NOTE', 'signature block must be non-empty and end with a newline');
  }
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteError('MALFORMED_NOTE', `note has more than ${MAX_SIGNATURES} signatures`);
  return { text, signatures: lines.map(parseSignatureLine) };
}

function parseSignatureLine(line: string): SignatureLine {
  if (!line.startsWith(SIGNATURE_PREFIX)) throw new NoteError('MALFORMED_NOTE', 'signature line must start with "\u2014 "');
  const rest = line.slice(SIGNATURE_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) throw new NoteError('MALFORMED_NOTE', 'signature line must be "\u2014 name base64"');
  const name = rest.slice(0, space);
  assertKeyName(name, 'MALFORMED_NOTE');
  const raw = decodeBase64Strict(rest.slice(space + 1));
  if (raw === null || raw.length < 5) throw new NoteError('MALFORMED_NOTE', 'signature must be base64 of key ID ‖ signature');
  return { name, keyId: raw.subarray(0, 4), signature: raw.subarray(4), line };
}

// ---------------------------------------------------------------------------
// Checkpoints.

/** Parses checkpoint note text (a note's signed text), rejecting anything formatCheckpoint would not produce. */
export function parseCheckpoint(text: string): ParsedCheckpoint {
  if (!text.endsWith('\n')) throw new NoteError('MALFORMED_CHECKPOINT', 'checkpoint must end with a newline');
  assertNoteCharacters(text, 'MALFORMED_CHECKPOINT');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3 || !lines.every((line) => line.length > 0)) {
    throw new NoteError('MALFORMED_CHECKPOINT', 'checkpoint must have at least three non-empty lines');
  }
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  // No leading zeros, so each size has exactly one spelling.
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw new NoteError('MALFORMED_CHECKPOINT', 'tree size must be a canonical decimal safe integer');
  }
  const rootHash = decodeBase64Strict(rootText);
  if (rootHash === null || rootHash.length !== ROOT_HASH_SIZE) {
    throw new NoteError('MALFORMED_CHECKPOINT', 'root hash must be base64 of 32 bytes');
  }
  return { origin, size: Number(sizeText), rootHash, extensions };
}

// ---------------------------------------------------------------------------
// Validation helpers.

// In a /u regex \p{Cs} matches only unpaired surrogates, which have no UTF-8 encoding.
const LONE_SURROGATE = /\p{Cs}/u;
// ASCII controls other than newline are banned by the spec.
const FORBIDDEN_CONTROL = /[\u0000-\u0009\u000b-\u001f]/;
const INVALID_NAME_CHAR = /[\p{White_Space}+]/u;

export function assertNoteCharacters(s: string, code: NoteErrorCode): void {
  if (LONE_SURROGATE.test(s)) throw new NoteError(code, 'text is not valid UTF-8 (lone surrogate)');
  if (FORBIDDEN_CONTROL.test(s)) throw new NoteError(code, 'text contains an ASCII control character other than newline');
}

export function assertNoteText(text: string): void {
  if (!text.endsWith('\n')) throw new NoteError('MALFORMED_NOTE', 'note text must end with a newline');
  assertNoteCharacters(text, 'MALFORMED_NOTE');
}

export function assertKeyName(name: string, code: NoteErrorCode): void {
  if (name.length === 0 || INVALID_NAME_CHAR.test(name) || LONE_SURROGATE.test(name) || FORBIDDEN_CONTROL.test(name)) {
    throw new NoteError(code, `invalid key name ${JSON.stringify(name)}: must be non-empty, without spaces or '+'`);
  }
}

export function assertEd25519PublicKey(publicKeyRaw: Uint8Array): void {
  if (!(publicKeyRaw instanceof Uint8Array) || publicKeyRaw.length !== ED25519_KEY_SIZE) {
    throw new NoteError('MALFORMED_KEY', 'Ed25519 public key must be 32 bytes');
  }
}

export function isLine(s: string): boolean {
  return typeof s === 'string' && s.length > 0 && !s.includes('\n');
}

/** Standard padded base64 with exactly one accepted spelling per byte string (a lenient decoder silently skips junk). */
export function decodeBase64Strict(s: string): Uint8Array | null {
  if (s.length === 0 || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  let binary: string;
  try {
    binary = atob(s);
  } catch {
    return null;
  }
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return encodeBase64(bytes) === s ? bytes : null;
}

/** Standard padded base64. */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
