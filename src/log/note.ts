// C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints (c2sp.org/tlog-checkpoint), Ed25519 (signature type 0x01) only.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

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

export type Checkpoint = { origin: string; size: number; rootHash: Buffer; extensions: string[] };
export type CheckpointInput = { origin: string; size: number; rootHash: Uint8Array; extensions?: string[] };
export type NoteSigner = { name: string; privateKey: KeyObject; publicKeyRaw: Uint8Array };
export type NoteVerifier = { name: string; publicKeyRaw: Uint8Array };
/** A signature line whose (name, key ID) matched no verifier, e.g. a witness cosignature; kept verbatim, not checked. */
export type UnverifiedSignature = { name: string; keyId: Buffer; signature: Buffer; line: string };
export type OpenedNote = { text: string; verified: string[]; unverified: UnverifiedSignature[] };

export const ED25519_SIGNATURE_TYPE = 0x01;
const ED25519_KEY_SIZE = 32;
const ED25519_SIGNATURE_SIZE = 64;
const ROOT_HASH_SIZE = 32;
const SIGNATURE_PREFIX = '\u2014 ';
// The spec requires accepting at least 16; Go's sumdb/note stops at 100, and so do we to bound verification work.
const MAX_SIGNATURES = 100;

// ---------------------------------------------------------------------------
// Keys.

/** SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[:4]: identifies (name, algorithm, key) without being a security boundary. */
export function keyId(name: string, publicKeyRaw: Uint8Array): Buffer {
  assertKeyName(name, 'MALFORMED_KEY');
  assertEd25519PublicKey(publicKeyRaw);
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Uint8Array.of(0x0a, ED25519_SIGNATURE_TYPE))
    .update(publicKeyRaw)
    .digest()
    .subarray(0, 4);
}

/** The shareable verifier key "name+keyid(8 lowercase hex)+base64(0x01 ‖ pubkey)", as Go's note.NewEd25519VerifierKey prints it. */
export function verifierKeyString(name: string, publicKeyRaw: Uint8Array): string {
  const id = keyId(name, publicKeyRaw).toString('hex');
  const typed = Buffer.concat([Uint8Array.of(ED25519_SIGNATURE_TYPE), publicKeyRaw]);
  return `${name}+${id}+${typed.toString('base64')}`;
}

/** Parses a verifier key string, checking the algorithm byte, key length and that the key ID matches. */
export function parseVerifierKey(s: string): NoteVerifier {
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
  if (!keyId(name, publicKeyRaw).equals(Buffer.from(idHex, 'hex'))) {
    throw new NoteError('KEY_MISMATCH', 'verifier key ID does not match its name and public key');
  }
  return { name, publicKeyRaw };
}

/** The raw 32-byte Ed25519 public key of a KeyObject (public, or private from which it is derived). */
export function ed25519PublicKeyRaw(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519') throw new NoteError('MALFORMED_KEY', 'key is not Ed25519');
  // SPKI for Ed25519 is a fixed 12-byte header followed by the raw key.
  return pub.export({ format: 'der', type: 'spki' }).subarray(-ED25519_KEY_SIZE);
}

/** An Ed25519 public KeyObject from its raw 32 bytes. */
export function ed25519PublicKeyFromRaw(publicKeyRaw: Uint8Array): KeyObject {
  assertEd25519PublicKey(publicKeyRaw);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKeyRaw]), format: 'der', type: 'spki' });
}

/** An Ed25519 private KeyObject from its 32-byte RFC 8032 seed (the form Go's note signer keys carry). */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== ED25519_KEY_SIZE) throw new NoteError('MALFORMED_KEY', 'Ed25519 seed must be 32 bytes');
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

// ---------------------------------------------------------------------------
// Notes.

/** Appends the separating blank line and one Ed25519 signature line over `text`, which must end in a newline. */
export function signNote(text: string, signer: NoteSigner): string {
  assertNoteText(text);
  assertKeyName(signer.name, 'MALFORMED_KEY');
  // A mismatched public key would yield a key ID that no verifier of this signer could ever match.
  if (!ed25519PublicKeyRaw(signer.privateKey).equals(signer.publicKeyRaw)) {
    throw new NoteError('KEY_MISMATCH', 'signer publicKeyRaw does not belong to its privateKey');
  }
  const id = keyId(signer.name, signer.publicKeyRaw);
  const signature = sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${Buffer.concat([id, signature]).toString('base64')}\n`;
}

/**
 * Splits a signed note, verifies every signature whose (name, key ID) matches a verifier, and returns the text.
 * Signatures from unknown keys are returned unverified as the spec requires; a known key's bad signature,
 * a malformed note or zero verified signatures throw a NoteError.
 */
export function openNote(note: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenedNote {
  const message = typeof note === 'string' ? note : decodeUtf8Strict(note);
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

  const known = indexVerifiers(verifiers);
  const signedBytes = Buffer.from(text, 'utf8');
  const verified: string[] = [];
  const verifiedIds = new Set<string>();
  const unverified: UnverifiedSignature[] = [];
  const unverifiedLines = new Set<string>();

  for (const line of lines) {
    const { name, keyId: id, signature } = parseSignatureLine(line);
    const mapKey = `${name}+${id.toString('hex')}`;
    const verifier = known.get(mapKey);
    if (verifier === undefined) {
      if (!unverifiedLines.has(line)) unverified.push({ name, keyId: id, signature, line });
      unverifiedLines.add(line);
      continue;
    }
    if (verifiedIds.has(mapKey)) continue;
    if (signature.length !== ED25519_SIGNATURE_SIZE || !verify(null, signedBytes, verifier, signature)) {
      throw new NoteError('INVALID_SIGNATURE', `invalid signature for key ${mapKey}`);
    }
    verifiedIds.add(mapKey);
    verified.push(name);
  }

  if (verified.length === 0) throw new NoteError('UNVERIFIED_NOTE', 'note has no signature from a known key');
  return { text, verified, unverified };
}

function parseSignatureLine(line: string): { name: string; keyId: Buffer; signature: Buffer } {
  if (!line.startsWith(SIGNATURE_PREFIX)) throw new NoteError('MALFORMED_NOTE', 'signature line must start with "\u2014 "');
  const rest = line.slice(SIGNATURE_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) throw new NoteError('MALFORMED_NOTE', 'signature line must be "\u2014 name base64"');
  const name = rest.slice(0, space);
  assertKeyName(name, 'MALFORMED_NOTE');
  const raw = decodeBase64Strict(rest.slice(space + 1));
  if (raw === null || raw.length < 5) throw new NoteError('MALFORMED_NOTE', 'signature must be base64 of key ID ‖ signature');
  return { name, keyId: raw.subarray(0, 4), signature: raw.subarray(4) };
}

function indexVerifiers(verifiers: readonly NoteVerifier[]): Map<string, KeyObject> {
  const known = new Map<string, KeyObject>();
  const seen = new Map<string, Buffer>();
  for (const v of verifiers) {
    const mapKey = `${v.name}+${keyId(v.name, v.publicKeyRaw).toString('hex')}`;
    const previous = seen.get(mapKey);
    if (previous !== undefined) {
      // Two different keys with the same name and ID would make the verdict depend on list order.
      if (!previous.equals(v.publicKeyRaw)) throw new NoteError('AMBIGUOUS_KEY', `ambiguous key ${mapKey}`);
      continue;
    }
    seen.set(mapKey, Buffer.from(v.publicKeyRaw));
    known.set(mapKey, ed25519PublicKeyFromRaw(v.publicKeyRaw));
  }
  return known;
}

// ---------------------------------------------------------------------------
// Checkpoints.

/** "origin\nsize\nbase64(root)\n" plus one line per extension: the note text a log signs. */
export function formatCheckpoint(checkpoint: CheckpointInput): string {
  const { origin, size, rootHash, extensions = [] } = checkpoint;
  if (!isLine(origin)) throw new NoteError('MALFORMED_CHECKPOINT', 'origin must be a non-empty line');
  if (!Number.isSafeInteger(size) || size < 0) throw new NoteError('MALFORMED_CHECKPOINT', 'size must be a non-negative safe integer');
  if (rootHash.length !== ROOT_HASH_SIZE) throw new NoteError('MALFORMED_CHECKPOINT', 'root hash must be 32 bytes');
  if (!extensions.every(isLine)) throw new NoteError('MALFORMED_CHECKPOINT', 'extension lines must be non-empty lines');
  const lines = [origin, String(size), Buffer.from(rootHash).toString('base64'), ...extensions];
  return `${lines.join('\n')}\n`;
}

/** Parses checkpoint note text (as returned by openNote), rejecting anything formatCheckpoint would not produce. */
export function parseCheckpoint(text: string): Checkpoint {
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

function assertNoteCharacters(s: string, code: NoteErrorCode): void {
  if (LONE_SURROGATE.test(s)) throw new NoteError(code, 'text is not valid UTF-8 (lone surrogate)');
  if (FORBIDDEN_CONTROL.test(s)) throw new NoteError(code, 'text contains an ASCII control character other than newline');
}

function assertNoteText(text: string): void {
  if (!text.endsWith('\n')) throw new NoteError('MALFORMED_NOTE', 'note text must end with a newline');
  assertNoteCharacters(text, 'MALFORMED_NOTE');
}

function assertKeyName(name: string, code: NoteErrorCode): void {
  if (name.length === 0 || INVALID_NAME_CHAR.test(name) || LONE_SURROGATE.test(name) || FORBIDDEN_CONTROL.test(name)) {
    throw new NoteError(code, `invalid key name ${JSON.stringify(name)}: must be non-empty, without spaces or '+'`);
  }
}

function assertEd25519PublicKey(publicKeyRaw: Uint8Array): void {
  if (!(publicKeyRaw instanceof Uint8Array) || publicKeyRaw.length !== ED25519_KEY_SIZE) {
    throw new NoteError('MALFORMED_KEY', 'Ed25519 public key must be 32 bytes');
  }
}

function isLine(s: string): boolean {
  return typeof s === 'string' && s.length > 0 && !s.includes('\n');
}

function decodeUtf8Strict(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new NoteError('MALFORMED_NOTE', 'note is not valid UTF-8');
  }
}

/** Standard padded base64 with exactly one accepted spelling per byte string; Buffer.from alone silently skips junk. */
function decodeBase64Strict(s: string): Buffer | null {
  if (s.length === 0 || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const bytes = Buffer.from(s, 'base64');
  return bytes.toString('base64') === s ? bytes : null;
}
