import type { Context, Telegraf } from 'telegraf';
import type { BotDeps } from '../index.ts';

/**
 * /login: a linked approver gets a one-time link to the web dashboard. Who asks is the Telegram
 * user (ctx.from), never anything they type; the token rides in the URL's fragment, which the
 * browser never sends to a server (nor Telegram's link preview), and works once, for ten minutes.
 * Answers go through the outbox, so a connection Telegram drops does not lose them.
 */
export function registerLogin(bot: Telegraf, deps: BotDeps): void {
  const answer = (ctx: Context, text: string) => {
    const chatId = ctx.chat!.id;
    deps.outbox.push(chatId, () => ctx.telegram.sendMessage(chatId, text, { link_preview_options: { is_disabled: true } }));
  };
  bot.command('login', async (ctx) => {
    if (ctx.chat.type !== 'private') return answer(ctx, 'Ask me for /login in a private chat: the link signs you in.');
    const approver = await deps.writ.principals.approverByTelegramUser(ctx.from.id);
    if (!approver) return answer(ctx, 'Sorry, only linked approvers can sign in to the dashboard from here. Link with /start <code> first (the code comes from your Writ admin).');
    const { token, expires_at } = await deps.writ.sessions.newLoginLink(approver.id, ctx.from.id);
    const minutes = Math.round((Date.parse(expires_at) - Date.now()) / 60_000);
    answer(ctx, `Sign in to the Writ dashboard as ${approver.name} (works once, for ${minutes} minutes):\n${deps.writ.baseUrl()}/login#token=${token}`);
  });
}
