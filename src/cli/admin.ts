import type { ParseArgsConfig } from 'node:util';
import { UsageError, parseFlags } from './args.ts';
import { REMOTE_FLAGS, call, print, targetOf, type Target } from './remote.ts';

/**
 * The commands that script a running server, so nothing needs curl: principals, approvals and
 * permissions. Each is one API call (or a few) and prints what a person needs next; `--json`
 * prints the server's answer as it is.
 */
type Options = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  name: string;
  usage: string;
  summary: string;
  /** Everything `writ <command> --help` says beyond the usage line, when the summary is not enough. */
  help?: string;
  run(args: string[]): Promise<number>;
}

interface Remote {
  name: string;
  /** Positional arguments, in order (all required). */
  args?: string[];
  flags?: Options;
  flagUsage?: string;
  summary: string;
  run(c: { target: Target; args: string[]; values: Record<string, string | boolean | undefined> }): Promise<void>;
}

const remoteUsage = '[--url URL] [--key KEY] [--profile NAME] [--json]';

export function remote(spec: Remote): Command {
  const positional = spec.args ?? [];
  return {
    name: spec.name,
    usage: `writ ${spec.name}${positional.map((a) => ` ${a}`).join('')}${spec.flagUsage ? ` ${spec.flagUsage}` : ''} ${remoteUsage}`,
    summary: spec.summary,
    async run(argv) {
      const { values, positionals } = parseFlags(argv, { ...REMOTE_FLAGS, ...spec.flags }, { max: positional.length });
      if (positionals.length < positional.length) throw new UsageError(`${spec.name} needs ${positional.slice(positionals.length).join(' ')}`);
      await spec.run({ target: await targetOf(values), args: positionals, values: values as Record<string, string | boolean | undefined> });
      return 0;
    },
  };
}

const json = (values: Record<string, unknown>) => values.json === true;
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const enc = encodeURIComponent;

/** A key is shown once: say so, and say how to use it. */
const keyLines = (key: string) => [`  key:  ${key}`, '        (shown once; only its hash is kept: store it now)'];

const REVOKE_FLAGS: Options = { reason: { type: 'string' }, comment: { type: 'string' } };
const REVOKE_USAGE = '[--reason compromised|superseded|policy_violation|decommissioned|other] [--comment TEXT]';

function revoke(scope: string, noun: string): Remote {
  return {
    name: `${noun} revoke`,
    args: ['ID'],
    flags: REVOKE_FLAGS,
    flagUsage: REVOKE_USAGE,
    summary: `Revoke ${noun === 'agents' ? 'an agent: its keys, tokens and open approvals' : noun === 'approvers' ? 'an approver: its keys, link and votes on open approvals' : 'an attester: its keys'}, at once, in one log entry`,
    async run({ target, args, values }) {
      const body = { scope, id: args[0], reason: str(values.reason) ?? 'other', ...(str(values.comment) ? { comment: str(values.comment) } : {}) };
      const done = await call(target, 'POST', '/api/v1/oap/revocations', body);
      print(json(values), done, () => {
        const parts = [`${done.revoked_keys} key(s)`];
        if (done.tokens_revoked !== undefined) parts.push(`${done.tokens_revoked} token(s)`, `${done.approvals_closed} open approval(s)`);
        if (done.votes_voided !== undefined) parts.push(`${done.votes_voided} vote(s) on open approvals`);
        return `revoked ${scope} ${done.id} (${done.reason}): ${parts.join(', ')}; log entry ${done.log_index}`;
      });
    },
  };
}

function rotate(collection: string, noun: string): Remote {
  return {
    name: `${collection} rotate`,
    args: ['ID'],
    summary: `Issue a new key for ${noun}; its current keys stop working at once (what it did stays)`,
    async run({ target, args, values }) {
      const done = await call(target, 'POST', `/api/v1/${collection}/${enc(args[0]!)}/keys`);
      print(json(values), done, () => [`new key for ${done.id}; retired: ${done.retired_key_ids.join(', ') || 'none'}`, ...keyLines(done.api_key)].join('\n'));
    },
  };
}

const revokedNote = (p: { revoked?: { at: string; reason: string } }) => (p.revoked ? `  REVOKED ${p.revoked.at} (${p.revoked.reason})` : '');

interface List {
  name: string;
  path: string;
  /** Where the page's items are in the answer (`items` unless the route predates the lists). */
  envelope?: string;
  /** Query filters, each a flag of the same name, with what it takes. */
  filters?: Record<string, string>;
  summary: string;
  empty: string;
  line(item: any): string;
}

/**
 * A list, a page at a time as the server gives it (`--limit`, `--cursor`), or every page with
 * `--all`; the human form says how to ask for the next page.
 */
function list(spec: List): Remote {
  const filters = Object.keys(spec.filters ?? {});
  const envelope = spec.envelope ?? 'items';
  return {
    name: spec.name,
    flags: { ...Object.fromEntries(filters.map((f) => [f, { type: 'string' }])), limit: { type: 'string' }, cursor: { type: 'string' }, all: { type: 'boolean' } },
    flagUsage: `${filters.map((f) => `[--${f} ${spec.filters![f]}]`).join(' ')}${filters.length ? ' ' : ''}[--limit 1-200] [--cursor CURSOR | --all]`,
    summary: spec.summary,
    async run({ target, values }) {
      if (values.all && values.cursor) throw new UsageError('--all starts at the beginning: give it or --cursor, not both');
      const query = new URLSearchParams();
      for (const f of [...filters, 'limit']) if (str(values[f]) !== undefined) query.set(f, str(values[f])!);
      const items: unknown[] = [];
      let cursor = str(values.cursor);
      let page: any;
      do {
        if (cursor !== undefined) query.set('cursor', cursor);
        page = await call(target, 'GET', `${spec.path}${query.size ? `?${query}` : ''}`);
        items.push(...(page[envelope] as unknown[]));
        cursor = page.next_cursor;
      } while (values.all && cursor !== undefined);
      const answer = values.all ? { [envelope]: items } : page;
      print(json(values), answer, () =>
        [...(items.length ? items.map(spec.line) : [spec.empty]), ...(!values.all && page.next_cursor ? [`(more: the same command with --cursor ${page.next_cursor}, or --all)`] : [])].join('\n'),
      );
    },
  };
}

/** Deny or cancel: one call that ends an approval, with an optional reason. */
function closeApproval(verb: 'deny' | 'cancel', summary: string): Remote {
  return {
    name: `approvals ${verb}`,
    args: ['ID'],
    flags: { reason: { type: 'string' } },
    flagUsage: '[--reason TEXT]',
    summary,
    async run({ target, args, values }) {
      const a = await call(target, 'POST', `/api/v1/approvals/${enc(args[0]!)}/${verb}`, str(values.reason) ? { reason: str(values.reason) } : {});
      print(json(values), a, () => `${a.id}: ${a.status}`);
    },
  };
}

export const ADMIN_COMMANDS: Command[] = [
  remote({
    name: 'agents create',
    args: ['NAME'],
    flags: { class: { type: 'string' }, 'trust-tier': { type: 'string' }, quiet: { type: 'boolean', short: 'q' } },
    flagUsage: '[--class CLASS] [--trust-tier T1|T2|T3|T4|T5|unregistered] [--quiet]',
    summary: 'Register an agent and print its API key (once); --quiet prints only the key',
    async run({ target, args, values }) {
      const body = { name: args[0], ...(str(values.class) ? { class: str(values.class) } : {}), ...(str(values['trust-tier']) ? { trust_tier: str(values['trust-tier']) } : {}) };
      const agent = await call(target, 'POST', '/api/v1/agents', body);
      if (values.quiet) return void process.stdout.write(`${agent.api_key}\n`);
      print(json(values), agent, () => [`agent ${agent.id}: ${agent.name} (class ${agent.class}, trust tier ${agent.trust_tier})`, ...keyLines(agent.api_key)].join('\n'));
    },
  }),
  remote(
    list({
      name: 'agents list',
      path: '/api/v1/agents',
      summary: 'Registered agents, revoked ones included, in a stable order',
      empty: 'no agents',
      line: (a) => `${a.id}  ${a.name}  class ${a.class}, trust tier ${a.trust_tier}${revokedNote(a)}`,
    }),
  ),
  remote(revoke('agent', 'agents')),
  remote({
    name: 'agents revoke-key',
    args: ['KEY_ID'],
    flags: REVOKE_FLAGS,
    flagUsage: REVOKE_USAGE,
    summary: 'Revoke one agent key (the 16 hex digits after writ_agent_), and what it obtained; the agent stays',
    async run({ target, args, values }) {
      const done = await call(target, 'POST', '/api/v1/oap/revocations', { scope: 'agent_key', id: args[0], reason: str(values.reason) ?? 'compromised' });
      print(json(values), done, () => `revoked key ${done.id}: ${done.tokens_revoked} token(s), ${done.approvals_closed} open approval(s); log entry ${done.log_index}`);
    },
  }),
  remote(rotate('agents', 'an agent')),
  remote({
    name: 'approvers create',
    args: ['NAME'],
    flags: { 'telegram-user-id': { type: 'string' }, quiet: { type: 'boolean', short: 'q' } },
    flagUsage: '[--telegram-user-id N] [--quiet]',
    summary: 'Register an approver; prints its key and the Telegram link code (--quiet: only the key)',
    async run({ target, args, values }) {
      const id = str(values['telegram-user-id']);
      const approver = await call(target, 'POST', '/api/v1/approvers', { name: args[0], ...(id !== undefined ? { telegram_user_id: Number(id) } : {}) });
      if (values.quiet) return void process.stdout.write(`${approver.api_key}\n`);
      print(json(values), approver, () =>
        [`approver ${approver.id}: ${approver.name}`, ...keyLines(approver.api_key), `  link: send /start ${approver.link_code} to the bot in a private chat (single use, 24 hours)`].join('\n'),
      );
    },
  }),
  remote(
    list({
      name: 'approvers list',
      path: '/api/v1/approvers',
      summary: 'Registered approvers, revoked ones included, and whether each is linked to Telegram',
      empty: 'no approvers',
      line: (a) => `${a.id}  ${a.name}  ${a.telegram ? `telegram ${a.telegram.username ? `@${a.telegram.username}` : a.telegram.user_id}` : 'not linked to telegram'}${revokedNote(a)}`,
    }),
  ),
  remote({
    name: 'approvers link-code',
    args: ['ID'],
    summary: 'A new Telegram link code for an approver (the previous one stops working)',
    async run({ target, args, values }) {
      const code = await call(target, 'POST', `/api/v1/approvers/${enc(args[0]!)}/link-code`);
      print(json(values), code, () => `send /start ${code.link_code} to the bot in a private chat (until ${code.expires_at})`);
    },
  }),
  remote(revoke('approver', 'approvers')),
  remote(rotate('approvers', 'an approver')),
  remote({
    name: 'attesters create',
    args: ['NAME'],
    flags: { touchpoint: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } },
    flagUsage: '--touchpoint ID [--quiet]',
    summary: 'Register an attester (an external policy engine) for one touchpoint; prints its key (--quiet: only the key)',
    async run({ target, args, values }) {
      const attester = await call(target, 'POST', '/api/v1/attesters', { name: args[0], touchpoint_id: str(values.touchpoint) });
      if (values.quiet) return void process.stdout.write(`${attester.api_key}\n`);
      print(json(values), attester, () => [`attester ${attester.id}: ${attester.name}, touchpoint ${attester.touchpoint_id}`, ...keyLines(attester.api_key)].join('\n'));
    },
  }),
  remote(revoke('attester', 'attesters')),
  remote(rotate('attesters', 'an attester')),
  remote(
    list({
      name: 'attesters list',
      path: '/api/v1/attesters',
      summary: 'Registered attesters, revoked ones included, with the touchpoint each reports for',
      empty: 'no attesters',
      line: (a) => `${a.id}  ${a.name}  touchpoint ${a.touchpoint_id}${revokedNote(a)}`,
    }),
  ),
  remote({
    name: 'resource-servers create',
    args: ['NAME'],
    flags: { quiet: { type: 'boolean', short: 'q' } },
    flagUsage: '[--quiet]',
    summary: 'Register a resource server: it spends the tokens of requests that name it as audience',
    async run({ target, args, values }) {
      const server = await call(target, 'POST', '/api/v1/resource-servers', { name: args[0] });
      if (values.quiet) return void process.stdout.write(`${server.api_key}\n`);
      print(json(values), server, () => [`resource server ${server.id}: ${server.name} (requests name it with "audience": "${server.id}")`, ...keyLines(server.api_key)].join('\n'));
    },
  }),
  remote(rotate('resource-servers', 'a resource server')),
  remote(
    list({
      name: 'resource-servers list',
      path: '/api/v1/resource-servers',
      summary: 'Registered resource servers, revoked ones included',
      empty: 'no resource servers',
      line: (a) => `${a.id}  ${a.name}${revokedNote(a)}`,
    }),
  ),
  remote(
    list({
      name: 'approvals list',
      path: '/api/v1/approvals',
      envelope: 'approvals',
      filters: { status: 'pending|approved|denied|expired|cancelled|delay|all' },
      summary: 'The approval queue (default: open ones, oldest first), each with the request it decides',
      empty: 'no approvals',
      line: (a) =>
        `${a.id}  ${a.status.padEnd(9)} ${a.tier.padEnd(9)} ${a.action} ${a.resource}${a.request?.value !== undefined ? ` ${a.request.value}${a.request.currency ? ` ${a.request.currency}` : ''}` : ''}  (${a.request?.agent.name ?? a.agent_id})`,
    }),
  ),
  remote({
    name: 'approvals show',
    args: ['ID'],
    summary: 'One approval with everything it decides: agent, action, resource, value, scope, context, digest, votes',
    async run({ target, args, values }) {
      const a = await call(target, 'GET', `/api/v1/approvals/${enc(args[0]!)}`);
      print(json(values), a, () => approvalText(a));
    },
  }),
  remote({
    name: 'approvals approve',
    args: ['ID'],
    flags: { comment: { type: 'string' }, digest: { type: 'string' } },
    flagUsage: '[--comment TEXT] [--digest REQUEST_DIGEST]',
    summary: 'Approve; with --digest the vote counts only if it is still the request you were shown',
    async run({ target, args, values }) {
      const body = { ...(str(values.comment) ? { comment: str(values.comment) } : {}), ...(str(values.digest) ? { request_digest: str(values.digest) } : {}) };
      const a = await call(target, 'POST', `/api/v1/approvals/${enc(args[0]!)}/approve`, body);
      print(json(values), a, () => `${a.id}: ${a.status}${a.status === 'delay' ? ` until ${a.delay_until} (any approver can cancel)` : ''} (${a.votes.filter((v: { vote: string }) => v.vote === 'approve').length} of ${a.required})`);
    },
  }),
  remote(closeApproval('deny', 'Deny; one deny ends the approval')),
  remote(closeApproval('cancel', 'Cancel a critical approval during its delay')),
  remote(
    list({
      name: 'permissions list',
      path: '/api/v1/permissions',
      filters: { status: 'STATUS', agent: 'AGENT_ID', action: 'ACTION|CATEGORY.*', since: 'RFC3339' },
      summary: 'Permissions, oldest first (an agent sees its own, an admin all); filter by status, agent, action, since',
      empty: 'no permissions',
      line: (p) => `${p.id}  ${p.created_at}  ${p.status.padEnd(8)} ${p.decision.padEnd(8)} ${p.tier.padEnd(9)} ${p.action} ${p.resource}${p.value !== undefined ? ` ${p.value}${p.currency ? ` ${p.currency}` : ''}` : ''}`,
    }),
  ),
  remote({
    name: 'permissions show',
    args: ['ID'],
    flags: { wait: { type: 'string' } },
    flagUsage: '[--wait SECONDS]',
    summary: "A permission's state, decision, receipt and trace (an agent sees its own; an admin any); --wait long-polls while pending",
    async run({ target, args, values }) {
      const p = await call(target, 'GET', `/api/v1/permissions/${enc(args[0]!)}${str(values.wait) ? `?wait=${enc(str(values.wait)!)}` : ''}`);
      print(json(values), p, () =>
        [
          `${p.id}: ${p.status} (decision ${p.decision}${p.policy_decision !== p.decision ? `, policies said ${p.policy_decision}` : ''}, tier ${p.tier})`,
          `  ${p.action} on ${p.resource}${p.value !== undefined ? ` for ${p.value}${p.currency ? ` ${p.currency}` : ''}` : ''}`,
          ...(p.reasons.length ? [`  reasons: ${p.reasons.join('; ')}`] : []),
          ...(p.failure ? [`  failure: ${p.failure.code} at ${p.failure.step}`] : []),
          ...(p.token ? [`  token: ${p.token}`] : []),
          ...(p.receipt ? [`  receipt: ${p.receipt}`] : []),
          `  policy set ${p.policy.hash}${p.policy.determining.length ? `, determined by ${p.policy.determining.join(', ')}` : ''}`,
          `  trace: ${p.trace.map((s: { step: string; outcome: string }) => `${s.step}:${s.outcome}`).join(' ')}`,
        ].join('\n'),
      );
    },
  }),
  remote({
    name: 'sessions list',
    summary: 'Open dashboard sessions: who signed in, how (key or bot link), and until when (admin)',
    async run({ target, values }) {
      const page = await call(target, 'GET', '/api/v1/sessions');
      print(json(values), page, () =>
        page.items.length
          ? page.items.map((s: any) => `${s.id}  ${s.principal.role} ${s.principal.name} (${s.principal.id})  via ${s.via}  since ${s.created_at}  until ${s.expires_at}`).join('\n')
          : 'no open sessions',
      );
    },
  }),
  remote({
    name: 'sessions revoke',
    args: ['ID'],
    flags: { reason: { type: 'string' } },
    flagUsage: '[--reason TEXT]',
    summary: 'End a dashboard session at once: its next request is refused (admin)',
    async run({ target, args, values }) {
      const s = await call(target, 'POST', `/api/v1/sessions/${enc(args[0]!)}/revoke`, str(values.reason) ? { reason: str(values.reason) } : {});
      print(json(values), s, () => `${s.id}: ended (${s.closed.reason})`);
    },
  }),
];

function approvalText(a: any): string {
  const r = a.request;
  const lines = [`${a.id}: ${a.status} (${a.tier}, ${a.votes.filter((v: { vote: string }) => v.vote === 'approve').length} of ${a.required} approvals)`];
  if (r) {
    lines.push(`  agent:    ${r.agent.name} (${r.agent.id}, class ${r.agent.class}, trust tier ${r.agent.trust_tier})`);
    lines.push(`  action:   ${r.action} on ${r.resource}`);
    if (r.value !== undefined) lines.push(`  value:    ${r.value}${r.currency ? ` ${r.currency}` : ''}`);
    if (Object.keys(r.scope).length) lines.push(`  scope:    ${JSON.stringify(r.scope)}`);
    if (Object.keys(r.context).length) lines.push(`  context:  ${JSON.stringify(r.context)}`);
    lines.push(`  escalated by: ${r.policy.escalated_by.join(', ') || '(no policy named)'}`);
    lines.push(`  digest:   ${r.digest}  (approve with --digest to bind your vote to it)`);
  }
  for (const v of a.votes) lines.push(`  vote:     ${v.vote} by ${v.name} at ${v.at}${v.comment ? `: ${v.comment}` : ''}`);
  if (a.status === 'pending') lines.push(`  expires:  ${a.expires_at}`);
  if (a.delay_until) lines.push(`  runs at:  ${a.delay_until} unless an approver cancels`);
  return lines.join('\n');
}
