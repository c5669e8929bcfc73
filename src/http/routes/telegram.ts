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
    const bot = writ.telegram;
    // The secret is this route's authentication: a stranger must not make us read (or parse) a body.
    if (!bot?.acceptsSecret(Array.isArray(secret) ? secret[0] : secret)) {
      throw new WritError('unauthenticated', 'not a Telegram update for this bot', { field: 'X-Telegram-Bot-Api-Secret-Token' });
    }
    await bot.handleUpdate(await readBody());
    return { status: 200, body: { ok: true } };
  },
});
