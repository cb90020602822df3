/** The plugin shape of a scenario, and helpers the scenarios share. */
import type pg from 'pg';
import type { Fleet } from './identities.js';
import { runLoad, type LoadPlan, type LoadResult } from './load.js';
import type { BenchPostgres } from './postgres.js';
import type { ServerExit, ServerProcess, StartOptions, Target } from './servers.js';
import type { Db } from './tether-internals.js';

export const TARGETS = ['tether', 'baseline'] as const;

/** What run.ts gives every scenario. */
export interface BenchContext {
  quick: boolean;
  /** Client processes per run (load generators, dashboard processes; at least 2). */
  generators: number;
  postgres: BenchPostgres;
  postmasterPid: number | null;
  db: Db;
  /** A dedicated connection for probes (WAL position, table counters). */
  probe: pg.Client;
  /** Starts a fresh server process (its log: `.data/<label>-<target>.log`). */
  startServer(target: Target, label: string, options?: StartOptions): Promise<ServerProcess>;
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

/** What a scenario's run returns; run.ts adds its name and title. */
export interface ScenarioOutcome {
  parameters: Record<string, unknown>;
  tables: Table[];
  /** Remarks printed under the tables (a server crashed, sockets were retried, …). */
  notes: string[];
  floors: FloorCheck[];
  /** In a --quick run every floor check is marked with this (indicative only). */
  scaled?: string;
  /** Everything measured, for the JSON file. */
  data: unknown;
}

export type ScenarioResult = { name: string; title: string } & Omit<ScenarioOutcome, 'scaled'>;

export interface Scenario {
  name: string;
  title: string;
  /** Registered identities it needs from the shared fleet (0: its own or none). */
  needs(quick: boolean): { nodes: number };
  run(ctx: BenchContext): Promise<ScenarioOutcome>;
}

/** The lines that apply (a note is written as `condition && text`). */
export const lines = (...items: (string | false | null | undefined)[]): string[] =>
  items.filter((item): item is string => typeof item === 'string');

/**
 * Runs `measure` against a fresh server process of `target`, then stops it (also when `measure`
 * failed) and adds how it ended: a crash under load is part of the result.
 */
export async function withServer<T extends object>(
  ctx: BenchContext,
  target: Target,
  label: string,
  measure: (server: ServerProcess) => Promise<T>,
  options: StartOptions = {},
): Promise<T & { serverExit: ServerExit }> {
  const server = await ctx.startServer(target, label, options);
  ctx.log(` ${target} (pid ${server.pid}):`);
  const outcome = await Promise.resolve()
    .then(() => measure(server))
    .then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
  const serverExit = await server.stop();
  if (serverExit.crashed) {
    const how = `code ${serverExit.code}, signal ${serverExit.signal}`;
    ctx.log(`  ${target} server CRASHED (${how}); see ${server.logFile}`);
  }
  if ('error' in outcome) throw outcome.error;
  return { ...outcome.value, serverExit };
}

export type Pair = Record<Target, LoadResult & { serverExit: ServerExit }>;

/** One load plan against a fresh Tether process, then a fresh baseline one (never both at once). */
export async function runBoth(ctx: BenchContext, label: string, plan: LoadPlan): Promise<Pair> {
  const pair: Partial<Pair> = {};
  for (const target of TARGETS) {
    pair[target] = await withServer(ctx, target, label, (server) => runLoad(ctx, server, plan));
  }
  return pair as Pair;
}

/** Notes on servers that died under the load, and on sockets closed while connecting. */
export const crashNotes = (pair: Pair): string[] =>
  TARGETS.filter((t) => pair[t].serverExit.crashed).map((t) => {
    const e = pair[t].serverExit;
    const oom = /heap out of memory/.test(e.logTail ?? '')
      ? ' — JavaScript heap out of memory'
      : '';
    return `${t} server crashed during the run (exit code ${e.code}, signal ${e.signal})${oom}`;
  });

export const connectNotes = (pair: Pair): string[] =>
  TARGETS.flatMap((t) => {
    const c = pair[t].connect;
    if (c.retried + c.deferred + c.failed === 0) return [];
    const examples = c.failures.slice(0, 2).join('; ');
    return (
      `${t}: ${c.retried} socket(s) closed by the server while connecting were retried, ` +
      `${c.deferred} upgrade(s) deferred by admission were opened again when told, ` +
      `${c.failed} never connected${examples ? `; e.g. ${examples}` : ''}`
    );
  });

/**
 * Runs `work` with a session owned by the fleet's owner, for SDK nodes to attach to; then closes
 * the attachments of nodes killed without detaching and archives the session.
 */
export async function withSession<T>(
  ctx: BenchContext,
  name: string,
  work: (sessionId: string) => Promise<T>,
): Promise<T> {
  const owner = ctx.fleet.ownerParticipantId;
  const id = await ctx.db.tx(async (sql) => {
    const { rows } = await sql.query<{ id: string }>(
      `INSERT INTO sessions (name, created_by) VALUES ($1, $2) RETURNING id`,
      [name, owner],
    );
    await sql.query(
      `INSERT INTO session_memberships (session_id, participant_id, role, state)
       VALUES ($1, $2, 'owner', 'active')`,
      [rows[0]!.id, owner],
    );
    return rows[0]!.id;
  });
  try {
    return await work(id);
  } finally {
    await ctx.db.query(
      `UPDATE runtime_node_attachments SET state = 'offline', updated_at = now()
        WHERE session_id = $1 AND state IN ('registering', 'online', 'degraded')`,
      [id],
    );
    await ctx.db.query(`UPDATE sessions SET state = 'archived' WHERE id = $1`, [id]);
  }
}
