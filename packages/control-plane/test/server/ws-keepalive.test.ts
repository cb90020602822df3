/**
 * The process-wide keep-alive (server/ws-keepalive.ts) on an injected clock, ticked by hand:
 * silent sockets are pinged and cut within ping + pong wait of their last frame, answering or
 * busy ones are not, a round's pings are spread over its ticks, and the server's own stall does
 * not cut a client whose answer arrived during it.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { KeepAlive } from '../../src/server/ws-keepalive.js';

class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  pings: number[] = [];
  terminatedAt: number | null = null;
  constructor(private readonly clock: () => number) {
    super();
  }
  ping(): void {
    this.pings.push(this.clock());
  }
  terminate(): void {
    this.terminatedAt = this.clock();
    this.readyState = 3;
    this.emit('close');
  }
}

function setup(pingMs: number, pongWaitMs: number) {
  let now = 0;
  const clock = () => now;
  const keepAlive = new KeepAlive({ pingMs, pongWaitMs, now: clock });
  const open = (): FakeSocket => {
    const socket = new FakeSocket(clock);
    keepAlive.watch(socket as unknown as WebSocket);
    return socket;
  };
  /** Advances the clock tick by tick (the timer's period for these settings). */
  const run = (ms: number, tickMs: number, each?: () => void): void => {
    for (let t = 0; t < ms; t += tickMs) {
      now += tickMs;
      each?.();
      keepAlive.tick();
    }
  };
  return { keepAlive, open, run, now: clock, jump: (ms: number) => void (now += ms) };
}

describe('keep-alive from one timer', () => {
  it('a silent socket is pinged and terminated within ping + pong wait of its last frame', () => {
    // 3 s / 2 s: visits every 1.5 s, ticks of 100 ms.
    const { open, run } = setup(3_000, 2_000);
    const silent = open();
    run(10_000, 100);
    expect(silent.pings.length).toBe(1);
    expect(silent.terminatedAt).not.toBeNull();
    // Two ticks of 100 ms beyond the rule (a deadline is judged at the tick after it passed).
    expect(silent.terminatedAt!).toBeLessThanOrEqual(3_000 + 2_000 + 200);
    expect(silent.terminatedAt! - silent.pings[0]!).toBeGreaterThanOrEqual(2_000);
  });

  it('a socket that answers its pings stays, pinged about once per interval; a busy one is never pinged', () => {
    const { open, run } = setup(3_000, 2_000);
    const answering = open();
    const busy = open();
    let answered = 0;
    run(30_000, 100, () => {
      busy.emit('message');
      // Each ping is answered on the next tick.
      if (answering.pings.length > answered) {
        answered = answering.pings.length;
        answering.emit('pong');
      }
    });
    expect(answering.terminatedAt).toBeNull();
    // Every 3 s: idle for half the interval at one visit, pinged at the next.
    expect(answering.pings.length).toBeGreaterThanOrEqual(9);
    expect(answering.pings.length).toBeLessThanOrEqual(10);
    expect(busy.pings).toEqual([]);
    expect(busy.terminatedAt).toBeNull();
  });

  it("a round's pings are spread over its ticks, not sent in one burst", () => {
    const { open, run } = setup(3_000, 2_000);
    const sockets = Array.from({ length: 160 }, () => open());
    const answered = new Map<FakeSocket, number>();
    run(3_000, 100, () => {
      for (const s of sockets) {
        if (s.pings.length > (answered.get(s) ?? 0)) {
          answered.set(s, s.pings.length);
          s.emit('pong');
        }
      }
    });
    const pingTimes = new Set(sockets.flatMap((s) => s.pings));
    expect(sockets.every((s) => s.pings.length >= 1)).toBe(true);
    // 160 sockets visited over a 1.5 s visit period of 15 ticks: about 11 per tick.
    expect(pingTimes.size).toBeGreaterThanOrEqual(10);
    expect(sockets.every((s) => s.terminatedAt === null)).toBe(true);
  });

  it('a stall of the server does not cut a socket whose pong arrived during it; a silent one is cut after', () => {
    const { open, run, jump } = setup(3_000, 2_000);
    const answering = open();
    const silent = open();
    // Both idle long enough to be pinged.
    run(3_000, 100);
    expect(answering.pings).toHaveLength(1);
    expect(silent.pings).toHaveLength(1);
    // The process stalls for 5 s: the answer arrives meanwhile but is read only after the next
    // tick has run (timers run before the loop reads its sockets).
    jump(5_000);
    run(100, 100);
    expect(answering.terminatedAt).toBeNull();
    answering.emit('pong');
    run(100, 100);
    expect(answering.terminatedAt).toBeNull();
    expect(silent.terminatedAt).not.toBeNull();
  });
});
