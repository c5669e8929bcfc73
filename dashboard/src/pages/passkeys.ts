import { h } from '../dom.ts';
import type { PageDef } from '../page.ts';

export const passkeys: PageDef = {
  path: '/passkeys',
  title: 'Passkeys',
  roles: ['approver'],
  nav: true,
  render({ root }) {
    root.append(h('h1', {}, 'Passkeys'));
  },
};
