import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { compactVerify, createLocalJWKSet } from 'jose';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { ADMIN, agent, caller, spawnWrit, startWrit, tempDir, writCli } from './helpers/writ.ts';

const writ = writCli;

test('receipts verify with jose as well as with the Writ SDK', async (t) => {
  const w = await startWrit();
  try {
    const a = await agent(w);
    const { receipt } = (await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:j@acme.com' })).body;
    const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
    const { protectedHeader } = await compactVerify(receipt, createLocalJWKSet(jwks));
    t.like(protectedHeader, { alg: 'EdDSA', typ: 'oap-receipt+jwt' });
    t.truthy(protectedHeader.kid);
  } finally {
    await w.close();
  }
});

test('after a key rotation old receipts still verify, new ones use the new key, and the rotation is logged', async (t) => {
  const data = await tempDir();
  let w = await startWrit({ data });
  const a = await agent(w);
  const before = (await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:r@acme.com' })).body.receipt;
  const online = await w.admin('POST', '/api/v1/keys/rotate');
  t.is(online.status, 200);
  const mid = (await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:r@acme.com' })).body.receipt;
  await w.close();

  const offline = await writ('keys', 'rotate', '--data', data);
  t.is(offline.code, 0, offline.out);
  t.regex(offline.out, /rotated: new key \S+; \S+ stays in the JWKS for 90 days/);

  w = await startWrit({ data });
  try {
    const call = caller(w.url, a.key);
    const after = (await call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:r@acme.com' })).body.receipt;
    const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
    t.is(jwks.keys.length, 3);
    const kids = await Promise.all([before, mid, after].map(async (r) => (await verifyReceipt(r, { jwks })).kid));
    t.is(new Set(kids).size, 3);
    const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
    t.is(records.filter((r: { type: string }) => r.type === 'keys.rotated').length, 2);
  } finally {
    await w.close();
  }
});

test('`writ verify` accepts a good receipt and rejects a tampered one', async (t) => {
  const w = await startWrit();
  try {
    const a = await agent(w);
    const { receipt } = (await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:v@acme.com' })).body;
    const good = await writ('verify', receipt, '--jwks', `${w.url}/.well-known/jwks.json`);
    t.is(good.code, 0, good.out);
    t.regex(good.out, /receipt OK/);
    t.regex(good.out, /allow email\.send on email:v@acme\.com/);

    const dir = await tempDir();
    await fs.writeFile(path.join(dir, 'jwks.json'), (await w.call('GET', '/.well-known/jwks.json')).text);
    const [h, p, s] = receipt.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), resource: 'email:ceo@acme.com' })).toString('base64url');
    const bad = await writ('verify', `${h}.${forged}.${s}`, '--jwks', path.join(dir, 'jwks.json'));
    t.is(bad.code, 1);
    t.regex(bad.out, /receipt INVALID \(bad_signature\)/);

    // --json, for scripts: the claims as verified, or the code of the failure.
    const goodJson = JSON.parse((await writ('verify', receipt, '--jwks', `${w.url}/.well-known/jwks.json`, '--json')).out);
    t.like(goodJson, { valid: true, expired: false, claims: { action: 'email.send', resource: 'email:v@acme.com', decision: 'allow' } });
    const badJson = await writ('verify', `${h}.${forged}.${s}`, '--jwks', path.join(dir, 'jwks.json'), '--json');
    t.is(badJson.code, 1);
    t.like(JSON.parse(badJson.out), { valid: false, code: 'bad_signature' });
  } finally {
    await w.close();
  }
});

test('the discovery document and the OpenAPI document describe the running server', async (t) => {
  const w = await startWrit();
  try {
    const d = (await w.call('GET', '/.well-known/openid-configuration')).body;
    t.is(d.issuer, w.url);
    t.is(d.jwks_uri, `${w.url}/.well-known/jwks.json`);
    t.regex(d.log_verifier_key, /^writ\.local\/[0-9a-f]+\+[0-9a-f]{8}\+/);
    const doc = (await w.call('GET', '/openapi.json')).body;
    t.is(doc.openapi, '3.1.0');
    const create = doc.paths['/api/v1/permissions'].post;
    const ref: string = create.requestBody.content['application/json'].schema.$ref;
    const body = doc.components.schemas[ref.replace('#/components/schemas/', '')];
    t.deepEqual(body.required, ['action', 'resource']);
    t.is(body.additionalProperties, false);
    t.truthy(body.properties.ttl);
    t.false(JSON.stringify(doc).includes('#/$defs/'), 'every reference resolves inside the document');
    t.truthy(doc.paths['/api/v1/approvals/{id}/approve'].post);
    t.truthy(doc.paths['/api/v1/log/proof/{index}'].get);
  } finally {
    await w.close();
  }
});

test('a page on any origin may read the public documents (keys, discovery, log, health, OpenAPI), and no authenticated route says so', async (t) => {
  const w = await startWrit();
  try {
    const a = await agent(w);
    const { receipt } = (await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:cors@acme.com' })).body;
    const { index } = JSON.parse(Buffer.from(receipt.split('.')[1], 'base64url').toString()).log;
    const origin = { origin: 'https://shop.example' };
    const documents = ['/.well-known/jwks.json', '/.well-known/openid-configuration', '/api/v1/log/checkpoint', `/api/v1/log/proof/${index}`, '/api/v1/log/consistency?old=1&new=1', '/openapi.json', '/healthz', '/readyz'];
    for (const path of documents) {
      const res = await w.call('GET', path, undefined, origin);
      t.is(res.status, 200, path);
      t.is(res.headers.get('access-control-allow-origin'), '*', path);
    }
    t.is((await w.call('GET', '/api/v1/log/proof/abc', undefined, origin)).headers.get('access-control-allow-origin'), '*', 'errors too, so the page can read why');

    // A page that adds a header of its own is preflighted first.
    const preflight = await w.call('OPTIONS', '/.well-known/jwks.json', undefined, { ...origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'cache-control' });
    t.is(preflight.status, 204);
    t.like(Object.fromEntries(preflight.headers), { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, HEAD', 'access-control-allow-headers': '*' });

    for (const [method, path] of [['GET', '/api/v1/status'], ['POST', '/api/v1/log/checkpoint'], ['GET', '/api/v1/agents']] as const) {
      const res = await w.admin(method, path, undefined, origin);
      t.true(res.status < 300, `${method} ${path}`);
      t.deepEqual([...res.headers.keys()].filter((name) => name.startsWith('access-control-')), [], `${method} ${path}`);
    }
    const refused = await w.call('OPTIONS', '/api/v1/permissions', undefined, { ...origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' });
    t.is(refused.status, 405, 'no preflight passes for a route that takes a key');
    t.is(refused.headers.get('access-control-allow-origin'), null);
  } finally {
    await w.close();
  }
});

test('one admin credential at a time: a generated key printed once, replaced by WRIT_ADMIN_TOKEN, and back', async (t) => {
  const data = await tempDir();
  let server = await spawnWrit(data, { WRIT_ADMIN_TOKEN: '' });
  const printed = /Admin API key \(shown once[^\n]*\n\s+(writ_admin_\S+)/.exec(server.output())?.[1];
  t.truthy(printed, server.output());
  t.is((await caller(server.url, printed)('POST', '/api/v1/agents', { name: 'x' })).status, 201);
  server.child.kill('SIGTERM');
  await server.exited;

  server = await spawnWrit(data, { WRIT_ADMIN_TOKEN: '' });
  t.notRegex(server.output(), /Admin API key/, 'printed only once');
  t.is((await caller(server.url, printed)('GET', '/api/v1/policies')).status, 200);
  server.child.kill('SIGTERM');
  await server.exited;

  server = await spawnWrit(data, { WRIT_ADMIN_TOKEN: ADMIN });
  t.regex(server.output(), /WRIT_ADMIN_TOKEN is now the admin credential; the generated admin key \S+ is revoked/, 'the switch is said on the console');
  t.is((await caller(server.url, printed)('GET', '/api/v1/policies')).status, 401, 'the generated key is revoked');
  t.is((await caller(server.url, ADMIN)('GET', '/api/v1/policies')).status, 200);
  server.child.kill('SIGTERM');
  await server.exited;

  server = await spawnWrit(data, { WRIT_ADMIN_TOKEN: '' });
  try {
    t.is((await caller(server.url, ADMIN)('GET', '/api/v1/policies')).status, 401, 'a removed WRIT_ADMIN_TOKEN stops working');
    t.regex(server.output(), /WRIT_ADMIN_TOKEN is no longer set/);
    const fresh = /Admin API key \(shown once[^\n]*\n\s+(writ_admin_\S+)/.exec(server.output())?.[1];
    t.truthy(fresh);
    const { records } = (await caller(server.url, fresh)('GET', '/api/v1/log/records')).body;
    t.deepEqual(
      records.filter((r: { type: string }) => r.type.startsWith('admin.')).map((r: { type: string }) => r.type),
      ['admin.key_generated', 'admin.key_configured', 'admin.key_generated'],
    );
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});
