import test from 'ava';
import path from 'node:path';
import { LevelStore } from '../src/store/level.ts';
import { KEYS } from '../src/log/log.ts';
import { openNote, parseCheckpoint, parseVerifierKey } from '../src/log/note.ts';
import { leafHash, verifyInclusion } from '../src/log/merkle.ts';
import { canonicalBytes } from '../src/log/canonical.ts';
import { verifyReceipt } from '../packages/writ-verify/src/verify.ts';
import { ADMIN, agent, caller, eventually, spawnWrit, startWrit, tempDir, writCli } from './helpers/writ.ts';

const logVerify = (data: string) => writCli('log', 'verify', '--data', data);

test('every receipt has an inclusion proof that checks against the signed checkpoint, offline', async (t) => {
  const w = await startWrit();
  try {
    const a = await agent(w);
    const receipts: string[] = [];
    for (let i = 0; i < 5; i++) {
      receipts.push((await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: `email:r${i}@acme.com` })).body.receipt);
    }
    const discovery = (await w.call('GET', '/.well-known/openid-configuration')).body;
    const verifier = parseVerifierKey(discovery.log_verifier_key);
    t.is(verifier.name, discovery.log_origin);
    const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
    for (const receipt of receipts) {
      const { claims } = await verifyReceipt(receipt, { jwks });
      const proof = (await w.call('GET', `/api/v1/log/proof/${claims.log!.index}`)).body;
      t.is(proof.leaf_hash, claims.log!.leaf_hash);
      const cp = parseCheckpoint(openNote(proof.checkpoint, [verifier]).text);
      t.is(cp.size, proof.tree_size);
      const ok = verifyInclusion(
        proof.index,
        proof.tree_size,
        Buffer.from(proof.leaf_hash, 'base64'),
        proof.hashes.map((h: string) => Buffer.from(h, 'base64')),
        cp.rootHash,
      );
      t.true(ok);
      // The leaf is the hash of the exported entry itself.
      const records = (await w.admin('GET', `/api/v1/log/records?from=${proof.index}&to=${proof.index + 1}`)).body.records;
      t.is(leafHash(canonicalBytes(records[0])).toString('base64'), proof.leaf_hash);
      t.is(records[0].data.permission_id, claims.permission_id);
    }
  } finally {
    await w.close();
  }
});

test('entries chain: each carries the previous entry\'s hash; CSV export has one row per entry', async (t) => {
  const w = await startWrit();
  try {
    const a = await agent(w);
    await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:x@acme.com' });
    const { records } = (await w.admin('GET', '/api/v1/log/records')).body;
    t.true(records.length >= 3);
    t.is(records[0].prev, '');
    for (let i = 1; i < records.length; i++) t.is(records[i].prev, leafHash(canonicalBytes(records[i - 1])).toString('base64'));
    const types = records.map((r: { type: string }) => r.type);
    t.true(types.includes('policy.activated'));
    t.true(types.includes('agent.registered'));
    t.true(types.includes('permission.decided'));
    const csv = (await w.admin('GET', '/api/v1/log/records?format=csv')).text.trim().split('\r\n');
    t.is(csv[0], 'index,time,type,prev,data');
    t.is(csv.length, records.length + 1);
  } finally {
    await w.close();
  }
});

test('a consistency proof links an older checkpoint to the current tree', async (t) => {
  const { verifyConsistency } = await import('../src/log/merkle.ts');
  const w = await startWrit();
  try {
    const a = await agent(w);
    const verifier = parseVerifierKey((await w.call('GET', '/.well-known/openid-configuration')).body.log_verifier_key);
    const older = parseCheckpoint(openNote((await w.admin('POST', '/api/v1/log/checkpoint')).text, [verifier]).text);
    for (let i = 0; i < 3; i++) await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: `email:c${i}@acme.com` });
    const newer = parseCheckpoint(openNote((await w.admin('POST', '/api/v1/log/checkpoint')).text, [verifier]).text);
    t.true(newer.size > older.size);
    const proof = (await w.call('GET', `/api/v1/log/consistency?old=${older.size}&new=${newer.size}`)).body.hashes.map((h: string) => Buffer.from(h, 'base64'));
    t.true(verifyConsistency(older.size, newer.size, older.rootHash, newer.rootHash, proof));
    t.is((await w.call('GET', '/api/v1/log/checkpoint')).text, (await w.admin('POST', '/api/v1/log/checkpoint')).text);
  } finally {
    await w.close();
  }
});

test('a restart keeps agents, permissions, tokens, approvals and the log', async (t) => {
  const data = await tempDir();
  let w = await startWrit({ data });
  const a = await agent(w, { trust_tier: 'T2' });
  const allowed = (await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:k@acme.com' })).body;
  const pending = (await a.call('POST', '/api/v1/permissions', { action: 'bank.transfer', resource: 'account:checking', value: 5 })).body;
  const size = w.server.writ.log.size;
  const checkpoint = (await w.call('GET', '/api/v1/log/checkpoint')).text;
  const jwks = (await w.call('GET', '/.well-known/jwks.json')).body;
  await w.close();

  w = await startWrit({ data });
  const again = caller(w.url, a.key);
  try {
    t.is(w.server.writ.log.size, size);
    t.is((await w.call('GET', '/api/v1/log/checkpoint')).text.split('\n')[1], checkpoint.split('\n')[1]);
    t.deepEqual((await w.call('GET', '/.well-known/jwks.json')).body, jwks);
    const same = await again('GET', `/api/v1/permissions/${allowed.id}`);
    t.is(same.body.status, 'approved');
    t.is(same.body.receipt, allowed.receipt);
    t.is(same.body.token, allowed.token);
    const queue = (await w.admin('GET', '/api/v1/approvals')).body.approvals;
    t.true(queue.some((x: { id: string }) => x.id === pending.approval.id));
    t.is((await again('POST', '/api/v1/tokens/consume', { token: allowed.token, action: 'email.send', resource: 'email:k@acme.com' })).status, 200);
  } finally {
    await w.close();
  }
  t.is((await logVerify(data)).code, 0);
});

test('kill -9 during a stream of requests: after restart the log verifies and holds every receipt a client got', async (t) => {
  const data = await tempDir();
  let server = await spawnWrit(data);
  const url = server.url;
  const a = caller(url, ADMIN);
  const key = (await a('POST', '/api/v1/agents', { name: 'crash' })).body.api_key;
  const call = caller(url, key);
  const received: string[] = [];
  let stop = false;
  const workers = Array.from({ length: 8 }, async () => {
    while (!stop) {
      try {
        const res = await call('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:crash@acme.com' });
        if (res.status === 201 && res.body.receipt) received.push(res.body.receipt);
      } catch {
        return; // the server died mid-request: that answer never reached the client
      }
    }
  });
  await eventually(() => received.length > 50, 'a stream of answered requests');
  server.child.kill('SIGKILL');
  stop = true;
  await Promise.all(workers);
  await server.exited;
  t.true(received.length > 10, `only ${received.length} receipts before the kill`);

  const verified = await logVerify(data);
  t.is(verified.code, 0, verified.out);

  server = await spawnWrit(data);
  const admin = caller(server.url, ADMIN);
  try {
    const jwks = (await caller(server.url)('GET', '/.well-known/jwks.json')).body;
    for (const receipt of received) {
      const { claims } = await verifyReceipt(receipt, { jwks });
      const rec = (await admin('GET', `/api/v1/log/records?from=${claims.log!.index}&to=${claims.log!.index + 1}`)).body.records[0];
      t.is(rec?.data.permission_id, claims.permission_id);
      t.is(leafHash(canonicalBytes(rec)).toString('base64'), claims.log!.leaf_hash);
    }
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});

test('tampering with one stored entry makes `writ log verify` name that index', async (t) => {
  const data = await tempDir();
  const w = await startWrit({ data });
  const a = await agent(w);
  for (let i = 0; i < 6; i++) await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: `email:t${i}@acme.com` });
  await w.close();
  t.is((await logVerify(data)).code, 0);

  const store = await LevelStore.open(path.join(data, 'db'));
  const victim = 4;
  const raw = (await store.get(KEYS.entry(victim)))!;
  await store.batch([{ type: 'put', key: KEYS.entry(victim), value: raw.replace('email:', 'email:evil-') }], { sync: true });
  await store.close();

  const result = await logVerify(data);
  t.is(result.code, 1);
  t.regex(result.out, new RegExp(`FAILED at index ${victim}\\b`));
});

test('anonymous proof requests share checkpoints: at most one is signed a second, and the previous one is pruned', async (t) => {
  const w = await startWrit();
  try {
    const a = await agent(w);
    const stored = async () => {
      let n = 0;
      for await (const _ of w.server.writ.store.iterate(KEYS.checkpointRange)) n++;
      return n;
    };
    const before = await stored();
    for (let round = 0; round < 3; round++) {
      const indexes: number[] = [];
      for (let i = 0; i < 10; i++) indexes.push((await a.call('POST', '/api/v1/permissions', { action: 'email.send', resource: `email:p${i}@acme.com` })).body.log.index);
      const proofs = await Promise.all(indexes.flatMap((i) => [w.call('GET', `/api/v1/log/proof/${i}`), w.call('GET', `/api/v1/log/proof/${i}`)]));
      t.true(proofs.every((p) => p.status === 200));
      t.is(new Set(proofs.map((p) => p.body.tree_size)).size, 1, 'twenty proofs asked together share one checkpoint');
    }
    t.true((await stored()) <= before + 1, 'each new proof checkpoint replaced the previous one');
  } finally {
    await w.close();
  }
});
