// C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints (c2sp.org/tlog-checkpoint), Ed25519 (signature type 0x01) only.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import {
  ED25519_KEY_SIZE,
  ED25519_SIGNATURE_SIZE,
  ED25519_SIGNATURE_TYPE,
  NoteError,
  ROOT_HASH_SIZE,
  SIGNATURE_PREFIX,
  assertEd25519PublicKey,
  assertKeyName,
  assertNoteCharacters,
  assertNoteText,
  isLine,
  keyIdWith,
  parseCheckpoint as parseCheckpointText,
  parseVerifierKeyWith,
  splitNote,
} from './signed-note.ts';

export { ED25519_SIGNATURE_TYPE, NoteError, type NoteErrorCode } from './signed-note.ts';

export type Checkpoint = { origin: string; size: number; rootHash: Buffer; extensions: string[] };
export type CheckpointInput = { origin: string; size: number; rootHash: Uint8Array; extensions?: string[] };
export type NoteSigner = { name: string; privateKey: KeyObject; publicKeyRaw: Uint8Array };
export type NoteVerifier = { name: string; publicKeyRaw: Uint8Array };
/** A signature line whose (name, key ID) matched no verifier, e.g. a witness cosignature; kept verbatim, not checked. */
export type UnverifiedSignature = { name: string; keyId: Buffer; signature: Buffer; line: string };
export type OpenedNote = { text: string; verified: string[]; unverified: UnverifiedSignature[] };

// ---------------------------------------------------------------------------
// Keys.

/** SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey)[:4]: identifies (name, algorithm, key) without being a security boundary. */
export function keyId(name: string, publicKeyRaw: Uint8Array): Buffer {
  return Buffer.from(keyIdWith(sha256, name, publicKeyRaw));
}

const sha256 = (bytes: Uint8Array): Uint8Array => createHash('sha256').update(bytes).digest();

/** The shareable verifier key "name+keyid(8 lowercase hex)+base64(0x01 ‖ pubkey)", as Go's note.NewEd25519VerifierKey prints it. */
export function verifierKeyString(name: string, publicKeyRaw: Uint8Array): string {
  const id = keyId(name, publicKeyRaw).toString('hex');
  const typed = Buffer.concat([Uint8Array.of(ED25519_SIGNATURE_TYPE), publicKeyRaw]);
  return `${name}+${id}+${typed.toString('base64')}`;
}

/** Parses a verifier key string, checking the algorithm byte, key length and that the key ID matches. */
export function parseVerifierKey(s: string): NoteVerifier {
  const { name, publicKeyRaw } = parseVerifierKeyWith(sha256, s);
  return { name, publicKeyRaw: Buffer.from(publicKeyRaw) };
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
  const { text, signatures } = splitNote(message);

  const known = indexVerifiers(verifiers);
  const signedBytes = Buffer.from(text, 'utf8');
  const verified: string[] = [];
  const verifiedIds = new Set<string>();
  const unverified: UnverifiedSignature[] = [];
  const unverifiedLines = new Set<string>();

  for (const parsed of signatures) {
    const { name, line } = parsed;
    const id = Buffer.from(parsed.keyId);
    const signature = Buffer.from(parsed.signature);
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
  const checkpoint = parseCheckpointText(text);
  return { ...checkpoint, rootHash: Buffer.from(checkpoint.rootHash) };
}

// ---------------------------------------------------------------------------
// Validation helpers.

function decodeUtf8Strict(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new NoteError('MALFORMED_NOTE', 'note is not valid UTF-8');
  }
}
