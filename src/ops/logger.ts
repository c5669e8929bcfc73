import { pino, type Level, type LevelWithSilent, type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * The server's one logger: JSON lines on stderr (stdout carries the banner a person reads: the
 * URL, a generated admin key), readable text when stderr is a terminal. Every line is written
 * synchronously, so nothing is held in a buffer when the process exits: the lines of a shutdown
 * are all there, whatever ends the process.
 */
export type { Logger };

export interface LogOutput {
  fd: number;
  /** Pretty text for a person at a terminal instead of JSON for a collector. */
  pretty: boolean;
}

export function createLogger(level: LevelWithSilent, output: LogOutput = { fd: 2, pretty: Boolean(process.stderr.isTTY) }): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Names, not numbers: a collector filters on "level":"error" without a lookup table.
    formatters: { level: (label: string) => ({ level: label }) },
    // Nothing logs these fields; if one ever does, its value still never reaches the output.
    redact: { paths: ['authorization', '*.authorization', 'token', '*.token', 'api_key', '*.api_key', 'secret', '*.secret'], censor: '[redacted]' },
  };
  if (!output.pretty) {
    const destination = pino.destination({ fd: output.fd, sync: true });
    // A log reader that went away (EPIPE) loses the lines; it must not take the server down too.
    destination.on('error', () => {});
    return pino(options, destination);
  }
  return pino(options, pretty({ destination: output.fd, sync: true, colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid' }));
}

/** A logger that writes nothing (the in-process test servers, and anyone who passes none). */
export const silentLogger = (): Logger => pino({ level: 'silent' });

/**
 * Reports are free text from every part of Writ (`report(message)`); this is the one place that
 * gives each a level, by what it says: the first rule that matches wins, and a report no rule
 * knows is a warning, since a report is something the operator is meant to see.
 */
const REPORT_LEVELS: ReadonlyArray<readonly [RegExp, Level]> = [
  // Writ cannot do part of its job, or lost something: someone has to act.
  [/\b(damaged|failed|could not)\b|\bstopped \(|giving up/i, 'error'],
  // The ordinary course of a server's life.
  [/^(initialised |telegram: (polling|webhook) mode|telegram: no WRIT_TELEGRAM_BOT_TOKEN|policies reloaded|storage: reopened|SIG[A-Z]+: |stopped$)/, 'info'],
];

export function levelOfReport(message: string): Level {
  return REPORT_LEVELS.find(([pattern]) => pattern.test(message))?.[1] ?? 'warn';
}

/** `report` as the rest of Writ calls it, over the logger. */
export function reporter(logger: Logger): (message: string) => void {
  return (message) => logger[levelOfReport(message)](message);
}
