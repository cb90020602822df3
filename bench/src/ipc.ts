/**
 * The one protocol between the orchestrator and its children: a child plays a role (`roles/<role>`,
 * exporting `handlers`) called over Node IPC. Times are epoch ms from `preciseNow()`.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));
const ENTRY = fileURLToPath(new URL('./child.ts', import.meta.url));

/** What a role exports: async methods (and `close`, run before the child exits). */
export type Handlers = Record<string, (...args: never[]) => unknown>;

type ToChild = { call: number; method: string; args: unknown[] } | { exit: true };
type FromChild = { reply: number; value?: unknown; error?: string };

/** Epoch milliseconds with sub-millisecond precision. */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export const sleepUntil = (at: number): Promise<void> => sleep(at - preciseNow());

export const message = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

export const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

/** Adds `n` to `map[key]`. */
export const count = (map: Record<string, number>, key: string, n = 1): number =>
  (map[key] = (map[key] ?? 0) + n);

/** Checks every `everyMs` until `check()` holds (true) or `deadline` (epoch ms) passes (false). */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  deadline: number,
  everyMs: number,
): Promise<boolean> {
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

/** The orchestrator's handle on one child process playing `role`. */
export class Child<H extends Handlers> {
  readonly #child;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #next = 1;
  #ended: Error | null = null;

  constructor(
    role: string,
    readonly label: string = role,
  ) {
    // BENCH_CPU_PROF=1: V8 CPU profiles of the children too (the servers': servers.ts).
    const profile = process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${join(BENCH_DIR, '.data', 'profiles', role)}`]
      : [];
    this.#child = fork(ENTRY, [role], {
      cwd: BENCH_DIR,
      execArgv: [...profile, '--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child.on('message', (m: FromChild) => {
      const waiting = this.#pending.get(m.reply);
      this.#pending.delete(m.reply);
      if (m.error !== undefined) waiting?.reject(new Error(`${this.label}: ${m.error}`));
      else waiting?.resolve(m.value);
    });
    this.#child.once('exit', (code, signal) => {
      this.#ended = new Error(`${this.label} exited (${code ?? signal})`);
      for (const waiting of this.#pending.values()) waiting.reject(this.#ended);
      this.#pending.clear();
    });
  }

  get pid(): number {
    return this.#child.pid!;
  }

  call<M extends keyof H & string>(
    method: M,
    ...args: Parameters<H[M]>
  ): Promise<Awaited<ReturnType<H[M]>>> {
    if (this.#ended) return Promise.reject(this.#ended);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#child.send({ call: id, method, args } satisfies ToChild);
    });
  }

  /** Asks the child to exit, killing it if it has not within 10 s. */
  async exit(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    if (this.#child.connected) this.#child.send({ exit: true } satisfies ToChild);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** `count` children of one role, and how to end them. */
export const children = <H extends Handlers>(role: string, count: number): Child<H>[] =>
  Array.from({ length: count }, (_, i) => new Child<H>(role, `${role} ${i}`));

export const exitAll = async (list: { exit(): Promise<void> }[]): Promise<void> => {
  await Promise.all(list.map((c) => c.exit()));
};

/** The child's side (child.ts): answers calls with `handlers` until told to exit. */
export function serve(handlers: Handlers & { close?: () => Promise<void> | void }): void {
  const call = handlers as Record<string, (...args: unknown[]) => unknown>;
  process.on('message', (m: ToChild) => {
    if ('exit' in m) {
      const bounded = new Promise((resolve) => setTimeout(resolve, 5_000).unref());
      void Promise.race([Promise.resolve(handlers.close?.()), bounded]).finally(() =>
        process.exit(0),
      );
      return;
    }
    const reply = (r: FromChild): void => void process.send?.(r);
    Promise.resolve()
      .then(() => call[m.method]!(...m.args))
      .then(
        (value) => reply({ reply: m.call, value }),
        (error: unknown) => reply({ reply: m.call, error: message(error) }),
      );
  });
  // The orchestrator going away must not leave children behind.
  process.on('disconnect', () => process.exit(0));
}

/** Runs `work(i)` for every i below `count`, in order, at most `concurrency` at once. */
export async function inLanes(
  count: number,
  concurrency: number,
  work: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, lane));
}
