import { createRequire } from 'node:module';
import type { Ajv as AjvType, ValidateFunction } from 'ajv';

/**
 * Checks an HTTP answer against the OpenAPI document the server publishes: the path and method
 * are an operation, the status is one it declares, the media type is declared for that status,
 * the body matches its schema (JSON Schema 2020-12, with formats), and the headers it declares are
 * there and match theirs, while no CORS header is sent that it does not declare. The suite runs
 * every response of every end-to-end test through this, so the document and the behaviour cannot
 * drift.
 */
const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020.js').default as new (options: object) => AjvType;
const addFormats = require('ajv-formats').default as (ajv: AjvType) => void;

export type { Exchange } from '../../src/http/server.ts';
import type { Exchange } from '../../src/http/server.ts';

interface Operation {
  template: string;
  pattern: RegExp;
  methods: Set<string>;
}

interface Response {
  content?: Record<string, { schema: unknown }>;
  headers?: Record<string, { required?: boolean; schema: unknown }>;
}

const isStream = (body: unknown): boolean => body !== null && typeof body === 'object' && typeof (body as { pipe?: unknown }).pipe === 'function';

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

export class Contract {
  private readonly ajv: AjvType;
  private readonly operations: Operation[];
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly doc: { paths: Record<string, Record<string, { responses: Record<string, Response> }>> }) {
    this.ajv = new Ajv2020({ strict: false, allErrors: false });
    addFormats(this.ajv);
    this.ajv.addSchema(doc as object, 'openapi');
    this.operations = Object.entries(doc.paths).map(([template, ops]) => ({
      template,
      pattern: new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '[^/]+')}$`),
      methods: new Set(Object.keys(ops)),
    }));
  }

  /** What is wrong with this answer, or undefined when it is what the document says. */
  check(ex: Exchange): string | undefined {
    const what = `${ex.method} ${ex.path} → ${ex.status}`;
    // A literal path wins over a template it also matches (/approvals/events, not /approvals/{id}), as in the router's order.
    const matching = this.operations.filter((o) => o.pattern.test(ex.path)).sort((a, b) => Number(a.template !== ex.path) - Number(b.template !== ex.path));
    const method = ex.method === 'HEAD' ? 'get' : ex.method.toLowerCase();
    const operation = matching.find((o) => o.methods.has(method));
    if (!operation) {
      // Not an operation: the router's own answers, in the one error shape.
      const expected = matching.length === 0 ? 404 : 405;
      if (ex.status !== expected) return `${what}: no such operation, so the answer must be ${expected}`;
      return this.checkHeaders(ex, {}, what) ?? this.validate(`#/components/schemas/Error`, ex.body, what);
    }
    const responses = this.doc.paths[operation.template]![method]!.responses;
    const response = responses[String(ex.status)];
    if (!response) return `${what}: status ${ex.status} is not declared (declared: ${Object.keys(responses).join(', ')})`;
    const headers = this.checkHeaders(ex, response, what);
    if (headers) return headers;
    if (ex.method === 'HEAD' || !ex.type) return response.content && ex.method !== 'HEAD' ? `${what}: the document declares a body, none was sent` : undefined;
    const content = response.content?.[ex.type];
    if (!content) return `${what}: media type ${ex.type} is not declared (declared: ${Object.keys(response.content ?? {}).join(', ') || 'none'})`;
    // A streamed body (an event stream) is still being written when the answer is observed: its
    // media type and headers are what can be checked; what it carries, its own tests read.
    if (isStream(ex.body)) return content.schema && (content.schema as { type?: string }).type === 'string' ? undefined : `${what}: a streamed body where the document declares JSON`;
    return this.validate(`openapi#/${pointer('paths', operation.template, method, 'responses', String(ex.status), 'content', ex.type, 'schema')}`, ex.body, what);
  }

  /** Declared headers present (when required) and valid; no CORS header that is not declared. */
  private checkHeaders(ex: Exchange, response: Response, what: string): string | undefined {
    if (!ex.headers) return undefined;
    const declared = new Map(Object.entries(response.headers ?? {}).map(([name, header]) => [name.toLowerCase(), header]));
    for (const [name, header] of declared) {
      const value = ex.headers[name];
      if (value === undefined) {
        if (header.required) return `${what}: the document declares the header ${name}, none was sent`;
        continue;
      }
      const problem = this.validateWith(`${what}: header ${name}`, header.schema, value);
      if (problem) return problem;
    }
    const undeclared = Object.keys(ex.headers).find((name) => name.startsWith('access-control-') && !declared.has(name));
    return undeclared ? `${what}: the header ${undeclared} is not declared` : undefined;
  }

  private validateWith(what: string, schema: unknown, value: unknown): string | undefined {
    if (this.ajv.validate(schema as object, value)) return undefined;
    return `${what}: ${this.ajv.errors?.[0]?.message}: ${JSON.stringify(value).slice(0, 100)}`;
  }

  private validate(ref: string, body: unknown, what: string): string | undefined {
    const key = ref.startsWith('#') ? `openapi${ref}` : ref;
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile({ $ref: key });
      this.validators.set(key, validate);
    }
    if (validate(body)) return undefined;
    const e = validate.errors?.[0];
    return `${what}: ${e?.instancePath || '(body)'} ${e?.message}${e?.params ? ` ${JSON.stringify(e.params)}` : ''}: ${JSON.stringify(body).slice(0, 300)}`;
  }
}
