import { api } from '../api.ts';
import { h, notice, replace, time } from '../dom.ts';
import type { PageDef } from '../page.ts';
import { passkeysSupported, registerPasskey, type Passkey } from '../passkey.ts';

/**
 * An approver's passkeys: approving a critical request on the web asks for one (the CLI, the API
 * with a key and Telegram do not). Register one with a name, see when each was last used, delete
 * one that is lost. Registering and deleting are logged.
 */
export const passkeys: PageDef = {
  path: '/passkeys',
  title: 'Passkeys',
  roles: ['approver'],
  nav: true,
  async render({ root, signal }) {
    const status = h('div', { id: 'passkey-status', 'aria-live': 'polite' });
    const list = h('div', { id: 'passkey-list' });
    const name = h('input', { id: 'passkey-name', name: 'name', required: true, maxlength: 100, placeholder: 'e.g. work laptop', autocomplete: 'off' });
    const submit = h('button', { type: 'submit' }, 'Register a passkey');
    const form = h(
      'form',
      { class: 'card', id: 'passkey-form' },
      h('h2', {}, 'Register a passkey'),
      h('label', { for: 'passkey-name' }, 'Name'),
      name,
      h('p', { class: 'help' }, 'Your browser asks you to confirm with this device (fingerprint, face, PIN) or a security key.'),
      h('div', { class: 'actions' }, submit),
    );

    const show = async () => {
      const { items } = await api<{ items: Passkey[] }>('GET', '/api/v1/passkeys');
      if (signal.aborted) return;
      if (items.length === 0) {
        replace(list, h('p', { class: 'notice', id: 'no-passkeys' }, 'You have no passkey yet. Register one to approve critical requests here.'));
        return;
      }
      replace(
        list,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { id: 'passkeys' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Registered'), h('th', {}, 'Last used'), h('th', {}, 'Kind'), h('th', {}, ''))),
            h('tbody', {}, items.map((p) => row(p))),
          ),
        ),
      );
    };

    const row = (p: Passkey) =>
      h(
        'tr',
        { 'data-id': p.id },
        h('td', { class: 'passkey-name' }, p.name),
        h('td', {}, time(p.created_at)),
        h('td', {}, p.last_used_at ? time(p.last_used_at) : 'never'),
        h('td', {}, p.device_type === 'multiDevice' ? 'synced' : 'this device only', p.transports.length ? ` (${p.transports.join(', ')})` : ''),
        h('td', {}, deleteButton(p)),
      );

    /** Two clicks: the first asks, the second deletes. */
    const deleteButton = (p: Passkey) => {
      const button = h('button', { type: 'button', class: 'secondary delete' }, 'Delete');
      button.addEventListener('click', async () => {
        if (!button.classList.contains('danger')) {
          button.classList.replace('secondary', 'danger');
          button.textContent = `Delete “${p.name}”?`;
          return;
        }
        button.disabled = true;
        try {
          await api('DELETE', `/api/v1/passkeys/${encodeURIComponent(p.id)}`);
          replace(status, notice(`Deleted the passkey “${p.name}”.`, 'ok'));
          await show();
        } catch (err) {
          button.disabled = false;
          replace(status, notice((err as Error).message, 'error'));
        }
      });
      return button;
    };

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      submit.disabled = true;
      replace(status, notice('Waiting for your authenticator…'));
      try {
        const made = await registerPasskey(name.value.trim());
        replace(status, notice(`Registered the passkey “${made.name}”.`, 'ok'));
        name.value = '';
        await show();
      } catch (err) {
        replace(status, notice((err as Error).message, 'error'));
      } finally {
        submit.disabled = false;
      }
    });

    root.append(
      h('h1', {}, 'Passkeys'),
      h('p', { class: 'help' }, 'Approving a critical request on the web needs a passkey: the approval is confirmed with a signature from your device, bound to that one request. Approvals from the CLI, with your key, or in Telegram do not use it.'),
      passkeysSupported() ? form : notice('This browser does not support passkeys (WebAuthn); use another to approve critical requests on the web.', 'error'),
      status,
      h('h2', {}, 'Your passkeys'),
      list,
    );
    await show();
  },
};
