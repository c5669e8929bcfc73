import { api, ApiError } from '../api.ts';
import { badge, facts, h, notice, replace, time } from '../dom.ts';
import { every, type PageDef } from '../page.ts';

interface PolicyStatus {
  hash: string;
  files: string[];
  not_loaded: string[];
  loaded_at: string;
  last_error?: { at: string; problems: string[] };
  worker: { ready: boolean; restarts: number };
}

interface PolicyFiles {
  hash: string;
  files: Array<{ file: string; language: string; loaded: boolean; module?: string; policies: Array<{ id: string; effect: 'permit' | 'forbid'; tier: string; line: number }> }>;
}

interface EvalAnswer {
  decision: 'allow' | 'deny' | 'escalate';
  tier: string;
  reasons: string[];
  policy: { hash: string; determining: string[]; languages?: string[] };
  failure?: { step: string; code: string };
  agent: { id?: string; class: string; trust_tier: string };
  trace: Array<{ step: string; outcome: string; ms: number; reason?: string; failure?: string }>;
}

const TRUST_TIERS = ['unregistered', 'T1', 'T2', 'T3', 'T4', 'T5'];
const REFRESH_MS = 5000;

/**
 * Policies: the active set file by file with the ids a decision names, the last change that was
 * refused with each problem at file:line:col, and "try a request", which asks the active set
 * (POST /api/v1/policies/eval) exactly as a real request would, without recording anything.
 */
export const policies: PageDef = {
  path: '/policies',
  title: 'Policies',
  roles: ['admin'],
  nav: true,
  async render({ root, signal }) {
    const active = h('section', { class: 'card', id: 'policy-set', 'aria-labelledby': 'policy-set-title' });
    const error = h('div', { id: 'policy-error' });
    root.append(h('h1', {}, 'Policies'), error, active, tryForm());
    let shown = '';
    const refresh = async () => {
      try {
        const state = await api<PolicyStatus>('GET', '/api/v1/policies');
        replace(error, state.last_error ? errorCard(state.last_error) : undefined);
        // The file view is parsed on the server once per set: ask again only when the set changed.
        if (state.hash !== shown) {
          const files = await api<PolicyFiles>('GET', '/api/v1/policies/files');
          replace(active, ...setView(state, files));
          shown = state.hash;
        }
      } catch (err) {
        replace(error, notice((err as Error).message, 'error'));
      }
    };
    await refresh();
    every(signal, REFRESH_MS, () => void refresh());
  },
};

function setView(state: PolicyStatus, files: PolicyFiles) {
  const rows = files.files.map((f) =>
    h(
      'tr',
      { 'data-file': f.file },
      h('td', {}, h('code', {}, f.file)),
      h('td', {}, f.language.replace('_', ' '), f.loaded ? '' : [' ', badge('not loaded')]),
      h(
        'td',
        {},
        f.policies.length
          ? h('ul', { class: 'policy-ids' }, f.policies.map((p) => h('li', {}, h('code', { class: 'policy-id', title: `line ${p.line}` }, p.id), ' ', badge(p.effect === 'forbid' ? 'deny' : p.tier), ` line ${p.line}`)))
          : f.module
            ? `compiled into module ${f.module}`
            : '—',
      ),
    ),
  );
  return [
    h('h2', { id: 'policy-set-title' }, 'Active set'),
    facts([
      ['Hash', h('code', { id: 'policy-hash' }, files.hash)],
      ['Loaded', time(state.loaded_at)],
      ['Worker', state.worker.ready ? badge('ok') : [badge('error'), ' not ready: requests fail closed']],
      ['Not loaded', state.not_loaded.length ? state.not_loaded.join(', ') : undefined],
    ]),
    files.files.length
      ? h('div', { class: 'table-wrap' }, h('table', { id: 'policy-files' }, h('thead', {}, h('tr', {}, h('th', {}, 'File'), h('th', {}, 'Language'), h('th', {}, 'Policies (the ids decisions name)'))), h('tbody', {}, rows)))
      : notice('There are no policy files: every request is denied.', 'error'),
    h('p', { class: 'help' }, 'A forbid is shown as deny; a permit by the tier it grants. Change the files in the policies directory: Writ reloads them, and a set that does not build is refused while the last good one keeps serving.'),
  ];
}

function errorCard(last: { at: string; problems: string[] }) {
  return h(
    'section',
    { class: 'card', role: 'alert', 'aria-labelledby': 'policy-error-title' },
    h('h2', { id: 'policy-error-title' }, 'Last change refused ', badge('error')),
    h('p', {}, 'At ', time(last.at), ' a change to the policy files did not build; the active set below keeps serving until the files are fixed.'),
    h('ul', { class: 'problems' }, last.problems.map((p) => h('li', {}, h('code', { class: 'problem' }, p)))),
  );
}

function field(id: string, label: string, input: HTMLElement, help?: string) {
  return h('div', {}, h('label', { for: id }, label), input, help ? h('p', { class: 'help', id: `${id}-help` }, help) : undefined);
}

/** "Try a request": the form, and the answer beneath it. */
function tryForm(): HTMLElement {
  const action = h('input', { id: 'try-action', name: 'action', required: true, placeholder: 'bank.transfer', autocomplete: 'off' });
  const resource = h('input', { id: 'try-resource', name: 'resource', required: true, placeholder: 'bank:acct-1', autocomplete: 'off' });
  const value = h('input', { id: 'try-value', name: 'value', type: 'number', min: 0, step: 'any', inputmode: 'decimal' });
  const currency = h('input', { id: 'try-currency', name: 'currency', placeholder: 'EUR', maxlength: 3, autocomplete: 'off' });
  const scope = h('textarea', { id: 'try-scope', name: 'scope', placeholder: '{"max_emails": 1}', spellcheck: 'false' });
  const context = h('textarea', { id: 'try-context', name: 'context', placeholder: '{"reason": "invoice 42"}', spellcheck: 'false' });
  const agentId = h('input', { id: 'try-agent-id', name: 'agent_id', placeholder: 'agt_… (optional)', autocomplete: 'off' });
  const tier = h('select', { id: 'try-trust-tier', name: 'trust_tier' }, TRUST_TIERS.map((t) => h('option', { value: t }, t)));
  const agentClass = h('input', { id: 'try-class', name: 'class', placeholder: 'default', autocomplete: 'off' });
  const result = h('div', { id: 'try-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'card', id: 'try-form', 'aria-labelledby': 'try-title' },
    h('h2', { id: 'try-title' }, 'Try a request'),
    h('p', { class: 'help' }, 'Asks the active set what it makes of a request, as the cascade would decide it now. Nothing is recorded: no permission, no log entry, no token.'),
    h('div', { class: 'filters' }, field('try-action', 'Action', action), field('try-resource', 'Resource', resource), field('try-value', 'Value', value), field('try-currency', 'Currency', currency)),
    field('try-scope', 'Scope (JSON object)', scope),
    field('try-context', 'Context (JSON object)', context),
    h('div', { class: 'filters' }, field('try-trust-tier', 'Agent trust tier', tier), field('try-class', 'Agent class', agentClass), field('try-agent-id', 'Or a registered agent', agentId, "Its class and trust tier are used instead.")),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Evaluate')),
    result,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replace(result);
    const body: Record<string, unknown> = { action: action.value.trim(), resource: resource.value.trim() };
    try {
      if (value.value !== '') body.value = Number(value.value);
      if (currency.value.trim()) body.currency = currency.value.trim();
      const s = jsonObject(scope.value, 'scope');
      if (s) body.scope = s;
      const c = jsonObject(context.value, 'context');
      if (c) body.context = c;
    } catch (err) {
      result.append(notice((err as Error).message, 'error'));
      return;
    }
    if (agentId.value.trim()) body.agent_id = agentId.value.trim();
    else body.agent = { trust_tier: tier.value, ...(agentClass.value.trim() ? { class: agentClass.value.trim() } : {}) };
    try {
      replace(result, answerView(await api<EvalAnswer>('POST', '/api/v1/policies/eval', body)));
    } catch (err) {
      const where = err instanceof ApiError && typeof err.detail?.field === 'string' ? ` (field: ${err.detail.field})` : '';
      replace(result, notice(`${(err as Error).message}${where}`, 'error'));
    }
  });
  return form;
}

/** A JSON object typed in a textarea; blank is none. */
function jsonObject(text: string, name: string): Record<string, unknown> | undefined {
  if (!text.trim()) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${name} is not JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${name} must be a JSON object, like {"key": "value"}`);
  return parsed as Record<string, unknown>;
}

const MEANS: Record<EvalAnswer['decision'], string> = {
  allow: 'allowed at once: a real request gets a token',
  escalate: 'people decide: a real request waits for approval',
  deny: 'denied',
};

function answerView(a: EvalAnswer): HTMLElement {
  return h(
    'div',
    { class: 'answer' },
    h('h3', {}, 'Decision: ', h('span', { id: 'try-decision' }, badge(a.decision)), ' tier ', h('span', { id: 'try-tier' }, badge(a.tier))),
    h('p', {}, a.failure ? `Nothing could be decided (${a.failure.code} at ${a.failure.step}): a real request is denied and recorded as a failure.` : MEANS[a.decision]),
    facts([
      ['Determining', a.policy.determining.length ? a.policy.determining.map((id, i) => [i ? ', ' : '', h('code', {}, id)]) : 'none'],
      ['Reasons', a.reasons.length ? a.reasons.join('; ') : undefined],
      ['Agent', `${a.agent.id ? `${a.agent.id}, ` : ''}class ${a.agent.class}, trust tier ${a.agent.trust_tier}`],
      ['Policy set', h('code', {}, a.policy.hash)],
    ]),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'try-trace' },
        h('caption', { class: 'help' }, 'Trace: the cascade steps, as a real request records them'),
        h('thead', {}, h('tr', {}, h('th', {}, 'Step'), h('th', {}, 'Outcome'), h('th', {}, 'Why'), h('th', {}, 'ms'))),
        h('tbody', {}, a.trace.map((s) => h('tr', {}, h('td', {}, s.step), h('td', {}, badge(s.outcome)), h('td', {}, s.reason ?? s.failure ?? ''), h('td', {}, String(s.ms))))),
      ),
    ),
  );
}
