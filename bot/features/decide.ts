import type { Telegraf } from 'telegraf';
import { WritError } from '../../src/errors.ts';
import { parse } from '../callback-data.ts';
import type { BotDeps } from '../index.ts';

/**
 * A tap counts only for the person who tapped: `callback_query.from.id` must belong to a linked
 * approver. The chat the button sits in proves nothing (a card can be in a group, or forwarded).
 * Anything else is answered "not allowed" and logged as a security event.
 */
export function registerDecide(bot: Telegraf, deps: BotDeps): void {
  bot.on('callback_query', async (ctx) => {
    const query = ctx.callbackQuery;
    const tap = parse('data' in query ? query.data : undefined);
    const approvalId = tap ? await deps.cards.approvalOf(tap.handle) : undefined;
    const approver = await deps.writ.principals.approverByTelegramUser(query.from.id);
    if (!tap || !approvalId || !approver) {
      await deps.writ.log
        .append('security.telegram_tap_refused', {
          telegram_user_id: query.from.id,
          chat_id: ctx.chat?.id ?? null,
          reason: !tap || !approvalId ? 'unknown_button' : 'not_a_linked_approver',
          ...(approvalId ? { approval_id: approvalId } : {}),
        })
        .catch(() => undefined);
      return void (await ctx.answerCbQuery('You are not allowed to decide this approval.', { show_alert: true }));
    }
    try {
      const approval = await deps.writ.permissions.decide(approvalId, { approver_id: approver.id, name: approver.name }, tap.action);
      const count = approval.votes.filter((v) => v.vote === 'approve').length;
      const answer =
        approval.status === 'pending'
          ? `Your approval is recorded (${count} of ${approval.required}).`
          : approval.status === 'delay'
            ? `Approved by two. It runs at ${approval.delay_until?.slice(11, 16)} UTC unless someone cancels.`
            : approval.status === 'approved'
              ? 'Approved.'
              : approval.status === 'cancelled'
                ? 'Cancelled.'
                : 'Denied.';
      await ctx.answerCbQuery(answer);
    } catch (err) {
      if (!(err instanceof WritError) || err.status >= 500) throw err;
      await ctx.answerCbQuery(err.message.slice(0, 190), { show_alert: true });
    }
  });
}
