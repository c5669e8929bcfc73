import { preflightsFor } from '../cors.ts';
import type { Route } from '../route.ts';
import * as approvals from './approvals-decide.ts';
import backup from './backup.ts';
import * as dashboard from './dashboard.ts';
import * as session from './session.ts';
import * as passkeys from './passkeys.ts';
import metrics from './metrics.ts';
import * as approvalsRead from './approvals-list.ts';
import approvalsEvents from './approvals-events.ts';
import * as log from './log.ts';
import permissionsCancel from './permissions-cancel.ts';
import permissionsCreate from './permissions-create.ts';
import permissionsGet from './permissions-get.ts';
import permissionsList from './permissions-list.ts';
import * as principals from './principals-create.ts';
import * as registers from './principals-list.ts';
import * as system from './system.ts';
import tokensConsume from './tokens-consume.ts';
import tokensRevoke from './tokens-revoke.ts';
import telegramWebhook from './telegram.ts';
import opaLogs from './opa-logs.ts';
import * as oversight from './oversight.ts';
import policiesEval from './policies-eval.ts';
import policiesFiles from './policies-files.ts';
import * as webhooks from './webhooks.ts';
import * as wellKnown from './well-known.ts';

/** The endpoints, one file each. */
const ENDPOINTS: Route[] = [
  system.healthz,
  system.readyz,
  metrics,
  system.openapi,
  principals.agents,
  principals.approvers,
  principals.approverLinkCode,
  principals.attesters,
  principals.resourceServers,
  principals.agentKeys,
  principals.approverKeys,
  principals.attesterKeys,
  principals.resourceServerKeys,
  registers.agents,
  registers.approvers,
  registers.attesters,
  registers.resourceServers,
  permissionsCreate,
  permissionsList,
  permissionsGet,
  permissionsCancel,
  tokensConsume,
  tokensRevoke,
  approvalsRead.list,
  // Before /approvals/:id, which its path would match too.
  approvalsEvents,
  approvalsRead.get,
  approvals.approve,
  approvals.deny,
  approvals.cancel,
  passkeys.approvalOptions,
  log.checkpoint,
  log.newCheckpoint,
  log.proof,
  log.consistency,
  log.records,
  log.stored,
  system.policies,
  policiesFiles,
  policiesEval,
  system.rotateKeys,
  system.status,
  backup,
  webhooks.create,
  webhooks.list,
  webhooks.remove,
  telegramWebhook,
  oversight.attest,
  oversight.heartbeat,
  oversight.get,
  oversight.escalate,
  oversight.touchpoints,
  oversight.legalBases,
  oversight.resetSequence,
  oversight.revoke,
  opaLogs,
  wellKnown.jwks,
  wellKnown.discovery,
  session.signIn,
  session.current,
  session.signOut,
  session.list,
  session.revoke,
  passkeys.registrationOptions,
  passkeys.register,
  passkeys.list,
  passkeys.remove,
  ...dashboard.pages,
  dashboard.asset,
];

/** Every route the server answers, the CORS preflights of the public documents last; the OpenAPI document is generated from this list. */
export const ROUTES: Route[] = [...ENDPOINTS, ...preflightsFor(ENDPOINTS)];
