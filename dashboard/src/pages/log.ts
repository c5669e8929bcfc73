import { h } from '../dom.ts';
import type { PageDef } from '../page.ts';

export const log: PageDef = {
  path: '/log',
  title: 'Log',
  roles: ['admin', 'approver'],
  nav: true,
  render({ root }) {
    root.append(h('h1', {}, 'Log'));
  },
};
