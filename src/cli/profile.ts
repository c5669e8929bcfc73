import { UsageError, parseFlags } from './args.ts';
import { DEFAULT_URL, call, readProfiles, writeProfiles } from './remote.ts';

/** `writ login`: keeps a URL and key as a profile (mode 0600), so later commands need neither. */
export async function login(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { url: { type: 'string' }, key: { type: 'string' }, profile: { type: 'string' } }, { max: 0 });
  const key = values.key ?? process.env.WRIT_KEY;
  if (!key) throw new UsageError('login needs --key (or WRIT_KEY)');
  const url = (values.url ?? process.env.WRIT_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  const name = values.profile ?? 'default';
  // The server must be there; the key is checked by its first use, whatever its role.
  await call({ url, key: undefined }, 'GET', '/healthz').catch((err) => {
    if ((err as { status?: number }).status === 503) return;
    throw err;
  });
  const profiles = await readProfiles();
  profiles.profiles[name] = { url, key };
  profiles.default ??= name;
  const file = await writeProfiles(profiles);
  process.stdout.write(`profile ${name}: ${url} (saved in ${file}, mode 0600)${profiles.default === name ? '; used by default' : `; use it with --profile ${name}`}\n`);
  return 0;
}

export async function logout(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { profile: { type: 'string' } }, { max: 0 });
  const profiles = await readProfiles();
  const name = values.profile ?? profiles.default ?? 'default';
  if (!profiles.profiles[name]) throw new UsageError(`no profile "${name}"`);
  delete profiles.profiles[name];
  if (profiles.default === name) delete profiles.default;
  await writeProfiles(profiles);
  process.stdout.write(`profile ${name} removed\n`);
  return 0;
}
