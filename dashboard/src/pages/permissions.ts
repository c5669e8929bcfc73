import { h } from '../dom.ts';
import type { PageDef } from '../page.ts';

export const permissions: PageDef = {
  path: '/permissions',
  title: 'Permissions',
  roles: ['admin'],
  nav: true,
  render({ root }) {
    root.append(h('h1', {}, 'Permissions'));
  },
};

export const permission: PageDef = {
  path: '/permissions/:id',
  title: 'Permission',
  roles: ['admin'],
  nav: false,
  render({ root }) {
    root.append(h('h1', {}, 'Permission'));
  },
};
