/**
 * A small filesystem that can be filled up, for tests of a full disk. Run inside its own user and
 * mount namespace (`unshare -rm`, which needs no privileges), it mounts a tmpfs of the given size
 * and runs Writ on it as its own process; the test drives it with JSON lines on stdin (start, stop,
 * fill, free) and reads one JSON answer per command on stdout. The tmpfs goes away with the lab.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const [root, sizeMb, adminToken] = process.argv.slice(2) as [string, string, string];
const mount = fs.mkdtempSync(path.join(os.tmpdir(), 'writ-disk-'));
execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', mount]);
const data = path.join(mount, 'data');
const filler = path.join(mount, 'filler');
let server: ChildProcess | undefined;
let output = '';

const answer = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

async function start(): Promise<unknown> {
  output = '';
  const child = spawn(process.execPath, [path.join(root, 'bin/writ.js'), 'serve', '--port', '0', '--data', data, '--policies', path.join(root, 'policies')], {
    env: { ...process.env, WRIT_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server = child;
  // Answered when the banner names the port, or when the server exits first.
  return new Promise((resolve) => {
    const seen = (c: Buffer) => {
      output += c.toString();
      const url = /Writ is listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (url) resolve({ url });
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (code) => resolve({ error: `server exited ${code}: ${output}` }));
  });
}

async function stop(): Promise<unknown> {
  const child = server;
  if (!child) return { code: null };
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  server = undefined;
  return { code: await exited, output };
}

/** Writes until the filesystem refuses even one more block. */
function fill(): unknown {
  const fd = fs.openSync(filler, 'a');
  let written = 0;
  for (const chunk of [1 << 20, 1 << 16, 4096, 512, 1]) {
    const buffer = Buffer.alloc(chunk, 0x5a);
    for (;;) {
      try {
        written += fs.writeSync(fd, buffer);
      } catch {
        break;
      }
    }
  }
  fs.closeSync(fd);
  return { written, free: fs.statfsSync(mount).bavail };
}

function free(): unknown {
  fs.rmSync(filler, { force: true });
  return { free: fs.statfsSync(mount).bavail };
}

const lines = readline.createInterface({ input: process.stdin });
answer({ ready: true, mount });
for await (const line of lines) {
  const { cmd } = JSON.parse(line) as { cmd: string };
  if (cmd === 'start') answer(await start());
  else if (cmd === 'stop') answer(await stop());
  else if (cmd === 'fill') answer(fill());
  else if (cmd === 'free') answer(free());
  else if (cmd === 'output') answer({ output });
  else if (cmd === 'exit') break;
}
server?.kill('SIGKILL');
execFileSync('umount', ['-l', mount]);
process.exit(0);
