/**
 * Reads the fenced code blocks of a Markdown file and the `docs-test` marker above each, and
 * runs shell text with bash: the docs tests use it to run what the README and docs/api.md tell
 * a reader to run. A marker is an HTML comment on the line right above the fence:
 *
 *   <!-- docs-test: run NAME -->      run this block with bash (it must exit 0)
 *   <!-- docs-test: output NAME -->   what block NAME prints (`…` stands for any id-like text)
 *   <!-- docs-test: sse NAME -->      a `$ curl -N …` transcript of the event stream while NAME runs
 *   <!-- docs-test: server (…) -->    a server start: the test starts its own server with the
 *                                     environment assignments of this line instead
 *   <!-- docs-test: skip REASON -->   not run, and the reason says why
 *
 * The address `http://127.0.0.1:4000` in a block is replaced by the test server's.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const DOC_ADDRESS = 'http://127.0.0.1:4000';

export interface DocBlock {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  /** `run`, `output`, `sse`, `server`, `skip`, or null without a marker. */
  kind: string | null;
  /** The marker's first word after the kind (a block name, or the start of a reason). */
  name: string;
  body: string;
}

const MARKER = /^<!--\s*docs-test:\s*(\S+)\s*(.*?)\s*-->\s*$/;

export function readDoc(relativePath: string): string {
  return readFileSync(new URL(relativePath, `file://${REPO_ROOT}`), 'utf8');
}

export function parseBlocks(markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    const marker = i > 0 ? MARKER.exec(lines[i - 1]!) : null;
    blocks.push({
      line: i + 1,
      lang: open[1]!,
      kind: marker ? marker[1]! : null,
      name: marker ? (marker[2]!.split(/\s+/)[0] ?? '') : '',
      body: lines.slice(i + 1, end).join('\n') + '\n',
    });
    i = end;
  }
  return blocks;
}

/** The one block with this marker (any name when `name` is omitted). */
export function block(blocks: DocBlock[], kind: string, name?: string): DocBlock {
  const found = blocks.filter((b) => b.kind === kind && (name === undefined || b.name === name));
  if (found.length !== 1)
    throw new Error(`expected one "docs-test: ${kind} ${name ?? ''}" block, found ${found.length}`);
  return found[0]!;
}

/** `NAME=value` assignments at the start of a command line (`A=1 B=2 pnpm start`). */
export function leadingAssignments(command: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const word of command.trim().split(/\s+/)) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(word);
    if (!m) break;
    env[m[1]!] = m[2]!;
  }
  return env;
}

/** Whether `actual` matches `expected` line for line, `…` standing for a run of id characters. */
export function matchesOutput(expected: string, actual: string): boolean {
  const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = expected.trimEnd().split('…').map(escape).join('[A-Za-z0-9._:-]*');
  return new RegExp(`^${pattern}$`).test(actual.trimEnd());
}

export interface BashResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `script` with bash (`-e -o pipefail` unless the script sets its own options). */
export function runBash(
  script: string,
  env: Record<string, string> = {},
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<BashResult> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bash did not finish in ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Text with the docs' server address replaced by `baseUrl`. */
export function atServer(text: string, baseUrl: string): string {
  return text.split(DOC_ADDRESS).join(baseUrl);
}

export interface Background {
  output(): string;
  stop(): Promise<void>;
}

/** Starts one shell command line in the background (e.g. `curl -N …`), collecting its stdout. */
export function startBackground(command: string, env: Record<string, string> = {}): Background {
  const child = spawn('bash', ['-c', `exec ${command}`], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    output: () => stdout,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Server-Sent Events text split into frames: comment lines, and `field: value` maps. */
export function sseFrames(text: string): { comments: string[]; fields: Record<string, string> }[] {
  return text
    .split(/\n\n+/)
    .map((chunk) => chunk.split('\n').filter((l) => l !== ''))
    .filter((lines) => lines.length > 0)
    .map((lines) => {
      const fields: Record<string, string> = {};
      const comments: string[] = [];
      for (const l of lines) {
        if (l.startsWith(':')) comments.push(l);
        else {
          const at = l.indexOf(': ');
          fields[l.slice(0, at)] = l.slice(at + 2);
        }
      }
      return { comments, fields };
    });
}
