import test from 'ava';
import { openApiDocument } from '../src/http/openapi.ts';
import { ROUTES } from '../src/http/routes/index.ts';
import { REASON_CODES } from '../src/errors.ts';
import { Contract } from './helpers/contract.ts';

/**
 * The published contract: every operation declares every status it can answer, errors carry a
 * reason code from the one enum, and the suite's checker refuses any answer the document does not
 * describe (which is how every end-to-end test checks the server's answers).
 */
const doc = openApiDocument(ROUTES, 'http://127.0.0.1') as any;
const contract = new Contract(doc);
const operations = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })));

test('every operation declares its errors, each status with its reason codes from the one enum', (t) => {
  t.deepEqual(doc.components.schemas.ReasonCode.enum, REASON_CODES);
  for (const { path, method, op } of operations) {
    const statuses = Object.keys(op.responses);
    t.true(statuses.includes('400') && statuses.includes('500'), `${method} ${path}`);
    if (op['x-writ-roles']) t.true(statuses.includes('401') && statuses.includes('403'), `${method} ${path} is authenticated`);
    for (const [status, response] of Object.entries<any>(op.responses)) {
      // The probes' 503 is their own answer (what is wrong, in fixed words), not an error.
      if (Number(status) < 400 || ((path === '/healthz' || path === '/readyz') && status === '503')) continue;
      const codes = response.content['application/json'].schema.properties.error.properties.reason_code.enum as string[];
      t.true(codes.length > 0 && codes.every((c) => REASON_CODES.includes(c as never)), `${method} ${path} ${status}`);
    }
  }
});

test('the OPA upload and the Telegram webhook document their request bodies, and the export its CSV', (t) => {
  t.truthy(doc.paths['/api/v1/adapters/opa/logs'].post.requestBody.content['application/json']);
  t.truthy(doc.paths['/api/v1/telegram/webhook'].post.requestBody.content['application/json']);
  t.truthy(doc.paths['/api/v1/log/records'].get.responses['200'].content['text/csv']);
  t.false(JSON.stringify(doc).includes('__schema'), 'every shared schema has a name');
});

test('the checker refuses an undeclared status, an undeclared field, a reason code of another status, and an unknown route answered 200', (t) => {
  const agent = { id: 'agt_1', name: 'a', class: 'default', trust_tier: 'T2', created_at: '2026-12-01T00:00:00Z', api_key: 'writ_agent_x' };
  t.is(contract.check({ method: 'POST', path: '/api/v1/agents', status: 201, type: 'application/json', body: agent }), undefined);
  t.regex(contract.check({ method: 'POST', path: '/api/v1/agents', status: 201, type: 'application/json', body: { ...agent, secret: 'x' } })!, /additional properties/);
  t.regex(contract.check({ method: 'POST', path: '/api/v1/agents', status: 418, type: 'application/json', body: {} })!, /status 418 is not declared/);
  const wrongCode = { error: { reason_code: 'token_used', message: 'x' } };
  t.regex(contract.check({ method: 'POST', path: '/api/v1/agents', status: 409, type: 'application/json', body: wrongCode }) ?? 'accepted', /not declared|must be equal/);
  t.regex(contract.check({ method: 'GET', path: '/api/v1/nowhere', status: 200, type: 'application/json', body: {} })!, /must be 404/);
  t.is(contract.check({ method: 'GET', path: '/api/v1/nowhere', status: 404, type: 'application/json', body: { error: { reason_code: 'route_not_found', message: 'no route' } } }), undefined);
});

test('the checker refuses a public document answered without its CORS header, and a CORS header on a route that takes a key', (t) => {
  const jwks = { method: 'GET', path: '/.well-known/jwks.json', status: 200, type: 'application/json', body: { keys: [] } };
  t.is(contract.check({ ...jwks, headers: { 'access-control-allow-origin': '*' } }), undefined);
  t.regex(contract.check({ ...jwks, headers: {} })!, /declares the header access-control-allow-origin/);
  t.regex(contract.check({ ...jwks, headers: { 'access-control-allow-origin': 'https://shop.example' } })!, /header access-control-allow-origin: must be equal to constant/);
  const status = { method: 'POST', path: '/api/v1/log/checkpoint', status: 201, type: 'text/plain', body: 'note' };
  t.is(contract.check({ ...status, headers: {} }), undefined);
  t.regex(contract.check({ ...status, headers: { 'access-control-allow-origin': '*' } })!, /header access-control-allow-origin is not declared/);
  t.is(doc.paths['/.well-known/jwks.json'].options.responses['204'].headers['Access-Control-Allow-Methods'].schema.const, 'GET, HEAD');
  t.is(doc.paths['/api/v1/permissions'].options, undefined, 'no preflight where a key is needed');
});
