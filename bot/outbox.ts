/**
 * Everything the bot sends goes through here: at most ~30 calls a second overall and one a second
 * per chat (Telegram's limits), one call at a time per chat so a chat's messages stay in order,
 * a 429 waits its `retry_after`. A network or server failure is retried with backoff (up to
 * 30 s apart) for as long as it takes; a 4xx other than 429 will not get better and is dropped.
 * Jobs carry a key: a job whose key is already queued is not queued twice (jobs render the
 * current state when they run, so one is enough). Nothing here is awaited by the approval flow:
 * a slow or unreachable Telegram never delays or fails an approval.
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
  key: string | undefined;
  run: () => Promise<unknown>;
  attempt: number;
  notBefore: number;
}

export interface OutboxLimits {
  perSecond: number;
  perChatMs: number;
}

const MAX_BACKOFF_MS = 30_000;

export class Outbox {
  private queue: Job[] = [];
  private readonly chatReady = new Map<number, number>();
  private readonly inFlight = new Set<number>();
  private readonly sentAt: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly stats: OutboxStats = { queued: 0, sent: 0, failed: 0 };

  constructor(
    private readonly onError: (message: string) => void = () => {},
    private readonly limits: OutboxLimits = { perSecond: 30, perChatMs: 1000 },
  ) {}

  push(chatId: number, run: () => Promise<unknown>, key?: string): void {
    if (this.stopped) return;
    if (key !== undefined && this.queue.some((j) => j.key === key && j.attempt === 0)) return;
    this.queue.push({ chatId, key, run, attempt: 0, notBefore: 0 });
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.queue = [];
  }

  private pump(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const now = Date.now();
    while (this.sentAt.length && now - this.sentAt[0]! >= 1000) this.sentAt.shift();
    const seen = new Set<number>();
    let next = Infinity;
    for (let i = 0; i < this.queue.length; i++) {
      const job = this.queue[i]!;
      // Only a chat's first job may run, and only when nothing of that chat is in flight.
      if (seen.has(job.chatId) || this.inFlight.has(job.chatId)) {
        seen.add(job.chatId);
        continue;
      }
      seen.add(job.chatId);
      const ready = Math.max(job.notBefore, this.chatReady.get(job.chatId) ?? 0);
      const full = this.sentAt.length >= this.limits.perSecond;
      if (ready > now || full) {
        next = Math.min(next, full ? this.sentAt[0]! + 1000 : ready);
        continue;
      }
      this.queue.splice(i--, 1);
      this.sentAt.push(now);
      this.chatReady.set(job.chatId, now + this.limits.perChatMs);
      this.inFlight.add(job.chatId);
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
      this.retryOrDrop(job, err);
    } finally {
      this.inFlight.delete(job.chatId);
      this.pump();
    }
  }

  private retryOrDrop(job: Job, err: unknown): void {
    const e = err as Error & { code?: number; response?: { error_code?: number; parameters?: { retry_after?: number } } };
    const status = e.response?.error_code ?? (typeof e.code === 'number' ? e.code : undefined);
    const retryAfter = e.response?.parameters?.retry_after;
    this.stats.last_error = { at: new Date().toISOString(), message: e.message };
    if (this.stopped) return;
    if (retryAfter !== undefined) {
      // Telegram asked us to slow down: this chat waits as long as it says, the job keeps its place.
      this.chatReady.set(job.chatId, Date.now() + retryAfter * 1000);
      this.queue.unshift({ ...job, notBefore: Date.now() + retryAfter * 1000 });
    } else if (status !== undefined && status >= 400 && status < 500) {
      this.stats.failed++;
      this.onError(`telegram: dropped a call that Telegram refused (${e.message})`);
    } else {
      // Back at the front: a chat's jobs run strictly in order.
      this.queue.unshift({ ...job, attempt: job.attempt + 1, notBefore: Date.now() + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** job.attempt) });
    }
  }
}
