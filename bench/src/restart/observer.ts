/**
 * Watches a restart from SIGTERM on, every 250 ms (the resolution of everything it records):
 * the agents' counts (from the hosts' latest status), the database's count, and — during the
 * wave only — what the server's PostgreSQL sessions are doing.
 */
import type pg from 'pg';
import type { Target } from '../servers.js';
import { dbOnline, sessionStates } from './probes.js';

const POLL_MS = 250;

export interface TimelinePoint {
  /** Milliseconds since SIGTERM. */
  t: number;
  agentsOnline: number;
  agentsBack: number;
  /** The database's count (null while it means nothing yet: see `dbOnline`). */
  db: number | null;
}

export class RestartObserver {
  readonly timeline: TimelinePoint[] = [];
  /** Session samples by state/wait, summed while `wave` is on. */
  readonly sessions: Record<string, number> = {};
  /** The database's count since (baseline: the old process's exit); set once known. */
  dbSince: number | null = null;
  /** Sample the server's PostgreSQL sessions. */
  wave = false;
  readonly #sigtermAt: number;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(
    probe: pg.ClientBase,
    target: Target,
    nodeIds: string[],
    sigtermAt: number,
    agents: () => { online: number; back: number },
  ) {
    this.#sigtermAt = sigtermAt;
    this.#loop = (async () => {
      while (this.#running) {
        // A failed probe query is a gap in the record, not the end of the run.
        const db = await dbOnline(probe, target, nodeIds, this.dbSince).catch(() => null);
        const { online, back } = agents();
        this.timeline.push({
          t: Date.now() - sigtermAt,
          agentsOnline: online,
          agentsBack: back,
          db,
        });
        if (this.wave) {
          const states = await sessionStates(probe, target).catch(() => []);
          for (const [what, k] of states) this.sessions[what] = (this.sessions[what] ?? 0) + k;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    })();
  }

  /** The database's latest count, if it was taken at or after `at` (epoch ms). */
  dbSinceInstant(at: number): number | null {
    const last = this.timeline.at(-1);
    return last && last.t >= at - this.#sigtermAt ? last.db : null;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}
