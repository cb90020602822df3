/**
 * Watches a restart from SIGTERM on, every 250 ms (the resolution of everything it records):
 * the agents' counts (from the hosts' latest status, which a busy host sends late: the agents'
 * own per-agent times are the exact ones), the database's counts, and — during the wave only —
 * what the server's PostgreSQL sessions are doing.
 */
import type pg from 'pg';
import type { Target } from '../servers.js';
import { dbBack, presenceOnline, sessionStates } from './probes.js';

const POLL_MS = 250;

export interface TimelinePoint {
  /** Milliseconds since SIGTERM. */
  t: number;
  agentsOnline: number;
  agentsBack: number;
  /** Agents back in the database's view (null until the old process has exited: `dbBack`). */
  db: number | null;
  /** Tether's presence rows `online`, stale ones included (`presenceOnline`). */
  presence: number | null;
}

export class RestartObserver {
  readonly timeline: TimelinePoint[] = [];
  /** Session samples by state/wait, summed while `wave` is on. */
  readonly sessions: Record<string, number> = {};
  /** The old process's exit: the database's view counts what was written after it. */
  dbSince: number | null = null;
  /** Sample the server's PostgreSQL sessions. */
  wave = false;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(
    probe: pg.ClientBase,
    target: Target,
    nodeIds: string[],
    sigtermAt: number,
    agents: () => { online: number; back: number },
  ) {
    this.#loop = (async () => {
      while (this.#running) {
        // A failed probe query is a gap in the record, not the end of the run.
        const db = await dbBack(probe, target, nodeIds, this.dbSince).catch(() => null);
        const presence = await presenceOnline(probe, target, nodeIds).catch(() => null);
        const { online, back } = agents();
        this.timeline.push({
          t: Date.now() - sigtermAt,
          agentsOnline: online,
          agentsBack: back,
          db,
          presence,
        });
        if (this.wave) {
          const states = await sessionStates(probe, target).catch(() => []);
          for (const [what, k] of states) this.sessions[what] = (this.sessions[what] ?? 0) + k;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}
