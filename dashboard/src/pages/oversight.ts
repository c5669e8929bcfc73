import { api, qs } from '../api.ts';
import { badge, facts, h, notice, replace, time } from '../dom.ts';
import { every, type PageDef } from '../page.ts';

interface Touchpoint {
  touchpoint_id: string;
  last_sequence: number;
  last_attestation_at?: string;
  last_heartbeat_at?: string;
  last_seen_at?: string;
  cadence_seconds: number;
  attestations: number;
  gaps: number;
  silent: boolean;
}

interface LegalBases {
  days: number;
  since: string;
  scanned: number;
  classes: Array<{ agent_class: string; total: number; legal_bases: Record<string, number> }>;
}

const WINDOWS = [7, 30, 90];
const REFRESH_MS = 10_000;

/**
 * Oversight: the touchpoints where other engines decide and Writ witnesses — each one's health
 * (silent after three cadences without an attestation or a heartbeat; gaps in its sequence) —
 * and which legal bases each agent class's attested decisions gave, over the last days.
 */
export const oversight: PageDef = {
  path: '/oversight',
  title: 'Oversight',
  roles: ['admin'],
  nav: true,
  async render({ root, signal }) {
    let days = 30;
    const touchpoints = h('div', { id: 'touchpoints' });
    const bases = h('div', { id: 'legal-bases' });
    const windowSelect = h('select', { id: 'legal-bases-days', 'aria-label': 'Window' }, WINDOWS.map((d) => h('option', { value: d, selected: d === days }, `last ${d} days`)));
    windowSelect.addEventListener('change', () => {
      days = Number(windowSelect.value);
      void refresh();
    });
    root.append(
      h('h1', {}, 'Oversight'),
      h('section', { 'aria-labelledby': 'touchpoints-title' }, h('h2', { id: 'touchpoints-title' }, 'Touchpoints'), touchpoints),
      h('section', { 'aria-labelledby': 'legal-bases-title' }, h('h2', { id: 'legal-bases-title' }, 'Legal bases by agent class'), h('div', { class: 'filters' }, h('div', {}, h('label', { for: 'legal-bases-days' }, 'Window'), windowSelect)), bases),
    );
    const refresh = async () => {
      try {
        const { touchpoints: list } = await api<{ touchpoints: Touchpoint[] }>('GET', '/api/v1/oap/touchpoints');
        replace(touchpoints, touchpointTable(list));
      } catch (err) {
        replace(touchpoints, notice((err as Error).message, 'error'));
      }
      try {
        replace(bases, histogram(await api<LegalBases>('GET', `/api/v1/oap/legal-bases${qs({ days })}`)));
      } catch (err) {
        replace(bases, notice((err as Error).message, 'error'));
      }
    };
    await refresh();
    every(signal, REFRESH_MS, () => void refresh());
  },
};

function touchpointTable(list: Touchpoint[]): HTMLElement {
  if (list.length === 0) return h('p', { class: 'help' }, 'No touchpoints yet: register an attester (Principals → Attesters) for each engine whose decisions Writ should witness.');
  const rows = list.map((tp) =>
    h(
      'tr',
      { 'data-touchpoint': tp.touchpoint_id },
      h('td', {}, h('code', {}, tp.touchpoint_id)),
      h('td', {}, tp.silent ? badge('silent') : badge('ok'), tp.gaps > 0 ? [' ', badge('warn'), ` ${tp.gaps} gap${tp.gaps === 1 ? '' : 's'}`] : ''),
      h('td', {}, String(tp.attestations)),
      h('td', {}, tp.last_sequence < 0 ? '—' : String(tp.last_sequence)),
      h('td', {}, time(tp.last_attestation_at) ?? '—'),
      h('td', {}, time(tp.last_heartbeat_at) ?? '—'),
      h('td', {}, `${tp.cadence_seconds} s`),
    ),
  );
  return h(
    'div',
    {},
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'touchpoints-table' },
        h('thead', {}, h('tr', {}, ['Touchpoint', 'Health', 'Attestations', 'Last sequence', 'Last attestation', 'Last heartbeat', 'Cadence'].map((t) => h('th', {}, t)))),
        h('tbody', {}, rows),
      ),
    ),
    h('p', { class: 'help' }, 'Silent: neither an attestation nor a heartbeat for three cadences. A gap: sequence numbers skipped (each is in the log as attestation.gap_detected).'),
  );
}

/** One card per agent class: a bar per legal basis, as tall as its share of the class's largest count, and the counts as text. */
function histogram(data: LegalBases): HTMLElement {
  if (data.classes.length === 0) return h('p', { class: 'help', id: 'legal-bases-empty' }, `No attestations of decisions made in the last ${data.days} days.`);
  return h(
    'div',
    {},
    h(
      'div',
      { class: 'cards' },
      data.classes.map((c) => {
        const entries = Object.entries(c.legal_bases);
        const top = Math.max(1, ...entries.map(([, n]) => n));
        const bars = h(
          'div',
          { class: 'bars', role: 'img', 'aria-label': `${c.agent_class}: ${entries.map(([b, n]) => `${b.replace(/_/g, ' ')} ${n}`).join(', ')}` },
          entries.map(([basis, n]) => {
            const bar = h('span', { title: `${basis.replace(/_/g, ' ')}: ${n}`, 'data-basis': basis, 'data-count': n });
            // CSSOM, not a style attribute: the Content-Security-Policy allows no inline style.
            bar.style.height = `${(100 * n) / top}%`;
            return bar;
          }),
        );
        return h(
          'section',
          { class: 'card', 'data-agent-class': c.agent_class },
          h('h3', {}, h('code', {}, c.agent_class), ` — ${c.total} attestation${c.total === 1 ? '' : 's'}`),
          bars,
          facts(entries.map(([basis, n]) => [basis.replace(/_/g, ' '), String(n)])),
        );
      }),
    ),
    h('p', { class: 'help' }, `Decisions made since `, time(data.since), `; ${data.scanned} attestation${data.scanned === 1 ? '' : 's'} read.`),
  );
}
