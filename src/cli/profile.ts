import { UsageError, parseFlags } from './args.ts';
import { DEFAULT_URL, call, readProfiles, serverUrl, writeProfiles } from './remote.ts';

const profileName = (name: string): string => {
  if (!/^[\w.-]{1,64}$/.test(name)) throw new UsageError(`--profile ${JSON.stringify(name)}: a profile name is 1 to 64 letters, digits, ".", "_" or "-"`);
  return name;
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `writ login`: keeps a URL and key as a profile (mode 0600), so later commands need neither. */
export async function login(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { url: { type: 'string' }, key: { type: 'string' }, profile: { type: 'string' } }, { max: 0 });
  // --key - reads the key from standard input, so it is in neither the process list nor shell history.
  const key = values.key === '-' ? (await readStdin()).trim() : (values.key ?? process.env.WRIT_KEY);
  if (!key) throw new UsageError('login needs --key (or WRIT_KEY, or --key - to read it from standard input)');
  const url = serverUrl(values.url ?? process.env.WRIT_URL ?? DEFAULT_URL);
  const name = profileName(values.profile ?? 'default');
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
  const name = profileName(values.profile ?? profiles.default ?? 'default');
  if (!Object.hasOwn(profiles.profiles, name)) throw new UsageError(`no profile "${name}"`);
  delete profiles.profiles[name];
  if (profiles.default === name) delete profiles.default;
  await writeProfiles(profiles);
  process.stdout.write(`profile ${name} removed\n`);
  return 0;
}
