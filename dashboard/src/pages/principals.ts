import { h } from '../dom.ts';
import type { PageDef } from '../page.ts';

export const principals: PageDef = {
  path: '/principals',
  title: 'Principals',
  roles: ['admin'],
  nav: true,
  render({ root }) {
    root.append(h('h1', {}, 'Principals'));
  },
};
