import type { TransparencyLog } from '../log/log.ts';
import { Conflict, put, type Store } from '../store/store.ts';
import type { KeyRing } from './keys.ts';

/**
 * Every receipt key is in the log before it signs anything: a rotation writes the new key file,
 * logs it durably, and only then makes it current. Rotations run one at a time.
 */
const logged = (kid: string) => `meta/receipt-key-logged/${kid}`;
let queue: Promise<unknown> = Promise.resolve();

export function rotateReceiptKey(keys: KeyRing, log: TransparencyLog): Promise<{ retired: string; current: string }> {
  const run = async () => {
    const next = await keys.prepare();
    const retired = keys.current.kid;
    await log.append('keys.rotated', { purpose: 'receipts', retired, current: next.kid }, [put(logged(next.kid), '1')]);
    await keys.activate(next);
    return { retired, current: next.kid };
  };
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}

/** At start: the first key of a new data directory (or one a crash left unlogged) is logged now. */
export async function logCurrentReceiptKey(keys: KeyRing, log: TransparencyLog, store: Store): Promise<void> {
  const kid = keys.current.kid;
  if ((await store.get(logged(kid))) !== undefined) return;
  // Nodes starting together on a new database: the first to log it does.
  await log
    .append('keys.activated', { purpose: 'receipts', current: kid, jwk: keys.current.publicJwk }, [put(logged(kid), '1')], { expect: [{ key: logged(kid), value: undefined }] })
    .catch((err: unknown) => {
      if (!(err instanceof Conflict)) throw err;
    });
}
