import type { Telegraf } from 'telegraf';
import type { BotDeps } from '../index.ts';

const HELP = [
  'I bring you Writ approval requests. Tap ✅ Approve or ❌ Deny on a card; during a critical',
  'approval\'s delay, 🛑 Cancel stops it.',
  '',
  '/start <code> — link this chat to your approver account (code from your Writ admin)',
  '/pending — show the approvals waiting now',
  '/login — a one-time link to sign in to the web dashboard',
  '/unlink — stop receiving approvals here',
  '/help — this message',
].join('\n');

/** Linking and the small commands. Links happen only in private chats. */
export function registerLinking(bot: Telegraf, deps: BotDeps): void {
  bot.start(async (ctx) => {
    const code = ctx.payload.trim();
    if (ctx.chat.type !== 'private') return void (await ctx.reply('Send /start <code> to me in a private chat.'));
    if (!code) return void (await ctx.reply(`Hello! To link your approver account send /start <code>.\n\n${HELP}`));
    const result = await deps.writ.principals.linkTelegram(code, { id: ctx.from.id, username: ctx.from.username }, ctx.chat.id);
    if (!result.ok) return void (await ctx.reply(result.message));
    await ctx.reply(`Linked: you are approver ${result.approver.name}. Approval requests will arrive here.`);
  });

  bot.command('unlink', async (ctx) => {
    const approver = await deps.writ.principals.unlinkTelegram(ctx.from.id);
    await ctx.reply(approver ? `Unlinked from approver ${approver.name}. No more approvals here.` : 'This account is not linked.');
  });

  bot.help((ctx) => ctx.reply(HELP));

  bot.command('pending', async (ctx) => {
    if (ctx.chat.type !== 'private') return void (await ctx.reply('Ask me for /pending in a private chat: cards show what agents want to do.'));
    const approver = await deps.writ.principals.approverByTelegramUser(ctx.from.id);
    if (!approver) return void (await ctx.reply('Only linked approvers can see approvals. Link with /start <code>.'));
    const open = await deps.writ.permissions.listApprovals('pending', 20);
    if (open.length === 0) return void (await ctx.reply('Nothing is waiting for approval.'));
    await ctx.reply(`${open.length} approval(s) waiting:`);
    for (const { approval } of open) deps.cards.show(approval.id, approver.id, ctx.chat.id);
  });
}
