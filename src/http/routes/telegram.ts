import { WritError } from '../../errors.ts';
import { defineRoute } from '../route.ts';

/** Telegram's updates in webhook mode; authenticated by the secret token Writ registered. */
export default defineRoute({
  method: 'POST',
  path: '/api/v1/telegram/webhook',
  summary: 'Telegram Bot API updates (webhook mode); needs X-Telegram-Bot-Api-Secret-Token',
  auth: 'anyone',
  ownBody: true,
  responses: { 200: { description: 'Accepted' }, 401: { description: 'Wrong or missing secret token' } },
  async handle({ writ, headers, readBody }) {
    const secret = headers['x-telegram-bot-api-secret-token'];
    const update = await readBody();
    const accepted = writ.telegram ? await writ.telegram.handleWebhook(update, Array.isArray(secret) ? secret[0] : secret) : false;
    if (!accepted) throw new WritError('unauthenticated', 'not a Telegram update for this bot', { field: 'X-Telegram-Bot-Api-Secret-Token' });
    return { status: 200, body: { ok: true } };
  },
});
