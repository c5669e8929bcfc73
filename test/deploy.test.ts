import test from 'ava';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { ENV_KEYS } from '../src/config.ts';
import { PINNED_OPA } from '../src/policy/opa.ts';
import { cleanEnv, npmEnv } from './helpers/npm.ts';
import { ensureOpa } from './helpers/opa.ts';
import { ADMIN, ROOT, caller, spawnWrit, tempDir } from './helpers/writ.ts';

const execFileAsync = promisify(execFile);

/**
 * The deploy files describe this repository as it is: what the Dockerfile copies exists, the
 * OPA it builds lands where Writ looks, the compose file and the systemd unit name the service,
 * its data and its command, and the licence is the one package.json declares. No container
 * engine runs in the test suite, so the Dockerfile's Node stages are replayed here on the host:
 * the same copies, the same npm and tsc commands, then the server started from what the runtime
 * stage holds.
 */
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

/** Dockerfile instructions, with continuation lines joined. */
function instructions(dockerfile: string): Array<{ op: string; args: string }> {
  return dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

test('the Dockerfile copies only paths that exist, and puts OPA where Writ looks for it', (t) => {
  const steps = instructions(read('Dockerfile'));
  const copies = steps.filter((s) => s.op === 'COPY');
  for (const copy of copies.filter((c) => !c.args.startsWith('--from='))) {
    const sources = copy.args.split(' ').slice(0, -1);
    for (const source of sources) t.true(fs.existsSync(path.join(ROOT, source)), `COPY ${source}: exists in the repository`);
  }
  const opa = copies.find((c) => c.args.startsWith('--from=opa '));
  t.is(opa?.args.split(' ').at(-1), path.relative(ROOT, PINNED_OPA), 'the opa binary goes to the pinned path');
  const stages = steps.flatMap((s, i) => (s.op === 'FROM' ? [i] : []));
  const runtime = steps.slice(stages.at(-1));
  t.regex(runtime[0]!.args, /^node:20\b/);
  t.is(runtime.find((s) => s.op === 'WORKDIR')?.args, '/opt/writ');
  t.true(runtime.some((s) => s.op === 'RUN' && s.args.includes('npm ci --omit=dev')));
  t.is(runtime.find((s) => s.op === 'USER')?.args, 'writ', 'not root');
  t.is(runtime.find((s) => s.op === 'VOLUME')?.args, '/data');
  t.regex(runtime.filter((s) => s.op === 'ENV').map((s) => s.args).join(' '), /WRIT_DATA=\/data\b.*WRIT_HOST=0\.0\.0\.0/);
  t.is(runtime.find((s) => s.op === 'EXPOSE')?.args, '8080');
  t.regex(runtime.find((s) => s.op === 'HEALTHCHECK')?.args ?? '', /\/healthz/);
  t.deepEqual(JSON.parse(runtime.find((s) => s.op === 'ENTRYPOINT')!.args), ['node', 'bin/writ.js', 'serve'], 'exec form, so signals reach Writ');
  t.true(fs.existsSync(path.join(ROOT, 'bin/writ.js')));
});

/** The RUN commands the replay leaves to the image: making the system user and its /data, and emptying npm's cache (here it is the user's). */
const LEFT_TO_THE_IMAGE = /^(npm cache clean --force|groupadd --system writ|useradd --system .*|mkdir -p \/data|chown writ:writ \/data|chmod 0700 \/data)$/;

test("the Dockerfile's build and runtime stages, replayed on this machine, give a directory that serves: the compiled server, production dependencies, policies and OPA", async (t) => {
  // Two npm installs and a compile: about 20 s here, several times that on a loaded machine.
  t.timeout(240_000);
  const work = await tempDir('writ-docker-');
  const steps = instructions(read('Dockerfile'));
  /** Each stage's working directory in the image, and the host directory standing in for it. */
  const stages = new Map<string, { workdir: string; dir: string }>();
  const env: Record<string, string> = {};
  let stage: { name: string; image: string; workdir: string; dir: string } | undefined;
  const local = (at: string) => path.join(stage!.dir, path.relative(stage!.workdir, at));
  for (const { op, args } of steps) {
    if (op === 'FROM') {
      const [image, , name] = args.split(' ');
      stage = { name: name ?? 'final', image: image!, workdir: '/', dir: path.join(work, name ?? 'final') };
      stages.set(stage.name, stage);
      continue;
    }
    // The Go stage builds the pinned OPA, as adapters/opa/build.js does for this checkout.
    if (stage!.image.startsWith('golang:')) continue;
    if (op === 'WORKDIR') {
      stage!.workdir = args;
      fs.mkdirSync(stage!.dir, { recursive: true });
    } else if (op === 'COPY') {
      const from = /^--from=(\S+) /.exec(args)?.[1];
      const parts = args.replace(/^--from=\S+ /, '').split(' ');
      const dest = local(path.resolve(stage!.workdir, parts.at(-1)!));
      for (const source of parts.slice(0, -1)) {
        const origin = from === 'opa' ? ensureOpa() : from ? path.join(stages.get(from)!.dir, path.relative(stages.get(from)!.workdir, source)) : path.join(ROOT, source);
        const target = parts.at(-1)!.endsWith('/') ? path.join(dest, path.basename(source)) : dest;
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.cpSync(origin, target, { recursive: true });
      }
    } else if (op === 'RUN') {
      for (const command of args.split(' && ').map((c) => c.trim())) {
        if (LEFT_TO_THE_IMAGE.test(command)) continue;
        t.regex(command, /^(npm ci( --omit=dev)? --ignore-scripts|npx tsc -p tsconfig\.build\.json|node dashboard\/build\.mjs)$/, 'a command the replay knows');
        const [file, ...rest] = command.split(' ');
        // From npm's cache, which the checkout's own npm ci filled (the image's build has the registry).
        await execFileAsync(file!, rest, { cwd: stage!.dir, env: npmEnv, maxBuffer: 16 * 1024 * 1024 });
      }
    } else if (op === 'ENV') {
      for (const pair of args.split(' ')) {
        const [name, value] = pair.split('=');
        if (name && value !== undefined) env[name] = value;
      }
    }
  }
  const runtime = stage!;
  t.false(fs.existsSync(path.join(runtime.dir, 'node_modules/typescript')), 'no dev dependencies in the runtime');
  t.false(fs.existsSync(path.join(runtime.dir, 'src')), 'no TypeScript sources in the runtime');
  const version = await execFileAsync(process.execPath, ['bin/writ.js', '--version'], { cwd: runtime.dir, env: cleanEnv });
  t.regex(version.stdout, /^writ \d+\.\d+\.\d+/);
  // The image's settings, with its paths on this host, on loopback and a free port.
  const hostEnv = Object.fromEntries(Object.entries(env).map(([name, value]) => [name, value.startsWith('/opt/writ/') ? local(value) : value]));
  const server = await spawnWrit(await tempDir('writ-docker-data-'), { ...cleanEnv, ...hostEnv, WRIT_DATA: undefined, WRIT_HOST: '127.0.0.1', WRIT_PORT: undefined, WRIT_ADMIN_TOKEN: ADMIN }, { root: runtime.dir });
  t.teardown(() => server.child.kill('SIGKILL'));
  t.is((await caller(server.url)('GET', '/healthz')).status, 200);
  // The dashboard the build stage bundled.
  const dashboard = await fetch(`${server.url}/approvals`);
  t.is(dashboard.status, 200);
  t.regex(await dashboard.text(), /<script type="module" src="\/assets\/app\.js">/);
  t.is((await fetch(`${server.url}/assets/app.js`)).status, 200);
  const admin = caller(server.url, ADMIN);
  const policies = await admin('GET', '/api/v1/policies');
  t.is(policies.status, 200);
  t.is(policies.body.last_error, undefined, JSON.stringify(policies.body));
  // A decision by the shipped policies, with its signed receipt.
  const key = (await admin('POST', '/api/v1/agents', { name: 'in-the-image' })).body.api_key as string;
  const res = await caller(server.url, key)('POST', '/api/v1/permissions', { action: 'email.send', resource: 'email:docker@acme.com', scope: { max_emails: 1 } });
  t.is(res.status, 201, res.text);
  t.is(res.body.decision, 'allow');
  t.is(res.body.receipt.split('.').length, 3);
  // The policy toolchain in the image: the shipped cases pass, and Rego compiles with the OPA it holds.
  const writ = (...args: string[]) => execFileAsync(process.execPath, ['bin/writ.js', ...args], { cwd: runtime.dir, env: cleanEnv });
  t.regex((await writ('policy', 'test')).stdout, /\d+ passed, 0 failed/);
  t.regex((await writ('policy', 'check', '--policies', 'policies/examples/rego')).stdout, /rego compile: OK/);
});

test("the Dockerfile's Go is at least the one adapters/opa/go.mod asks for, and builds what build.js builds", (t) => {
  const wanted = /^go (\d+)\.(\d+)/m.exec(read('adapters/opa/go.mod'))!;
  const image = /^FROM golang:(\d+)\.(\d+)\S* AS opa$/m.exec(read('Dockerfile'));
  t.truthy(image, 'a golang stage named opa');
  t.true(Number(image![1]) * 1000 + Number(image![2]) >= Number(wanted[1]) * 1000 + Number(wanted[2]));
  // The package go.mod pins as its tool, which build.js builds too.
  const target = /^tool (\S+)$/m.exec(read('adapters/opa/go.mod'))?.[1];
  t.truthy(target);
  t.is(/^const PACKAGE = '(\S+)';$/m.exec(read('adapters/opa/build.js'))?.[1], target);
  t.regex(read('Dockerfile'), new RegExp(`CGO_ENABLED=0 go build .* ${target!.replace(/[./]/g, '\\$&')}`));
});

test('.dockerignore keeps local state and secrets out of the build context, and nothing the Dockerfile copies', (t) => {
  const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  for (const entry of ['node_modules', 'dist', 'data', '.git', 'adapters/opa/bin', 'writ.env']) t.true(ignored.includes(entry), entry);
  const copied = instructions(read('Dockerfile'))
    .filter((s) => s.op === 'COPY' && !s.args.startsWith('--from='))
    .flatMap((s) => s.args.split(' ').slice(0, -1));
  for (const source of copied) t.false(ignored.some((entry) => source === entry || source.startsWith(`${entry}/`)), `${source} reaches the build`);
});

test('compose.yaml runs the image with a named data volume, the port, and the admin token from an env file', (t) => {
  const compose = parse(read('compose.yaml')) as { services: Record<string, any>; volumes: Record<string, unknown> };
  const writ = compose.services.writ;
  t.truthy(writ, 'a service named writ');
  t.is(writ.build, '.');
  t.deepEqual(writ.ports, ['127.0.0.1:8080:8080']);
  const [volume, mountedAt] = String(writ.volumes[0]).split(':');
  t.is(mountedAt, '/data');
  t.true(volume! in compose.volumes, 'a named volume');
  t.deepEqual(writ.env_file, ['writ.env']);
  t.regex(read('docs/deploy/writ.env.example'), /^WRIT_ADMIN_TOKEN=/m);
});

test('compose.postgres.yaml runs three nodes on one PostgreSQL, keys sealed under a master key from a secret, behind a proxy that knows them all', (t) => {
  // `<<: *node` is a merge key, as Compose reads it.
  const compose = parse(read('docs/deploy/compose.postgres.yaml'), { merge: true }) as { services: Record<string, any>; secrets: Record<string, any>; volumes: Record<string, unknown> };
  const { postgres, proxy } = compose.services;
  t.truthy(postgres, 'a postgres service');
  t.regex(String(postgres.environment.POSTGRES_INITDB_ARGS), /--encoding=UTF8/);
  t.deepEqual(postgres.env_file, ['postgres.env'], 'its password from an env file, never in the compose file');
  const nodes = Object.entries(compose.services).filter(([, s]) => s.image === 'writ:latest');
  t.is(nodes.length, 3);
  for (const [name, node] of nodes) {
    t.regex(node.environment.WRIT_DATABASE_URL, /^postgres:\/\/writ:\$\{POSTGRES_PASSWORD\}@postgres:5432\/writ$/, name);
    t.is(node.environment.WRIT_MASTER_KEY_FILE, '/run/secrets/writ_master_key', name);
    t.deepEqual(node.secrets, ['writ_master_key'], name);
    t.is(node.depends_on.postgres.condition, 'service_healthy', name);
    t.is(node.environment.WRIT_HOST, '0.0.0.0', name);
  }
  t.is(compose.secrets.writ_master_key.file, 'writ-master.key');
  // The proxy sends requests to every node and never re-sends one that reached a node.
  const conf = read('docs/deploy/nginx-writ.conf');
  for (const [name] of nodes) t.regex(conf, new RegExp(`server ${name}:8080`));
  t.notRegex(conf, /proxy_next_upstream[^;]*non_idempotent/);
  t.regex(conf, /proxy_next_upstream error timeout;/);
  t.true(proxy.volumes.some((v: string) => v.startsWith('./docs/deploy/nginx-writ.conf:')));
  // Every setting the nodes are given is one Writ knows.
  for (const [, node] of nodes) for (const name of Object.keys(node.environment)) t.true(name in ENV_KEYS, name);
});

test('the systemd unit runs bin/writ.js as its own user, with its state directory as the data directory', (t) => {
  const unit = read('docs/deploy/writ.service');
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) sections.set(section[1]!, (current = new Map()));
    else {
      const [key, ...value] = line.split('=');
      t.truthy(current, `${line} is in a section`);
      current!.set(key!, [...(current!.get(key!) ?? []), value.join('=')]);
    }
  }
  const service = sections.get('Service')!;
  const one = (key: string) => service.get(key)?.[0];
  t.is(one('ExecStart'), '/usr/bin/env node /opt/writ/bin/writ.js serve');
  t.is(one('WorkingDirectory'), '/opt/writ');
  t.is(one('User'), 'writ');
  t.is(one('StateDirectory'), 'writ');
  t.true(service.get('Environment')!.includes('WRIT_DATA=/var/lib/writ'), 'StateDirectory=writ is /var/lib/writ');
  t.is(one('ReadWritePaths'), '/var/lib/writ');
  t.is(one('KillSignal'), 'SIGTERM');
  t.is(one('Restart'), 'on-failure');
  t.true(Number(one('TimeoutStopSec')) >= 15, 'time to finish requests (10 s) and flush');
  for (const key of ['NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp']) t.truthy(one(key), key);
  t.is(one('ProtectSystem'), 'strict');
  t.is(sections.get('Install')?.get('WantedBy')?.[0], 'multi-user.target');
});

test('LICENSE is the Apache License 2.0 that package.json declares, word for word', (t) => {
  t.is(JSON.parse(read('package.json')).license, 'Apache-2.0');
  // The MD5 of https://www.apache.org/licenses/LICENSE-2.0.txt, as licence scanners know it.
  t.is(crypto.createHash('md5').update(read('LICENSE')).digest('hex'), '3b83ef96387f14655fc854ddc3c6bd57');
});
