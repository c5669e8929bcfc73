import { api, ApiError, setCsrfToken, whenSignedOut } from './api.ts';
import { h, notice, replace } from './dom.ts';
import type { Me, PageDef } from './page.ts';
import { PAGES } from './pages/index.ts';
import { renderLogin } from './pages/login.ts';

/**
 * The dashboard: one page script for every path. It asks who the session cookie belongs to
 * (GET /api/v1/session); without a session it shows the sign-in page. Links inside the app change
 * the page without a reload; the back button works.
 */
const app = document.getElementById('app')!;
let me: Me | undefined;
let leave: AbortController | undefined;

interface SessionAnswer {
  id: string;
  principal: { role: Me['role']; id: string; name: string };
  expires_at: string;
  csrf_token: string;
}

export function signedIn(session: SessionAnswer): void {
  setCsrfToken(session.csrf_token);
  me = { id: session.principal.id, role: session.principal.role, name: session.principal.name, session_id: session.id, expires_at: session.expires_at };
}

function match(def: PageDef, pathname: string): Record<string, string> | undefined {
  const names: string[] = [];
  const pattern = new RegExp(`^${def.path.replace(/:(\w+)/g, (_, name: string) => (names.push(name), '([^/]+)'))}$`);
  const found = pattern.exec(pathname);
  if (!found) return undefined;
  return Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1]!)]));
}

export function navigate(path: string, replaceState = false): void {
  if (replaceState) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  void render();
}

function nav(current: string): HTMLElement {
  const links = PAGES.filter((p) => p.nav && me && p.roles.includes(me.role)).map((p) =>
    h('a', { href: p.path, class: current === p.path || current.startsWith(`${p.path}/`) ? 'active' : undefined, 'aria-current': current === p.path ? 'page' : undefined }, p.title),
  );
  const signOut = h('button', { type: 'button', class: 'link', id: 'sign-out' }, 'Sign out');
  signOut.addEventListener('click', async () => {
    await api('DELETE', '/api/v1/session').catch(() => undefined);
    me = undefined;
    setCsrfToken(undefined);
    navigate('/login');
  });
  return h(
    'header',
    { class: 'top' },
    h('a', { href: '/', class: 'brand' }, 'Writ'),
    h('nav', { 'aria-label': 'Main' }, links),
    h('span', { class: 'who', title: me?.id }, me ? `${me.name} (${me.role})` : ''),
    signOut,
  );
}

async function render(): Promise<void> {
  leave?.abort();
  leave = new AbortController();
  const { pathname, search } = location;
  if (pathname === '/login') {
    document.title = 'Sign in · Writ';
    await renderLogin(app, (session) => {
      signedIn(session);
      const next = new URLSearchParams(search).get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
    });
    return;
  }
  if (!me) {
    try {
      signedIn(await api<SessionAnswer>('GET', '/api/v1/session'));
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 404)) return navigate(`/login${pathname === '/' ? '' : `?next=${encodeURIComponent(pathname + search)}`}`, true);
      replace(app, notice((err as Error).message, 'error'));
      return;
    }
  }
  if (pathname === '/') return navigate(me!.role === 'admin' ? '/status' : '/approvals', true);
  const def = PAGES.find((p) => match(p, pathname));
  const main = h('main', { id: 'main' });
  replace(app, nav(pathname), main);
  if (!def) {
    replace(main, notice(`There is no page ${pathname}.`, 'error'));
    return;
  }
  document.title = `${def.title} · Writ`;
  if (!def.roles.includes(me!.role)) {
    replace(main, notice(`${def.title} is for ${def.roles.join(' and ')}s; you are signed in as ${me!.role}.`, 'error'));
    return;
  }
  try {
    await def.render({ root: main, me: me!, params: match(def, pathname)!, query: new URLSearchParams(search), signal: leave.signal, navigate });
  } catch (err) {
    main.append(notice((err as Error).message, 'error'));
  }
}

// Links inside the app: no reload.
document.addEventListener('click', (event) => {
  const link = (event.target as Element | null)?.closest?.('a');
  if (!link || link.target || link.hasAttribute('download') || event.defaultPrevented || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/.well-known/')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => void render());
whenSignedOut(() => {
  me = undefined;
  navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
});
void render();
