import test from 'ava';
import crypto from 'node:crypto';
import { compactVerify, importJWK, exportJWK } from 'jose';
import { signCompact } from '../src/crypto/jws.ts';
import { Signer } from '../src/crypto/signer.ts';
import type { SigningKey } from '../src/crypto/keys.ts';

/** Receipts are signed on a thread of their own under load: the same bytes as signing them inline, and nothing lost if it dies. */
async function key(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  return { kid, privateKey, publicKey, publicJwk: await exportJWK(publicKey), publicRaw: Buffer.alloc(32) };
}

test('signatures made on the signing thread are the ones inline signing makes, and verify with jose', async (t) => {
  const signer = new Signer();
  t.teardown(() => signer.close());
  const [a, b] = [await key('a'), await key('b')];
  const jobs = Array.from({ length: 200 }, (_, i) => ({ payload: { i, note: 'é — ünïcode' }, key: i % 3 === 0 ? b : a }));
  const signed = await Promise.all(jobs.map((j) => signer.sign({ typ: 'test' }, j.payload, j.key)));
  t.deepEqual(signed, jobs.map((j) => signCompact({ typ: 'test' }, j.payload, j.key)), 'Ed25519 is deterministic: the thread signs exactly what inline signing would');
  const verified = await compactVerify(signed[3]!, await importJWK(b.publicJwk, 'EdDSA'));
  t.deepEqual(JSON.parse(new TextDecoder().decode(verified.payload)), jobs[3]!.payload);
  t.is(verified.protectedHeader.kid, 'b');
  const lone = await signer.sign({ typ: 'test' }, { alone: true }, a);
  t.is(lone, signCompact({ typ: 'test' }, { alone: true }, a), 'a lone signature with nothing in flight is signed inline, the same');
});

test('a signing thread that dies loses no signature: what it held is signed inline', async (t) => {
  const signer = new Signer();
  t.teardown(() => signer.close());
  const k = await key('k');
  await Promise.all([signer.sign({}, { warm: 1 }, k), signer.sign({}, { warm: 2 }, k)]);
  const worker = (signer as unknown as { worker: import('node:worker_threads').Worker }).worker;
  const pending = Array.from({ length: 50 }, (_, i) => signer.sign({}, { i }, k));
  // Dies with the batch in its hands (sent at the end of this turn of the event loop).
  setImmediate(() => void worker.terminate());
  const signed = await Promise.all(pending);
  t.deepEqual(signed, pending.map((_, i) => signCompact({}, { i }, k)));
  const after = await Promise.all([signer.sign({}, { after: 1 }, k), signer.sign({}, { after: 2 }, k)]);
  t.deepEqual(after, [signCompact({}, { after: 1 }, k), signCompact({}, { after: 2 }, k)], 'the next batch gets a new thread');
});
