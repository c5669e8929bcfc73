import { api } from '../api.ts';
import { badge, facts, h, notice, replace, time } from '../dom.ts';
import { every, type PageDef } from '../page.ts';

/** GET /api/v1/status, as the page reads it. */
interface Status {
  storage: { state: string; reason?: string; since?: string; failures: number; recoveries: number; last_attempt?: { at: string; error: string } };
  log: { origin: string; size: number; checkpoint_size: number; fault?: string };
  policies: {
    hash: string;
    files: string[];
    not_loaded: string[];
    loaded_at: string;
    last_error?: { at: string; problems: string[] };
    worker: { ready: boolean; loaded: string[]; restarts: number; last_restart?: { at: string; reason: string }; warm_up?: { rounds: number; ms: number } };
  };
  telegram:
    | { enabled: false }
    | { enabled: true; mode: string; connected: boolean; bot_username?: string; linked_approvers: number; queued: number; sent: number; failed: number; last_ok_at?: string; last_error?: { at: string; message: string } };
  webhooks: { subscriptions: number; delivered: number; failed_attempts: number; dead: number; last_error?: { at: string; url: string; message: string } };
}

const REFRESH_MS = 5000;

/**
 * The admin's landing page: is Writ well? Each part in a card, its state as a badge, refreshed
 * every few seconds while the page is open.
 */
export const status: PageDef = {
  path: '/status',
  title: 'Status',
  roles: ['admin'],
  nav: true,
  async render({ root, signal }) {
    const cards = h('div', { class: 'cards', id: 'status-cards' });
    const problem = h('div', { id: 'status-problem' });
    const updated = h('p', { class: 'help', id: 'status-updated' });
    root.append(h('h1', {}, 'Status'), problem, cards, updated);
    const refresh = async () => {
      try {
        const s = await api<Status>('GET', '/api/v1/status');
        replace(cards, storageCard(s), logCard(s), policyCard(s), telegramCard(s), webhookCard(s));
        replace(problem);
        replace(updated, 'Updated ', time(new Date().toISOString()), `; refreshed every ${REFRESH_MS / 1000} s.`);
      } catch (err) {
        replace(problem, notice((err as Error).message, 'error'));
      }
    };
    await refresh();
    every(signal, REFRESH_MS, () => void refresh());
  },
};

const card = (id: string, title: string, state: HTMLElement, ...body: Array<Node | undefined>) =>
  h('section', { class: 'card', id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title` }, `${title} `, state), ...body);

function storageCard({ storage }: Status) {
  return card(
    'status-storage',
    'Storage',
    badge(storage.state),
    facts([
      ['State', storage.state],
      ['Why', storage.reason],
      ['Since', time(storage.since)],
      ['Failed writes', storage.failures],
      ['Recoveries', storage.recoveries],
      ['Last attempt', storage.last_attempt ? [time(storage.last_attempt.at), ' ', storage.last_attempt.error] : undefined],
    ]),
    storage.state === 'ok' ? undefined : notice('Writes are refused until the store is reopened and re-verified (see the reason above).', 'error'),
  );
}

function logCard({ log }: Status) {
  return card(
    'status-log',
    'Transparency log',
    badge(log.fault ? 'error' : 'ok'),
    facts([
      ['Entries', h('span', { id: 'log-size' }, String(log.size))],
      ['Checkpoint covers', `${log.checkpoint_size} entries`],
      ['Origin', h('code', {}, log.origin)],
      ['Fault', log.fault],
    ]),
    h('p', {}, h('a', { href: '/log' }, 'Open the log')),
  );
}

function policyCard({ policies }: Status) {
  const ready = policies.worker.ready && policies.not_loaded.length === 0;
  return card(
    'status-policies',
    'Policy engine',
    badge(ready ? 'ok' : 'error'),
    facts([
      ['Active set', h('code', { title: policies.hash }, `${policies.hash.slice(0, 16)}…`)],
      ['Files', policies.files.join(', ') || '(none: every request is denied)'],
      ['Not loaded', policies.not_loaded.length ? policies.not_loaded.join(', ') : undefined],
      ['Loaded', time(policies.loaded_at)],
      ['Worker', policies.worker.ready ? `ready${policies.worker.warm_up ? ` (warmed up in ${policies.worker.warm_up.ms} ms)` : ''}` : 'not ready: requests wait or fail closed'],
      ['Worker restarts', policies.worker.restarts],
      ['Last restart', policies.worker.last_restart ? [time(policies.worker.last_restart.at), ' ', policies.worker.last_restart.reason] : undefined],
    ]),
    policies.last_error ? notice(`The last change was refused (the set above keeps serving): ${policies.last_error.problems[0] ?? ''}`, 'error') : undefined,
    h('p', {}, h('a', { href: '/policies' }, 'Open the policies')),
  );
}

function telegramCard({ telegram }: Status) {
  if (!telegram.enabled) return card('status-telegram', 'Telegram bot', badge('off'), h('p', { class: 'help' }, 'Not configured: approvers decide here or over the API (set WRIT_TELEGRAM_BOT_TOKEN to enable the bot).'));
  return card(
    'status-telegram',
    'Telegram bot',
    badge(telegram.connected ? 'ok' : 'error'),
    facts([
      ['Connection', telegram.connected ? `connected (${telegram.mode})` : `not connected (${telegram.mode})`],
      ['Bot', telegram.bot_username ? `@${telegram.bot_username}` : undefined],
      ['Linked approvers', telegram.linked_approvers],
      ['Messages', `${telegram.sent} sent, ${telegram.queued} queued, ${telegram.failed} failed`],
      ['Last success', time(telegram.last_ok_at)],
      ['Last error', telegram.last_error ? [time(telegram.last_error.at), ' ', telegram.last_error.message] : undefined],
    ]),
  );
}

function webhookCard({ webhooks }: Status) {
  return card(
    'status-webhooks',
    'Webhook outbox',
    badge(webhooks.dead > 0 ? 'warn' : 'ok'),
    facts([
      ['Subscriptions', webhooks.subscriptions],
      ['Delivered', webhooks.delivered],
      ['Failed attempts', webhooks.failed_attempts],
      ['Given up', webhooks.dead],
      ['Last error', webhooks.last_error ? [time(webhooks.last_error.at), ' ', webhooks.last_error.url, ': ', webhooks.last_error.message] : undefined],
    ]),
  );
}
