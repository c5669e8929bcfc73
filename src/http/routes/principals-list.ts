import { z } from 'zod';
import type { Agent, Approver, Attester, ResourceServer } from '../../domain/principals.ts';
import { defineRoute } from '../route.ts';
import { agentSchema, approverSchema, attesterSchema, cursorParam, limitParam, pageOf, resourceServerSchema } from '../schemas.ts';
import { nextCursor, positionOf } from './cursor.ts';

/**
 * The registers an admin reads: each kind of principal, a page at a time, in a stable order (by
 * id, which is random: not the order of registration). Items are picked field by field, so
 * nothing kept beside a principal (its link code's hash) can reach the wire.
 */
const agentView = ({ id, name, class: kind, trust_tier, created_at, revoked }: Agent) => ({ id, name, class: kind, trust_tier, created_at, ...(revoked ? { revoked } : {}) });

const approverView = ({ id, name, telegram_user_id, telegram, created_at, revoked }: Approver) => ({
  id,
  name,
  ...(telegram_user_id !== undefined ? { telegram_user_id } : {}),
  ...(telegram ? { telegram: { user_id: telegram.user_id, chat_id: telegram.chat_id, ...(telegram.username !== undefined ? { username: telegram.username } : {}), linked_at: telegram.linked_at } } : {}),
  created_at,
  ...(revoked ? { revoked } : {}),
});

const attesterView = ({ id, name, touchpoint_id, created_at, revoked }: Attester) => ({ id, name, touchpoint_id, created_at, ...(revoked ? { revoked } : {}) });

const resourceServerView = ({ id, name, created_at, revoked }: ResourceServer) => ({ id, name, created_at, ...(revoked ? { revoked } : {}) });

const query = z.strictObject({ limit: limitParam, cursor: cursorParam.optional() });

type Listed = { agent: Agent; approver: Approver; attester: Attester; resource_server: ResourceServer };

function register<R extends keyof Listed>(collection: string, role: R, schema: z.ZodType, view: (record: Listed[R]) => unknown) {
  const what = `${role.replace('_', ' ')}s`;
  return defineRoute({
    method: 'GET',
    path: `/api/v1/${collection}`,
    summary: `Registered ${what}, revoked ones included, a page at a time in a stable order (by id, not by registration)`,
    auth: ['admin'],
    query,
    responses: { 200: { description: `A page of ${what}`, schema: pageOf(schema) } },
    async handle({ writ, query }) {
      const page = await writ.principals.list(role, query.limit, positionOf(query.cursor, collection, {}));
      return { status: 200, body: { items: page.items.map(view), ...nextCursor(collection, {}, page.after) } };
    },
  });
}

export const agents = register('agents', 'agent', agentSchema, agentView);
export const approvers = register('approvers', 'approver', approverSchema, approverView);
export const attesters = register('attesters', 'attester', attesterSchema, attesterView);
export const resourceServers = register('resource-servers', 'resource_server', resourceServerSchema, resourceServerView);
