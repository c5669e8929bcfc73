import { api, ApiError } from '../api.ts';
import { h, notice, replace } from '../dom.ts';

/**
 * Sign-in: an admin or approver key, or the one-time link the bot sends on /login. The link's
 * token is in the URL's fragment (#token=…), which the browser never sends to a server or in a
 * Referer; the page posts it once and removes it from the address bar.
 */
export async function renderLogin(root: HTMLElement, done: (session: any) => void): Promise<void> {
  const status = h('div', { id: 'login-status' });
  const fromLink = /^#token=([A-Za-z0-9_-]{43})$/.exec(location.hash)?.[1];
  if (fromLink) {
    history.replaceState(null, '', location.pathname + location.search);
    try {
      return done(await api('POST', '/api/v1/session', { login_token: fromLink }));
    } catch (err) {
      status.append(notice((err as Error).message, 'error'));
    }
  }
  const key = h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'current-password', required: true, placeholder: 'writ_approver_… or the admin key', 'aria-describedby': 'key-help' });
  const form = h(
    'form',
    { class: 'card login', id: 'login-form' },
    h('h1', {}, 'Sign in to Writ'),
    h('label', { for: 'key' }, 'Your key'),
    key,
    h('p', { class: 'help', id: 'key-help' }, 'An admin or approver key. Approvers linked to the Telegram bot can also send it /login for a one-time link.'),
    h('button', { type: 'submit' }, 'Sign in'),
    status,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replace(status);
    try {
      done(await api('POST', '/api/v1/session', { key: key.value.trim() }));
    } catch (err) {
      status.append(notice(err instanceof ApiError && err.status === 401 ? 'That key is not valid.' : (err as Error).message, 'error'));
    }
  });
  replace(root, h('main', { id: 'main', class: 'narrow' }, form));
  key.focus();
}
