/**
 * The orchestrator's side of one agent-host process: forks `agents/main.ts` under tsx, keeps
 * its latest status, and turns its `fatal` message or an early exit into a rejected wait.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FromHost, HostReport, HostStatus, RestartRefs, ToHost } from './protocol.js';

const HOST_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const BENCH_DIR = fileURLToPath(new URL('../..', import.meta.url));
// BENCH_CPU_PROF=1 profiles the agent hosts too (the servers' profiles are in servers.ts).
const PROFILE = process.env.BENCH_CPU_PROF
  ? ['--cpu-prof', `--cpu-prof-dir=${join(BENCH_DIR, '.data', 'profiles', 'agents')}`]
  : [];

export class AgentHostHandle {
  readonly child: ChildProcess;
  status: HostStatus = { online: 0, back: 0, terminated: 0 };
  #reports: ((report: HostReport) => void)[] = [];
  #failure: Error | null = null;
  readonly #failed: Promise<never>;

  constructor() {
    this.child = fork(HOST_MAIN, [], {
      cwd: BENCH_DIR,
      execArgv: [...PROFILE, '--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#failed = new Promise<never>((_, reject) => {
      const fail = (error: Error): void => {
        this.#failure ??= error;
        reject(error);
      };
      this.child.on('message', (message: FromHost) => {
        if (message.type === 'status') this.status = message.status;
        else if (message.type === 'report') this.#reports.shift()?.(message.report);
        else fail(new Error(`agent host: ${message.message}`));
      });
      this.child.once('exit', (code, signal) =>
        fail(new Error(`agent host exited (code ${code}, signal ${signal})`)),
      );
    });
    this.#failed.catch(() => undefined);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Throws if the host has failed or exited: waits poll this. */
  check(): void {
    if (this.#failure) throw this.#failure;
  }

  send(message: ToHost): void {
    this.check();
    this.child.send(message);
  }

  report(refs: RestartRefs): Promise<HostReport> {
    const answer = new Promise<HostReport>((resolve) => this.#reports.push(resolve));
    this.send({ type: 'report', refs });
    return Promise.race([answer, this.#failed]);
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.send({ type: 'exit' } satisfies ToHost);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
