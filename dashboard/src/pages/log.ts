import { api, ApiError, qs } from '../api.ts';
import { facts, h, notice, replace, time } from '../dom.ts';
import type { WorkerOut } from '../log-worker.ts';
import type { PageDef } from '../page.ts';

/**
 * The log: its latest signed checkpoint (its signature checked here), the entries page by page,
 * the export (admins), and Verify chain, which re-derives the whole log in a worker.
 */
const PAGE = 50;
/** The records export answers at most this many entries a call. */
const EXPORT_CHUNK = 10_000;

interface StoredPage {
  size: number;
  from: number;
  to: number;
  entries: Array<{ index: number; entry: string | null; nodes: Array<string | null> }>;
}

interface LogEntry {
  index: number;
  time: string;
  type: string;
  data: Record<string, unknown>;
}

export async function logKey(): Promise<string> {
  return (await api<{ log_verifier_key: string }>('GET', '/.well-known/openid-configuration')).log_verifier_key;
}

export const log: PageDef = {
  path: '/log',
  title: 'Log',
  roles: ['admin', 'approver'],
  nav: true,
  async render({ root, me, query, signal }) {
    root.append(h('h1', {}, 'Log'));
    const [note, keyText, first] = await Promise.all([
      api<string>('GET', '/api/v1/log/checkpoint'),
      logKey(),
      api<StoredPage>('GET', `/api/v1/log/stored${qs({ from: 0, limit: 1 })}`),
    ]);
    const size = first.size;
    root.append(await checkpointCard(note, keyText), verifyCard(keyText, signal));
    if (me.role === 'admin') root.append(exportCard(size));
    const asked = Number(query.get('from'));
    const from = Number.isSafeInteger(asked) && asked >= 0 && query.has('from') ? asked : Math.max(0, size - PAGE);
    root.append(await entriesCard(from, size));
  },
};

async function checkpointCard(note: string, keyText: string): Promise<HTMLElement> {
  // The crypto is loaded by the pages that check something, not by every page.
  const { encodeBase64, openCheckpoint, parseLogKey } = await import('../log-check.ts');
  let verdict: Node;
  let rows: Array<[string, string | Node]> = [];
  try {
    const cp = await openCheckpoint(note, parseLogKey(keyText));
    rows = [
      ['Origin', cp.origin],
      ['Entries', String(cp.size)],
      ['Root hash', h('code', {}, encodeBase64(cp.rootHash))],
    ];
    verdict = notice('Signature valid: signed by the log key in the discovery document.', 'ok');
  } catch (err) {
    verdict = notice(`Signature INVALID: ${(err as Error).message}`, 'error');
  }
  return h(
    'section',
    { class: 'card', id: 'checkpoint' },
    h('h2', {}, 'Latest checkpoint'),
    facts([...rows, ['Log key', h('code', {}, keyText)]]),
    verdict,
    h('details', {}, h('summary', {}, 'Signed note'), h('pre', {}, note)),
  );
}

function verifyCard(keyText: string, signal: AbortSignal): HTMLElement {
  const progress = h('progress', { id: 'verify-progress', max: 1, value: 0, hidden: true });
  const label = h('p', { class: 'help', id: 'verify-count' });
  const result = h('div', { id: 'verify-result' });
  const button = h('button', { type: 'button', id: 'verify-chain' }, 'Verify chain');
  button.addEventListener('click', () => {
    button.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    replace(result);
    const started = performance.now();
    const worker = new Worker('/assets/log-worker.js', { type: 'module', name: 'log-verifier' });
    const stop = () => worker.terminate();
    signal.addEventListener('abort', stop, { once: true });
    worker.onmessage = (event: MessageEvent<WorkerOut>) => {
      const out = event.data;
      if (out.type === 'progress') {
        progress.max = Math.max(out.size, 1);
        progress.value = out.size === 0 ? 1 : out.done;
        label.textContent = `${out.done} of ${out.size} entries re-derived`;
        return;
      }
      stop();
      signal.removeEventListener('abort', stop);
      button.disabled = false;
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      result.dataset.seconds = seconds;
      if (out.ok) {
        result.dataset.outcome = 'valid';
        replace(
          result,
          notice(`Chain valid: all ${out.size} entries re-derived, every chain link and tree node matches, and ${out.checkpoints} checkpoint${out.checkpoints === 1 ? '' : 's'} verify against the log key (${seconds} s).`, 'ok'),
          facts([['Root hash', h('code', {}, out.root)]]),
        );
      } else {
        result.dataset.outcome = 'invalid';
        if (out.problem.index !== undefined) {
          result.dataset.index = String(out.problem.index);
          // The bar stops where the chain broke.
          progress.max = Math.max(out.size, 1);
          progress.value = out.problem.index;
          label.textContent = `${out.problem.index} of ${out.size} entries re-derived before the first bad one`;
          document.querySelector(`#entries tr[data-index="${out.problem.index}"]`)?.classList.add('bad');
        }
        const where = out.problem.index !== undefined ? `at index ${out.problem.index}` : out.problem.checkpoint_size !== undefined ? `at the checkpoint of ${out.problem.checkpoint_size} entries` : '';
        replace(
          result,
          notice(`Verification FAILED ${where}: ${out.problem.message}`, 'error'),
          out.problem.index !== undefined ? h('p', {}, h('a', { href: `/log?from=${out.problem.index}` }, `Show entry ${out.problem.index}`)) : null,
        );
      }
    };
    worker.onerror = (event) => {
      stop();
      button.disabled = false;
      replace(result, notice(`The verifier stopped: ${event.message}`, 'error'));
    };
    worker.postMessage({ logKey: keyText });
  });
  return h(
    'section',
    { class: 'card', id: 'verify' },
    h('h2', {}, 'Verify chain'),
    h('p', { class: 'help' }, 'Downloads every entry as stored and re-derives, in this browser, each leaf hash, chain link and tree node, and checks every checkpoint’s signature and root. Trusts nothing the server computed.'),
    h('div', { class: 'actions' }, button),
    progress,
    label,
    result,
  );
}

function exportCard(size: number): HTMLElement {
  const chunks: Array<[number, number]> = [];
  for (let from = 0; from < size; from += EXPORT_CHUNK) chunks.push([from, Math.min(size, from + EXPORT_CHUNK)]);
  const links = (format: 'csv' | 'json') =>
    chunks.map(([from, to]) => h('a', { href: `/api/v1/log/records${qs({ from, to, format })}`, download: `writ-log-${from}-${to - 1}.${format}`, class: `export-${format}` }, chunks.length === 1 ? format.toUpperCase() : `${format.toUpperCase()} ${from}–${to - 1}`));
  return h(
    'section',
    { class: 'card', id: 'export' },
    h('h2', {}, 'Export'),
    size === 0 ? h('p', {}, 'The log is empty.') : h('div', { class: 'actions' }, links('csv'), links('json')),
    h('p', { class: 'help' }, `Entries in index order, at most ${EXPORT_CHUNK.toLocaleString('en')} a file; the CSV's data column is canonical JSON.`),
  );
}

async function entriesCard(from: number, size: number): Promise<HTMLElement> {
  const card = h('section', { class: 'card', id: 'entries' }, h('h2', {}, 'Entries'));
  let page: StoredPage;
  try {
    page = await api<StoredPage>('GET', `/api/v1/log/stored${qs({ from, limit: PAGE })}`);
  } catch (err) {
    card.append(notice((err as ApiError).message, 'error'));
    return card;
  }
  const rows = page.entries.map((stored) => {
    let entry: LogEntry | undefined;
    try {
      entry = stored.entry === null ? undefined : (JSON.parse(stored.entry) as LogEntry);
    } catch {
      entry = undefined;
    }
    return h(
      'tr',
      { 'data-index': stored.index },
      h('td', {}, String(stored.index)),
      h('td', {}, entry ? time(entry.time) : ''),
      h('td', {}, entry ? h('code', {}, entry.type) : h('em', {}, stored.entry === null ? 'missing' : 'unreadable')),
      h('td', {}, h('details', {}, h('summary', {}, summary(entry)), h('pre', {}, stored.entry ?? ''), h('p', { class: 'help' }, 'leaf hash ', h('code', {}, stored.nodes[0] ?? 'missing')))),
    );
  });
  const older = from > 0 ? h('a', { href: `/log?from=${Math.max(0, from - PAGE)}`, id: 'older' }, '← Older') : null;
  const newer = page.to < size ? h('a', { href: `/log?from=${page.to}`, id: 'newer' }, 'Newer →') : null;
  card.append(
    h('p', { class: 'help' }, size === 0 ? 'No entries yet.' : `Entries ${page.from}–${page.to - 1} of ${size}.`),
    h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Time'), h('th', {}, 'Type'), h('th', {}, 'Entry'))), h('tbody', {}, rows))),
    h('div', { class: 'actions' }, older, newer),
  );
  return card;
}

/** One line of what an entry is about. */
function summary(entry: LogEntry | undefined): string {
  if (!entry) return 'raw';
  const d = entry.data ?? {};
  const pick = ['action', 'resource', 'decision', 'status', 'permission_id', 'agent_id', 'name'].filter((k) => typeof d[k] === 'string' || typeof d[k] === 'number');
  const text = pick.slice(0, 3).map((k) => `${k}: ${String(d[k])}`).join(', ');
  return text || 'data';
}
