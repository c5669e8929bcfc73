/**
 * Everything the bot sends goes through here: at most ~30 calls a second overall and one a second
 * per chat (Telegram's limits), a 429 waits its `retry_after`, other failures retry with backoff
 * and are finally dropped. Nothing here is awaited by the approval flow: a slow or unreachable
 * Telegram never delays or fails an approval.
 */
export interface OutboxStats {
  queued: number;
  sent: number;
  failed: number;
  last_ok_at?: string;
  last_error?: { at: string; message: string };
}

interface Job {
  chatId: number;
  run: () => Promise<unknown>;
  attempt: number;
  notBefore: number;
}

const GLOBAL_PER_SECOND = 30;
const PER_CHAT_MS = 1000;
const MAX_ATTEMPTS = 8;

export class Outbox {
  private readonly queue: Job[] = [];
  private readonly chatReady = new Map<number, number>();
  private readonly sentAt: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly stats: OutboxStats = { queued: 0, sent: 0, failed: 0 };

  constructor(private readonly onError: (message: string) => void = () => {}) {}

  push(chatId: number, run: () => Promise<unknown>): void {
    if (this.stopped) return;
    this.queue.push({ chatId, run, attempt: 0, notBefore: 0 });
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.queue.length = 0;
  }

  private pump(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const now = Date.now();
    while (this.sentAt.length && now - this.sentAt[0]! >= 1000) this.sentAt.shift();
    const busy = new Set<number>();
    let next = Infinity;
    for (let i = 0; i < this.queue.length; i++) {
      const job = this.queue[i]!;
      // One job per chat per pass keeps each chat's messages in order.
      if (busy.has(job.chatId)) continue;
      busy.add(job.chatId);
      const ready = Math.max(job.notBefore, this.chatReady.get(job.chatId) ?? 0);
      if (ready > now || this.sentAt.length >= GLOBAL_PER_SECOND) {
        next = Math.min(next, this.sentAt.length >= GLOBAL_PER_SECOND ? this.sentAt[0]! + 1000 : ready);
        continue;
      }
      this.queue.splice(i--, 1);
      this.sentAt.push(now);
      this.chatReady.set(job.chatId, now + PER_CHAT_MS);
      void this.execute(job);
    }
    this.stats.queued = this.queue.length;
    if (next !== Infinity) {
      this.timer = setTimeout(() => this.pump(), Math.max(5, next - Date.now()));
      this.timer.unref();
    }
  }

  private async execute(job: Job): Promise<void> {
    try {
      await job.run();
      this.stats.sent++;
      this.stats.last_ok_at = new Date().toISOString();
    } catch (err) {
      const retryAfter = (err as { parameters?: { retry_after?: number }; response?: { parameters?: { retry_after?: number } } }).response?.parameters?.retry_after;
      const message = (err as Error).message;
      this.stats.last_error = { at: new Date().toISOString(), message };
      if (retryAfter !== undefined) {
        // Telegram asked us to slow down: this chat waits as long as it says, the job keeps its place.
        this.chatReady.set(job.chatId, Date.now() + retryAfter * 1000);
        this.queue.unshift({ ...job, notBefore: Date.now() + retryAfter * 1000 });
      } else if (job.attempt + 1 < MAX_ATTEMPTS) {
        // Back at the front: a chat's jobs run strictly in order, so a retried send is never
        // overtaken by the edit that follows it.
        this.queue.unshift({ ...job, attempt: job.attempt + 1, notBefore: Date.now() + 1000 * 2 ** job.attempt });
      } else {
        this.stats.failed++;
        this.onError(`telegram: giving up after ${MAX_ATTEMPTS} attempts: ${message}`);
      }
    }
    this.pump();
  }
}
