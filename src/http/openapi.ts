import { z } from 'zod';
import type { Route } from './route.ts';
import { errorSchema } from './schemas.ts';

/** OpenAPI 3.1 from the same zod schemas that validate requests (JSON Schema 2020-12 dialect). */
export function openApiDocument(routes: Route[], serverUrl: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const components: Record<string, unknown> = {};
  // Named schemas (.meta({id})) land in components; zod's local $defs refs are rewritten to point there.
  const toSchema = (schema: z.ZodType, io: 'input' | 'output') => {
    const json = JSON.parse(
      JSON.stringify(z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' })).replaceAll('#/$defs/', '#/components/schemas/'),
    ) as Record<string, unknown> & { $defs?: Record<string, unknown> };
    const { $schema: _ignored, $defs, ...rest } = json;
    Object.assign(components, $defs);
    return rest;
  };
  for (const route of routes) {
    const path = route.path.replace(/:(\w+)/g, '{$1}');
    const parameters: unknown[] = [...route.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (route.query) {
      const q = toSchema(route.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) {
        parameters.push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(route.responses)) {
      responses[status] = {
        description: r.description,
        ...(r.schema ? { content: { 'application/json': { schema: toSchema(r.schema, 'output') } } } : {}),
        ...(r.type ? { content: { [r.type.split(';')[0]!]: { schema: { type: 'string' } } } } : {}),
      };
    }
    if (route.auth !== 'anyone') {
      responses['401'] ??= { description: 'Missing or invalid API key', content: { 'application/json': { schema: toSchema(errorSchema, 'output') } } };
    }
    (paths[path] ??= {})[route.method.toLowerCase()] = {
      summary: route.summary,
      ...(route.auth === 'anyone' ? { security: [] } : { 'x-writ-roles': route.auth === 'cascade' ? ['agent'] : route.auth }),
      ...(parameters.length ? { parameters } : {}),
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: toSchema(route.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Writ', version: '1.0.0', description: 'Authorization for AI agents: decisions, one-time tokens, signed receipts, a verifiable log.' },
    servers: [{ url: serverUrl }],
    components: { schemas: components, securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'writ_<role>_… API key' } } },
    security: [{ apiKey: [] }],
    paths,
  };
}
