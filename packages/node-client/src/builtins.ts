/**
 * Capabilities `tether-agent run` answers out of the box, each a descriptor (declared with the
 * node's capabilities, `inputSchema` included) and a handler for `node.onCommand`:
 *
 * - `echo`: returns its input (a round trip through the server and back);
 * - `system.metrics`: the machine metrics a heartbeat carries (CPU %, memory, uptime);
 * - `shell.exec`, only when the operator lists commands (`--allow-exec`): runs exactly one of
 *   them, chosen by the invocation's `command`, without a shell (`spawn` with an argument
 *   vector, so nothing in the input can reach a shell), with a timeout and bounded output.
 */
import { spawn } from 'node:child_process';
import type { CapabilityDescriptor } from '@tether/contracts';
import type { CommandContext, CommandHandler, CommandHandlerOptions } from './commands.js';
import { MetricsCollector } from './metrics.js';

export interface BuiltinCapability {
  name: string;
  descriptor: CapabilityDescriptor;
  handler: CommandHandler;
  options?: CommandHandlerOptions;
}

/** `echo`: answers with the input it was given. */
export function echoCapability(): BuiltinCapability {
  return {
    name: 'echo',
    descriptor: {
      description: 'Returns its input unchanged',
      version: '1',
      inputSchema: { type: 'object', additionalProperties: true },
    },
    handler: (input) => input,
    options: { concurrency: 16 },
  };
}

/** `system.metrics`: CPU % (since the previous call), memory used/total, uptime. */
export function systemMetricsCapability(
  collector: MetricsCollector = new MetricsCollector(),
): BuiltinCapability {
  return {
    name: 'system.metrics',
    descriptor: {
      description: 'CPU %, memory used/total and uptime of the machine (as sent with heartbeats)',
      version: '1',
      inputSchema: { type: 'object', properties: {}, additionalProperties: false },
    },
    handler: () => collector.collect(),
    options: { concurrency: 4 },
  };
}

export interface ShellExecOptions {
  /** The exact command lines allowed, e.g. `['uptime', 'df -h']` (split on whitespace, no shell). */
  commands: readonly string[];
  /** Killed (SIGKILL) after this long. Default 10 s. */
  timeoutMs?: number;
  /** Bytes kept of stdout and of stderr each; the rest is dropped (`truncated`). Default 64 KiB. */
  maxOutputBytes?: number;
}

export interface ShellExecOutput {
  command: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

/** Splits `--allow-exec` values ("uptime,df -h") into distinct, trimmed command lines. */
export function parseAllowList(values: readonly string[]): string[] {
  const commands: string[] = [];
  for (const value of values) {
    for (const part of value.split(',')) {
      const line = part.trim().replace(/\s+/g, ' ');
      if (line !== '' && !commands.includes(line)) commands.push(line);
    }
  }
  return commands;
}

/** The signal's reason (a `CommandAbortedError` from the dispatcher) as an Error. */
function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

class ExecError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function run(
  line: string,
  options: Required<Omit<ShellExecOptions, 'commands'>>,
  ctx: CommandContext,
) {
  const [file, ...args] = line.split(' ');
  const started = Date.now();
  return new Promise<ShellExecOutput>((resolve, reject) => {
    if (ctx.signal.aborted) {
      reject(abortError(ctx.signal));
      return;
    }
    const child = spawn(file!, args, {
      shell: false,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
    });
    const kept = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const sizes = { stdout: 0, stderr: 0 };
    let truncated = false;
    let timedOut = false;
    const collect = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const room = options.maxOutputBytes - sizes[stream];
      if (room <= 0) {
        truncated = true;
        return;
      }
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      if (part.length < chunk.length) truncated = true;
      kept[stream].push(part);
      sizes[stream] += part.length;
    };
    child.stdout.on('data', collect('stdout'));
    child.stderr.on('data', collect('stderr'));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    const onAbort = (): void => void child.kill('SIGKILL');
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (error) => {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      reject(new ExecError('exec.failed', `could not run ${file}: ${error.message}`));
    });
    child.once('close', (exitCode, signal) => {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
      if (ctx.signal.aborted) {
        reject(abortError(ctx.signal));
        return;
      }
      resolve({
        command: line,
        exitCode,
        signal,
        stdout: Buffer.concat(kept.stdout).toString('utf8'),
        stderr: Buffer.concat(kept.stderr).toString('utf8'),
        truncated,
        timedOut,
        durationMs: Date.now() - started,
      });
    });
  });
}

/** `shell.exec` with exactly these commands allowed (its descriptor's `commands`). */
export function shellExecCapability(options: ShellExecOptions): BuiltinCapability {
  const commands = parseAllowList(options.commands);
  if (commands.length === 0) throw new TypeError('shell.exec needs at least one allowed command');
  const settings = {
    timeoutMs: options.timeoutMs ?? 10_000,
    maxOutputBytes: options.maxOutputBytes ?? 64 * 1024,
  };
  return {
    name: 'shell.exec',
    descriptor: {
      description: `Runs one of the allowed commands (no shell; ${settings.timeoutMs} ms timeout; output capped at ${settings.maxOutputBytes} bytes per stream)`,
      version: '1',
      commands,
      inputSchema: { type: 'object', properties: {}, additionalProperties: false },
    },
    handler: (_input, ctx) => {
      const line = ctx.command;
      if (line === null || !commands.includes(line)) {
        throw new ExecError(
          'command.not_allowed',
          `shell.exec runs only ${commands.map((c) => JSON.stringify(c)).join(', ')}${line === null ? ' (no command given)' : `, not ${JSON.stringify(line)}`}`,
        );
      }
      return run(line, settings, ctx);
    },
    options: { concurrency: 2, maxQueued: 16 },
  };
}

/** The agent's capabilities: echo and system.metrics, plus shell.exec when commands are allowed. */
export function builtinCapabilities(options: { allowExec?: readonly string[] } = {}) {
  const list = [echoCapability(), systemMetricsCapability()];
  const allowed = parseAllowList(options.allowExec ?? []);
  if (allowed.length > 0) list.push(shellExecCapability({ commands: allowed }));
  return list;
}
