import { api, ApiError, qs } from '../api.ts';
import { badge, h, json, notice, replace, time, until, type Child } from '../dom.ts';
import { every, type Me, type PageContext, type PageDef } from '../page.ts';
import { passkeyAssertion } from '../passkey.ts';

/**
 * Approvals, live. The queue is fetched once, then kept current by the server's event stream
 * (GET /api/v1/approvals/events): each event names an approval, which is refetched and redrawn,
 * moved to "recently decided" once closed. Every (re)connection refetches the whole queue, so
 * nothing that changed while the stream was down is missed. Approvers decide here; admins see
 * the same cards read-only (the API refuses their votes anyway).
 */
interface Vote {
  approver_id: string;
  name: string;
  vote: 'approve' | 'deny' | 'cancel';
  at: string;
  comment?: string;
}

export interface Approval {
  id: string;
  permission_id: string;
  agent_id: string;
  tier: 'sensitive' | 'critical';
  required: number;
  votes: Vote[];
  status: 'pending' | 'delay' | 'approved' | 'denied' | 'expired' | 'cancelled';
  created_at: string;
  expires_at: string;
  delay_until?: string;
  decided_at?: string;
  close_reason?: string;
  request_digest: string;
  action: string;
  resource: string;
  request?: {
    agent: { id: string; name: string; class: string; trust_tier: string };
    action: string;
    resource: string;
    scope: Record<string, unknown>;
    context: Record<string, unknown>;
    value?: number;
    currency?: string;
    digest: string;
    policy: { hash: string; escalated_by: string[] };
  };
}

const OPEN = new Set<Approval['status']>(['pending', 'delay']);
const RECENT = 10;

/** Countdowns in the page tick once a second; each element names the time it counts to. */
function countdown(iso: string, kind: 'expires' | 'delay'): HTMLElement {
  return h('span', { class: 'countdown', 'data-countdown': kind, 'data-until': iso, title: iso }, until(iso));
}

function tick(root: HTMLElement): void {
  const now = Date.now();
  for (const el of root.querySelectorAll<HTMLElement>('[data-until]')) el.textContent = until(el.dataset.until!, now);
}

const amount = (a: Approval): string | undefined => (a.request?.value !== undefined ? `${a.request.value}${a.request.currency ? ` ${a.request.currency}` : ''}` : undefined);

function votes(a: Approval): Child {
  const approvals = a.votes.filter((v) => v.vote === 'approve').length;
  return h(
    'div',
    { class: 'votes' },
    h('span', { 'data-vote-count': approvals }, `${approvals} of ${a.required} approval${a.required === 1 ? '' : 's'}`),
    a.votes.length > 0 &&
      h(
        'ul',
        { class: 'vote-list' },
        a.votes.map((v) =>
          h('li', { 'data-vote': v.vote, 'data-approver-id': v.approver_id }, badge(v.vote), ' ', h('strong', {}, v.name), ' ', time(v.at), v.comment ? h('q', { class: 'comment' }, v.comment) : undefined),
        ),
      ),
  );
}

/** What an approver must see to decide, as the API gives it. */
function details(a: Approval): HTMLDListElement {
  const r = a.request;
  const { reason, ...context } = (r?.context ?? {}) as Record<string, unknown>;
  const rows: Array<[string, Child]> = [
    ['Agent', r ? h('span', {}, h('strong', {}, r.agent.name), ` · class ${r.agent.class} · trust ${r.agent.trust_tier}`) : a.permission_id],
    ['Action', h('code', {}, r?.action ?? a.action)],
    ['Resource', h('code', {}, r?.resource ?? a.resource)],
    ['Value', amount(a)],
    ['Reason', typeof reason === 'string' ? reason : reason !== undefined ? JSON.stringify(reason) : undefined],
    ['Scope', r && Object.keys(r.scope).length > 0 ? json(r.scope) : undefined],
    ['Context', Object.keys(context).length > 0 ? json(context) : undefined],
    ['Tier', badge(a.tier)],
    ['Votes', votes(a)],
    ['Expires', OPEN.has(a.status) ? countdown(a.expires_at, 'expires') : time(a.expires_at)],
    ['Delay ends', a.status === 'delay' && a.delay_until ? countdown(a.delay_until, 'delay') : undefined],
    ['Decided', time(a.decided_at)],
    ['Escalated by', r && r.policy.escalated_by.length > 0 ? h('span', { 'data-escalated-by': '' }, r.policy.escalated_by.map((id, i) => [i ? ', ' : '', h('code', {}, id)])) : undefined],
    ['Request digest', h('code', { class: 'mono digest', 'data-digest': '' }, a.request_digest)],
  ];
  return h('dl', { class: 'facts' }, rows.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/**
 * One approval as a card, with its buttons for an approver. The comment box is kept across
 * redraws (by approval id), so a live update never wipes what someone is typing.
 */
class Cards {
  private readonly comments = new Map<string, HTMLTextAreaElement>();

  constructor(
    private readonly me: Me,
    private readonly onChange: (a: Approval) => void,
  ) {}

  render(a: Approval, { link = true }: { link?: boolean } = {}): HTMLElement {
    const card = h('article', { class: `card approval approval-${a.status}`, 'data-approval-id': a.id, 'data-status': a.status, 'data-tier': a.tier });
    const title = `${a.request?.agent.name ?? a.agent_id} wants ${a.request?.action ?? a.action}`;
    replace(
      card,
      h('header', { class: 'approval-head' }, link ? h('a', { href: `/approvals/${encodeURIComponent(a.id)}` }, title) : h('strong', {}, title), ' ', badge(a.status === 'delay' ? 'delayed' : a.status), ' ', badge(a.tier)),
      details(a),
      this.actions(a),
    );
    return card;
  }

  private actions(a: Approval): Child {
    if (!OPEN.has(a.status)) return undefined;
    if (this.me.role !== 'approver') return h('p', { class: 'help' }, 'Read-only: approvers decide; admins see the queue.');
    const status = h('div', { class: 'card-status', 'aria-live': 'polite' });
    const comment = this.comments.get(a.id) ?? h('textarea', { name: 'comment', 'data-comment': '', rows: 2, maxlength: 4096, placeholder: 'Comment (optional; kept in the record)', 'aria-label': 'Comment' });
    this.comments.set(a.id, comment);
    const mine = a.votes.find((v) => v.approver_id === this.me.id);
    const buttons: HTMLButtonElement[] = [];
    const button = (action: 'approve' | 'deny' | 'cancel', label: string, kind: string) => {
      const b = h('button', { type: 'button', class: kind, 'data-action': action, name: action }, label);
      b.addEventListener('click', () => void this.decide(a, action, comment, status, buttons));
      buttons.push(b);
      return b;
    };
    if (a.status === 'delay') {
      return h(
        'div',
        { class: 'decide' },
        h('p', { class: 'help' }, 'Approved by enough people; it takes effect when the delay ends unless someone cancels it.'),
        h('label', {}, 'Why cancel', comment),
        h('div', { class: 'actions' }, button('cancel', 'Cancel', 'danger')),
        status,
      );
    }
    if (mine) return h('div', { class: 'decide' }, h('p', { class: 'help', 'data-my-vote': mine.vote }, `You voted ${mine.vote}; waiting for ${a.required - a.votes.filter((v) => v.vote === 'approve').length} more.`));
    return h(
      'div',
      { class: 'decide' },
      h('label', {}, 'Comment', comment),
      h('div', { class: 'actions' }, button('approve', a.tier === 'critical' ? 'Approve with passkey' : 'Approve', 'ok'), button('deny', 'Deny', 'danger')),
      a.tier === 'critical' && h('p', { class: 'help' }, 'A critical approval needs a fresh passkey assertion bound to this request.'),
      status,
    );
  }

  private async decide(a: Approval, action: 'approve' | 'deny' | 'cancel', comment: HTMLTextAreaElement, status: HTMLElement, buttons: HTMLButtonElement[]): Promise<void> {
    for (const b of buttons) b.disabled = true;
    replace(status);
    const text = comment.value.trim();
    try {
      let body: Record<string, unknown>;
      if (action === 'approve') {
        body = { request_digest: a.request_digest, ...(text ? { comment: text } : {}) };
        // The assertion is bound to this approval's digest; without one nothing is sent.
        if (a.tier === 'critical') body.webauthn = await passkeyAssertion(a.id);
      } else {
        body = text ? { reason: text } : {};
      }
      const updated = await api<Approval>('POST', `/api/v1/approvals/${encodeURIComponent(a.id)}/${action}`, body);
      this.comments.delete(a.id);
      this.onChange(updated);
    } catch (err) {
      for (const b of buttons) b.disabled = false;
      const message = err instanceof ApiError && err.reasonCode === 'request_mismatch' ? 'This request changed since you looked at it; it has been reloaded, look again.' : (err as Error).message;
      status.append(notice(message, 'error'));
      if (err instanceof ApiError && err.status > 0) {
        const fresh = await api<Approval>('GET', `/api/v1/approvals/${encodeURIComponent(a.id)}`).catch(() => undefined);
        if (fresh && (fresh.status !== a.status || fresh.request_digest !== a.request_digest || fresh.votes.length !== a.votes.length)) this.onChange(fresh);
      }
    }
  }
}

/**
 * Follows the event stream until the page is left; `changed` gets each approval id, `connected`
 * each (re)connection. The browser reconnects by itself after a dropped stream; after a refusal
 * (the session ended) `connected` is asked again a little later, and its fetch finds the 401.
 */
function follow(signal: AbortSignal, live: HTMLElement, connected: () => void, changed: (id: string) => void): void {
  let source: EventSource | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const state = (value: 'connecting' | 'live' | 'reconnecting', text: string) => {
    live.dataset.state = value;
    live.textContent = text;
  };
  const open = () => {
    state('connecting', 'Connecting…');
    source = new EventSource('/api/v1/approvals/events');
    source.addEventListener('open', () => {
      state('live', '● Live');
      connected();
    });
    source.addEventListener('approval', (event) => {
      try {
        const data = JSON.parse((event as MessageEvent<string>).data) as { approval_id: string };
        changed(data.approval_id);
      } catch {
        // not ours
      }
    });
    source.addEventListener('error', () => {
      state('reconnecting', 'Reconnecting…');
      if (source?.readyState === EventSource.CLOSED) {
        retry = setTimeout(() => {
          connected();
          open();
        }, 5000);
      }
    });
  };
  open();
  signal.addEventListener('abort', () => {
    source?.close();
    clearTimeout(retry);
  });
}

async function renderQueue({ root, me, signal }: PageContext): Promise<void> {
  const live = h('span', { id: 'live', class: 'live', 'data-state': 'connecting', role: 'status' }, 'Connecting…');
  const queue = h('div', { id: 'queue', class: 'cards' });
  const recent = h('div', { id: 'recent', class: 'cards' });
  const empty = h('p', { id: 'queue-empty', class: 'help' }, 'Nothing is waiting for approval.');
  const problems = h('div', { id: 'approvals-status' });
  const known = new Map<string, Approval>();
  const cards = new Cards(me, (a) => place(a));

  function place(a: Approval): void {
    known.set(a.id, a);
    const card = cards.render(a);
    const existing = root.querySelector(`[data-approval-id="${CSS.escape(a.id)}"]`);
    const open = OPEN.has(a.status);
    if (existing && existing.parentElement === (open ? queue : recent)) existing.replaceWith(card);
    else {
      existing?.remove();
      if (open) queue.append(card);
      else recent.prepend(card);
    }
    while (recent.children.length > RECENT) recent.lastElementChild!.remove();
    empty.hidden = queue.children.length > 0;
  }

  const refreshAll = async () => {
    try {
      const [open, all] = await Promise.all([
        api<{ approvals: Approval[] }>('GET', `/api/v1/approvals${qs({ status: 'pending', limit: 100 })}`),
        api<{ approvals: Approval[] }>('GET', `/api/v1/approvals${qs({ status: 'all', limit: 25 })}`),
      ]);
      if (signal.aborted) return;
      replace(problems);
      const openIds = new Set(open.approvals.map((a) => a.id));
      // Open cards that are no longer open move to "recent" when their own fetch says how they ended.
      for (const card of [...queue.querySelectorAll<HTMLElement>('[data-approval-id]')]) if (!openIds.has(card.dataset.approvalId!)) void refreshOne(card.dataset.approvalId!);
      for (const a of all.approvals.filter((x) => !OPEN.has(x.status)).reverse()) if (!known.has(a.id)) place(a);
      for (const a of open.approvals) place(a);
    } catch (err) {
      replace(problems, notice((err as Error).message, 'error'));
    }
  };
  const refreshOne = async (id: string) => {
    try {
      const a = await api<Approval>('GET', `/api/v1/approvals/${encodeURIComponent(id)}`);
      if (!signal.aborted) place(a);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) replace(problems, notice((err as Error).message, 'error'));
    }
  };

  replace(
    root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Approvals'), live),
    me.role === 'admin' ? notice('You are signed in as an admin: you see the queue, approvers decide.', 'info') : undefined,
    problems,
    h('section', { 'aria-labelledby': 'queue-title' }, h('h2', { id: 'queue-title' }, 'Waiting'), empty, queue),
    h('section', { 'aria-labelledby': 'recent-title' }, h('h2', { id: 'recent-title' }, 'Recently decided'), recent),
  );
  await refreshAll();
  every(signal, 1000, () => tick(root));
  follow(signal, live, () => void refreshAll(), (id) => void refreshOne(id));
}

async function renderOne({ root, me, params, signal }: PageContext): Promise<void> {
  const id = params.id!;
  const live = h('span', { id: 'live', class: 'live', 'data-state': 'connecting', role: 'status' }, 'Connecting…');
  const holder = h('div', { id: 'approval' });
  const trace = h('section', { id: 'trace' });
  const problems = h('div', { id: 'approvals-status' });
  const cards = new Cards(me, (a) => show(a));
  let current: Approval | undefined;
  const show = (a: Approval) => {
    current = a;
    replace(holder, cards.render(a, { link: false }));
  };
  const load = async () => {
    try {
      show(await api<Approval>('GET', `/api/v1/approvals/${encodeURIComponent(id)}`));
      replace(problems);
    } catch (err) {
      replace(problems, notice(err instanceof ApiError && err.status === 404 ? `There is no approval ${id}.` : (err as Error).message, 'error'));
    }
  };
  replace(root, h('p', {}, h('a', { href: '/approvals' }, '← All approvals')), h('div', { class: 'page-head' }, h('h1', {}, 'Approval'), live), problems, holder, trace);
  await load();
  // The cascade's trace is the permission's, which admins may read (an approver sees the policies that escalated it above).
  if (me.role === 'admin' && current) {
    const permissionId = current.permission_id;
    const permission = permissionId ? await api<{ trace: Array<{ step: string; outcome: string; ms: number; reason?: string }>; policy: { determining: string[] } }>('GET', `/api/v1/permissions/${encodeURIComponent(permissionId)}`).catch(() => undefined) : undefined;
    if (permission)
      replace(
        trace,
        h('h2', {}, 'Trace'),
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { 'data-trace': '' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Step'), h('th', {}, 'Outcome'), h('th', {}, 'Reason'), h('th', {}, 'ms'))),
            h('tbody', {}, permission.trace.map((s) => h('tr', {}, h('td', {}, s.step), h('td', {}, badge(s.outcome)), h('td', {}, s.reason ?? ''), h('td', {}, s.ms.toFixed(1))))),
          ),
        ),
        h('p', {}, h('a', { href: `/permissions/${encodeURIComponent(permissionId!)}` }, 'The permission, its receipt and log entry')),
      );
  }
  every(signal, 1000, () => tick(root));
  follow(signal, live, () => void load(), (changed) => changed === id && void load());
}

export const approvals: PageDef = {
  path: '/approvals',
  title: 'Approvals',
  roles: ['admin', 'approver'],
  nav: true,
  render: renderQueue,
};

export const approval: PageDef = {
  path: '/approvals/:id',
  title: 'Approval',
  roles: ['admin', 'approver'],
  nav: false,
  render: renderOne,
};
