import path from 'node:path';
import { openLogKey } from '../crypto/keys.ts';
import { fileVault, masterKeyOf, sealedVault } from '../crypto/vault.ts';
import { verifyLog } from '../log/verify.ts';
import { openDataDir } from '../data-dir.ts';
import { parseFlags } from './args.ts';

/** `writ log verify`: exit 0 when every hash, link and checkpoint holds; 1 naming the first bad index. */
export async function logVerify(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { data: { type: 'string' }, database: { type: 'string' }, json: { type: 'boolean' } }, { max: 0 });
  const data = path.resolve(values.data ?? process.env.WRIT_DATA ?? './data');
  // On PostgreSQL the log is in the database and its key in the data directory.
  const database = values.database ?? (process.env.WRIT_DATABASE_URL || undefined);
  const { store, meta, warnings } = await openDataDir(data, { create: false, inspect: true, ...(database ? { database } : {}) });
  try {
    for (const warning of warnings) process.stderr.write(`writ: ${warning}\n`);
    if (!meta) {
      process.stderr.write(`writ: ${data} holds no Writ log\n`);
      return 1;
    }
    // On PostgreSQL with a master key the log key is sealed in the database, else a file in DIR.
    const kek = database ? await masterKeyOf({ masterKey: process.env.WRIT_MASTER_KEY || undefined, masterKeyFile: process.env.WRIT_MASTER_KEY_FILE || undefined }) : undefined;
    const sealed = kek ? sealedVault(store, kek) : undefined;
    const vault = sealed && (await sealed.list()).includes('log.jwk') ? sealed : fileVault(data);
    const key = await openLogKey(vault, { create: false });
    const result = await verifyLog(store, { name: meta.origin, publicKeyRaw: key.publicRaw });
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else if (result.ok) {
      process.stdout.write(`log ${meta.origin}: OK — ${result.size} entries, ${result.checkpoints} checkpoints verified, root ${result.root}\n`);
    } else {
      const where = result.problem?.index !== undefined ? `index ${result.problem.index}` : `checkpoint of size ${result.problem?.checkpoint_size}`;
      process.stdout.write(`log ${meta.origin}: FAILED at ${where}: ${result.problem?.message}\n`);
    }
    return result.ok && warnings.length === 0 ? 0 : 1;
  } finally {
    await store.close();
  }
}
