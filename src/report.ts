/**
 * How every part of Writ tells the operator something: what happened, and how much it matters.
 * `error`: Writ could not do part of its job or lost something, and someone has to act; `warn`:
 * something to look at (a refused policy change, a dropped call that will be retried); `info`:
 * the ordinary course of a server's life.
 */
export type ReportLevel = 'error' | 'warn' | 'info';
export type Report = (message: string, level: ReportLevel) => void;
