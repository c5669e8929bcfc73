import { Telegraf } from 'telegraf';
import type { Update } from 'telegraf/types';
import { safeEqual, sha256 } from '../src/crypto/encoding.ts';
import type { Writ } from '../src/writ.ts';
import { registerDecide } from './features/decide.ts';
import { Cards } from './features/cards.ts';
import { registerLinking } from './features/link.ts';
import { registerLogin } from './features/login.ts';
import { Outbox, type OutboxStats } from './outbox.ts';

/**
 * The Telegram approval surface, one more surface over the approval state machine. In order:
 * linking and commands (with /login, the dashboard's sign-in link), taps, cards that follow every
 * approval. Updates come by long polling (default) or by webhook; every outgoing call goes through
 * the rate-limited outbox, so a slow or unreachable Telegram never holds up an approval.
 *
 * Of the nodes sharing a database one at a time leads (a lease): it polls, or registers the
 * webhook, and keeps the approval cards. Every node handles the updates that reach it (webhook
 * mode through the load balancer), since each is a conditional write in the shared database.
 */
export interface BotDeps {
  writ: Writ;
  cards: Cards;
  /** For replies that must arrive (a sign-in link): sent in order, retried through network failures. */
  outbox: Outbox;
}

export interface TelegramHealth extends OutboxStats {
  enabled: true;
  mode: 'polling' | 'webhook';
  /** This node polls (or registered the webhook) and keeps the cards; of nodes sharing a database, one does. */
  leader: boolean;
  connected: boolean;
  bot_username?: string;
  linked_approvers: number;
}

export interface TelegramBot {
  readonly health: TelegramHealth;
  /** Webhook mode: whether a request carries the secret token Writ registered (asked before its body is read). */
  acceptsSecret(secretHeader: string | undefined): boolean;
  /** Webhook mode: an update POSTed by Telegram, from a request `acceptsSecret` passed. */
  handleUpdate(update: unknown): Promise<void>;
  /** Takes up or gives up leading: polling (or registering the webhook) and keeping the cards. */
  lead(on: boolean): Promise<void>;
  stop(): Promise<void>;
}

const POLL_TIMEOUT_S = 25;
/** The next update to ask for, kept in the store: a node that takes over the bot goes on from there. */
const OFFSET_KEY = 'telegram/offset';
const MAX_BACKOFF_MS = 30_000;

/** `secret` is the webhook's secret token: every node of a database derives the same one, so any of them accepts Telegram's calls. */
export async function startTelegram(writ: Writ, secret: string): Promise<TelegramBot> {
  const { config } = writ;
  const bot = new Telegraf(config.telegramBotToken!, { telegram: { apiRoot: config.telegramApiRoot, webhookReply: false }, handlerTimeout: 30_000 });
  const outbox = new Outbox((m) => writ.report(m, 'warn'));
  const cards = new Cards(writ, writ.store, bot.telegram, outbox);
  const deps: BotDeps = { writ, cards, outbox };

  registerLinking(bot, deps);
  registerLogin(bot, deps);
  registerDecide(bot, deps);
  bot.catch((err) => writ.report(`telegram update failed: ${(err as Error).message}`, 'error'));

  let connected = false;
  let username: string | undefined;
  let linked = (await writ.principals.linkedApprovers()).length;
  const stopping = new AbortController();
  /** While this node leads: its term's signal, the loop it runs, and how to stop following events. */
  let leading: { term: AbortController; running: Promise<void>; unsubscribe: () => void } | undefined;
  const secretDigest = sha256(secret);
  const ok = () => {
    // Back after an outage (or newly leading): bring every open approval's cards up to date.
    if (!connected && leading) void cards.resync().catch((err) => writ.report(`telegram resync: ${(err as Error).message}`, 'error'));
    connected = true;
    outbox.stats.last_ok_at = new Date().toISOString();
  };
  const failed = (err: unknown) => {
    connected = false;
    outbox.stats.last_error = { at: new Date().toISOString(), message: (err as Error).message };
  };
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

  /** Says hello to Telegram (and, leading, registers our webhook or clears it for polling) until it answers. */
  const connect = async (signal: AbortSignal, register: boolean) => {
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        // Telegraf would otherwise fetch (and cache a failed) getMe inside the first update.
        bot.botInfo = await bot.telegram.getMe();
        username = bot.botInfo.username;
        if (register && config.telegramMode === 'webhook') {
          await bot.telegram.setWebhook(config.telegramWebhookUrl!, { secret_token: secret, allowed_updates: ['message', 'callback_query'] });
        } else if (register) {
          await bot.telegram.deleteWebhook();
        }
        ok();
        return;
      } catch (err) {
        failed(err);
        await sleep(Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt));
      }
    }
  };

  const poll = async (signal: AbortSignal) => {
    await connect(signal, true);
    // Where the last leader stopped (Telegram re-sends updates not yet confirmed by a later offset).
    let offset = Number((await writ.store.get(OFFSET_KEY).catch(() => undefined)) ?? 0);
    for (let failures = 0; !signal.aborted; ) {
      try {
        const updates = (await bot.telegram.callApi('getUpdates', { offset, timeout: POLL_TIMEOUT_S, allowed_updates: ['message', 'callback_query'] }, { signal: signal as never })) as Update[];
        ok();
        failures = 0;
        for (const update of updates) {
          offset = update.update_id + 1;
          await bot.handleUpdate(update).catch((err) => writ.report(`telegram update failed: ${(err as Error).message}`, 'error'));
        }
        if (updates.length > 0) await writ.store.batch([{ type: 'put', key: OFFSET_KEY, value: String(offset) }]).catch(() => undefined);
        // Telegram holds an empty long poll open; a server that answers at once must not spin us.
        if (updates.length === 0) await sleep(100);
      } catch (err) {
        if (signal.aborted) return;
        failed(err);
        await sleep(Math.min(MAX_BACKOFF_MS, 500 * 2 ** failures++));
      }
    }
  };

  // A node that does not lead still handles the webhook's updates that reach it: it needs the bot's own identity.
  const hello = config.telegramMode === 'webhook' ? connect(stopping.signal, false) : Promise.resolve();
  const lead = async (on: boolean) => {
    if (on && !leading && !stopping.signal.aborted) {
      const term = new AbortController();
      const unsubscribe = writ.permissions.events.add(cards);
      connected = false;
      const running = config.telegramMode === 'polling' ? poll(AbortSignal.any([term.signal, stopping.signal])) : connect(AbortSignal.any([term.signal, stopping.signal]), true);
      leading = { term, running, unsubscribe };
    } else if (!on && leading) {
      const { term, running, unsubscribe } = leading;
      leading = undefined;
      unsubscribe();
      term.abort();
      await running.catch(() => undefined);
    }
  };
  const refreshLinked = setInterval(() => void writ.principals.linkedApprovers().then((l) => (linked = l.length), () => undefined), 10_000);
  refreshLinked.unref();

  return {
    get health(): TelegramHealth {
      return { enabled: true, mode: config.telegramMode, leader: leading !== undefined, connected, ...(username ? { bot_username: username } : {}), linked_approvers: linked, ...outbox.stats };
    },
    acceptsSecret(secretHeader) {
      // Both sides hashed first, so the comparison takes the same time whatever the header's length.
      return config.telegramMode === 'webhook' && secretHeader !== undefined && safeEqual(sha256(secretHeader), secretDigest);
    },
    async handleUpdate(update) {
      ok();
      await bot.handleUpdate(update as Update);
    },
    lead,
    async stop() {
      stopping.abort();
      clearInterval(refreshLinked);
      await lead(false);
      outbox.stop();
      await hello.catch(() => undefined);
    },
  };
}
