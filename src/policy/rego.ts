import { createRequire } from 'node:module';
import type { LoadedPolicy, loadPolicySync as LoadPolicySync } from '@open-policy-agent/opa-wasm';
import { z } from 'zod';
import { ENTRYPOINT } from './opa.ts';
import { TIERS, failure, type PolicyOutcome, type PolicyRequest } from './types.ts';

/**
 * Rego, compiled to Wasm by OPA's compiler and evaluated in-process with opa-wasm. `writ/decision`
 * must answer `{allow: bool, tier?: "standard"|"sensitive"|"critical", reasons?: [string]}`, or be
 * undefined when the rules do not apply (`not_applicable`); anything else — another shape, a
 * runtime error, a trap — is an `error` outcome, which denies.
 */
export interface RegoModule {
  /** `rego` for the directory's .rego sources compiled together, else the bundle's file name. */
  id: string;
  files: string[];
  wasm: Uint8Array;
  data: unknown;
}

export interface RegoEvaluator {
  id: string;
  policy: LoadedPolicy;
}

// The package's ESM entry exports only the async loader; the synchronous one is on its CJS entry.
const { loadPolicySync } = createRequire(import.meta.url)('@open-policy-agent/opa-wasm') as { loadPolicySync: typeof LoadPolicySync };

const DecisionSchema = z.object({
  allow: z.boolean(),
  tier: z.enum(TIERS).default('standard'),
  reasons: z.array(z.string()).default([]),
});

export function instantiateRego(module: RegoModule): RegoEvaluator {
  const policy = loadPolicySync(module.wasm, { initial: 5, maximum: 1024 });
  const entrypoints = policy.entrypoints as Record<string, number>;
  if (!(ENTRYPOINT in entrypoints)) {
    throw new Error(`${module.id} has no ${ENTRYPOINT} entrypoint (it has ${Object.keys(entrypoints).join(', ') || 'none'}); build it with -e ${ENTRYPOINT}`);
  }
  policy.setData((module.data ?? {}) as object);
  return { id: module.id, policy };
}

/**
 * `extra` over a module's own data, as `opa eval -d` merges data files: objects merge key by key,
 * and a key both define with anything but objects is a conflict (an error naming its path).
 */
export function mergeData(base: unknown, extra: Record<string, unknown>, at = 'data'): Record<string, unknown> {
  // Without a prototype, a "__proto__" key in the JSON is a key like any other.
  const merged: Record<string, unknown> = Object.assign(Object.create(null), isObject(base) ? base : {});
  for (const [key, value] of Object.entries(extra)) {
    const here = `${at}.${key}`;
    if (!(key in merged)) merged[key] = value;
    else if (isObject(merged[key]) && isObject(value)) merged[key] = mergeData(merged[key], value, here);
    else throw new Error(`${here} is defined by the policy bundle and by the data given`);
  }
  return merged;
}
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The input document, exactly as SPEC names it. */
export function regoInput(request: PolicyRequest): Record<string, unknown> {
  return {
    action: request.action,
    resource: request.resource,
    scope: request.scope,
    context: request.context,
    ...(request.value !== undefined ? { value: request.value } : {}),
    ...(request.currency !== undefined ? { currency: request.currency } : {}),
    time: { rfc3339: request.time.toISOString(), hour: request.time.getUTCHours(), weekday: request.time.getUTCDay() || 7 },
    agent: request.agent,
  };
}

export function evaluateRego(evaluator: RegoEvaluator, request: PolicyRequest): PolicyOutcome {
  const where = `rego ${evaluator.id}`;
  let resultSet: Array<{ result?: unknown }>;
  try {
    resultSet = evaluator.policy.evaluate(regoInput(request), ENTRYPOINT) as Array<{ result?: unknown }>;
  } catch (err) {
    // opa-wasm throws plain strings too, e.g. "opa_malloc: failed" when the module runs out of memory.
    return failure('policy_error', `${where}: evaluation failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const result = resultSet[0]?.result;
  if (result === undefined) return { outcome: 'not_applicable', reasons: [`${where}: ${ENTRYPOINT} is undefined for this request`] };
  const parsed = DecisionSchema.safeParse(result);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return failure('policy_error', `${where}: ${ENTRYPOINT} must be {allow: bool, tier?, reasons?}; ${issue.path.join('.') || 'result'}: ${issue.message}`);
  }
  const { allow, tier, reasons } = parsed.data;
  const determining = [`rego:${evaluator.id}`];
  return allow ? { outcome: 'allow', tier, determining, reasons, languages: ['rego'] } : { outcome: 'deny', determining, reasons, languages: ['rego'] };
}
