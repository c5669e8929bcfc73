import { h } from '../dom.ts';
import type { PageDef } from '../page.ts';

export const policies: PageDef = {
  path: '/policies',
  title: 'Policies',
  roles: ['admin'],
  nav: true,
  render({ root }) {
    root.append(h('h1', {}, 'Policies'));
  },
};
