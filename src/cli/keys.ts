import path from 'node:path';
import { KeyRing, openLogKey } from '../crypto/keys.ts';
import { rotateReceiptKey } from '../crypto/rotation.ts';
import { TransparencyLog } from '../log/log.ts';
import { openDataDir } from '../data-dir.ts';
import { UsageError, parseFlags } from './args.ts';

/**
 * `writ keys rotate`: against a running server (--url, admin key) or, with the server stopped,
 * directly on its data directory. Either way the rotation is a log entry.
 */
export async function keysRotate(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { data: { type: 'string' }, url: { type: 'string' }, 'admin-key': { type: 'string' } });
  if (values.url) {
    const key = values['admin-key'] ?? process.env.WRIT_ADMIN_TOKEN;
    if (!key) throw new UsageError('--url needs an admin key: --admin-key or WRIT_ADMIN_TOKEN');
    const res = await fetch(new URL('/api/v1/keys/rotate', values.url), { method: 'POST', headers: { authorization: `Bearer ${key}` } });
    const body = (await res.json()) as { retired?: string; current?: string; error?: { message: string } };
    if (!res.ok) {
      process.stderr.write(`writ: rotation refused (${res.status}): ${body.error?.message ?? 'unknown error'}\n`);
      return 1;
    }
    process.stdout.write(`rotated: new key ${body.current}; ${body.retired} stays in the JWKS for 90 days\n`);
    return 0;
  }
  const data = path.resolve(values.data ?? process.env.WRIT_DATA ?? './data');
  let opened;
  try {
    opened = await openDataDir(data, { create: false });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n  while the server runs, rotate through it: writ keys rotate --url <server url>`);
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
