/**
 * What a scenario is and what it is given. Adding one means writing a `Scenario` and listing it
 * in `index.ts`; the orchestrator provides PostgreSQL, both servers, identities and the load
 * generators.
 */
import type pg from 'pg';
import type { Fleet } from '../identities.js';
import type { BenchPostgres } from '../postgres.js';
import type { ServerProcess, StartOptions, Target } from '../servers.js';
import type { Db } from '../tether-internals.js';

export interface BenchContext {
  quick: boolean;
  /** Load-generator processes per load run (at least 2). */
  generators: number;
  postgres: BenchPostgres;
  postmasterPid: number | null;
  /** The database both servers use. */
  db: Db;
  /** A dedicated connection for probes (WAL position, table counters). */
  probe: pg.Client;
  /** Starts a fresh server process of this kind (each load run gets its own). */
  startServer(target: Target, label: string, options?: StartOptions): Promise<ServerProcess>;
  /** Presence table per target. */
  presenceTables: Record<Target, string>;
  /** Identities registered for the run (as many as the largest scenario needs). */
  fleet: Fleet;
  log: (line: string) => void;
}

export interface FloorCheck {
  floor: string;
  /** What was measured, formatted. */
  measured: string;
  met: boolean;
  /** Set when the scenario ran scaled down (--quick): the check is indicative only. */
  scaled?: string;
}

export interface Table {
  headers: string[];
  rows: string[][];
}

export interface ScenarioResult {
  name: string;
  title: string;
  parameters: Record<string, unknown>;
  tables: Table[];
  /** Remarks printed under the tables (a server crashed, sockets were retried, …). */
  notes: string[];
  floors: FloorCheck[];
  /** Everything measured, for the JSON file. */
  data: unknown;
}

export interface Scenario {
  name: string;
  title: string;
  /** How many registered identities this scenario uses from the shared fleet. */
  nodesNeeded(quick: boolean): number;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}
