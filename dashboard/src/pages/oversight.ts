import { h } from '../dom.ts';
import type { PageDef } from '../page.ts';

export const oversight: PageDef = {
  path: '/oversight',
  title: 'Oversight',
  roles: ['admin'],
  nav: true,
  render({ root }) {
    root.append(h('h1', {}, 'Oversight'));
  },
};
