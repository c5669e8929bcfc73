import { z } from 'zod';
import { compileCedar } from '../../policy/cedar.ts';
import { SCHEMA_FILE, type PolicySet } from '../../policy/set.ts';
import { TIERS } from '../../policy/types.ts';
import { defineRoute } from '../route.ts';

/**
 * The active set file by file, with the policies each holds: the ids a decision names as
 * determining (Cedar's @id, or file#n without one), their effect, tier and line; for Rego, the
 * module the file was compiled into (a decision names its rule's own reasons).
 */
const fileSchema = z.object({
  file: z.string(),
  language: z.enum(['cedar', 'cedar_schema', 'rego', 'rego_bundle']),
  loaded: z.boolean().describe('false for Rego sources left uncompiled (no OPA compiler): every request is denied meanwhile'),
  policies: z.array(z.object({ id: z.string(), effect: z.enum(['permit', 'forbid']), tier: z.enum(TIERS), line: z.number() })),
  module: z.string().optional().describe('Rego: the compiled module this file is part of'),
});
type FileView = z.infer<typeof fileSchema>;

/** Parsed once per set: the active set does not change between reloads. */
const views = new WeakMap<PolicySet, FileView[]>();

function viewOf(set: PolicySet): FileView[] {
  const known = views.get(set);
  if (known) return known;
  const cedarFiles = set.artifacts.cedar.filter((s) => s.file.endsWith('.cedar'));
  const parsed = cedarFiles.length ? compileCedar(cedarFiles, undefined, { checkOnly: true }).set : undefined;
  const policies = [...(parsed?.policies.values() ?? [])];
  const moduleOf = new Map(set.artifacts.rego.flatMap((m) => [[m.id, m.id] as const, ...m.files.map((f) => [f, m.id] as const)]));
  const view = set.files.map((file): FileView => {
    if (file.endsWith('.cedar')) {
      const here = policies.filter((p) => p.file === file).map(({ id, effect, tier, line }) => ({ id, effect, tier, line }));
      return { file, language: 'cedar', loaded: true, policies: here };
    }
    if (file === SCHEMA_FILE) return { file, language: 'cedar_schema', loaded: true, policies: [] };
    const module = moduleOf.get(file);
    return { file, language: file.endsWith('.tar.gz') ? 'rego_bundle' : 'rego', loaded: !set.artifacts.unloaded.includes(file), policies: [], ...(module ? { module } : {}) };
  });
  views.set(set, view);
  return view;
}

export default defineRoute({
  method: 'GET',
  path: '/api/v1/policies/files',
  summary: 'The active policy set file by file, with the policy ids each file holds (the ids decisions name as determining)',
  auth: ['admin'],
  responses: { 200: { description: 'The active set', schema: z.object({ hash: z.string(), files: z.array(fileSchema) }) } },
  handle({ writ }) {
    const set = writ.policies.current;
    return { status: 200, body: { hash: set.hash, files: viewOf(set) } };
  },
});
