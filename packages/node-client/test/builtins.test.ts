/**
 * The agent's built-in capabilities on their own: echo, system.metrics (the heartbeat's
 * metrics), and shell.exec — only the allowed command lines, no shell, a timeout, bounded output.
 */
import { describe, expect, it } from 'vitest';
import {
  builtinCapabilities,
  parseAllowList,
  shellExecCapability,
  type CommandContext,
  type ShellExecOutput,
} from '../src/index.js';

function context(command: string | null, signal = new AbortController().signal): CommandContext {
  return { commandId: 'c', capability: 'x', command, signal, deadline: null, attempt: 1 };
}

describe('built-in capabilities', () => {
  it('the agent declares echo and system.metrics with input schemas; shell.exec only with an allow-list', () => {
    expect(builtinCapabilities().map((b) => b.name)).toEqual(['echo', 'system.metrics']);
    for (const b of builtinCapabilities()) expect(b.descriptor.inputSchema).toBeDefined();
    const withExec = builtinCapabilities({ allowExec: ['uptime,df -h'] });
    expect(withExec.map((b) => b.name)).toEqual(['echo', 'system.metrics', 'shell.exec']);
    expect(withExec[2]!.descriptor.commands).toEqual(['uptime', 'df -h']);
  });

  it('echo returns its input; system.metrics returns what a heartbeat carries', async () => {
    const [echo, metrics] = builtinCapabilities();
    expect(await echo!.handler({ a: [1, 'b'] }, context(null))).toEqual({ a: [1, 'b'] });
    const m = (await metrics!.handler({}, context(null))) as Record<string, number>;
    expect(m.memoryTotalBytes).toBeGreaterThan(0);
    expect(m.uptimeSeconds).toBeGreaterThan(0);
    expect(m.cpuPercent).toBeGreaterThanOrEqual(0);
  });

  it('parseAllowList splits on commas, trims and drops duplicates', () => {
    expect(parseAllowList(['uptime, df  -h', 'uptime', ' '])).toEqual(['uptime', 'df -h']);
  });

  it('shell.exec runs an allowed line without a shell and refuses anything else', async () => {
    const exec = shellExecCapability({ commands: ['echo $HOME;id', 'printf hello'] });
    const out = (await exec.handler({}, context('echo $HOME;id'))) as ShellExecOutput;
    // No shell: the "$HOME;id" reaches echo as a literal argument.
    expect(out).toMatchObject({ exitCode: 0, stdout: '$HOME;id\n', timedOut: false });
    await expect(
      Promise.resolve().then(() => exec.handler({}, context('id'))),
    ).rejects.toMatchObject({
      code: 'command.not_allowed',
    });
    await expect(
      Promise.resolve().then(() => exec.handler({}, context(null))),
    ).rejects.toMatchObject({
      code: 'command.not_allowed',
    });
  });

  it('shell.exec kills a command at its timeout and caps its output', async () => {
    const slow = shellExecCapability({ commands: ['sleep 30'], timeoutMs: 50 });
    const timed = (await slow.handler({}, context('sleep 30'))) as ShellExecOutput;
    expect(timed).toMatchObject({ timedOut: true, signal: 'SIGKILL' });
    const big = shellExecCapability({ commands: ['yes'], maxOutputBytes: 1_000, timeoutMs: 300 });
    const capped = (await big.handler({}, context('yes'))) as ShellExecOutput;
    expect(capped.truncated).toBe(true);
    expect(capped.stdout.length).toBe(1_000);
  });

  it('shell.exec stops the process when the command is cancelled (before or while it runs)', async () => {
    const exec = shellExecCapability({ commands: ['sleep 30'] });
    const controller = new AbortController();
    // The handler spawns synchronously: the abort below reaches a running process.
    const running = exec.handler({}, context('sleep 30', controller.signal)) as Promise<unknown>;
    controller.abort(Object.assign(new Error('cancelled'), { code: 'command.cancelled' }));
    await expect(running).rejects.toMatchObject({ code: 'command.cancelled' });
    const late = exec.handler({}, context('sleep 30', controller.signal)) as Promise<unknown>;
    await expect(late).rejects.toMatchObject({ code: 'command.cancelled' });
  });
});
