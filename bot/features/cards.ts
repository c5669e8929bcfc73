import type { Telegram } from 'telegraf';
import { randomToken } from '../../src/crypto/encoding.ts';
import type { Approval } from '../../src/domain/approvals.ts';
import type { EventSink, PermissionSummary, WritEvent } from '../../src/domain/events.ts';
import type { Approver } from '../../src/domain/principals.ts';
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
 * Cards follow approvals: one to each linked approver when an approval opens, every card edited
 * on each vote and on the outcome (buttons removed once decided). Card references live in
 * LevelDB so a restart can still edit them.
 */
export class Cards implements EventSink {
  constructor(
    private readonly writ: Writ,
    private readonly store: Store,
    private readonly telegram: Telegram,
    private readonly outbox: Outbox,
  ) {}

  after(event: WritEvent): void {
    const { approval, permission } = event.data;
    if (!approval) return;
    const work = event.type === 'approval.requested' ? this.announce(approval, permission) : this.refresh(approval, permission);
    void work.catch((err) => this.writ.report(`telegram cards: ${(err as Error).message}`));
  }

  async approvalOf(handle: string): Promise<string | undefined> {
    return this.store.get(K.handle(handle));
  }

  /** Sends the current card of one approval to one approver (for /pending). */
  async send(approvalId: string, approver: Approver, chatId: number): Promise<void> {
    const current = await this.writ.permissions.approvalWithPermission(approvalId);
    if (current) await this.sendCard(current.approval, current.permission, approver.id, chatId, await this.handleFor(approvalId));
  }

  private async announce(approval: Approval, permission: PermissionSummary): Promise<void> {
    const handle = await this.handleFor(approval.id);
    for (const approver of await this.writ.principals.linkedApprovers()) {
      await this.sendCard(approval, permission, approver.id, approver.telegram!.chat_id, handle);
    }
  }

  private async sendCard(approval: Approval, permission: PermissionSummary, approverId: string, chatId: number, handle: string): Promise<void> {
    const text = cardText(approval, permission);
    this.outbox.push(chatId, async () => {
      const message = await this.telegram.sendMessage(chatId, text, { parse_mode: 'HTML', reply_markup: approvalKeyboard(approval, handle) });
      await this.store.batch([put(K.card(approval.id, approverId), { chat_id: chatId, message_id: message.message_id } satisfies CardRef)]);
    });
  }

  private async refresh(approval: Approval, permission: PermissionSummary): Promise<void> {
    const handle = await this.handleFor(approval.id);
    const text = cardText(approval, permission);
    const keyboard = approvalKeyboard(approval, handle);
    for await (const [key, raw] of this.store.iterate(K.cards(approval.id))) {
      const ref = JSON.parse(raw) as CardRef;
      this.outbox.push(ref.chat_id, async () => {
        // The newest reference for this approver, read when the edit runs (a send may have landed since).
        const latest = JSON.parse((await this.store.get(key)) ?? raw) as CardRef;
        try {
          await this.telegram.editMessageText(latest.chat_id, latest.message_id, undefined, text, { parse_mode: 'HTML', reply_markup: keyboard });
        } catch (err) {
          if (!/message is not modified/i.test((err as Error).message)) throw err;
        }
      });
    }
  }

  private async handleFor(approvalId: string): Promise<string> {
    const existing = await this.store.get(K.handleOf(approvalId));
    if (existing) return existing;
    const handle = randomToken(16);
    await this.store.batch([put(K.handle(handle), approvalId), put(K.handleOf(approvalId), handle)]);
    return handle;
  }
}
