import type { Telegram } from 'telegraf';
import { randomToken } from '../../src/crypto/encoding.ts';
import { OPEN_STATUSES } from '../../src/domain/approvals.ts';
import type { EventSink, WritEvent } from '../../src/domain/events.ts';
import { put, type Store } from '../../src/store/store.ts';
import type { Writ } from '../../src/writ.ts';
import { cardText } from '../cards.ts';
import { approvalKeyboard } from '../keyboards.ts';
import type { Outbox } from '../outbox.ts';

const K = {
  handle: (handle: string) => `tg/handle/${handle}`,
  handleOf: (approvalId: string) => `tg/ahandle/${approvalId}`,
  card: (approvalId: string, approverId: string) => `tg/card/${approvalId}/${approverId}`,
  cards: (approvalId: string) => ({ gte: `tg/card/${approvalId}/`, lt: `tg/card/${approvalId}/~` }),
};

interface CardRef {
  chat_id: number;
  message_id: number;
}

/**
 * Cards follow approvals: one to each linked approver when an approval opens, and every card
 * brought up to date on each vote and on the outcome (buttons removed once decided). A card job
 * renders the approval as it is when the job runs, not as it was when queued, so a card that
 * could only be delivered late still shows the truth. Card references live in LevelDB so a
 * restart can still edit them.
 */
export class Cards implements EventSink {
  constructor(
    private readonly writ: Writ,
    private readonly store: Store,
    private readonly telegram: Telegram,
    private readonly outbox: Outbox,
  ) {}

  after(event: WritEvent): void {
    const approval = event.data.approval;
    if (!approval) return;
    void this.follow(approval.id, event.type === 'approval.requested').catch((err) => this.writ.report(`telegram cards: ${(err as Error).message}`));
  }

  async approvalOf(handle: string): Promise<string | undefined> {
    return this.store.get(K.handle(handle));
  }

  /** A new card for one approver, whatever they had before (for /pending). */
  show(approvalId: string, approverId: string, chatId: number): void {
    this.outbox.push(chatId, () => this.sync(approvalId, approverId, chatId, { fresh: true }));
  }

  private async follow(approvalId: string, opening: boolean): Promise<void> {
    const targets = new Map<string, number>();
    for (const approver of await this.writ.principals.linkedApprovers()) targets.set(approver.id, approver.telegram!.chat_id);
    if (!opening) {
      for await (const [key, raw] of this.store.iterate(K.cards(approvalId))) {
        targets.set(key.slice(key.lastIndexOf('/') + 1), (JSON.parse(raw) as CardRef).chat_id);
      }
    }
    for (const [approverId, chatId] of targets) this.outbox.push(chatId, () => this.sync(approvalId, approverId, chatId));
  }

  /** Edits this approver's card to the approval's current state, or sends one while it is open. */
  private async sync(approvalId: string, approverId: string, chatId: number, options: { fresh?: boolean } = {}): Promise<void> {
    const current = await this.writ.permissions.approvalWithPermission(approvalId);
    if (!current) return;
    const handle = await this.handleFor(approvalId);
    const text = cardText(current.approval, current.permission);
    const keyboard = approvalKeyboard(current.approval, handle);
    const raw = options.fresh ? undefined : await this.store.get(K.card(approvalId, approverId));
    if (raw) {
      const ref = JSON.parse(raw) as CardRef;
      try {
        await this.telegram.editMessageText(ref.chat_id, ref.message_id, undefined, text, { parse_mode: 'HTML', reply_markup: keyboard });
      } catch (err) {
        if (!/message is not modified/i.test((err as Error).message)) throw err;
      }
      return;
    }
    if (!OPEN_STATUSES.includes(current.approval.status)) return;
    const message = await this.telegram.sendMessage(chatId, text, { parse_mode: 'HTML', reply_markup: keyboard });
    await this.store.batch([put(K.card(approvalId, approverId), { chat_id: chatId, message_id: message.message_id } satisfies CardRef)]);
  }

  private async handleFor(approvalId: string): Promise<string> {
    const existing = await this.store.get(K.handleOf(approvalId));
    if (existing) return existing;
    const handle = randomToken(16);
    await this.store.batch([put(K.handle(handle), approvalId), put(K.handleOf(approvalId), handle)]);
    return handle;
  }
}
