import v8 from 'node:v8';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { CedarValueJson, DetailedError, EntityJson, EntityUidJson } from '@cedar-policy/cedar-wasm/nodejs';
import { TIERS, lineColumn, maxTier, type PolicyOutcome, type PolicyProblem, type PolicyRequest, type Tier } from './types.ts';

/**
 * Cedar, in-process through cedar-wasm. Each policy set is preparsed once under its own id, so an
 * evaluation costs one `statefulIsAuthorized` call. Writ's error semantics differ from Cedar's on
 * purpose: Cedar skips a policy whose evaluation errors (an erroring `forbid` would not block), so
 * any evaluation error here makes the outcome `error`, which the caller treats as deny. Cedar's
 * default deny (nothing matched) is `not_applicable`, so that Rego beside it can still decide.
 */
export interface CedarSource {
  file: string;
  text: string;
}

export interface CedarPolicyInfo {
  id: string;
  file: string;
  /** Where the policy starts in its file (coverage reports point there). */
  line: number;
  effect: 'permit' | 'forbid';
  tier: Tier;
}

export interface CedarSet {
  setId: string;
  schemaId: string | undefined;
  policies: Map<string, CedarPolicyInfo>;
  /** Attribute names the policies read; undefined when `context` is used whole (send everything). */
  reads: Set<string> | undefined;
}

/**
 * Names of every attribute any policy reads with `.attr` or `has attr`, and whether `context` is
 * ever used other than through those. Passing Cedar only attributes some policy can read cannot
 * change a decision, and each one passed costs time on every call.
 */
function attributeReads(policies: unknown[]): Set<string> | undefined {
  const names = new Set<string>();
  let whole = false;
  const walk = (node: unknown, viaAttr: boolean): void => {
    if (Array.isArray(node)) return node.forEach((n) => walk(n, false));
    if (node === null || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    if (record.Var === 'context' && !viaAttr) whole = true;
    for (const [key, value] of Object.entries(record)) {
      if ((key === '.' || key === 'has') && value && typeof value === 'object') {
        const { left, attr } = value as { left: unknown; attr: string | string[] };
        for (const name of Array.isArray(attr) ? attr : [attr]) names.add(name);
        walk(left, true);
      } else {
        walk(value, false);
      }
    }
  };
  for (const policy of policies) walk(policy, false);
  return whole ? undefined : names;
}

/**
 * Node 20's V8 aborts the whole process ("Fatal error … unreachable code" in
 * Deoptimizer::DoComputeBuiltinContinuation) when an optimised function that inlined a JS→Wasm
 * call is lazily deoptimised while the Wasm code is calling back into JS, which cedar-wasm does
 * for JSON on every call. Seen here after ~20 s of load; not inlining those calls avoids it.
 */
v8.setFlagsFromString('--no-turbo-inline-js-wasm-calls');

let generation = 0;

function problem(file: string, text: string, err: DetailedError, base = 0): PolicyProblem {
  const at = err.sourceLocations?.[0];
  const { line, column } = lineColumn(text, base + (at?.start ?? 0));
  const label = at?.label ? ` (${at.label})` : '';
  return { file, line, column, message: `${err.message}${label}` };
}

/** Parses, annotates and (with a schema) validates; returns every problem found, with file:line:col. */
/**
 * With `checkOnly`, nothing is preparsed: cedar-wasm keeps preparsed sets for the life of the
 * thread, so the thread that only reports problems (the main one) must not pile them up.
 */
export function compileCedar(sources: CedarSource[], schema?: CedarSource, options: { checkOnly?: boolean } = {}): { set?: CedarSet; problems: PolicyProblem[] } {
  const problems: PolicyProblem[] = [];
  const texts: Record<string, string> = {};
  const policies = new Map<string, CedarPolicyInfo>();
  const asts: unknown[] = [];
  const offsets = new Map<string, { source: CedarSource; base: number }>();

  for (const source of sources) {
    const parts = cedar.policySetTextToParts(source.text);
    if (parts.type === 'failure') {
      for (const err of parts.errors) problems.push(problem(source.file, source.text, err));
      continue;
    }
    if (parts.policy_templates.length > 0) {
      problems.push({ file: source.file, line: 1, column: 1, message: 'policy templates are not supported; write static policies' });
    }
    let searchFrom = 0;
    parts.policies.forEach((text, n) => {
      const found = source.text.indexOf(text, searchFrom);
      const base = found >= 0 ? found : 0;
      if (found >= 0) searchFrom = found + text.length;
      const json = cedar.policyToJson(text);
      if (json.type === 'failure') {
        for (const err of json.errors) problems.push(problem(source.file, source.text, err, base));
        return;
      }
      asts.push(json.json.conditions);
      const annotations = json.json.annotations ?? {};
      const id = annotations.id ?? `${source.file}#${n}`;
      const at = lineColumn(source.text, base);
      const here = { file: source.file, line: at.line, column: at.column };
      if (policies.has(id)) problems.push({ ...here, message: `duplicate policy id "${id}"` });
      const tier = annotations.tier ?? 'standard';
      if (!(TIERS as readonly string[]).includes(tier)) {
        problems.push({ ...here, message: `@tier("${tier}") is not one of ${TIERS.join(', ')}` });
      } else if (json.json.effect === 'forbid' && annotations.tier !== undefined) {
        problems.push({ ...here, message: '@tier applies to permit policies only; a forbid always denies' });
      }
      texts[id] = text;
      offsets.set(id, { source, base });
      policies.set(id, { id, file: source.file, line: at.line, effect: json.json.effect, tier: tier as Tier });
    });
  }

  let schemaId: string | undefined;
  if (schema && problems.length === 0) {
    schemaId = `writ-schema-${++generation}`;
    const parsed = options.checkOnly ? cedar.checkParseSchema(schema.text) : cedar.preparseSchema(schemaId, schema.text);
    if (parsed.type === 'failure') {
      for (const err of parsed.errors) problems.push(problem(schema.file, schema.text, err));
    } else {
      problems.push(...actionHierarchyProblems(schema));
      const validation = cedar.validate({ schema: schema.text, policies: { staticPolicies: texts } });
      if (validation.type === 'failure') {
        for (const err of validation.errors) problems.push(problem(schema.file, schema.text, err));
      } else {
        for (const { policyId, error } of validation.validationErrors) {
          const where = offsets.get(policyId);
          problems.push(where ? problem(where.source.file, where.source.text, error, where.base) : { file: policyId, line: 1, column: 1, message: error.message });
        }
      }
    }
  }
  if (problems.length > 0) return { problems };

  const setId = `writ-cedar-${++generation}`;
  const prepared = options.checkOnly ? cedar.checkParsePolicySet({ staticPolicies: texts }) : cedar.preparsePolicySet(setId, { staticPolicies: texts });
  if (prepared.type === 'failure') {
    return { problems: prepared.errors.map((err) => ({ file: sources[0]?.file ?? '?', line: 1, column: 1, message: err.message })) };
  }
  return { set: { setId, schemaId, policies, reads: schemaId ? undefined : attributeReads(asts) }, problems };
}

/**
 * With a schema, Cedar takes the action hierarchy from the schema instead of from Writ. A schema
 * that leaves `bank.transfer` outside `bank.*` would make `forbid (…, action in Action::"bank.*", …)`
 * silently stop matching — failing open — so such a schema is refused.
 */
function actionHierarchyProblems(schema: CedarSource): PolicyProblem[] {
  const answer = cedar.schemaToJson(schema.text);
  if (answer.type === 'failure') return [];
  const actions = answer.json['']?.actions ?? {};
  const parents = (name: string) => (actions[name] as { memberOf?: Array<{ id: string }> } | undefined)?.memberOf?.map((m) => m.id) ?? [];
  const problems: PolicyProblem[] = [];
  for (const name of Object.keys(actions)) {
    if (name === '*') continue;
    const reach = new Set<string>();
    const todo = parents(name);
    while (todo.length) {
      const next = todo.pop()!;
      if (!reach.has(next)) (reach.add(next), todo.push(...parents(next)));
    }
    const category = name.endsWith('.*') ? undefined : `${name.slice(0, name.indexOf('.'))}.*`;
    const missing = [category, '*'].filter((m): m is string => m !== undefined && !reach.has(m));
    if (missing.length) {
      const at = lineColumn(schema.text, Math.max(0, schema.text.indexOf(`"${name}"`)));
      problems.push({
        file: schema.file,
        ...at,
        message: `action "${name}" must be a member of ${missing.map((m) => `"${m}"`).join(' and ')} (e.g. action "${name}" in ["${missing[0]}"]), or policies written with \`action in\` would not match it`,
      });
    }
  }
  return problems;
}

/**
 * Action `email.send` is a member of `email.*` and of `*`. The parents are listed directly (the
 * hierarchy is transitively closed either way) because every entity passed costs time per call.
 */
function actionEntities(action: string): EntityJson[] {
  const category = `${action.slice(0, action.indexOf('.'))}.*`;
  return [{ uid: { type: 'Action', id: action }, attrs: {}, parents: [{ type: 'Action', id: category }, { type: 'Action', id: '*' }] }];
}

/**
 * JSON → Cedar values. Cedar has no null and no floats: nulls are dropped, fractions become
 * `decimal` (4 places). Keys starting with "__" are refused upstream so input cannot forge entity
 * or extension references.
 */
function toCedar(value: unknown): CedarValueJson | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'number') {
    return Number.isInteger(value) ? value : { __extn: { fn: 'decimal', arg: value.toFixed(4) } };
  }
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map(toCedar).filter((v): v is CedarValueJson => v !== undefined);
  const out: Record<string, CedarValueJson> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const c = toCedar(v);
    if (c !== undefined) out[k] = c;
  }
  return out;
}

/** The context record; with `reads`, only the keys some policy reads (see attributeReads). */
export function cedarContext(request: PolicyRequest, reads?: Set<string>): Record<string, CedarValueJson> {
  const wants = (key: string) => !reads || reads.has(key);
  const context: Record<string, CedarValueJson> = {};
  if (wants('scope')) context.scope = toCedar(request.scope) ?? {};
  if (wants('context')) context.context = toCedar(request.context) ?? {};
  if (wants('time')) context.time = { hour: request.time.getUTCHours(), weekday: request.time.getUTCDay() || 7 };
  if (request.value !== undefined) {
    // Whole units, rounded up, so a threshold like `context.value > 1000` errs on the cautious side.
    if (wants('value')) context.value = Math.ceil(request.value);
    if (wants('value_decimal')) context.value_decimal = { __extn: { fn: 'decimal', arg: request.value.toFixed(4) } };
  }
  if (request.currency !== undefined && wants('currency')) context.currency = request.currency;
  return context;
}

function pick(attrs: Record<string, string>, reads: Set<string> | undefined): Record<string, string> {
  if (!reads) return attrs;
  const out: Record<string, string> = {};
  for (const key in attrs) if (reads.has(key)) out[key] = attrs[key]!;
  return out;
}

export function evaluateCedar(set: CedarSet, request: PolicyRequest, extraEntities: EntityJson[] = []): PolicyOutcome {
  const colon = request.resource.indexOf(':');
  const entities: EntityJson[] = [
    {
      uid: { type: 'Agent', id: request.agent.id },
      attrs: pick({ class: request.agent.class, trust_tier: request.agent.trust_tier }, set.reads),
      parents: [],
    },
    {
      uid: { type: 'Resource', id: request.resource },
      attrs: pick({ type: request.resource.slice(0, colon), id: request.resource.slice(colon + 1) }, set.reads),
      parents: [],
    },
    ...(set.schemaId ? [] : actionEntities(request.action)),
  ];
  const answer = cedar.statefulIsAuthorized({
    principal: { type: 'Agent', id: request.agent.id },
    action: { type: 'Action', id: request.action },
    resource: { type: 'Resource', id: request.resource },
    context: cedarContext(request, set.reads),
    preparsedPolicySetId: set.setId,
    ...(set.schemaId ? { preparsedSchemaName: set.schemaId, validateRequest: true } : {}),
    entities: extraEntities.length ? withExtraEntities(entities, extraEntities) : entities,
  });
  if (answer.type === 'failure') return { outcome: 'error', code: 'policy_error', errors: answer.errors.map((e) => `cedar: ${e.message}`) };
  const { decision, diagnostics } = answer.response;
  if (diagnostics.errors.length > 0) {
    return { outcome: 'error', code: 'policy_error', errors: diagnostics.errors.map((e) => `cedar policy ${e.policyId}: ${e.error.message}`) };
  }
  // Cedar gives its reasons as a set, in no fixed order (two engine instances can differ): sorted, a
  // decision reads the same wherever it was made.
  const determining = [...diagnostics.reason].sort();
  if (decision === 'deny') {
    return determining.length ? { outcome: 'deny', determining, reasons: [], languages: ['cedar'] } : { outcome: 'not_applicable', reasons: ['no Cedar policy permits or forbids this request'] };
  }
  const tier = maxTier(determining.map((id) => set.policies.get(id)?.tier ?? 'standard'));
  return { outcome: 'allow', tier, determining, reasons: [], languages: ['cedar'] };
}

/** The attributes Writ derives from the request itself; `--entities` may add attributes, never replace these. */
export const REQUEST_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = { Agent: ['class', 'trust_tier'], Resource: ['type', 'id'] };

const uidOf = (uid: EntityUidJson): { type: string; id: string } => ('__entity' in uid ? uid.__entity : uid);
const uidKey = (uid: EntityUidJson): string => {
  const { type, id } = uidOf(uid);
  return `${type}::${JSON.stringify(id)}`;
};

/**
 * Local evaluation's extra entities (`writ policy eval --entities`). One Writ builds too (the
 * request's Agent, Resource or Action) is merged into Writ's: its attributes and tags are added,
 * its parents joined, and the attributes Writ derives from the request keep Writ's values (the
 * CLI refuses an attempt to replace them, so Cedar and Rego see the same request). Any other
 * entity is passed to Cedar as given.
 */
export function withExtraEntities(built: EntityJson[], extra: EntityJson[]): EntityJson[] {
  const merged = new Map(built.map((e) => [uidKey(e.uid), e]));
  for (const entity of extra) {
    const key = uidKey(entity.uid);
    const ours = merged.get(key);
    if (!ours) {
      merged.set(key, entity);
      continue;
    }
    const parents = new Map([...ours.parents, ...entity.parents].map((p) => [uidKey(p), p]));
    const tags = { ...entity.tags, ...ours.tags };
    merged.set(key, { uid: ours.uid, attrs: { ...entity.attrs, ...ours.attrs }, parents: [...parents.values()], ...(Object.keys(tags).length ? { tags } : {}) });
  }
  return [...merged.values()];
}

/** Attributes of the request's own Agent and Resource that `extra` would replace (`Agent::"agt_test".trust_tier`). */
export function replacedRequestAttributes(request: PolicyRequest, extra: EntityJson[]): string[] {
  const own = new Map([
    [uidKey({ type: 'Agent', id: request.agent.id }), REQUEST_ATTRIBUTES.Agent!],
    [uidKey({ type: 'Resource', id: request.resource }), REQUEST_ATTRIBUTES.Resource!],
  ]);
  return extra.flatMap((e) => (own.get(uidKey(e.uid)) ?? []).filter((name) => name in e.attrs).map((name) => `${uidOf(e.uid).type}::${JSON.stringify(uidOf(e.uid).id)}.${name}`));
}

export function formatCedar(text: string): { formatted?: string; error?: string } {
  const answer = cedar.formatPolicies({ policyText: text });
  return answer.type === 'success' ? { formatted: answer.formatted_policy } : { error: answer.errors.map((e) => e.message).join('; ') };
}
