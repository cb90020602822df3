/**
 * Commands end to end against a real server (real PostgreSQL, HTTP and WebSocket): a node's
 * `onCommand` handlers answer what an operator invokes with `invoke()` of `@tether/client`;
 * cancel and deadline abort the handler's signal; the per-capability concurrency limit; a
 * command redelivered after the server is killed (kill -9) and restarted is not run twice; and
 * `tether-agent invoke` against `tether-agent run`.
 */
import { randomBytes } from 'node:crypto';
import {
  CommandError,
  createTetherClient,
  createTetherWSClient,
  invoke,
  invokeAndWait,
  isCommandError,
  type TetherClient,
} from '@tether/client';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { spawnServer } from '@tether/control-plane/testing';
import {
  CommandAbortedError,
  echoCapability,
  systemMetricsCapability,
  type TetherNode,
} from '../src/index.js';
import {
  enrolled,
  eventually,
  freePort,
  nextEvent,
  persistentDatabase,
  runAgent,
  seed,
  spawnAgent,
  startTestServer,
  tempDir,
  testNode,
} from './support.js';
import { join } from 'node:path';
import { saveCredentials } from '../src/index.js';

/** An operator over one WebSocket (so `command.watch` runs as a subscription on Node 20). */
function wsOperator(url: string, token: string): { client: TetherClient } & AsyncDisposable {
  const ws = createTetherWSClient({
    url,
    token,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
  });
  const client = createTetherClient({ url, transport: 'ws', wsClient: ws });
  return { client, [Symbol.asyncDispose]: () => ws.close() };
}

/** Registers echo and system.metrics as the agent does. */
function builtins(node: TetherNode): void {
  for (const b of [echoCapability(), systemMetricsCapability()]) {
    node.onCommand(b.name, b.handler, { ...b.options, descriptor: b.descriptor });
  }
}

/** A promise the test resolves: a handler that finishes when told. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('commands: onCommand and invoke()', () => {
  it('echo and system.metrics answer invoke() by node id and by capability; a throwing handler fails the command with its { code, message }', async () => {
    await using server = await startTestServer();
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = testNode(credentials, { sessionId });
    builtins(node);
    node.onCommand('disk.check', () => {
      throw Object.assign(new Error('disk /dev/sda1 is 99% full'), { code: 'disk.full' });
    });
    await node.start();
    await node.waitFor('online');
    // The handled capabilities are declared, with their input schemas.
    const view = await admin.node.get.query({ nodeId: credentials.nodeId });
    expect(Object.keys(view.capabilities).sort()).toEqual(['disk.check', 'echo', 'system.metrics']);
    expect(view.capabilities.echo?.inputSchema).toMatchObject({ type: 'object' });

    await using operatorWs = wsOperator(server.url, server.adminToken);
    const { client } = operatorWs;
    const input = { hello: 'world', n: [1, 2, 3] };
    await expect(
      invoke(client, { target: { nodeId: credentials.nodeId }, capability: 'echo', input }),
    ).resolves.toEqual(input);

    const metrics = await invoke<{ memoryTotalBytes: number; uptimeSeconds: number }>(client, {
      target: { sessionId },
      capability: 'system.metrics',
    });
    expect(metrics.memoryTotalBytes).toBeGreaterThan(0);
    expect(metrics.uptimeSeconds).toBeGreaterThan(0);

    // Over HTTP on Node 20 there is no EventSource for the watch: invoke() follows by polling.
    await expect(
      invoke(admin, {
        target: { nodeId: credentials.nodeId },
        capability: 'echo',
        input: { via: 'http' },
      }),
    ).resolves.toEqual({ via: 'http' });
    await expect(
      invoke(
        admin,
        { target: { nodeId: credentials.nodeId }, capability: 'echo', input: { via: 'poll' } },
        { follow: 'poll', pollIntervalMs: 50 },
      ),
    ).resolves.toEqual({ via: 'poll' });

    const failure = await invoke(client, {
      target: { nodeId: credentials.nodeId },
      capability: 'disk.check',
    }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(CommandError);
    expect(failure).toMatchObject({
      state: 'failed',
      code: 'disk.full',
      error: { code: 'disk.full', message: 'disk /dev/sda1 is 99% full' },
    });
  });

  it('cancel aborts the running handler’s signal; invoke() rejects with a cancelled CommandError', async () => {
    await using server = await startTestServer();
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = testNode(credentials, { sessionId });
    const reasons: unknown[] = [];
    node.onCommand('render', (_input, { signal }) => {
      return new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => {
          reasons.push(signal.reason);
          reject(signal.reason as Error);
        });
      });
    });
    await node.start();
    await node.waitFor('online');
    await using operatorWs = wsOperator(server.url, server.adminToken);
    const { client } = operatorWs;
    const started = nextEvent(node, 'command_started');
    const invoked = invoke(client, {
      target: { nodeId: credentials.nodeId },
      capability: 'render',
    }).catch((e: unknown) => e);
    const { commandId } = await started;
    await admin.command.cancel.mutate({ commandId: commandId, reason: 'changed my mind' });
    const error = await invoked;
    expect(isCommandError(error, 'cancelled')).toBe(true);
    await eventually(
      () => Promise.resolve(reasons.length),
      (n) => n === 1,
    );
    expect(reasons[0]).toBeInstanceOf(CommandAbortedError);
    expect(reasons[0]).toMatchObject({ code: 'command.cancelled' });
  });

  it('the deadline aborts the handler’s signal; the command ends expired', async () => {
    await using server = await startTestServer();
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = testNode(credentials, { sessionId });
    const reasons: unknown[] = [];
    node.onCommand('slow', (_input, { signal }) => {
      return new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => {
          reasons.push(signal.reason);
          reject(signal.reason as Error);
        });
      });
    });
    await node.start();
    await node.waitFor('online');
    await using operatorWs = wsOperator(server.url, server.adminToken);
    const { client } = operatorWs;
    const final = await invokeAndWait(client, {
      target: { nodeId: credentials.nodeId },
      capability: 'slow',
      timeoutMs: 1_000,
    });
    expect(final.state).toBe('expired');
    await eventually(
      () => Promise.resolve(reasons.length),
      (n) => n === 1,
    );
    expect(reasons[0]).toMatchObject({ code: 'command.deadline_exceeded' });
  });

  it('runs at most `concurrency` commands of a capability at once; the others wait (delivered, not running) and run after', async () => {
    await using server = await startTestServer();
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = testNode(credentials, { sessionId });
    const gates = new Map<string, ReturnType<typeof gate>>();
    let running = 0;
    let peak = 0;
    node.onCommand(
      'work',
      async (_input, { commandId }) => {
        running++;
        peak = Math.max(peak, running);
        const g = gate();
        gates.set(commandId, g);
        await g.promise;
        running--;
        return { commandId };
      },
      { concurrency: 2 },
    );
    await node.start();
    await node.waitFor('online');
    await using operatorWs = wsOperator(server.url, server.adminToken);
    const { client } = operatorWs;
    const results = [0, 1, 2, 3].map((i) =>
      invoke(client, { target: { nodeId: credentials.nodeId }, capability: 'work', input: { i } }),
    );
    await eventually(
      () => Promise.resolve(gates.size),
      (n) => n === 2,
    );
    // Two running; the other two reach the node (delivered) and wait there, not acknowledged.
    const states = await eventually(
      () => admin.command.list.query({ nodeId: credentials.nodeId }),
      (page) =>
        page.items.filter((c) => c.state === 'running').length === 2 &&
        page.items.filter((c) => c.state === 'delivered').length === 2,
    );
    expect(states.items).toHaveLength(4);
    expect(gates.size).toBe(2);
    // Release one at a time until all four ran.
    for (let released = 0; released < 4; released++) {
      await eventually(
        () => Promise.resolve([...gates.values()].length),
        (n) => n > released,
      );
      [...gates.values()][released]!.open();
    }
    const outputs = await Promise.all(results);
    expect(new Set(outputs.map((o) => (o as { commandId: string }).commandId)).size).toBe(4);
    expect(peak).toBe(2);
  });
});

describe('commands: a gated capability', () => {
  it('invoke() by a session member waits in awaiting_approval until the owner approves, then resolves; a denied one rejects with a denied CommandError', async () => {
    await using server = await startTestServer();
    const { admin, sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    const credentials = await enrolled(server.url, enrollmentKey);
    await using node = testNode(credentials, { sessionId });
    let runs = 0;
    node.onCommand('printer', (input) => {
      runs++;
      return { printed: input };
    });
    await node.start();
    await node.waitFor('online');
    await admin.policy.set.mutate({
      nodeId: credentials.nodeId,
      capability: 'printer',
      policy: 'gated',
    });
    const member = await admin.participant.create.mutate({ name: 'member', role: 'member' });
    await admin.membership.add.mutate({
      sessionId: sessionId,
      participantId: member.participantId,
      role: 'collaborator',
    });
    await using memberWs = wsOperator(server.url, member.token);

    const seen: string[] = [];
    const waiting = nextState(seen, 'awaiting_approval');
    const printed = invoke(
      memberWs.client,
      { target: { nodeId: credentials.nodeId }, capability: 'printer', input: { page: 1 } },
      { onUpdate: (view) => waiting.push(view) },
    );
    const { commandId } = await waiting.reached;
    expect(runs).toBe(0);
    await admin.command.approve.mutate({ commandId: commandId });
    await expect(printed).resolves.toEqual({ printed: { page: 1 } });
    expect(seen[0]).toBe('awaiting_approval');
    expect(seen.at(-1)).toBe('succeeded');

    const again = nextState([], 'awaiting_approval');
    const refused = invoke(
      memberWs.client,
      { target: { nodeId: credentials.nodeId }, capability: 'printer', input: { page: 2 } },
      { onUpdate: (view) => again.push(view) },
    ).catch((e: unknown) => e);
    const second = await again.reached;
    await admin.command.deny.mutate({ commandId: second.commandId, reason: 'no paper' });
    const error = await refused;
    expect(isCommandError(error, 'denied')).toBe(true);
    expect((error as CommandError).code).toBe('command.denied');
    expect(runs).toBe(1);
  });
});

/** Records the states `onUpdate` reports; `reached` resolves at the first view in `state`. */
function nextState(
  seen: string[],
  state: string,
): {
  push: (view: { state: string; commandId: string }) => void;
  reached: Promise<{ commandId: string }>;
} {
  let resolve!: (v: { commandId: string }) => void;
  const reached = new Promise<{ commandId: string }>((r) => (resolve = r));
  return {
    push: (view) => {
      seen.push(view.state);
      if (view.state === state) resolve({ commandId: view.commandId });
    },
    reached,
  };
}

describe('commands: redelivery', () => {
  it('kill -9 the server while a handler runs: after the restart the command is redelivered, not run twice, and its result lands', async () => {
    await using database = await persistentDatabase();
    const adminToken = `tpt_${randomBytes(24).toString('hex')}`;
    const env = {
      DATABASE_URL: database.url,
      TETHER_PORT: String(await freePort()),
      TETHER_BOOTSTRAP_TOKEN: adminToken,
    };
    let server = await spawnServer(env);
    let node: (TetherNode & AsyncDisposable) | undefined;
    try {
      const { admin, sessionId, enrollmentKey } = await seed(server.url, adminToken);
      const credentials = await enrolled(server.url, enrollmentKey);
      node = testNode(credentials, { sessionId });
      const release = gate();
      let runs = 0;
      node.onCommand('job', async (input) => {
        runs++;
        await release.promise;
        return { done: input };
      });
      await node.start();
      await node.waitFor('online');
      const started = nextEvent(node, 'command_started');
      const { commandId } = await admin.command.invoke.mutate({
        target: { nodeId: credentials.nodeId },
        capability: 'job',
        input: { n: 7 },
        timeoutMs: 120_000,
        idempotencyKey: 'redelivery-1',
      });
      await started;

      const redelivered = new Promise<void>((resolve) =>
        node!.on('command_received', (e) => {
          if (e.commandId === commandId && e.duplicate) resolve();
        }),
      );
      server.child.kill('SIGKILL');
      expect(await server.exited).toBe('SIGKILL');
      server = await spawnServer(env);
      await redelivered;
      release.open();

      const done = await eventually(
        () => admin.command.get.query({ commandId }),
        (c) => c.state === 'succeeded',
      );
      expect(done.output).toEqual({ done: { n: 7 } });
      expect(runs).toBe(1);
      expect(done.attempts).toBeGreaterThanOrEqual(2);
    } finally {
      await node?.stop();
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});

describe('commands: tether-agent', () => {
  it('tether-agent invoke finds a node by capability and prints system.metrics; --allow-exec lets it run exactly the listed commands', async () => {
    await using server = await startTestServer();
    const { sessionId, enrollmentKey } = await seed(server.url, server.adminToken);
    await using dir = await tempDir();
    const file = join(dir.path, 'node.json');
    const credentials = await enrolled(server.url, enrollmentKey, 'lab-mac');
    await saveCredentials(file, credentials);
    await using agent = spawnAgent([
      'run',
      '--credentials',
      file,
      '--session',
      sessionId,
      '--allow-exec',
      'echo tether-ok,uname',
    ]);
    await agent.waitForOutput(/lab-mac: online/);

    const env = { TETHER_TOKEN: server.adminToken };
    const metrics = await runAgent(
      ['invoke', '--server', server.url, '--capability', 'system.metrics', '--session', sessionId],
      env,
    );
    expect(metrics.code, metrics.stderr).toBe(0);
    const parsed = JSON.parse(metrics.stdout) as { memoryTotalBytes: number; cpuPercent: number };
    expect(parsed.memoryTotalBytes).toBeGreaterThan(0);
    expect(metrics.stderr).toMatch(/succeeded on node lab-mac/);

    const exec = await runAgent(
      [
        'invoke',
        '--server',
        server.url,
        '--node',
        'lab-mac',
        '--capability',
        'shell.exec',
        '--command',
        'echo tether-ok',
      ],
      env,
    );
    expect(exec.code, exec.stderr).toBe(0);
    expect(JSON.parse(exec.stdout)).toMatchObject({ exitCode: 0, stdout: 'tether-ok\n' });

    // Not on the allow-list: the server refuses it before the node ever sees it.
    const refused = await runAgent(
      [
        'invoke',
        '--server',
        server.url,
        '--node',
        'lab-mac',
        '--capability',
        'shell.exec',
        '--command',
        'rm -rf /',
      ],
      env,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/command\.command_not_allowed/);

    // Without a token: a usage error.
    const noToken = await runAgent(['invoke', '--server', server.url, '--capability', 'echo'], {
      TETHER_TOKEN: '',
    });
    expect(noToken.code).toBe(2);
    expect(`${metrics.stdout}${metrics.stderr}${exec.stderr}`).not.toContain(server.adminToken);
  });
});
