import { pino, type LevelWithSilent, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Report } from '../report.ts';

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

/** `report` as the rest of Writ calls it: one line at the level the caller gave. */
export function reporter(logger: Logger): Report {
  return (message, level) => logger[level](message);
}
