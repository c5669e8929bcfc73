import { api, qs } from '../api.ts';
import { badge, copyButton, h, notice, replace, time, type Child } from '../dom.ts';
import type { PageDef } from '../page.ts';

/**
 * Principals (admin): agents, approvers, attesters and resource servers, a page at a time; create
 * one (its key is shown once), rotate its key (the new one shown once), revoke it after a
 * confirmation, and give an approver a fresh link code for the Telegram bot, with a QR code.
 */
interface Listed {
  id: string;
  name: string;
  created_at: string;
  revoked?: { at: string; reason: string };
  class?: string;
  trust_tier?: string;
  touchpoint_id?: string;
  telegram?: { username?: string; linked_at: string };
}

interface Kind {
  collection: 'agents' | 'approvers' | 'attesters' | 'resource-servers';
  title: string;
  one: string;
  /** The revocation scope (POST /api/v1/oap/revocations); resource servers have none. */
  revoke?: 'agent' | 'approver' | 'attester';
  columns: Array<[string, (p: Listed) => Child]>;
  fields: Array<{ name: string; label: string; input: () => HTMLInputElement | HTMLSelectElement; help?: string }>;
}

const TRUST_TIERS = ['unregistered', 'T1', 'T2', 'T3', 'T4', 'T5'];
const REASONS = ['compromised', 'superseded', 'policy_violation', 'decommissioned', 'other'];
const PAGE_SIZE = 25;

const text = (name: string, attributes: Record<string, string | boolean> = {}) => () => h('input', { name, id: `new-${name}`, autocomplete: 'off', ...attributes });

const KINDS: Kind[] = [
  {
    collection: 'agents',
    title: 'Agents',
    one: 'agent',
    revoke: 'agent',
    columns: [
      ['Class', (p) => p.class],
      ['Trust tier', (p) => p.trust_tier],
    ],
    fields: [
      { name: 'name', label: 'Name', input: text('name', { required: true, maxlength: '200' }) },
      { name: 'class', label: 'Class', input: text('class', { placeholder: 'default', pattern: '[a-z0-9][a-z0-9_.\\-]{0,63}' }), help: 'Policies see it as principal.class' },
      { name: 'trust_tier', label: 'Trust tier', input: () => h('select', { name: 'trust_tier', id: 'new-trust_tier' }, TRUST_TIERS.map((t) => h('option', { value: t }, t))) },
    ],
  },
  {
    collection: 'approvers',
    title: 'Approvers',
    one: 'approver',
    revoke: 'approver',
    columns: [['Telegram', (p) => (p.telegram ? `linked${p.telegram.username ? ` as @${p.telegram.username}` : ''}` : 'not linked')]],
    fields: [
      { name: 'name', label: 'Name', input: text('name', { required: true, maxlength: '200' }) },
      { name: 'telegram_user_id', label: 'Telegram user id (optional)', input: text('telegram_user_id', { inputmode: 'numeric', pattern: '[0-9]{1,15}' }), help: 'When given, only this Telegram user can link' },
    ],
  },
  {
    collection: 'attesters',
    title: 'Attesters',
    one: 'attester',
    revoke: 'attester',
    columns: [['Touchpoint', (p) => (p.touchpoint_id ? h('code', {}, p.touchpoint_id) : undefined)]],
    fields: [
      { name: 'name', label: 'Name', input: text('name', { required: true, maxlength: '200' }) },
      { name: 'touchpoint_id', label: 'Touchpoint', input: text('touchpoint_id', { required: true, maxlength: '200' }), help: 'The oversight touchpoint this engine attests for' },
    ],
  },
  {
    collection: 'resource-servers',
    title: 'Resource servers',
    one: 'resource server',
    columns: [],
    fields: [{ name: 'name', label: 'Name', input: text('name', { required: true, maxlength: '200' }) }],
  },
];

export const principals: PageDef = {
  path: '/principals',
  title: 'Principals',
  roles: ['admin'],
  nav: true,
  async render({ root }) {
    // The kind is in the fragment (#approvers): the server serves the page without a query.
    const body = h('div', { id: 'principals-body' });
    const tabs = KINDS.map((k) => {
      const tab = h('button', { type: 'button', class: 'secondary', id: `tab-${k.collection}`, 'aria-controls': 'principals-body' }, k.title);
      tab.addEventListener('click', () => {
        history.replaceState(null, '', `#${k.collection}`);
        void draw(k);
      });
      return tab;
    });
    const draw = async (kind: Kind) => {
      for (const [i, tab] of tabs.entries()) tab.setAttribute('aria-pressed', String(KINDS[i] === kind));
      replace(body);
      await renderKind(body, kind);
    };
    root.append(h('h1', {}, 'Principals'), h('div', { class: 'actions', role: 'group', 'aria-label': 'Kinds of principal' }, tabs), body);
    await draw(KINDS.find((k) => `#${k.collection}` === location.hash) ?? KINDS[0]!);
  },
};

async function renderKind(root: HTMLElement, kind: Kind): Promise<void> {
  // Shown once: a created principal's key, a rotated key, a link code.
  const once = h('div', { id: 'shown-once' });
  const message = h('div', { id: 'principals-message' });
  const tbody = h('tbody', { id: 'principals-rows' });
  const more = h('button', { type: 'button', class: 'secondary', id: 'principals-more', hidden: true }, 'More');
  const bot = botUsername();
  const table = h(
    'div',
    { class: 'table-wrap' },
    h('table', { id: 'principals-table' }, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Id'), kind.columns.map(([title]) => h('th', {}, title)), h('th', {}, 'Created'), h('th', {}, 'Status'), h('th', {}, 'Actions'))), tbody),
  );
  const show = (...children: Child[]) => {
    replace(once, ...children);
    once.scrollIntoView?.({ block: 'nearest' });
  };
  const tell = (text: string, kindOf: 'ok' | 'error' = 'ok') => replace(message, notice(text, kindOf));

  const row = (p: Listed): HTMLTableRowElement => {
    const actions = h('div', { class: 'actions' });
    const tr = h(
      'tr',
      { 'data-id': p.id },
      h('td', {}, p.name),
      h('td', {}, h('code', {}, p.id)),
      kind.columns.map(([, cell]) => h('td', {}, cell(p))),
      h('td', {}, time(p.created_at)),
      h('td', {}, p.revoked ? [badge('revoked'), ' ', p.revoked.reason] : badge('active')),
      h('td', {}, actions),
    );
    if (p.revoked) return tr;
    const rotate = h('button', { type: 'button', class: 'secondary', 'data-action': 'rotate' }, 'Rotate key');
    rotate.addEventListener('click', async () => {
      rotate.disabled = true;
      try {
        const rotated = await api<{ api_key: string; key_id: string; retired_key_ids: string[] }>('POST', `/api/v1/${kind.collection}/${encodeURIComponent(p.id)}/keys`);
        show(keyCard(`New key for ${p.name}`, rotated.api_key, `The ${rotated.retired_key_ids.length === 1 ? 'old key has' : `${rotated.retired_key_ids.length} old keys have`} stopped working.`));
      } catch (err) {
        tell((err as Error).message, 'error');
      } finally {
        rotate.disabled = false;
      }
    });
    actions.append(rotate);
    if (kind.collection === 'approvers') {
      const link = h('button', { type: 'button', class: 'secondary', 'data-action': 'link-code' }, 'Link code');
      link.addEventListener('click', async () => {
        link.disabled = true;
        try {
          const issued = await api<{ link_code: string; expires_at: string }>('POST', `/api/v1/approvers/${encodeURIComponent(p.id)}/link-code`);
          show(linkCard(p.name, issued.link_code, issued.expires_at, await bot));
        } catch (err) {
          tell((err as Error).message, 'error');
        } finally {
          link.disabled = false;
        }
      });
      actions.append(link);
    }
    if (kind.revoke) {
      const scope = kind.revoke;
      const revoke = h('button', { type: 'button', class: 'danger', 'data-action': 'revoke' }, 'Revoke');
      revoke.addEventListener('click', () => {
        const reason = h('select', { 'aria-label': 'Reason', 'data-field': 'reason' }, REASONS.map((r) => h('option', { value: r }, r.replace('_', ' '))));
        const confirm = h('button', { type: 'button', class: 'danger', 'data-action': 'confirm-revoke' }, `Revoke ${p.name}`);
        const cancel = h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel-revoke' }, 'Keep');
        const ask = h('div', { class: 'confirm', role: 'group', 'aria-label': `Revoke ${p.name}?` }, h('p', {}, `Revoke ${p.name}? Its keys stop working at once${scope === 'agent' ? ', and its tokens and open approvals go with them' : scope === 'approver' ? ', and its votes on open approvals stop counting' : ''}. This cannot be undone.`), reason, h('div', { class: 'actions' }, confirm, cancel));
        replace(actions, ask);
        cancel.addEventListener('click', () => tr.replaceWith(row(p)));
        confirm.addEventListener('click', async () => {
          confirm.disabled = true;
          try {
            await api('POST', '/api/v1/oap/revocations', { scope, id: p.id, reason: reason.value });
            tr.replaceWith(row({ ...p, revoked: { at: new Date().toISOString(), reason: reason.value } }));
            tell(`${p.name} is revoked.`);
          } catch (err) {
            confirm.disabled = false;
            tell((err as Error).message, 'error');
          }
        });
      });
      actions.append(revoke);
    }
    return tr;
  };

  let cursor: string | undefined;
  const load = async (first: boolean) => {
    const page = await api<{ items: Listed[]; next_cursor?: string }>('GET', `/api/v1/${kind.collection}${qs({ limit: PAGE_SIZE, cursor: first ? undefined : cursor })}`);
    if (first) replace(tbody);
    tbody.append(...page.items.map(row));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    if (first && page.items.length === 0) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: kind.columns.length + 5 }, `No ${kind.title.toLowerCase()} yet.`)));
  };
  more.addEventListener('click', () => load(false).catch((err) => tell((err as Error).message, 'error')));

  const inputs = kind.fields.map((f) => ({ ...f, element: f.input() }));
  const form = h(
    'form',
    { class: 'card', id: 'create-form', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, `New ${kind.one}`),
    h('div', { class: 'filters' }, inputs.map((f) => h('div', {}, h('label', { for: f.element.id }, f.label), f.element, f.help ? h('p', { class: 'help' }, f.help) : undefined))),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, `Create ${kind.one}`)),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body: Record<string, unknown> = {};
    for (const f of inputs) {
      const value = f.element.value.trim();
      if (value) body[f.name] = f.name === 'telegram_user_id' ? Number(value) : value;
    }
    try {
      const created = await api<Listed & { api_key: string; link_code?: string }>('POST', `/api/v1/${kind.collection}`, body);
      form.reset();
      show(
        keyCard(`Key for ${created.name}`, created.api_key, `${created.id} is registered.`),
        created.link_code ? linkCard(created.name, created.link_code, undefined, await bot) : undefined,
      );
      replace(message);
      await load(true);
      const { api_key: _key, link_code: _code, ...listed } = created;
      if (!tbody.querySelector(`tr[data-id="${CSS.escape(created.id)}"]`)) tbody.prepend(row(listed));
    } catch (err) {
      tell((err as Error).message, 'error');
    }
  });

  root.append(form, once, message, h('h2', {}, kind.title), table, h('div', { class: 'actions' }, more));
  await load(true);
}

/** A key, shown this once: the server keeps only its hash. */
function keyCard(title: string, key: string, note: string): HTMLElement {
  return h(
    'section',
    { class: 'card', id: 'new-key', 'aria-labelledby': 'new-key-title' },
    h('h2', { id: 'new-key-title' }, title),
    h('p', {}, note),
    h('pre', { id: 'new-key-value' }, key),
    h('div', { class: 'actions' }, copyButton(key, 'Copy key')),
    notice('This key will not be shown again: copy it now and keep it somewhere safe. If it is lost, rotate the key.', 'error'),
  );
}

/** An approver's link code, with a QR code of the bot link (or of the code, when the bot's name is not known). */
function linkCard(name: string, code: string, expiresAt: string | undefined, bot: string | undefined): HTMLElement {
  const until: Child = expiresAt ? ['until ', time(expiresAt)] : 'for 24 hours';
  const link = bot ? `https://t.me/${bot}?start=${encodeURIComponent(code)}` : undefined;
  return h(
    'section',
    { class: 'card', id: 'link-code', 'aria-labelledby': 'link-code-title' },
    h('h2', { id: 'link-code-title' }, `Link ${name}'s Telegram`),
    link
      ? h('p', {}, 'Scan with the phone that has Telegram, or open the link; the bot links the chat. Single use, ', until, '.')
      : h('p', {}, 'Send the bot ', h('code', {}, `/start ${code}`), ' in a private chat; single use, ', until, '.'),
    h('pre', { id: 'link-code-value', 'data-qr': link ?? code }, link ?? code),
    h('div', { class: 'actions' }, copyButton(link ?? code, link ? 'Copy link' : 'Copy code')),
    qrOf(link ?? code, link ? `QR code of the bot link for ${name}` : `QR code of ${name}'s link code`),
    link ? undefined : h('p', { class: 'help', id: 'link-code-no-bot' }, "The bot's username is not known (no Telegram bot is connected), so the QR code holds the code itself, not a link."),
  );
}

/** The bot's @username from GET /api/v1/status, when a bot is connected. */
async function botUsername(): Promise<string | undefined> {
  try {
    const s = await api<{ telegram: { enabled: boolean; bot_username?: string } }>('GET', '/api/v1/status');
    return s.telegram.enabled ? s.telegram.bot_username : undefined;
  } catch {
    return undefined;
  }
}

/** The QR code, drawn once its encoder has loaded: a chunk of its own, fetched only when a link code is shown. */
function qrOf(text: string, label: string): HTMLElement {
  const box = h('div', { class: 'qr' });
  void import('../qr.ts').then(({ qrSvg }) => box.append(qrSvg(text, label)));
  return box;
}
