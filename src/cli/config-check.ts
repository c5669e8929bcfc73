import fs from 'node:fs/promises';
import path from 'node:path';
import { ENV_KEYS, SECRET_SETTINGS, SETTING_HELP, fileKeyOf, resolveConfig, type Config, type ConfigFile } from '../config.ts';
import { parseFlags } from './args.ts';

export const SERVE_FLAGS = {
  config: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  data: { type: 'string' },
  policies: { type: 'string' },
} as const;

/** The configuration file named by --config or WRIT_CONFIG, if any; a missing one is an error. */
export async function configFile(named: string | undefined): Promise<ConfigFile | undefined> {
  const file = named ?? process.env.WRIT_CONFIG;
  if (!file) return undefined;
  const resolved = path.resolve(file);
  const text = await fs.readFile(resolved, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read the configuration file ${resolved}: ${err.code === 'ENOENT' ? 'it does not exist' : err.message}`);
  });
  return { path: file, text };
}

/** The flags serve and config check share, as configuration keys. */
export function serveFlags(values: Partial<Record<keyof typeof SERVE_FLAGS, string>>): Record<string, string | undefined> {
  const { config: _file, ...settings } = values;
  return settings;
}

/** `writ config check`: what serve would use, with where each value comes from; secrets are never printed. */
export async function configCheck(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { ...SERVE_FLAGS, json: { type: 'boolean' } }, { max: 0 });
  const file = await configFile(values.config);
  const { json, ...settings } = values;
  const { config, sources } = resolveConfig(serveFlags(settings), process.env, file);
  const envOf = Object.fromEntries(Object.entries(ENV_KEYS).map(([env, key]) => [key, env]));
  const rows = (Object.keys(envOf) as Array<keyof Config>).map((key) => {
    const value = config[key];
    const shown = value === undefined ? undefined : SECRET_SETTINGS.has(key) ? '(set, not shown)' : value;
    return { setting: envOf[key]!, file_key: fileKeyOf(key), value: shown, source: sources[key] ?? 'default', help: SETTING_HELP[key] ?? '' };
  });
  if (json) {
    process.stdout.write(`${JSON.stringify({ ok: true, ...(file ? { file: file.path } : {}), settings: rows }, null, 2)}\n`);
    return 0;
  }
  const lines = [`configuration OK${file ? ` (file ${file.path})` : ''}:`];
  for (const r of rows) lines.push(`  ${r.setting.padEnd(30)} ${String(r.value ?? '(unset)').padEnd(34)} ${r.source}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
