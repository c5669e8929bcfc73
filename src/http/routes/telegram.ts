import { z } from 'zod';
import { WritError } from '../../errors.ts';
import { defineRoute } from '../route.ts';

/** Telegram's updates in webhook mode; authenticated by the secret token Writ registered. */
export default defineRoute({
  method: 'POST',
  path: '/api/v1/telegram/webhook',
  summary: 'Telegram Bot API updates (webhook mode); needs X-Telegram-Bot-Api-Secret-Token',
  auth: 'anyone',
  ownBody: true,
  requestDoc: { description: 'A Telegram Update object (https://core.telegram.org/bots/api#update)', content: { 'application/json': z.looseObject({ update_id: z.number() }) } },
  responses: { 200: { description: 'Accepted', schema: z.object({ ok: z.literal(true) }) }, 401: { description: 'Wrong or missing secret token' } },
  errors: ['unauthenticated'],
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
