import crypto from 'node:crypto';
import { WritError } from '../../errors.ts';

/**
 * A cursor is base64url of `{"l": list, "q": digest of its filters, "a": id}`: the next page
 * starts right after id `a`. Cursors are not signed and need not be: one is only a position inside
 * the range the server picks for the caller (an agent's own permissions, say), so a forged one can
 * skip or repeat items of that range but never reach outside it. The digest ties a cursor to the
 * query it came from, so one passed with other filters, or to another list, is refused.
 */
type Filters = Record<string, string | undefined>;

const ID = /^[A-Za-z0-9_-]{1,128}$/;

const digest = (filters: Filters): string => {
  const given = Object.entries(filters)
    .filter(([, value]) => value !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return crypto.createHash('sha256').update(JSON.stringify(given)).digest('base64url').slice(0, 11);
};

/** The cursor of the page after one that ended at `after` (none when nothing follows). */
export function nextCursor(list: string, filters: Filters, after: string | undefined): { next_cursor?: string } {
  return after === undefined ? {} : { next_cursor: Buffer.from(JSON.stringify({ l: list, q: digest(filters), a: after })).toString('base64url') };
}

/** Where a page starts: after the id the cursor holds, or at the beginning without one. */
export function positionOf(cursor: string | undefined, list: string, filters: Filters): string | undefined {
  if (cursor === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const c = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { l?: unknown; q?: unknown; a?: unknown };
  if (typeof c.l !== 'string' || typeof c.q !== 'string' || typeof c.a !== 'string' || !ID.test(c.a)) {
    throw refused("is not a cursor Writ gave out; pass a previous page's next_cursor as given, or leave it out to start again");
  }
  if (c.l !== list) throw refused(`is a cursor of another list, not of ${list}`);
  if (c.q !== digest(filters)) throw refused('was given out for other filters; pass the same filters with it, or leave it out to start again');
  return c.a;
}

const refused = (why: string) => new WritError('invalid_value', `cursor: ${why}`, { field: 'cursor' });
