import { verifyInclusion } from '../log/merkle.ts';
import { openNote, parseCheckpoint, parseVerifierKey } from '../log/note.ts';
import { UsageError, parseFlags } from './args.ts';
import { REMOTE_FLAGS, call, print, targetOf } from './remote.ts';

/**
 * `writ log proof INDEX [--verify]`: an entry's inclusion proof; with --verify it is checked
 * here, offline: the checkpoint's signature against the log key, and the proof against its root.
 * The log key comes from --log-key (pinned, the way to trust it) or else from the server's
 * discovery document (trust on first use, said as such).
 */
export async function logProof(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...REMOTE_FLAGS, verify: { type: 'boolean' }, 'log-key': { type: 'string' } }, { max: 1 });
  const raw = positionals[0];
  if (raw === undefined) throw new UsageError('log proof needs the INDEX of an entry');
  const target = await targetOf(values);
  const proof = await call(target, 'GET', `/api/v1/log/proof/${encodeURIComponent(raw)}`);
  if (!values.verify) {
    print(values.json, proof, () => `entry ${proof.index} of ${proof.tree_size}: leaf ${proof.leaf_hash}\n  ${proof.hashes.length} hashes\n${proof.checkpoint}`);
    return 0;
  }
  const keyString = values['log-key'] ?? (await call(target, 'GET', '/.well-known/openid-configuration')).log_verifier_key;
  const pinned = values['log-key'] !== undefined;
  let problem: string | undefined;
  let size = 0;
  try {
    const verifier = parseVerifierKey(keyString);
    const checkpoint = parseCheckpoint(openNote(proof.checkpoint, [verifier]).text);
    size = checkpoint.size;
    if (checkpoint.size !== proof.tree_size) problem = `the proof is for a tree of ${proof.tree_size} entries but its checkpoint is of ${checkpoint.size}`;
    else if (!verifyInclusion(proof.index, proof.tree_size, Buffer.from(proof.leaf_hash, 'base64'), proof.hashes.map((h: string) => Buffer.from(h, 'base64')), checkpoint.rootHash)) {
      problem = 'the inclusion proof does not lead to the signed root';
    }
  } catch (err) {
    problem = `the checkpoint does not verify against the log key: ${(err as Error).message}`;
  }
  const result = { ok: !problem, index: proof.index, tree_size: size, log_key: keyString, log_key_pinned: pinned, ...(problem ? { problem } : {}) };
  print(values.json, result, () =>
    problem
      ? `proof of entry ${proof.index}: INVALID — ${problem}`
      : `proof of entry ${proof.index}: OK — included in the signed tree of ${size} entries\n  log key ${keyString}${pinned ? '' : '\n  (taken from the server\'s discovery document: pin it with --log-key to check against a key you trust)'}`,
  );
  return problem ? 1 : 0;
}
