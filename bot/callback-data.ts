/**
 * Button payloads, packed and parsed in one place. Telegram allows 64 bytes; a payload is one
 * letter for the action and the approval's handle: 16 random bytes (base64url), so a payload
 * can neither be guessed nor name an approval by its id.
 */
export type TapAction = 'approve' | 'deny' | 'cancel';
const CODES: Record<TapAction, string> = { approve: 'a', deny: 'd', cancel: 'c' };
const ACTIONS: Record<string, TapAction> = { a: 'approve', d: 'deny', c: 'cancel' };
const PAYLOAD = /^([adc]):([A-Za-z0-9_-]{22})$/;

export const pack = (action: TapAction, handle: string): string => `${CODES[action]}:${handle}`;

export function parse(data: string | undefined): { action: TapAction; handle: string } | undefined {
  const match = PAYLOAD.exec(data ?? '');
  return match ? { action: ACTIONS[match[1]!]!, handle: match[2]! } : undefined;
}
