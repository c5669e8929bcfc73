import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import {
  NoteError,
  ed25519PrivateKeyFromSeed,
  ed25519PublicKeyRaw,
  formatCheckpoint,
  keyId,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  signNote,
  verifierKeyString,
  type NoteSigner,
} from '../src/log/note.ts';

// Published vectors from golang.org/x/mod/sumdb/note/note_test.go.
const PETER_SIGNER_KEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_VERIFIER_KEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const ENOCH_VERIFIER_KEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG = '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG = '\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

function peterSigner(): NoteSigner {
  // Go signer keys are "PRIVATE+KEY+name+keyid+base64(0x01 ‖ 32-byte seed)".
  const seed = Buffer.from(PETER_SIGNER_KEY.split('+').slice(4).join('+'), 'base64').subarray(1);
  const privateKey = ed25519PrivateKeyFromSeed(seed);
  return { name: 'PeterNeumann', privateKey, publicKeyRaw: ed25519PublicKeyRaw(privateKey) };
}

function freshSigner(name: string): NoteSigner {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { name, privateKey, publicKeyRaw: ed25519PublicKeyRaw(privateKey) };
}

function noteErrorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof NoteError ? error.code : `not a NoteError: ${String(error)}`;
  }
  return undefined;
}

test('derives the published PeterNeumann verifier key and key ID from the Go signer key', (t) => {
  const signer = peterSigner();
  t.is(keyId(signer.name, signer.publicKeyRaw).toString('hex'), 'c74f20a3');
  t.is(verifierKeyString(signer.name, signer.publicKeyRaw), PETER_VERIFIER_KEY);
});

test('signs byte-for-byte like Go sumdb/note for the published vector', (t) => {
  t.is(signNote(GO_TEXT, peterSigner()), `${GO_TEXT}\n${PETER_SIG}`);
});

test('opens the published Go note, verifying known keys and keeping unknown signatures aside', (t) => {
  const peter = parseVerifierKey(PETER_VERIFIER_KEY);
  const enoch = parseVerifierKey(ENOCH_VERIFIER_KEY);
  const note = `${GO_TEXT}\n${PETER_SIG}${ENOCH_SIG}`;

  const onlyPeter = openNote(note, [peter]);
  t.is(onlyPeter.text, GO_TEXT);
  t.deepEqual(onlyPeter.verified, ['PeterNeumann']);
  t.is(onlyPeter.unverified.length, 1);
  t.is(onlyPeter.unverified[0]!.name, 'EnochRoot');
  t.is(onlyPeter.unverified[0]!.keyId.toString('hex'), 'af0cfe78');
  t.is(`${onlyPeter.unverified[0]!.line}\n`, ENOCH_SIG);

  const both = openNote(note, [peter, enoch]);
  t.deepEqual(both.verified, ['PeterNeumann', 'EnochRoot']);
  t.is(both.unverified.length, 0);
});

test('round-trips a note through signNote and openNote, also from UTF-8 bytes', (t) => {
  const signer = freshSigner('example.com/log');
  const text = 'multi-line text\n\nwith an empty line and unicode: \u00e9\u20ac\ud83d\ude00\n';
  const note = signNote(text, signer);
  for (const input of [note, Buffer.from(note, 'utf8')]) {
    const opened = openNote(input, [{ name: signer.name, publicKeyRaw: signer.publicKeyRaw }]);
    t.is(opened.text, text);
    t.deepEqual(opened.verified, ['example.com/log']);
    t.deepEqual(opened.unverified, []);
  }
});

test('collects several signers appended to the same note', (t) => {
  const log = freshSigner('example.com/log');
  const witness = freshSigner('example.com/witness');
  const text = 'payload\n';
  const cosigned = signNote(text, log) + signNote(text, witness).slice(text.length + 1);
  const opened = openNote(cosigned, [log, witness]);
  t.deepEqual(opened.verified, ['example.com/log', 'example.com/witness']);
});

test('rejects a note whose text was tampered with', (t) => {
  const signer = freshSigner('example.com/log');
  const note = signNote('amount: 100\n', signer);
  const tampered = note.replace('amount: 100', 'amount: 900');
  t.is(noteErrorCode(() => openNote(tampered, [signer])), 'INVALID_SIGNATURE');
});

test('rejects a note with a corrupted signature from a known key', (t) => {
  const corrupted = `${GO_TEXT}\n${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`;
  t.is(noteErrorCode(() => openNote(corrupted, [parseVerifierKey(PETER_VERIFIER_KEY)])), 'INVALID_SIGNATURE');
});

test('rejects a note signed by a different key with the same name, since nothing verifies', (t) => {
  const real = freshSigner('example.com/log');
  const impostor = freshSigner('example.com/log');
  const note = signNote('hello\n', impostor);
  t.is(noteErrorCode(() => openNote(note, [real])), 'UNVERIFIED_NOTE');
});

test('rejects a note with no signature from any known key, even if other signatures are present', (t) => {
  t.is(noteErrorCode(() => openNote(`${GO_TEXT}\n${PETER_SIG}${ENOCH_SIG}`, [])), 'UNVERIFIED_NOTE');
});

test('rejects a signature whose name matches but key ID does not, by treating it as unknown', (t) => {
  const signer = peterSigner();
  const renamed = `${GO_TEXT}\n${PETER_SIG.replace('x08go', 'xxxxx')}`;
  t.is(noteErrorCode(() => openNote(renamed, [signer])), 'UNVERIFIED_NOTE');
});

test('rejects malformed notes with MALFORMED_NOTE', (t) => {
  const peter = [parseVerifierKey(PETER_VERIFIER_KEY)];
  const malformed = [
    GO_TEXT,
    `${GO_TEXT}\n`,
    `${GO_TEXT}\n${PETER_SIG.slice(0, -1)}`,
    `\u0001${GO_TEXT}\n${PETER_SIG}`,
    `${GO_TEXT}\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
    `${GO_TEXT}\n${PETER_SIG}Unexpected line.\n`,
    `${GO_TEXT}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
    `${GO_TEXT}\n\u2014 PeterNeumann not*base64\n`,
    `${GO_TEXT}\n\u2014 PeterNeumann AAAA\n`,
    `${GO_TEXT}\n${PETER_SIG.repeat(101)}`,
  ];
  for (const note of malformed) t.is(noteErrorCode(() => openNote(note, peter)), 'MALFORMED_NOTE', JSON.stringify(note));
  t.is(noteErrorCode(() => openNote(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${GO_TEXT}\n${PETER_SIG}`)]), peter)), 'MALFORMED_NOTE');
});

test('ignores a repeated signature from the same key instead of counting it twice', (t) => {
  const opened = openNote(`${GO_TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}`, [parseVerifierKey(PETER_VERIFIER_KEY)]);
  t.deepEqual(opened.verified, ['PeterNeumann']);
  t.is(opened.unverified.length, 1);
});

test('refuses to sign text that does not end in a newline or contains control characters', (t) => {
  const signer = freshSigner('example.com/log');
  t.is(noteErrorCode(() => signNote('no newline', signer)), 'MALFORMED_NOTE');
  t.is(noteErrorCode(() => signNote('tab\there\n', signer)), 'MALFORMED_NOTE');
});

test('refuses to sign when the public key does not belong to the private key', (t) => {
  const signer = freshSigner('example.com/log');
  const other = freshSigner('example.com/log');
  t.is(noteErrorCode(() => signNote('x\n', { ...signer, publicKeyRaw: other.publicKeyRaw })), 'KEY_MISMATCH');
});

test('formats verifier keys as name+8 lowercase hex digits+base64(0x01 ‖ key) and parses them back', (t) => {
  const signer = freshSigner('example.com/log');
  const vkey = verifierKeyString(signer.name, signer.publicKeyRaw);
  const [name, id, key, ...rest] = vkey.split('+');
  t.is(name, 'example.com/log');
  t.regex(id!, /^[0-9a-f]{8}$/);
  t.is(id, keyId(signer.name, signer.publicKeyRaw).toString('hex'));
  const typed = Buffer.from([key!, ...rest].join('+'), 'base64');
  t.is(typed[0], 0x01);
  t.deepEqual(typed.subarray(1), Buffer.from(signer.publicKeyRaw));
  const parsed = parseVerifierKey(vkey);
  t.is(parsed.name, signer.name);
  t.deepEqual(Buffer.from(parsed.publicKeyRaw), Buffer.from(signer.publicKeyRaw));
});

test('rejects mangled verifier keys', (t) => {
  const bad = [
    'PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==',
    'PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumanN+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'PeterNeumann+c74f20a3',
    '+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
  ];
  for (const key of bad) t.truthy(noteErrorCode(() => parseVerifierKey(key)), key);
  // Every strict prefix of the real key must fail too, as in Go's TestNewVerifier.
  for (let end = 1; end < PETER_VERIFIER_KEY.length; end++) {
    if (noteErrorCode(() => parseVerifierKey(PETER_VERIFIER_KEY.slice(0, end))) === undefined) t.fail(`prefix of length ${end} parsed`);
  }
});

test('rejects key names that are empty or contain spaces or plus signs', (t) => {
  const { publicKeyRaw } = freshSigner('x');
  for (const name of ['', 'a b', 'a+b', 'a\u00a0b', 'tab\tname']) {
    t.is(noteErrorCode(() => keyId(name, publicKeyRaw)), 'MALFORMED_KEY', JSON.stringify(name));
  }
});

test('formats a checkpoint as origin, size and base64 root, one per line', (t) => {
  const rootHash = Buffer.from('0a c5 18 6a 91 86 3e 8e 1d 90 c8 08 01 4a a8 9b f5 da 8e 3e e1 d9 f0 76 30 f0 37 8f 68 f1 ab 62'.replace(/ /g, ''), 'hex');
  const text = formatCheckpoint({ origin: 'example.com/behind-the-sofa', size: 20852163, rootHash });
  t.is(text, 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n');
  t.deepEqual(parseCheckpoint(text), { origin: 'example.com/behind-the-sofa', size: 20852163, rootHash, extensions: [] });
});

test('round-trips checkpoint extension lines', (t) => {
  const checkpoint = { origin: 'example.com/log', size: 0, rootHash: Buffer.alloc(32, 7), extensions: ['ext one', 'ext two'] };
  const text = formatCheckpoint(checkpoint);
  t.is(text.split('\n').length, 6);
  t.deepEqual(parseCheckpoint(text), checkpoint);
});

test('a signed checkpoint opens and parses back to the same values', (t) => {
  const signer = freshSigner('example.com/log');
  const checkpoint = { origin: 'example.com/log', size: 42, rootHash: Buffer.alloc(32, 1), extensions: [] };
  const opened = openNote(signNote(formatCheckpoint(checkpoint), signer), [signer]);
  t.deepEqual(parseCheckpoint(opened.text), checkpoint);
});

test('rejects malformed checkpoints', (t) => {
  const root = Buffer.alloc(32).toString('base64');
  const bad = [
    `example.com/log\n1\n${root}`,
    `example.com/log\n1\n`,
    `\n1\n${root}\n`,
    `example.com/log\n01\n${root}\n`,
    `example.com/log\n-1\n${root}\n`,
    `example.com/log\n1.0\n${root}\n`,
    `example.com/log\n 1\n${root}\n`,
    `example.com/log\n99999999999999999999\n${root}\n`,
    `example.com/log\n1\n${Buffer.alloc(31).toString('base64')}\n`,
    `example.com/log\n1\n${root.slice(0, -1)}\n`,
    `example.com/log\n1\n${root}\n\nextension after blank\n`,
    `example.com/log\n1\n${root}\n\n`,
  ];
  for (const text of bad) t.is(noteErrorCode(() => parseCheckpoint(text)), 'MALFORMED_CHECKPOINT', JSON.stringify(text));
});

test('refuses to format checkpoints that could not be parsed back', (t) => {
  const rootHash = Buffer.alloc(32);
  t.is(noteErrorCode(() => formatCheckpoint({ origin: '', size: 1, rootHash })), 'MALFORMED_CHECKPOINT');
  t.is(noteErrorCode(() => formatCheckpoint({ origin: 'a\nb', size: 1, rootHash })), 'MALFORMED_CHECKPOINT');
  t.is(noteErrorCode(() => formatCheckpoint({ origin: 'a', size: -1, rootHash })), 'MALFORMED_CHECKPOINT');
  t.is(noteErrorCode(() => formatCheckpoint({ origin: 'a', size: 1.5, rootHash })), 'MALFORMED_CHECKPOINT');
  t.is(noteErrorCode(() => formatCheckpoint({ origin: 'a', size: 1, rootHash: Buffer.alloc(31) })), 'MALFORMED_CHECKPOINT');
  t.is(noteErrorCode(() => formatCheckpoint({ origin: 'a', size: 1, rootHash, extensions: [''] })), 'MALFORMED_CHECKPOINT');
});
