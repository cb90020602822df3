/**
 * Messages of the presence-latency children (fan-out, close → offline), next to the load
 * generators' (protocol.ts):
 *
 *   dashboards (worker/dashboard.ts, ≥ 2 processes)          presence driver (worker/presence-driver.ts)
 *   init {spec}        ───▶ open sockets / start polling       init {spec}  ───▶ connect (flip mode)
 *                      ◀─── ready                                           ◀─── ready
 *   probe {expect}     ───▶ how many dashboards show `expect`  start {at}   ───▶ run the schedule
 *                      ◀─── probed                                          ◀─── done {changes}
 *   match {changes}    ───▶ match observations to changes
 *                      ◀─── matched {delivery summary}
 *   exit               ───▶ close, exit 0                      exit         ───▶ close, exit 0
 *
 * A *change* is something the driver did to a node's presence at a known instant (a beat with
 * another health, a socket opened or closed); an *observation* is a dashboard learning a node's
 * new health (a `fleet.events` delivery, or a poll answer that differs from the previous one).
 * Times are epoch milliseconds from `preciseNow()`: every process shares the machine's clock.
 */
import type { HistogramData } from './histogram.js';
import type { NodeIdentity } from './protocol.js';

export type Health = 'online' | 'degraded' | 'offline';

/** One value per changed-to health, and one for all changes together. */
export type ByHealth<T> = Record<Health | 'all', T>;

/** What the driver did, and when (the reference instant of the latency). */
export interface PresenceChange {
  /** Index into the tracked node list (the driver's and the dashboards' `nodeIds`). */
  node: number;
  health: Health;
  /** When the driver acted: beat handed to the socket, socket opened, `close()` called. */
  at: number;
  /** The `presence.changed` cause a feed delivery of this change carries (null: any). */
  cause: string | null;
  /** The driver saw its action succeed (beat acknowledged, socket open); failed ones are not expected. */
  ok: boolean;
  /** Driver-side latency of the action (beat → acknowledgement, open → first beat acknowledged). */
  ackMs: number | null;
  error?: string;
}

/**
 * - `feed`: one WebSocket per dashboard with a `fleet.events` subscription (participant token in
 *   connectionParams), filtered to `presence.changed`.
 * - `poll`: the naive alternative, every `pollIntervalMs` (random phase, never two at once per
 *   dashboard) `GET /trpc/presence.list` of the baseline for the tracked nodes' range.
 */
export type DashboardMode = 'feed' | 'poll';

export interface DashboardSpec {
  workerIndex: number;
  mode: DashboardMode;
  baseUrl: string;
  /** Participant token (feed mode). */
  token: string;
  dashboards: number;
  /** The nodes whose presence the dashboards track (a contiguous, zero-padded id range). */
  nodeIds: string[];
  /** What a dashboard knows of every node before its first observation (null: nothing). */
  initial: Health | null;
  pollIntervalMs: number;
  connectConcurrency: number;
}

/** Matching rules: `every` — each change must arrive, in order (a feed); `latest` — a poll sees the newest state, skipping flips in between. */
export type MatchRule = 'every' | 'latest';

export interface DeliverySummary {
  dashboards: number;
  /** Changes the driver made successfully × dashboards. */
  expected: number;
  /** Of those, observed by a dashboard. */
  received: number;
  /** Observations matching no change (another cause, e.g. the sweep; or a duplicate). */
  unexpected: number;
  /** Change → dashboard. */
  latency: ByHealth<HistogramData>;
  /** Feed only: the event's database timestamp (`at`, transaction start) → dashboard. */
  fromEventAt: ByHealth<HistogramData>;
  /** Feed only: change → the event's `at` (how long until the writing transaction started). */
  toEventAt: ByHealth<HistogramData>;
  /** Subscription or poll errors (first few), and their count. */
  errors: string[];
  errorCount: number;
}

export type ToDashboard =
  | { type: 'init'; spec: DashboardSpec }
  | { type: 'probe'; expect: Health[] }
  | { type: 'match'; changes: PresenceChange[]; since: number; rule: MatchRule }
  | { type: 'exit' };

export type FromDashboard =
  | { type: 'ready'; opened: number; failed: number; failures: string[] }
  /** `caughtUp`: dashboards whose view of every tracked node equals `expect`. */
  | { type: 'probed'; caughtUp: number }
  | { type: 'matched'; summary: DeliverySummary }
  | { type: 'fatal'; message: string };

/**
 * - `flip`: every node connects over WebSocket (bound, first beat `online`); then change i
 *   (at `start + i / rate`) is a beat of node i mod n with the other health (online ↔ degraded).
 *   A node whose previous change is still unanswered at its turn is skipped (counted), so a
 *   node's changes never overtake each other.
 * - `churn`: change pairs: node i opens its socket (authenticated, first beat acknowledged) at
 *   `start + i / rate`, and closes it (`close(1000)`) `holdMs` later.
 */
export type DriverMode = 'flip' | 'churn';

export interface DriverSpec {
  mode: DriverMode;
  baseUrl: string;
  nodes: NodeIdentity[];
  /** Flip: changes to make; churn: one open/close pair per node. */
  changes: number;
  /** Changes (flip) or opens (churn) per second. */
  rate: number;
  /** Churn: how long a socket stays open before it is closed. */
  holdMs: number;
  requestTimeoutMs: number;
}

export interface DriverReport {
  changes: PresenceChange[];
  /** Flip: turns skipped because the node's previous change was unanswered. */
  skipped: number;
  /** Connect failures (flip: initial connect; churn: opens). */
  failures: string[];
  /** How late the driver acted versus its schedule (ms): a saturated driver shows here. */
  lagMaxMs: number;
}

export type ToDriver =
  { type: 'init'; spec: DriverSpec } | { type: 'start'; startAt: number } | { type: 'exit' };

export type FromDriver =
  | { type: 'ready'; opened: number; failed: number; failures: string[] }
  | { type: 'done'; report: DriverReport }
  | { type: 'fatal'; message: string };
