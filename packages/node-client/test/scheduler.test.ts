/**
 * The shared scheduler (one Node timer for every node's beats, waits and deadlines), on an
 * injected clock: order, never early, cancel/reschedule, many tasks, one armed timer, and due
 * tasks run in bounded batches with I/O polled in between.
 */
import { describe, expect, it } from 'vitest';
import { Scheduler, type SchedulerClock } from '../src/scheduler.js';

/** A clock driven by the test: timers fire when `advance` passes them, deferred work after. */
class ManualClock implements SchedulerClock {
  t = 0;
  readonly timers = new Set<{ at: number; fn: () => void }>();
  readonly deferred: (() => void)[] = [];
  armed = 0;

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const timer = { at: this.t + ms, fn };
    this.timers.add(timer);
    this.armed++;
    return timer;
  }

  clearTimer(handle: unknown): void {
    this.timers.delete(handle as { at: number; fn: () => void });
  }

  defer(fn: () => void): void {
    this.deferred.push(fn);
  }

  /** Runs one deferred callback (one event-loop turn's check phase); false if none. */
  turn(): boolean {
    const fn = this.deferred.shift();
    fn?.();
    return fn !== undefined;
  }

  /** Moves time to `t + ms`, firing every timer on the way (and what they defer) in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: { at: number; fn: () => void } | undefined;
      for (const timer of this.timers)
        if (timer.at <= end && (!next || timer.at < next.at)) next = timer;
      if (!next) break;
      this.timers.delete(next);
      this.t = Math.max(this.t, next.at);
      next.fn();
      while (this.turn());
    }
    this.t = end;
    while (this.turn());
  }
}

function setup(options: { resolutionMs?: number; batch?: number; budgetMs?: number } = {}) {
  const clock = new ManualClock();
  const scheduler = new Scheduler({ clock, ...options });
  return { clock, scheduler };
}

describe('scheduler', () => {
  it('runs tasks in due order (buckets of 10 ms), never before they are due, within one bucket after', () => {
    const { clock, scheduler } = setup({ resolutionMs: 10 });
    const ran: [string, number][] = [];
    scheduler.schedule(30, () => ran.push(['c', clock.t]));
    scheduler.schedule(10, () => ran.push(['a', clock.t]));
    scheduler.schedule(15, () => ran.push(['b', clock.t]));
    expect(scheduler.size).toBe(3);
    clock.advance(9);
    expect(ran).toEqual([]);
    clock.advance(1);
    expect(ran).toEqual([['a', 10]]);
    clock.advance(100);
    expect(ran).toEqual([
      ['a', 10],
      ['b', 20],
      ['c', 30],
    ]);
    expect(scheduler.size).toBe(0);
    // Nothing pending: no timer is left armed (a scheduler never keeps a process alive).
    expect(clock.timers.size).toBe(0);
  });

  it('cancel: a cancelled task never runs; cancelling the last one disarms the timer', () => {
    const { clock, scheduler } = setup();
    const ran: string[] = [];
    const a = scheduler.schedule(50, () => ran.push('a'));
    const b = scheduler.schedule(50, () => ran.push('b'));
    const c = scheduler.schedule(500, () => ran.push('c'));
    a.cancel();
    a.cancel();
    expect(a.pending).toBe(false);
    expect(scheduler.size).toBe(2);
    clock.advance(100);
    expect(ran).toEqual(['b']);
    c.cancel();
    expect(scheduler.size).toBe(0);
    expect(clock.timers.size).toBe(0);
    clock.advance(1_000);
    expect(ran).toEqual(['b']);
    // Cancelling a task that already ran is a no-op.
    b.cancel();
    expect(scheduler.size).toBe(0);
  });

  it('reschedule: later, earlier, and again after it ran (a heartbeat re-armed per beat)', () => {
    const { clock, scheduler } = setup({ resolutionMs: 10 });
    const ran: number[] = [];
    const task = scheduler.schedule(100, () => ran.push(clock.t));
    task.reschedule(300);
    clock.advance(200);
    expect(ran).toEqual([]);
    task.reschedule(20);
    clock.advance(20);
    expect(ran).toEqual([220]);
    expect(task.pending).toBe(false);
    task.reschedule(50);
    expect(task.pending).toBe(true);
    clock.advance(50);
    expect(ran).toEqual([220, 270]);
    const cancelled = scheduler.schedule(10, () => ran.push(-1));
    cancelled.cancel();
    cancelled.reschedule(10);
    clock.advance(10);
    expect(ran).toEqual([220, 270, -1]);
  });

  it('10 000 nodes beating every 15 s ± 10 %: each beat exactly once, never early, at most one bucket late, one timer armed', () => {
    const { clock, scheduler } = setup({ resolutionMs: 10 });
    const nodes = 10_000;
    const beats = new Array<number>(nodes).fill(0);
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let early = 0;
    let late = 0;
    const beat = (i: number): void => {
      const wait = 15_000 * (1 + (random() * 2 - 1) * 0.1);
      const at = clock.t + wait;
      scheduler.schedule(wait, () => {
        if (clock.t < at) early++;
        if (clock.t > at + 10) late++;
        beats[i]!++;
        if (beats[i]! < 4) beat(i);
      });
    };
    for (let i = 0; i < nodes; i++) beat(i);
    expect(scheduler.size).toBe(nodes);
    let maxArmed = 0;
    for (let t = 0; t < 80_000; t += 1_000) {
      clock.advance(1_000);
      maxArmed = Math.max(maxArmed, clock.timers.size);
    }
    expect(beats.every((n) => n === 4)).toBe(true);
    expect(early).toBe(0);
    expect(late).toBe(0);
    expect(maxArmed).toBeLessThanOrEqual(1);
    expect(scheduler.size).toBe(0);
  });

  it('due tasks run in batches, each after an event-loop turn, so I/O is polled between them', () => {
    const { clock, scheduler } = setup({ batch: 100 });
    let ran = 0;
    for (let i = 0; i < 250; i++) scheduler.schedule(10, () => ran++);
    // The timer fires; the tasks do not run from it but from the next check phase.
    const [timer] = [...clock.timers];
    clock.t = 10;
    clock.timers.clear();
    timer!.fn();
    expect(ran).toBe(0);
    expect(clock.turn()).toBe(true);
    expect(ran).toBe(100);
    expect(clock.turn()).toBe(true);
    expect(ran).toBe(200);
    expect(clock.turn()).toBe(true);
    expect(ran).toBe(250);
    expect(clock.turn()).toBe(false);
    expect(scheduler.size).toBe(0);
  });

  it('a turn also ends when its time budget is spent (slow tasks: a few per turn, at least one)', () => {
    const { clock, scheduler } = setup({ batch: 1_000, budgetMs: 8 });
    let ran = 0;
    for (let i = 0; i < 10; i++) {
      scheduler.schedule(10, () => {
        ran++;
        clock.t += 5; // each task takes 5 ms of the loop
      });
    }
    const [timer] = [...clock.timers];
    clock.t = 10;
    clock.timers.clear();
    timer!.fn();
    clock.turn();
    expect(ran).toBe(2);
    clock.turn();
    expect(ran).toBe(4);
    while (clock.turn());
    expect(ran).toBe(10);
  });

  it('a deadline cancelled by what arrives before the deferred run never fires (an answer read first)', () => {
    const { clock, scheduler } = setup();
    let timedOut = false;
    const deadline = scheduler.schedule(15_000, () => (timedOut = true));
    const [timer] = [...clock.timers];
    clock.t = 20_000; // the loop was busy past the deadline
    clock.timers.clear();
    timer!.fn();
    deadline.cancel(); // the poll phase read the answer
    clock.turn();
    expect(timedOut).toBe(false);
  });

  it('delay: resolves true when due, false at once when aborted (and its task is gone)', async () => {
    const { clock, scheduler } = setup();
    const done = scheduler.delay(100);
    clock.advance(100);
    await expect(done).resolves.toBe(true);
    const abort = new AbortController();
    const aborted = scheduler.delay(100, abort.signal);
    expect(scheduler.size).toBe(1);
    abort.abort();
    await expect(aborted).resolves.toBe(false);
    expect(scheduler.size).toBe(0);
    await expect(scheduler.delay(100, abort.signal)).resolves.toBe(false);
  });
});
