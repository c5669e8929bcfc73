import { api, ApiError, qs } from '../api.ts';
import { badge, facts, h, json, notice, replace, time } from '../dom.ts';
import type { PageDef } from '../page.ts';
import { logKey } from './log.ts';

/**
 * Permissions and their receipts. The list searches GET /api/v1/permissions by its filters and
 * pages by its cursor; a permission's page shows the decision's trace, its receipt decoded and its
 * signature checked here (writ-verify, against the JWKS), and its log entry with an inclusion proof
 * checked here against the signed checkpoint.
 */
const STATUSES = ['pending', 'approved', 'denied', 'expired', 'used', 'revoked'] as const;
const FILTERS = ['agent', 'action', 'status', 'since'] as const;

interface Permission {
  id: string;
  status: string;
  decision: string;
  policy_decision: string;
  tier: string;
  action: string;
  resource: string;
  scope: Record<string, unknown>;
  value?: number;
  currency?: string;
  reasons: string[];
  receipt?: string;
  expires_at: string;
  created_at: string;
  log?: { index: number; leaf_hash: string };
  policy: { hash: string; determining: string[]; languages?: string[] };
  failure?: { step: string; code: string };
  trace: Array<{ step: string; outcome: string; ms: number; reason?: string; failure?: string }>;
}

/** "2026-05-01T10:00" (a datetime-local value, the reader's time) ⇄ RFC 3339. */
const toLocalInput = (iso: string | null): string => {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

export const permissions: PageDef = {
  path: '/permissions',
  title: 'Permissions',
  roles: ['admin'],
  nav: true,
  async render({ root, query, navigate }) {
    const input = (name: string, attributes: Record<string, string>) => h('input', { id: `filter-${name}`, name, value: query.get(name) ?? '', ...attributes });
    const status = h('select', { id: 'filter-status', name: 'status' }, h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s, selected: query.get('status') === s }, s)));
    const since = h('input', { id: 'filter-since', name: 'since', type: 'datetime-local', value: toLocalInput(query.get('since')) });
    const form = h(
      'form',
      { class: 'filters', id: 'permission-filters' },
      h('label', {}, 'Agent', input('agent', { placeholder: 'agt_…', autocomplete: 'off' })),
      h('label', {}, 'Action', input('action', { placeholder: 'email.send or email.*', autocomplete: 'off' })),
      h('label', {}, 'Status', status),
      h('label', {}, 'Since', since),
      h('button', { type: 'submit' }, 'Search'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const sinceValue = String(data.get('since') ?? '');
      const asked: Record<string, string | undefined> = {
        agent: String(data.get('agent') ?? '').trim(),
        action: String(data.get('action') ?? '').trim(),
        status: String(data.get('status') ?? ''),
        since: sinceValue ? new Date(sinceValue).toISOString() : undefined,
      };
      navigate(`/permissions${qs(asked)}`);
    });
    const results = h('div', { id: 'permission-results' });
    root.append(h('h1', {}, 'Permissions'), form, results);

    const filter = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) ?? undefined]));
    let page: { items: Permission[]; next_cursor: string | null };
    try {
      page = await api('GET', `/api/v1/permissions${qs({ ...filter, cursor: query.get('cursor') ?? undefined, limit: 50 })}`);
    } catch (err) {
      const field = err instanceof ApiError ? (err.detail?.field as string | undefined) : undefined;
      replace(results, notice(`${field ? `${field}: ` : ''}${(err as Error).message}`, 'error'));
      return;
    }
    if (page.items.length === 0) {
      replace(results, notice(query.get('cursor') ? 'No more permissions.' : 'No permission matches.'));
      return;
    }
    const rows = page.items.map((p) =>
      h(
        'tr',
        { 'data-id': p.id },
        h('td', {}, time(p.created_at)),
        h('td', {}, h('a', { href: `/permissions/${encodeURIComponent(p.id)}` }, h('code', {}, p.action))),
        h('td', {}, p.resource),
        h('td', {}, badge(p.status)),
        h('td', {}, badge(p.tier)),
        h('td', {}, badge(p.decision)),
      ),
    );
    const next = page.next_cursor ? h('a', { href: `/permissions${qs({ ...filter, cursor: page.next_cursor })}`, id: 'next-page' }, 'Next page →') : null;
    replace(
      results,
      h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, ['Created', 'Action', 'Resource', 'Status', 'Tier', 'Decision'].map((c) => h('th', {}, c)))), h('tbody', {}, rows))),
      h('div', { class: 'actions' }, next),
    );
  },
};

export const permission: PageDef = {
  path: '/permissions/:id',
  title: 'Permission',
  roles: ['admin'],
  nav: false,
  async render({ root, params }) {
    const p = await api<Permission>('GET', `/api/v1/permissions/${encodeURIComponent(params.id!)}`);
    root.append(
      h('p', {}, h('a', { href: '/permissions' }, '← Permissions')),
      h('h1', {}, 'Permission ', h('code', {}, p.id)),
      h(
        'section',
        { class: 'card' },
        facts([
          ['Status', badge(p.status)],
          ['Decision', [badge(p.decision), p.policy_decision !== p.decision ? ` (the policies answered ${p.policy_decision})` : '']],
          ['Tier', badge(p.tier)],
          ['Action', h('code', {}, p.action)],
          ['Resource', p.resource],
          ['Value', p.value !== undefined ? `${p.value} ${p.currency ?? ''}`.trim() : undefined],
          ['Scope', Object.keys(p.scope).length ? json(p.scope) : undefined],
          ['Reasons', p.reasons.length ? h('ul', {}, p.reasons.map((r) => h('li', {}, r))) : undefined],
          ['Created', time(p.created_at)],
          ['Expires', time(p.expires_at)],
          ['Failure', p.failure ? `${p.failure.code} at ${p.failure.step}` : undefined],
        ]),
      ),
      traceCard(p),
    );
    const receipt = h('section', { class: 'card', id: 'receipt' }, h('h2', {}, 'Receipt'));
    const entry = h('section', { class: 'card', id: 'log-entry' }, h('h2', {}, 'Log entry'));
    root.append(receipt, entry);
    await Promise.all([receiptCheck(receipt, p), logCheck(entry, p)]);
  },
};

function traceCard(p: Permission): HTMLElement {
  return h(
    'section',
    { class: 'card', id: 'trace' },
    h('h2', {}, 'Decision trace'),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        {},
        h('thead', {}, h('tr', {}, ['Step', 'Outcome', 'ms', 'Why'].map((c) => h('th', {}, c)))),
        h('tbody', {}, p.trace.map((s) => h('tr', {}, h('td', {}, h('code', {}, s.step)), h('td', {}, badge(s.outcome)), h('td', {}, s.ms.toFixed(2)), h('td', {}, [s.reason, s.failure ? ` (${s.failure})` : ''])))),
      ),
    ),
    facts([
      ['Policy outcome', badge(p.policy_decision)],
      ['Determining policies', p.policy.determining.length ? h('ul', {}, p.policy.determining.map((d) => h('li', {}, h('code', {}, d)))) : 'none (the default applied)'],
      ['Policy set', h('code', {}, p.policy.hash)],
      ['Languages', p.policy.languages?.join(', ')],
    ]),
  );
}

/** A JWS segment decoded for display, before anything is verified. */
function decodeSegment(segment: string | undefined): unknown {
  try {
    const b64 = (segment ?? '').replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return '(not base64url JSON)';
  }
}

async function receiptCheck(card: HTMLElement, p: Permission): Promise<void> {
  if (!p.receipt) {
    card.append(h('p', {}, p.status === 'pending' ? 'No receipt yet: one is signed when the permission is allowed.' : 'No receipt: receipts are signed for allowed permissions only.'));
    return;
  }
  const [header, payload] = p.receipt.split('.');
  const verdict = h('div', { id: 'receipt-verdict' });
  card.append(verdict, h('h3', {}, 'Header'), json(decodeSegment(header)), h('h3', {}, 'Claims'), json(decodeSegment(payload)), h('details', {}, h('summary', {}, 'Compact JWS'), h('pre', {}, p.receipt)));
  // The crypto is loaded by the pages that check something, not by every page.
  const { ReceiptVerificationError, verifyReceipt } = await import('../../../packages/writ-verify/src/verify.ts');
  try {
    const verified = await verifyReceipt(p.receipt, { jwksUrl: `${location.origin}/.well-known/jwks.json` });
    const mismatch =
      verified.claims.permission_id !== p.id
        ? 'it names another permission'
        : p.log && (verified.claims.log?.index !== p.log.index || verified.claims.log?.leaf_hash !== p.log.leaf_hash)
          ? 'its log anchor is not this permission’s entry'
          : undefined;
    verdict.dataset.outcome = mismatch ? 'invalid' : 'valid';
    replace(
      verdict,
      mismatch
        ? notice(`Signature valid, but ${mismatch}.`, 'error')
        : notice(`Signature valid: verified in this browser against the JWKS (key ${verified.kid || 'without kid'})${verified.expired ? '; the receipt has expired, and is still evidence of the decision' : ''}.`, 'ok'),
    );
  } catch (err) {
    verdict.dataset.outcome = 'invalid';
    const code = err instanceof ReceiptVerificationError ? err.code : 'error';
    replace(verdict, notice(`Signature INVALID (${code}): ${(err as Error).message}`, 'error'));
  }
}

async function logCheck(card: HTMLElement, p: Permission): Promise<void> {
  if (!p.log) {
    card.append(h('p', {}, 'This permission has no log anchor: entries with receipts are anchored once allowed.'));
    return;
  }
  const { decodeBase64Strict, encodeBase64, inclusionRoot, leafHash, openCheckpoint, parseLogKey, sameBytes } = await import('../log-check.ts');
  const verdict = h('div', { id: 'proof-verdict' });
  card.append(facts([['Index', h('a', { href: `/log?from=${p.log.index}` }, String(p.log.index))], ['Leaf hash', h('code', {}, p.log.leaf_hash)]]), verdict);
  try {
    const [proof, keyText, stored] = await Promise.all([
      api<{ index: number; tree_size: number; leaf_hash: string; hashes: string[]; checkpoint: string }>('GET', `/api/v1/log/proof/${p.log.index}`),
      logKey(),
      api<{ entries: Array<{ entry: string | null }> }>('GET', `/api/v1/log/stored${qs({ from: p.log.index, limit: 1 })}`),
    ]);
    const raw = stored.entries[0]?.entry ?? null;
    if (raw !== null) card.append(h('details', {}, h('summary', {}, 'The entry as stored'), json(JSON.parse(raw))));
    const bytes = (b64: string) => {
      const out = decodeBase64Strict(b64);
      if (!out) throw new Error('a hash in the proof is not base64');
      return out;
    };
    const leaf = bytes(proof.leaf_hash);
    const problems: string[] = [];
    if (raw === null) problems.push('the entry is missing from the store');
    else if (encodeBase64(leafHash(new TextEncoder().encode(raw))) !== p.log.leaf_hash) problems.push('the stored entry does not hash to the permission’s leaf hash');
    if (proof.leaf_hash !== p.log.leaf_hash) problems.push('the proof is for another leaf');
    const checkpoint = await openCheckpoint(proof.checkpoint, parseLogKey(keyText));
    if (checkpoint.size !== proof.tree_size) problems.push(`the proof is for a tree of ${proof.tree_size} entries but its checkpoint is of ${checkpoint.size}`);
    const root = inclusionRoot(proof.index, proof.tree_size, leaf, proof.hashes.map(bytes));
    if (!root) problems.push('the proof does not fit its index and tree size');
    else if (!sameBytes(root, checkpoint.rootHash)) problems.push('the proof does not lead to the signed root');
    card.append(
      facts([
        ['Checkpoint', `${checkpoint.size} entries, signed by ${checkpoint.origin}`],
        ['Root hash', h('code', {}, encodeBase64(checkpoint.rootHash))],
        ['Proof', `${proof.hashes.length} hashes`],
      ]),
    );
    verdict.dataset.outcome = problems.length ? 'invalid' : 'valid';
    replace(
      verdict,
      problems.length
        ? notice(`Inclusion proof INVALID: ${problems.join('; ')}.`, 'error')
        : notice(`Inclusion proof valid: entry ${proof.index} is in the tree of ${checkpoint.size} entries whose checkpoint the log key signed (root recomputed and signature checked in this browser).`, 'ok'),
    );
  } catch (err) {
    verdict.dataset.outcome = 'invalid';
    replace(verdict, notice(`Inclusion proof INVALID: ${(err as Error).message}`, 'error'));
  }
}
