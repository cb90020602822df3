/**
 * One timer for many: the SDK's timed work (heartbeats, backoff waits, call deadlines, the
 * handshake deadline) goes through one scheduler per process instead of one Node timer each.
 *
 * A process running thousands of nodes (`tether-agent simulate`, the bench's agent hosts) used to
 * arm and clear several Node timers per node per beat and per call; the timer list itself, the
 * closures and the late, all-at-once expiry of thousands of deadlines after a stall were a large
 * part of its cost. Here tasks sit in buckets of `resolutionMs` (default 10 ms) kept in a
 * min-heap of bucket numbers, and one Node timer is armed for the earliest bucket:
 *
 *  - `schedule` / `reschedule` / `cancel` are O(log buckets) / O(1); a task never runs early,
 *    at most one bucket (plus the event loop's own lateness) late; buckets run in time order,
 *    the tasks of one bucket in the order they were scheduled;
 *  - due tasks run from `setImmediate` after the timer fires, i.e. AFTER the event loop has
 *    polled its sockets: a deadline that expired while the loop was busy is cancelled by the
 *    answer already sitting in its socket instead of firing first (Node runs expired timers
 *    before it reads I/O);
 *  - at most `batch` tasks, and for at most `budgetMs`, run per turn, then the rest after
 *    another I/O poll, so thousands of tasks due at once (a fleet whose backoff windows
 *    overlap, a fleet that attached together) never hold the loop for long;
 *  - nothing is armed when no task is pending, so a scheduler never keeps a process alive on
 *    its own.
 *
 * The clock and the timer primitives are injected (`SchedulerClock`), so every property is
 * testable without real time. `processScheduler()` is the instance the SDK uses.
 */

/** The time source and timer primitives a scheduler runs on. */
export interface SchedulerClock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls `fn` once after `ms`; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /** Calls `fn` soon, after pending I/O has been polled (setImmediate). */
  defer(fn: () => void): void;
}

export const realClock: SchedulerClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
  defer: (fn) => void setImmediate(fn),
};

export interface SchedulerOptions {
  /** Bucket width in milliseconds. Default 10. */
  resolutionMs?: number;
  /** Tasks run per event-loop turn at most. Default 256. */
  batch?: number;
  /** Time spent running tasks per event-loop turn at most (one task is always run). Default 8. */
  budgetMs?: number;
  clock?: SchedulerClock;
}

const PENDING = 0;
const DONE = 1;
const CANCELLED = 2;

/** A scheduled call. `cancel()` and `reschedule()` may be called in any state. */
export class ScheduledTask {
  /** When it is due (the scheduler's clock). */
  at = 0;
  slot = 0;
  state: typeof PENDING | typeof DONE | typeof CANCELLED = DONE;

  constructor(
    readonly scheduler: Scheduler,
    readonly fn: () => void,
  ) {}

  get pending(): boolean {
    return this.state === PENDING;
  }

  /** Never runs (unless rescheduled). */
  cancel(): void {
    this.scheduler.cancel(this);
  }

  /** Due `delayMs` from now, whether it was pending, done or cancelled. */
  reschedule(delayMs: number): this {
    this.scheduler.reschedule(this, delayMs);
    return this;
  }
}

export class Scheduler {
  readonly resolutionMs: number;
  readonly #batch: number;
  readonly #budgetMs: number;
  readonly #clock: SchedulerClock;
  readonly #buckets = new Map<number, Set<ScheduledTask>>();
  /** Bucket numbers, min-heap; may hold numbers whose bucket is gone (skipped). */
  readonly #heap: number[] = [];
  #pending = 0;
  #armedSlot = Infinity;
  #timer: unknown = undefined;
  #draining = false;

  constructor(options: SchedulerOptions = {}) {
    this.resolutionMs = options.resolutionMs ?? 10;
    this.#batch = options.batch ?? 256;
    this.#budgetMs = options.budgetMs ?? 8;
    this.#clock = options.clock ?? realClock;
    if (!(this.resolutionMs > 0) || !(this.#batch >= 1)) {
      throw new RangeError('scheduler: need resolutionMs > 0 and batch >= 1');
    }
  }

  /** Tasks waiting to run. */
  get size(): number {
    return this.#pending;
  }

  /** The scheduler's clock (milliseconds). */
  now(): number {
    return this.#clock.now();
  }

  /** Runs `fn` once, `delayMs` from now. */
  schedule(delayMs: number, fn: () => void): ScheduledTask {
    const task = new ScheduledTask(this, fn);
    this.#add(task, delayMs);
    return task;
  }

  /** Moves `task` to `delayMs` from now (pending or not). */
  reschedule(task: ScheduledTask, delayMs: number): void {
    if (task.scheduler !== this) throw new Error('scheduler: a task of another scheduler');
    this.#remove(task);
    this.#add(task, delayMs);
  }

  cancel(task: ScheduledTask): void {
    if (task.state !== PENDING) return;
    this.#remove(task);
    task.state = CANCELLED;
  }

  /** Resolves `true` after `ms`, or `false` as soon as `signal` aborts. */
  delay(ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal?.aborted) {
        resolve(false);
        return;
      }
      const onAbort = (): void => {
        task.cancel();
        resolve(false);
      };
      const task = this.schedule(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #add(task: ScheduledTask, delayMs: number): void {
    const ms = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    task.at = this.#clock.now() + ms;
    // The bucket's end is at or after `at`: a task never runs early.
    const slot = Math.ceil(task.at / this.resolutionMs);
    task.slot = slot;
    task.state = PENDING;
    let bucket = this.#buckets.get(slot);
    if (!bucket) {
      bucket = new Set();
      this.#buckets.set(slot, bucket);
      heapPush(this.#heap, slot);
    }
    bucket.add(task);
    this.#pending++;
    if (!this.#draining && slot < this.#armedSlot) this.#arm(slot);
  }

  #remove(task: ScheduledTask): void {
    if (task.state !== PENDING) return;
    task.state = DONE;
    const bucket = this.#buckets.get(task.slot);
    if (bucket?.delete(task) && bucket.size === 0) this.#buckets.delete(task.slot);
    this.#pending--;
    if (this.#pending === 0) this.#disarm();
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#armedSlot = Infinity;
    this.#heap.length = 0;
  }

  #arm(slot: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#armedSlot = slot;
    const wait = Math.max(1, slot * this.resolutionMs - this.#clock.now());
    this.#timer = this.#clock.setTimer(this.#fired, wait);
  }

  readonly #fired = (): void => {
    this.#timer = undefined;
    this.#armedSlot = Infinity;
    if (this.#draining) return;
    this.#draining = true;
    // After the poll phase: answers that arrived meanwhile are read before deadlines run.
    this.#clock.defer(this.#drain);
  };

  readonly #drain = (): void => {
    const startedAt = this.#clock.now();
    const nowSlot = Math.floor(startedAt / this.resolutionMs);
    const until = startedAt + this.#budgetMs;
    let ran = 0;
    let spent = false;
    let failure: { error: unknown } | undefined;
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]! <= nowSlot) {
      const slot = heap[0]!;
      const bucket = this.#buckets.get(slot);
      if (!bucket) {
        heapPop(heap);
        continue;
      }
      if (ran >= this.#batch || spent) break;
      for (const task of bucket) {
        if (ran >= this.#batch || spent) break;
        bucket.delete(task);
        task.state = DONE;
        this.#pending--;
        ran++;
        try {
          task.fn();
        } catch (error) {
          failure ??= { error };
        }
        spent = this.#clock.now() >= until;
      }
      // A task may have added to this very bucket (a zero delay): it ran above or runs next turn.
      if (bucket.size === 0 && this.#buckets.get(slot) === bucket) {
        this.#buckets.delete(slot);
        heapPop(heap);
      }
    }
    this.#draining = false;
    if (this.#pending === 0) this.#disarm();
    else if (heap.length > 0 && heap[0]! <= nowSlot) {
      // More are due: run them after the next I/O poll.
      this.#draining = true;
      this.#clock.defer(this.#drain);
    } else {
      while (heap.length > 0 && !this.#buckets.has(heap[0]!)) heapPop(heap);
      if (heap.length > 0) this.#arm(heap[0]!);
    }
    // As a throwing timer callback would: an uncaught exception, after the others ran.
    if (failure) {
      const { error } = failure;
      queueMicrotask(() => {
        throw error;
      });
    }
  };
}

function heapPush(heap: number[], value: number): void {
  let i = heap.push(value) - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]! <= value) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = value;
}

function heapPop(heap: number[]): void {
  const last = heap.pop()!;
  if (heap.length === 0) return;
  let i = 0;
  const n = heap.length;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= n) break;
    const right = left + 1;
    const child = right < n && heap[right]! < heap[left]! ? right : left;
    if (heap[child]! >= last) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = last;
}

let shared: Scheduler | undefined;

/** The scheduler every node of this process uses. */
export function processScheduler(): Scheduler {
  return (shared ??= new Scheduler());
}
