import path from 'node:path';
import { KeyRing, openLogKey } from '../crypto/keys.ts';
import { rotateReceiptKey } from '../crypto/rotation.ts';
import { TransparencyLog } from '../log/log.ts';
import { openDataDir } from '../data-dir.ts';
import { UsageError, parseFlags } from './args.ts';
import { REMOTE_FLAGS, call, print, targetOf } from './remote.ts';

/**
 * `writ keys rotate`: against a running server (--url, admin key) or, with the server stopped,
 * directly on its data directory. Either way the rotation is a log entry.
 */
export async function keysRotate(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { data: { type: 'string' }, ...REMOTE_FLAGS, 'admin-key': { type: 'string' } }, { max: 0 });
  if (!values.data) {
    // A running server: through its API, with the admin key from --key, WRIT_KEY, a profile or WRIT_ADMIN_TOKEN.
    const target = await targetOf({ ...values, key: values.key ?? values['admin-key'] });
    if (!target.key) throw new UsageError('rotating through a server needs an admin key: --key, WRIT_KEY, writ login or WRIT_ADMIN_TOKEN');
    const body = await call<{ retired: string; current: string }>(target, 'POST', '/api/v1/keys/rotate');
    print(values.json, body, () => `rotated: new key ${body.current}; ${body.retired} stays in the JWKS for 90 days`);
    return 0;
  }
  const data = path.resolve(values.data);
  let opened;
  try {
    opened = await openDataDir(data, { create: false });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n  while the server runs, rotate through it: writ keys rotate [--url <server url>]`);
  }
  const { store, meta } = opened;
  try {
    if (!meta) throw new Error(`${data} holds no Writ data; start the server once to initialise it`);
    const ring = await KeyRing.open(data);
    const log = await TransparencyLog.open(store, { origin: meta.origin, key: await openLogKey(data, { create: false }), writeRefusal: () => store.writeRefusal() });
    const rotated = await rotateReceiptKey(ring, log);
    await log.close();
    process.stdout.write(`rotated: new key ${rotated.current}; ${rotated.retired} stays in the JWKS for 90 days\n`);
    return 0;
  } finally {
    await store.close();
  }
}
