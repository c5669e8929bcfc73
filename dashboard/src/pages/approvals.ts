import { h } from '../dom.ts';
import type { PageDef } from '../page.ts';

export const approvals: PageDef = {
  path: '/approvals',
  title: 'Approvals',
  roles: ['admin', 'approver'],
  nav: true,
  render({ root }) {
    root.append(h('h1', {}, 'Approvals'));
  },
};

export const approval: PageDef = {
  path: '/approvals/:id',
  title: 'Approval',
  roles: ['admin', 'approver'],
  nav: false,
  render({ root }) {
    root.append(h('h1', {}, 'Approval'));
  },
};
