import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
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

interface Profiles {
  default?: string;
  profiles: Record<string, { url: string; key: string }>;
}

export const profilesFile = () => path.join(process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'writ', 'profiles.json');

export async function readProfiles(): Promise<Profiles> {
  const file = profilesFile();
  let stat;
  try {
    stat = await fs.stat(file);
  } catch {
    return { profiles: {} };
  }
  if ((stat.mode & 0o077) !== 0) throw new UsageError(`${file} can be read by others (mode ${(stat.mode & 0o777).toString(8)}); it holds keys: chmod 600 ${file}`);
  return JSON.parse(await fs.readFile(file, 'utf8')) as Profiles;
}

export async function writeProfiles(profiles: Profiles): Promise<string> {
  const file = profilesFile();
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
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
  const { default: fallback, profiles } = await readProfiles();
  const name = values.profile ?? process.env.WRIT_PROFILE ?? fallback;
  const profile = name ? profiles[name] : undefined;
  if ((values.profile || process.env.WRIT_PROFILE) && !profile) throw new UsageError(`no profile "${name}" in ${profilesFile()}; add it with writ login --profile ${name}`);
  return {
    url: (values.url ?? process.env.WRIT_URL ?? profile?.url ?? DEFAULT_URL).replace(/\/+$/, ''),
    key: values.key ?? process.env.WRIT_KEY ?? profile?.key ?? process.env.WRIT_ADMIN_TOKEN,
  };
}

/** One call to the API: the parsed JSON (or text) of a 2xx answer; anything else throws. */
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
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // a text answer (checkpoint notes)
  }
  if (!res.ok) {
    const error = (parsed as { error?: { reason_code?: string; message?: string } })?.error;
    const hint = res.status === 401 ? ' (give a key with --key, WRIT_KEY or writ login)' : '';
    throw new RemoteError(res.status, error?.reason_code ?? 'error', `${res.status} ${error?.reason_code ?? res.statusText}: ${error?.message ?? text.slice(0, 200)}${hint}`, parsed);
  }
  return parsed as T;
}

/** Prints the answer as JSON with --json, else as the human text. */
export function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}
