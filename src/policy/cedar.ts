import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { CedarValueJson, DetailedError, EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import { TIERS, lineColumn, maxTier, type PolicyOutcome, type PolicyProblem, type PolicyRequest, type Tier } from './types.ts';

/**
 * Cedar, in-process through cedar-wasm. Each policy set is preparsed once under its own id, so an
 * evaluation costs one `statefulIsAuthorized` call. Writ's error semantics differ from Cedar's on
 * purpose: Cedar skips a policy whose evaluation errors (an erroring `forbid` would not block), so
 * any evaluation error here makes the outcome `error`, which the caller treats as deny.
 */
export interface CedarSource {
  file: string;
  text: string;
}

export interface CedarPolicyInfo {
  id: string;
  file: string;
  effect: 'permit' | 'forbid';
  tier: Tier;
}

export interface CedarSet {
  setId: string;
  schemaId: string | undefined;
  policies: Map<string, CedarPolicyInfo>;
}

let generation = 0;

function problem(file: string, text: string, err: DetailedError, base = 0): PolicyProblem {
  const at = err.sourceLocations?.[0];
  const { line, column } = lineColumn(text, base + (at?.start ?? 0));
  const label = at?.label ? ` (${at.label})` : '';
  return { file, line, column, message: `${err.message}${label}` };
}

/** Parses, annotates and (with a schema) validates; returns every problem found, with file:line:col. */
export function compileCedar(sources: CedarSource[], schema?: CedarSource): { set?: CedarSet; problems: PolicyProblem[] } {
  const problems: PolicyProblem[] = [];
  const texts: Record<string, string> = {};
  const policies = new Map<string, CedarPolicyInfo>();
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
      policies.set(id, { id, file: source.file, effect: json.json.effect, tier: tier as Tier });
    });
  }

  let schemaId: string | undefined;
  if (schema && problems.length === 0) {
    schemaId = `writ-schema-${++generation}`;
    const parsed = cedar.preparseSchema(schemaId, schema.text);
    if (parsed.type === 'failure') {
      for (const err of parsed.errors) problems.push(problem(schema.file, schema.text, err));
    } else {
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
  const prepared = cedar.preparsePolicySet(setId, { staticPolicies: texts });
  if (prepared.type === 'failure') {
    return { problems: prepared.errors.map((err) => ({ file: sources[0]?.file ?? '?', line: 1, column: 1, message: err.message })) };
  }
  return { set: { setId, schemaId, policies }, problems };
}

/** Action `email.send` is a member of `email.*`, which is a member of `*`. */
function actionEntities(action: string): EntityJson[] {
  const category = `${action.slice(0, action.indexOf('.'))}.*`;
  return [
    { uid: { type: 'Action', id: action }, attrs: {}, parents: [{ type: 'Action', id: category }] },
    { uid: { type: 'Action', id: category }, attrs: {}, parents: [{ type: 'Action', id: '*' }] },
    { uid: { type: 'Action', id: '*' }, attrs: {}, parents: [] },
  ];
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

export function cedarContext(request: PolicyRequest): Record<string, CedarValueJson> {
  const context: Record<string, CedarValueJson> = {
    scope: toCedar(request.scope) ?? {},
    context: toCedar(request.context) ?? {},
    time: { hour: request.time.getUTCHours(), weekday: request.time.getUTCDay() || 7 },
  };
  if (request.value !== undefined) {
    // Whole units, rounded up, so a threshold like `context.value > 1000` errs on the cautious side.
    context.value = Math.ceil(request.value);
    context.value_decimal = { __extn: { fn: 'decimal', arg: request.value.toFixed(4) } };
  }
  if (request.currency !== undefined) context.currency = request.currency;
  return context;
}

export function evaluateCedar(set: CedarSet, request: PolicyRequest): PolicyOutcome {
  const colon = request.resource.indexOf(':');
  const answer = cedar.statefulIsAuthorized({
    principal: { type: 'Agent', id: request.agent.id },
    action: { type: 'Action', id: request.action },
    resource: { type: 'Resource', id: request.resource },
    context: cedarContext(request),
    preparsedPolicySetId: set.setId,
    ...(set.schemaId ? { preparsedSchemaName: set.schemaId, validateRequest: true } : {}),
    entities: [
      {
        uid: { type: 'Agent', id: request.agent.id },
        attrs: { class: request.agent.class, trust_tier: request.agent.trust_tier },
        parents: [],
      },
      {
        uid: { type: 'Resource', id: request.resource },
        attrs: { type: request.resource.slice(0, colon), id: request.resource.slice(colon + 1) },
        parents: [],
      },
      ...(set.schemaId ? [] : actionEntities(request.action)),
    ],
  });
  if (answer.type === 'failure') return { outcome: 'error', errors: answer.errors.map((e) => `cedar: ${e.message}`) };
  const { decision, diagnostics } = answer.response;
  if (diagnostics.errors.length > 0) {
    return { outcome: 'error', errors: diagnostics.errors.map((e) => `cedar policy ${e.policyId}: ${e.error.message}`) };
  }
  const determining = diagnostics.reason;
  if (decision === 'deny') {
    return { outcome: 'deny', determining, reasons: determining.length ? [] : ['no Cedar policy permits this request'] };
  }
  const tier = maxTier(determining.map((id) => set.policies.get(id)?.tier ?? 'standard'));
  return { outcome: 'allow', tier, determining, reasons: [] };
}

export function formatCedar(text: string): { formatted?: string; error?: string } {
  const answer = cedar.formatPolicies({ policyText: text });
  return answer.type === 'success' ? { formatted: answer.formatted_policy } : { error: answer.errors.map((e) => e.message).join('; ') };
}
