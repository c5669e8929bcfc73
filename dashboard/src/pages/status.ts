import { h } from '../dom.ts';
import type { PageDef } from '../page.ts';

export const status: PageDef = {
  path: '/status',
  title: 'Status',
  roles: ['admin'],
  nav: true,
  render({ root }) {
    root.append(h('h1', {}, 'Status'));
  },
};
