import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from './args.ts';

/**
 * How the CLI reaches a running Writ: the URL and key from `--url`/`--key`, else `WRIT_URL`/
 * `WRIT_KEY`, else a profile (`writ login`), else http://127.0.0.1:8080 with `WRIT_ADMIN_TOKEN`.
 * Profiles live in `$XDG_CONFIG_HOME/writ/profiles.json` (default ~/.config), mode 0600, and a
 * profile file anyone else can read is refused, as ssh refuses a readable private key.
 */
export const REMOTE_FLAGS = {
  url: { type: 'string' },
  key: { type: 'string' },
  profile: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const DEFAULT_URL = 'http://127.0.0.1:8080';

const ProfilesSchema = z
  .object({
    default: z.string().optional(),
    profiles: z.record(z.string(), z.object({ url: z.string(), key: z.string() })),
  })
  .strict();
type Profiles = z.infer<typeof ProfilesSchema>;

/** The profile file cannot be used as it is (readable by others, damaged): exit code 1, naming the file and the fix. */
export class ProfileError extends Error {}

export const profilesFile = () => path.join(process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'writ', 'profiles.json');

export async function readProfiles(): Promise<Profiles> {
  const file = profilesFile();
  let stat;
  try {
    stat = await fs.stat(file);
  } catch {
    return { profiles: {} };
  }
  if ((stat.mode & 0o077) !== 0) throw new ProfileError(`${file} can be read by others (mode ${(stat.mode & 0o777).toString(8)}); it holds keys: chmod 600 ${file}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new ProfileError(`${file} is not JSON (${(err as Error).message}); fix it, or remove it and run writ login again`);
  }
  const profiles = ProfilesSchema.safeParse(parsed);
  if (!profiles.success) {
    const issue = profiles.error.issues[0]!;
    throw new ProfileError(`${file} is not a profile file (${issue.path.join('.') || 'the whole file'}: ${issue.message}); fix it, or remove it and run writ login again`);
  }
  return profiles.data;
}

export async function writeProfiles(profiles: Profiles): Promise<string> {
  const file = profilesFile();
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  // A directory made before (by hand, or by another tool's default umask) is tightened too.
  await fs.chmod(dir, 0o700);
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(profiles, null, 2)}\n`, { mode: 0o600 });
  await fs.rename(tmp, file);
  return file;
}

/** The server is not there: exit code 3, with what was tried. */
export class UnreachableError extends Error {}

/** The server answered with an error: exit code 1, with its status and reason code. */
export class RemoteError extends Error {
  constructor(
    readonly status: number,
    readonly reasonCode: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export interface Target {
  url: string;
  key: string | undefined;
}

export async function targetOf(values: { url?: string | undefined; key?: string | undefined; profile?: string | undefined }): Promise<Target> {
  const url = values.url ?? process.env.WRIT_URL;
  const key = values.key ?? process.env.WRIT_KEY;
  const named = values.profile ?? process.env.WRIT_PROFILE;
  // A URL and key given outright need no profile: a damaged profile file does not stand in their way.
  const profile = url !== undefined && key !== undefined && !named ? undefined : await profileOf(named);
  return {
    url: serverUrl(url ?? profile?.url ?? DEFAULT_URL),
    key: key ?? profile?.key ?? process.env.WRIT_ADMIN_TOKEN,
  };
}

/** The profile asked for (--profile, WRIT_PROFILE), else the default one, else none; one that is asked for or is the default must exist. */
async function profileOf(named: string | undefined): Promise<{ url: string; key: string } | undefined> {
  const { default: fallback, profiles } = await readProfiles();
  const name = named ?? fallback;
  if (name === undefined) return undefined;
  const profile = Object.hasOwn(profiles, name) ? profiles[name] : undefined;
  if (!profile) throw new ProfileError(`no profile "${name}" in ${profilesFile()}; add it with writ login --profile ${name}`);
  return profile;
}

/**
 * The base URL of a Writ server, without a trailing slash: http or https, and no user name or
 * password (the key goes in --key; a password in a URL ends up in shell history and error messages).
 */
export function serverUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(text)} is not a URL (like http://127.0.0.1:8080)`);
  }
  if (url.username || url.password) throw new UsageError('--url must not hold a user name or password: give the key with --key, WRIT_KEY or writ login');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be http or https, not ${url.protocol.slice(0, -1)}`);
  return text.replace(/\/+$/, '');
}

/** One call to the API: the parsed JSON of a 2xx answer; anything else throws. */
export async function call<T = any>(target: Target, method: string, urlPath: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${urlPath}`, {
      method,
      headers: {
        ...(target.key ? { authorization: `Bearer ${target.key}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new UnreachableError(`cannot reach Writ at ${target.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}; is it running (writ serve), and is --url (or WRIT_URL) right?`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const error = (parsed as { error?: { reason_code?: string; message?: string } } | undefined)?.error;
    const hint = res.status === 401 ? ' (give a key with --key, WRIT_KEY or writ login)' : '';
    throw new RemoteError(res.status, error?.reason_code ?? 'error', `${res.status} ${error?.reason_code ?? res.statusText}: ${error?.message ?? text.slice(0, 200)}${hint}`, parsed ?? text);
  }
  // Every answer the CLI asks for is Writ's JSON: anything else means --url is not a Writ server.
  if (parsed === undefined || !(res.headers.get('content-type') ?? '').startsWith('application/json')) {
    throw new RemoteError(res.status, 'invalid_response', `${target.url} answered ${res.status} with something that is not Writ's JSON (${text.slice(0, 80).trim() || 'empty'}); is --url (or WRIT_URL) a Writ server?`, text);
  }
  return parsed as T;
}

/** Prints the answer as JSON with --json, else as the human text. */
export function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}
