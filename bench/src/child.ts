/**
 * A forked bench child process (dashboards, presence drivers) driven by typed IPC messages:
 * `send` a request, await the `next` answer of a given type. A child reports an unrecoverable
 * error as `{ type: 'fatal', message }`, which rejects every wait; so does its exit while
 * something is awaited. Children run TypeScript through tsx, like the load generators.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));

interface Message {
  type: string;
}

type Fatal = { type: 'fatal'; message: string };

export class BenchChild<To extends Message, From extends Message> {
  readonly #child: ChildProcess;
  readonly #label: string;
  readonly #waiting: { type: string; resolve: (m: From) => void }[] = [];
  readonly #failed: Promise<never>;

  /** `module`: the child's entry file (a URL relative to this file's directory works). */
  constructor(module: URL, label: string) {
    this.#label = label;
    this.#child = fork(fileURLToPath(module), [], {
      cwd: BENCH_DIR,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#failed = new Promise<never>((_, reject) => {
      this.#child.on('message', (message: From | Fatal) => {
        if (message.type === 'fatal') {
          reject(new Error(`${label}: ${(message as Fatal).message}`));
          return;
        }
        const index = this.#waiting.findIndex((w) => w.type === message.type);
        if (index >= 0) this.#waiting.splice(index, 1)[0]!.resolve(message as From);
      });
      this.#child.once('exit', (code, signal) => {
        if (this.#waiting.length > 0) reject(new Error(`${label} exited (${code ?? signal})`));
      });
    });
    this.#failed.catch(() => undefined); // observed through next()
  }

  get pid(): number {
    return this.#child.pid!;
  }

  get label(): string {
    return this.#label;
  }

  send(message: To): void {
    this.#child.send(message);
  }

  next<T extends From['type']>(type: T): Promise<Extract<From, { type: T }>> {
    const answer = new Promise<From>((resolve) => this.#waiting.push({ type, resolve }));
    return Promise.race([answer, this.#failed]) as Promise<Extract<From, { type: T }>>;
  }

  /** Sends `message` and waits for the answer of type `answer`. */
  request<T extends From['type']>(message: To, answer: T): Promise<Extract<From, { type: T }>> {
    const reply = this.next(answer);
    this.send(message);
    return reply;
  }

  /** Asks the child to exit (`{ type: 'exit' }`), killing it if it has not within 10 s. */
  async exit(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    if (this.#child.connected) this.#child.send({ type: 'exit' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
