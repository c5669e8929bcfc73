import type { Telegram } from 'telegraf';
import type { Message } from 'telegraf/types';
import { randomToken } from '../../src/crypto/encoding.ts';
import { OPEN_STATUSES } from '../../src/domain/approvals.ts';
import type { EventSink, WritEvent } from '../../src/domain/events.ts';
import { KeyedMutex } from '../../src/domain/lock.ts';
import { put, type Store } from '../../src/store/store.ts';
import type { Writ } from '../../src/writ.ts';
import { cardText } from '../cards.ts';
import { approvalKeyboard } from '../keyboards.ts';
import type { Outbox } from '../outbox.ts';

const K = {
  handle: (handle: string) => `tg/handle/${handle}`,
  handleOf: (approvalId: string) => `tg/ahandle/${approvalId}`,
  card: (approvalId: string, approverId: string, messageId: number) => `tg/card/${approvalId}/${approverId}/${messageId}`,
  cardsOf: (approvalId: string, approverId = '') => ({ gte: `tg/card/${approvalId}/${approverId}`, lt: `tg/card/${approvalId}/${approverId}~` }),
};

interface CardRef {
  chat_id: number;
  message_id: number;
}

/** A Bot API call that hangs is abandoned after this and retried by the outbox. */
const CALL_TIMEOUT_MS = 15_000;

/**
 * Cards follow approvals: one to each linked approver when an approval opens, and every card an
 * approver has (the first, and any /pending re-sent) brought up to date on each vote and on the
 * outcome, buttons removed once decided. A card job renders the approval as it is when the job
 * runs, not as it was when queued, so a card delivered late still shows the truth. Card
 * references live in LevelDB; at start every open approval's cards are brought up to date.
 */
export class Cards implements EventSink {
  private readonly handles = new KeyedMutex();

  constructor(
    private readonly writ: Writ,
    private readonly store: Store,
    private readonly telegram: Telegram,
    private readonly outbox: Outbox,
  ) {}

  after(event: WritEvent): void {
    const approval = event.data.approval;
    if (approval) this.follow(approval.id, event.type === 'approval.requested');
  }

  async approvalOf(handle: string): Promise<string | undefined> {
    return this.store.get(K.handle(handle));
  }

  /** A new card for one approver, besides any they have (for /pending). */
  show(approvalId: string, approverId: string, chatId: number): void {
    this.outbox.push(chatId, () => this.sync(approvalId, approverId, chatId, { fresh: true }));
  }

  /** After a restart or an outage: every open approval's cards, brought up to date. */
  async resync(): Promise<void> {
    for (const { approval } of await this.writ.permissions.listApprovals('pending', 500)) this.follow(approval.id, false);
  }

  private follow(approvalId: string, opening: boolean): void {
    void (async () => {
      const targets = new Map<string, number>();
      for (const approver of await this.writ.principals.linkedApprovers()) targets.set(approver.id, approver.telegram!.chat_id);
      if (!opening) {
        for await (const [key, raw] of this.store.iterate(K.cardsOf(approvalId))) targets.set(key.split('/')[3]!, (JSON.parse(raw) as CardRef).chat_id);
      }
      for (const [approverId, chatId] of targets) {
        this.outbox.push(chatId, () => this.sync(approvalId, approverId, chatId), `${approvalId}/${approverId}`);
      }
    })().catch((err) => this.writ.report(`telegram cards: ${(err as Error).message}`, 'error'));
  }

  /** Edits this approver's cards to the approval's current state, or sends one while it is open. */
  private async sync(approvalId: string, approverId: string, chatId: number, options: { fresh?: boolean } = {}): Promise<void> {
    const current = await this.writ.permissions.approvalWithPermission(approvalId);
    if (!current) return;
    const handle = await this.handleFor(approvalId);
    const text = cardText(current.approval, current.permission);
    const reply_markup = approvalKeyboard(current.approval, handle);
    const refs: CardRef[] = [];
    if (!options.fresh) for await (const [, raw] of this.store.iterate(K.cardsOf(approvalId, `${approverId}/`))) refs.push(JSON.parse(raw) as CardRef);
    for (const ref of refs) {
      try {
        await this.call('editMessageText', { chat_id: ref.chat_id, message_id: ref.message_id, text, parse_mode: 'HTML', reply_markup });
      } catch (err) {
        if (!/message is not modified/i.test((err as Error).message)) throw err;
      }
    }
    if (refs.length || !OPEN_STATUSES.includes(current.approval.status)) return;
    const message = (await this.call('sendMessage', { chat_id: chatId, text, parse_mode: 'HTML', reply_markup })) as Message.TextMessage;
    await this.store.batch([put(K.card(approvalId, approverId, message.message_id), { chat_id: chatId, message_id: message.message_id } satisfies CardRef)]);
  }

  private call(method: 'sendMessage' | 'editMessageText', payload: Record<string, unknown>): Promise<unknown> {
    return this.telegram.callApi(method, payload as never, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) as never });
  }

  /** One handle per approval, made once even when the first cards go out concurrently. */
  private handleFor(approvalId: string): Promise<string> {
    return this.handles.run(approvalId, async () => {
      const existing = await this.store.get(K.handleOf(approvalId));
      if (existing) return existing;
      const handle = randomToken(16);
      await this.store.batch([put(K.handle(handle), approvalId), put(K.handleOf(approvalId), handle)]);
      return handle;
    });
  }
}
