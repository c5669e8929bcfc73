import { z } from 'zod';
import { errorStatusesOf } from './contract.ts';
import { corsHeadersOf } from './cors.ts';
import type { Route } from './route.ts';
import { errorOf, errorSchema } from './schemas.ts';

/**
 * OpenAPI 3.1 from the same zod schemas that validate requests (JSON Schema 2020-12 dialect).
 * Every operation lists every status it can answer: its successes as the route declares them,
 * and its errors from its reason codes, each status with the codes it carries.
 */
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
  const media = (content: Record<string, z.ZodType | 'binary' | 'text'>, io: 'input' | 'output') =>
    Object.fromEntries(
      Object.entries(content).map(([type, schema]) => [
        type,
        { schema: schema === 'binary' ? { type: 'string', contentMediaType: type } : schema === 'text' ? { type: 'string' } : toSchema(schema, io) },
      ]),
    );
  for (const route of routes) {
    const path = route.path.replace(/:(\w+)/g, '{$1}');
    const parameters: unknown[] = [...route.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (route.query) {
      const q = toSchema(route.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) {
        parameters.push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema });
      }
    }
    // Headers every answer of the route carries, errors included (CORS on the public documents).
    const cors = Object.entries(corsHeadersOf(route));
    const headers = cors.length ? { headers: Object.fromEntries(cors.map(([name, value]) => [name, { required: true, schema: { type: 'string', const: value } }])) } : {};
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(route.responses)) {
      const content: Record<string, z.ZodType | 'text'> = { ...(r.schema ? { 'application/json': r.schema } : {}), ...(r.type ? { [r.type.split(';')[0]!]: 'text' as const } : {}), ...r.also };
      // Headers of this answer only (the session cookie), beside those of every answer.
      const own = Object.fromEntries(Object.entries(r.headers ?? {}).map(([name, h]) => [name, { required: true, description: h.description, schema: { type: 'string' } }]));
      const all = Object.keys(own).length ? { headers: { ...headers.headers, ...own } } : headers;
      responses[status] = { description: r.description, ...all, ...(Object.keys(content).length ? { content: media(content, 'output') } : {}) };
    }
    for (const [status, codes] of errorStatusesOf(route)) {
      const declared = route.responses[status]?.description;
      responses[String(status)] = {
        description: `${declared ? `${declared}. ` : ''}Reason codes: ${codes.join(', ')}`,
        ...headers,
        content: { 'application/json': { schema: toSchema(errorOf(codes), 'output') } },
      };
    }
    const requestBody = route.body
      ? { required: true, content: { 'application/json': { schema: toSchema(route.body, 'input') } } }
      : route.requestDoc
        ? { required: true, description: route.requestDoc.description, content: media(route.requestDoc.content, 'input') }
        : undefined;
    (paths[path] ??= {})[route.method.toLowerCase()] = {
      summary: route.summary,
      ...(route.auth === 'anyone' ? { security: [] } : { 'x-writ-roles': route.auth === 'cascade' ? ['agent'] : route.auth }),
      ...(parameters.length ? { parameters } : {}),
      ...(requestBody ? { requestBody } : {}),
      responses,
    };
  }
  // The shape every error has, for answers that belong to no operation (404 route_not_found, 405).
  toSchema(errorSchema, 'output');
  return {
    openapi: '3.1.0',
    info: { title: 'Writ', version: '1.0.0', description: 'Authorization for AI agents: decisions, one-time tokens, signed receipts, a verifiable log.' },
    servers: [{ url: serverUrl }],
    components: { schemas: components, securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'writ_<role>_… API key' } } },
    security: [{ apiKey: [] }],
    paths,
  };
}
