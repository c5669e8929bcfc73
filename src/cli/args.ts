import { parseArgs, type ParseArgsConfig } from 'node:util';
import { suggest } from '../config.ts';

/** A mistake in how the command was called: printed with the command's usage, exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Flags of one command, strictly: an unknown flag is refused with the closest known one, and
 * more positional arguments than the command takes are refused too.
 */
export function parseFlags<T extends Options>(
  args: string[],
  options: T,
  positionals: { max?: number } = {},
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>> {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const message = (err as Error).message;
    const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(message)?.[1];
    if (unknown) throw new UsageError(`unknown flag ${unknown}${suggest(unknown, Object.keys(options).map((k) => `--${k}`))}`);
    // Node's own message, on one line (an ambiguous value says how to give one that starts with a dash).
    throw new UsageError(message.replace(/\s*\n\s*/g, ' '));
  }
  const max = positionals.max ?? Infinity;
  if (parsed.positionals.length > max) {
    throw new UsageError(max === 0 ? `unexpected argument ${parsed.positionals[0]}` : `unexpected argument ${parsed.positionals[max]} (this command takes ${max})`);
  }
  return parsed;
}
