/**
 * The command dispatcher on its own (no server): dedupe of redelivered commands, results of
 * finished ones reported again, the per-capability concurrency limit, cancel and deadline aborts,
 * results kept until a connection can take them, the bounded memory of finished ids.
 */
import { describe, expect, it } from 'vitest';
import {
  CommandDispatcher,
  DispatchRefused,
  type CommandEvents,
  type CommandOutcome,
  type DispatcherIo,
} from '../src/commands.js';

interface Harness {
  dispatcher: CommandDispatcher;
  acks: string[];
  reports: { commandId: string; outcome: CommandOutcome }[];
  events: { type: keyof CommandEvents; arg: unknown }[];
  /** While false, ack/report fail as if the connection were gone. */
  connected: { value: boolean };
  refuseAck: Set<string>;
}

function harness(options: { finishedMemory?: number } = {}): Harness {
  const acks: string[] = [];
  const reports: Harness['reports'] = [];
  const events: Harness['events'] = [];
  const connected = { value: true };
  const refuseAck = new Set<string>();
  const io: DispatcherIo = {
    ack: (commandId) => {
      if (!connected.value) return Promise.reject(new Error('not connected'));
      if (refuseAck.has(commandId)) {
        return Promise.reject(new DispatchRefused('command.not_pending', 'already over'));
      }
      acks.push(commandId);
      return Promise.resolve();
    },
    report: (commandId, outcome) => {
      if (!connected.value) return Promise.reject(new Error('not connected'));
      reports.push({ commandId, outcome });
      return Promise.resolve();
    },
    emit: (type, arg) => void events.push({ type, arg }),
  };
  return {
    dispatcher: new CommandDispatcher(io, options),
    acks,
    reports,
    events,
    connected,
    refuseAck,
  };
}

/** A promise and its resolver: a handler that finishes when the test says so. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Waits (polling, bounded) until `check()` holds. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 5_000 && !check(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(check()).toBe(true);
}

const cmd = (commandId: string, capability = 'echo', input: unknown = { n: 1 }) => ({
  commandId,
  capability,
  input,
});

describe('CommandDispatcher', () => {
  it('acknowledges before running, reports the value, and never runs a redelivered command twice (re-reporting a finished one)', async () => {
    const h = harness();
    let runs = 0;
    const order: string[] = [];
    h.dispatcher.register(
      'echo',
      (input, ctx) => {
        runs++;
        order.push(`run:${h.acks.includes(ctx.commandId) ? 'acked' : 'not-acked'}`);
        return input;
      },
      {},
    );
    h.dispatcher.deliver(cmd('c1'));
    await until(() => h.reports.length === 1);
    expect(order).toEqual(['run:acked']);
    expect(h.reports[0]).toEqual({ commandId: 'c1', outcome: { ok: true, output: { n: 1 } } });

    h.dispatcher.deliver(cmd('c1'));
    await until(() => h.reports.length === 2);
    expect(runs).toBe(1);
    expect(h.acks).toEqual(['c1']);
    expect(h.reports[1]).toEqual(h.reports[0]);
    expect(h.events.filter((e) => e.type === 'received').map((e) => e.arg)).toEqual([
      { commandId: 'c1', capability: 'echo', duplicate: false },
      { commandId: 'c1', capability: 'echo', duplicate: true },
    ]);
  });

  it('a command redelivered while it runs is not started again', async () => {
    const h = harness();
    const g = gate();
    let runs = 0;
    h.dispatcher.register(
      'echo',
      async () => {
        runs++;
        await g.promise;
        return 'done';
      },
      {},
    );
    h.dispatcher.deliver(cmd('c1'));
    await until(() => runs === 1);
    h.dispatcher.deliver(cmd('c1'));
    g.open();
    await until(() => h.reports.length === 1);
    expect(runs).toBe(1);
  });

  it('runs at most `concurrency` commands of a capability at once and queues the rest', async () => {
    const h = harness();
    const gates = new Map<string, ReturnType<typeof gate>>();
    let running = 0;
    let peak = 0;
    h.dispatcher.register(
      'work',
      async (_input, ctx) => {
        running++;
        peak = Math.max(peak, running);
        const g = gate();
        gates.set(ctx.commandId, g);
        await g.promise;
        running--;
        return ctx.commandId;
      },
      { concurrency: 2 },
    );
    for (const id of ['a', 'b', 'c', 'd']) h.dispatcher.deliver(cmd(id, 'work'));
    await until(() => gates.size === 2);
    expect(h.acks).toEqual(['a', 'b']); // c and d wait, not even acknowledged
    gates.get('a')!.open();
    await until(() => gates.size === 3);
    expect(h.acks).toEqual(['a', 'b', 'c']);
    for (const id of ['b', 'c']) gates.get(id)!.open();
    await until(() => gates.size === 4);
    gates.get('d')!.open();
    await until(() => h.reports.length === 4);
    expect(peak).toBe(2);
    expect(h.reports.map((r) => r.commandId)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('cancel aborts the running handler’s signal and reports the abort; a queued one never starts', async () => {
    const h = harness();
    let seenReason: unknown;
    const started: string[] = [];
    h.dispatcher.register(
      'work',
      (_input, ctx) => {
        started.push(ctx.commandId);
        return new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            seenReason = ctx.signal.reason;
            reject(new Error('stopped'));
          });
        });
      },
      {},
    );
    h.dispatcher.deliver(cmd('run', 'work'));
    h.dispatcher.deliver(cmd('wait', 'work'));
    await until(() => started.length === 1);
    h.dispatcher.cancel('wait');
    h.dispatcher.cancel('run');
    await until(() => h.reports.length === 1);
    expect((seenReason as { code: string }).code).toBe('command.cancelled');
    expect(h.reports[0]).toMatchObject({
      commandId: 'run',
      outcome: { ok: false, error: { code: 'command.cancelled' } },
    });
    await until(() => h.dispatcher.activeCount === 0);
    expect(started).toEqual(['run']);
    // A redelivery of the cancelled queued command does not start it either.
    h.dispatcher.deliver(cmd('wait', 'work'));
    await until(() => h.reports.length === 2);
    expect(started).toEqual(['run']);
  });

  it('the deadline aborts the handler’s signal', async () => {
    const h = harness();
    h.dispatcher.register(
      'slow',
      (_input, ctx) => {
        return new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error));
        });
      },
      {},
    );
    h.dispatcher.deliver({ ...cmd('late', 'slow'), deadline: new Date(Date.now() + 30) });
    await until(() => h.reports.length === 1);
    expect(h.reports[0]!.outcome).toMatchObject({
      ok: false,
      error: { code: 'command.deadline_exceeded' },
    });
  });

  it('the server expiring a command aborts its handler as a deadline, not a cancel', async () => {
    const h = harness();
    h.dispatcher.register(
      'slow',
      (_input, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error));
        }),
      {},
    );
    h.dispatcher.deliver(cmd('old', 'slow'));
    await until(() => h.acks.length === 1);
    h.dispatcher.cancel('old', 'expired');
    await until(() => h.reports.length === 1);
    expect(h.reports[0]!.outcome).toMatchObject({
      ok: false,
      error: { code: 'command.deadline_exceeded' },
    });
  });

  it('thrown errors become { code, message }; unknown capabilities are answered command.unhandled', async () => {
    const h = harness();
    h.dispatcher.register(
      'boom',
      () => {
        throw Object.assign(new Error('disk full'), { code: 'disk.full' });
      },
      {},
    );
    h.dispatcher.register(
      'plain',
      () => {
        throw new Error('nope');
      },
      {},
    );
    h.dispatcher.deliver(cmd('x', 'boom'));
    h.dispatcher.deliver(cmd('y', 'plain'));
    h.dispatcher.deliver(cmd('z', 'missing'));
    await until(() => h.reports.length === 3);
    const byId = Object.fromEntries(h.reports.map((r) => [r.commandId, r.outcome]));
    expect(byId.x).toEqual({ ok: false, error: { code: 'disk.full', message: 'disk full' } });
    expect(byId.y).toEqual({ ok: false, error: { code: 'command.failed', message: 'nope' } });
    expect(byId.z).toMatchObject({ ok: false, error: { code: 'command.unhandled' } });
  });

  it('a result that could not be sent is kept and sent by flush(); an ack that could not be sent lets the redelivery run it', async () => {
    const h = harness();
    const g = gate();
    let runs = 0;
    h.dispatcher.register(
      'echo',
      async (input) => {
        runs++;
        await g.promise;
        return input;
      },
      {},
    );
    h.dispatcher.deliver(cmd('r1'));
    await until(() => runs === 1);
    h.connected.value = false;
    g.open();
    await until(() => h.dispatcher.activeCount === 0);
    expect(h.reports).toEqual([]);
    h.connected.value = true;
    h.dispatcher.flush();
    await until(() => h.reports.length === 1);
    expect(h.reports[0]!.commandId).toBe('r1');

    h.connected.value = false;
    h.dispatcher.deliver(cmd('r2'));
    await until(() => h.dispatcher.activeCount === 0);
    expect(runs).toBe(1);
    h.connected.value = true;
    h.dispatcher.deliver(cmd('r2'));
    await until(() => h.reports.length === 2);
    expect(runs).toBe(2);
  });

  it('an acknowledgement the server refuses means the command is not run', async () => {
    const h = harness();
    let runs = 0;
    h.dispatcher.register('echo', () => runs++, {});
    h.refuseAck.add('gone');
    h.dispatcher.deliver(cmd('gone'));
    await until(() => h.dispatcher.activeCount === 0);
    h.dispatcher.deliver(cmd('gone'));
    await until(() => h.events.filter((e) => e.type === 'received').length === 2);
    expect(runs).toBe(0);
  });

  it('remembers a bounded number of finished ids (the oldest are forgotten)', async () => {
    const h = harness({ finishedMemory: 2 });
    let runs = 0;
    h.dispatcher.register('echo', () => ++runs, {});
    for (const id of ['a', 'b', 'c']) h.dispatcher.deliver(cmd(id));
    await until(() => h.reports.length === 3);
    h.dispatcher.deliver(cmd('c'));
    await until(() => h.reports.length === 4);
    expect(runs).toBe(3);
    h.dispatcher.deliver(cmd('a'));
    await until(() => h.reports.length === 5);
    expect(runs).toBe(4);
  });
});
