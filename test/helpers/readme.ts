import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './writ.ts';

/**
 * The README's command blocks, read as a script: each fenced block, its commands (a trailing
 * backslash or an open quote continues one) with the `# →` lines under each, and a shell to run
 * them in as a reader's terminal would.
 */
export const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

export interface Block {
  lang: string;
  body: string;
  line: number;
  /** The test file that runs this block instead of test/readme.test.ts: `<!-- run by test/FILE -->` above it. */
  runBy?: string;
}

export function blocks(markdown = README): Block[] {
  const found: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    const runBy = /^<!-- run by (test\/\S+) -->$/.exec(lines[start - 1] ?? '')?.[1];
    found.push({ lang: open[1]!, body: body.join('\n'), line: start + 1, ...(runBy ? { runBy } : {}) });
  }
  return found;
}

export interface Step {
  command: string;
  /** What it prints, one shape per `# →` line (continued by a `#` line indented further). */
  expect: string[];
  line: number;
}

/** A block's commands (a trailing backslash continues one), each with the `# →` text under it. */
export function steps(block: Block): Step[] {
  const out: Step[] = [];
  const lines = block.body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const arrow = /^#\s*→\s?(.*)$/.exec(line);
    if (arrow) {
      const last = out.at(-1);
      if (!last) throw new Error(`README line ${block.line + i + 1}: an expectation before any command`);
      let text = arrow[1]!;
      while (i + 1 < lines.length && /^#\s{2,}\S/.test(lines[i + 1]!)) text += ` ${lines[++i]!.replace(/^#\s+/, '')}`;
      last.expect.push(text);
      continue;
    }
    if (line.startsWith('#')) continue;
    let command = line;
    const first = i;
    while ((command.endsWith('\\') || openQuote(command)) && i + 1 < lines.length) command += `\n${lines[++i]!}`;
    out.push({ command, line: block.line + first + 1, expect: [] });
  }
  return out;
}

/** Whether a shell command is still inside a quoted string at its end, as bash reads it. */
function openQuote(command: string): boolean {
  let quote: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
    } else if (c === '\\') i++;
    else if (quote === '"') {
      if (c === '"') quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && /\s/.test(command[i - 1] ?? ' ')) {
      const end = command.indexOf('\n', i);
      if (end < 0) break;
      i = end;
    }
  }
  return quote !== undefined;
}

/** One shell for the whole README, as a reader's terminal; stderr is folded into what it prints. */
export class Shell {
  private out = '';
  private waiting?: () => void;
  constructor(private readonly bash: ChildProcessWithoutNullStreams) {
    bash.stdout.on('data', (chunk: Buffer) => {
      this.out += chunk.toString();
      this.waiting?.();
    });
    bash.stdin.write('exec 2>&1\n');
  }
  static start(env: NodeJS.ProcessEnv): Shell {
    return new Shell(spawn('bash', ['--noprofile', '--norc'], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] }));
  }
  async run(command: string): Promise<{ code: number; output: string }> {
    const mark = `__readme_step_${Math.random().toString(36).slice(2)}__`;
    this.out = '';
    this.bash.stdin.write(`{\n${command}\n} </dev/null\nprintf '\\n${mark}%s\\n' "$?"\n`);
    const done = new RegExp(`\\n${mark}(\\d+)\\n`);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const found = done.exec(this.out);
      if (Date.now() > deadline) throw new Error(`no end after two minutes; the command printed:\n${this.out}`);
      if (found) return { code: Number(found[1]), output: this.out.slice(0, found.index) };
      if (this.bash.exitCode !== null) throw new Error(`the shell exited (${this.bash.exitCode}):\n${this.out}`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 1000).unref();
      });
    }
  }
  close(): void {
    this.bash.kill('SIGKILL');
  }
}

/** The blocks a test file other than readme.test.ts runs, in README order. */
export function blocksRunBy(file: string): Block[] {
  const found = blocks().filter((b) => b.runBy === file);
  if (found.length === 0) throw new Error(`no README block says <!-- run by ${file} -->`);
  return found;
}
