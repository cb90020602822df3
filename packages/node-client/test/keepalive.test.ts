/**
 * Client keep-alive from the process-wide check (`keepalive.ts`), through real sockets: a peer
 * that answers nothing — not even protocol-level pings — is dropped with a keep-alive cause; a
 * peer whose WebSocket library answers the pings is kept however silent it is otherwise; and, on
 * an injected clock, a stall of the client process itself does not drop a socket whose pong
 * arrived during it.
 */
import { EventEmitter, once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { createTetherNode, type TetherNodeEvents } from '../src/index.js';
import { KeepAliveMonitor } from '../src/keepalive.js';
import type { Scheduler } from '../src/scheduler.js';
import { eventually } from './support.js';

/** A WebSocket server that accepts every socket and never says anything. */
async function silentServer(autoPong: boolean) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong });
  await once(wss, 'listening');
  const port = (wss.address() as { port: number }).port;
  let pings = 0;
  wss.on('connection', (socket) => socket.on('ping', () => pings++));
  return {
    url: `http://127.0.0.1:${port}`,
    get pings() {
      return pings;
    },
    [Symbol.asyncDispose]: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

function silentNode(url: string) {
  const node = createTetherNode({
    url,
    token: 'tnd_keepalive_test_token',
    nodeId: 'keepalive-node',
    ownerParticipantId: '00000000-0000-4000-8000-000000000000',
    keepAliveIntervalMs: 200,
    pongTimeoutMs: 200,
    // Far beyond the test: only the keep-alive can end the connection.
    callTimeoutMs: 600_000,
    connectTimeoutMs: 600_000,
    backoff: { baseMs: 60_000, capMs: 60_000 },
  });
  const failures: Parameters<TetherNodeEvents['connect_failed']>[0][] = [];
  node.on('connect_failed', (e) => failures.push(e));
  return { node, failures };
}

describe('client keep-alive (one check for every socket of the process)', () => {
  it('a peer that answers no ping is dropped, with a keep-alive cause, without waiting for a closing handshake', async () => {
    await using server = await silentServer(false);
    const { node, failures } = silentNode(server.url);
    await node.start();
    try {
      await eventually(
        () => Promise.resolve(failures.length),
        (n) => n >= 1,
        20_000,
      );
      expect(failures).toHaveLength(1);
      expect(failures[0]!.cause).toMatchObject({ kind: 'dropped' });
      expect(JSON.stringify(failures[0]!.cause)).toContain('keep-alive');
      // The pings were protocol-level frames (what the peer's library would answer).
      expect(server.pings).toBeGreaterThan(0);
      expect(node.snapshot().openSockets).toBe(0);
    } finally {
      await node.stop({ detach: false });
    }
  });

  it('a peer that answers protocol pings is kept, however silent otherwise', async () => {
    await using server = await silentServer(true);
    const { node, failures } = silentNode(server.url);
    await node.start();
    try {
      // Several ping/pong rounds (each after 200 ms of silence, with 200 ms to answer).
      await eventually(
        () => Promise.resolve(server.pings),
        (n) => n >= 5,
        20_000,
      );
      expect(failures).toEqual([]);
      expect(node.state).toBe('connecting');
      expect(node.snapshot().openSockets).toBe(1);
    } finally {
      await node.stop({ detach: false });
    }
  });

  it('a stall of this process does not drop a socket whose pong arrived during it; a silent one is dropped after', () => {
    // A scheduler whose one pending check the test runs by hand, at the time it says.
    let now = 0;
    let pending: (() => void) | null = null;
    const scheduler = {
      now: () => now,
      schedule: (_ms: number, fn: () => void) => {
        pending = fn;
        return { cancel: () => void (pending = null) };
      },
    } as unknown as Scheduler;
    const check = (at: number): void => {
      now = at;
      const run = pending;
      pending = null;
      run?.();
    };
    class FakeSocket extends EventEmitter {
      readyState = 1;
      pings = 0;
      ping(): void {
        this.pings++;
      }
    }
    const monitor = new KeepAliveMonitor(scheduler);
    const dead: string[] = [];
    const answering = new FakeSocket();
    const silent = new FakeSocket();
    const options = { intervalMs: 1_000, pongTimeoutMs: 1_000 };
    monitor.watch(answering as unknown as WebSocket, options, () => dead.push('answering'));
    monitor.watch(silent as unknown as WebSocket, options, () => dead.push('silent'));
    for (let t = 250; t <= 1_000; t += 250) check(t);
    expect([answering.pings, silent.pings]).toEqual([1, 1]);
    // Stalled for 5 s: the first check after it runs before the pong that arrived is read.
    check(6_000);
    expect(dead).toEqual([]);
    answering.emit('pong');
    check(6_250);
    expect(dead).toEqual(['silent']);
  });
});
