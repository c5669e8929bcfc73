/**
 * Building the page: elements made with the DOM API, text always set as text. Nothing from the
 * server is ever parsed as HTML, so no agent's name or request context can inject markup, and the
 * Content-Security-Policy needs no inline script or style.
 */
export type Child = Node | string | number | false | null | undefined | Child[];

export type Attributes = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, '').toLowerCase(), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces what an element holds. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** A definition list of label → value rows, skipping absent values. */
export function facts(rows: Array<[string, Child]>): HTMLDListElement {
  return h('dl', { class: 'facts' }, rows.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** JSON, pretty, in a <pre>. */
export function json(value: unknown): HTMLPreElement {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

/** A time as the reader's local date and time, with the exact ISO value on hover. */
export function time(iso: string | undefined): Child {
  if (!iso) return undefined;
  const date = new Date(iso);
  return h('time', { datetime: iso, title: iso }, Number.isNaN(date.getTime()) ? iso : date.toLocaleString());
}

/** "in 4 min 10 s" / "3 s ago", for countdowns. */
export function until(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  const s = Math.round(Math.abs(ms) / 1000);
  const text = s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** A badge for a status or tier, styled by its value. */
export function badge(value: string): HTMLSpanElement {
  return h('span', { class: `badge badge-${value.replace(/[^\w-]/g, '')}` }, value);
}

/** A message in the page: an error (role=alert) or a notice. */
export function notice(text: string, kind: 'error' | 'ok' | 'info' = 'info'): HTMLParagraphElement {
  return h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** A button that copies a value to the clipboard. */
export function copyButton(value: string, label = 'Copy'): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'secondary', 'data-copy': value }, label);
  button.addEventListener('click', async () => {
    await navigator.clipboard?.writeText(value).catch(() => undefined);
    button.textContent = 'Copied';
  });
  return button;
}
