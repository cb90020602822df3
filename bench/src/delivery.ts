/** What a dashboard saw, and how it lines up with what the presence driver did. */
import { Histogram, type HistogramData } from './histogram.js';

export type Health = 'online' | 'degraded' | 'offline';

/** One value per changed-to health, and one for all changes together. */
export type ByHealth<T> = Record<Health | 'all', T>;

/** What the presence driver did to a node's presence, and when (the latency's reference). */
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

/** `every`: each change must arrive, in order (a feed); `latest`: a poll sees the newest state. */
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

const HEALTHS: Health[] = ['offline', 'online', 'degraded'];

/** One dashboard's knowledge: the last health per tracked node and every observation, compactly. */
export class DashboardView {
  /** Last known health per node (index into HEALTHS), −1 while unknown. */
  readonly current: Int8Array;
  /** Observations, one entry per array each (compact: a run may hold millions). */
  readonly node: number[] = [];
  readonly health: number[] = [];
  readonly arrival: number[] = [];
  /** The event's database timestamp (ms), NaN for poll observations. */
  readonly eventAt: number[] = [];
  readonly cause: (string | null)[] = [];

  constructor(nodes: number, initial: Health | null = null) {
    this.current = new Int8Array(nodes).fill(initial === null ? -1 : HEALTHS.indexOf(initial));
  }

  /** Records that `node` is now `health` (a poll calls this for every row; only changes count). */
  observe(
    node: number,
    health: Health,
    arrival: number,
    eventAt = NaN,
    cause: string | null = null,
  ): void {
    const code = HEALTHS.indexOf(health);
    // A feed delivers each transition once; a poll repeats the current state every time.
    if (Number.isNaN(eventAt) && this.current[node] === code) return;
    this.current[node] = code;
    this.node.push(node);
    this.health.push(code);
    this.arrival.push(arrival);
    this.eventAt.push(eventAt);
    this.cause.push(cause);
  }

  /** True when every node's last known health is the expected one. */
  shows(expect: Health[]): boolean {
    for (let i = 0; i < expect.length; i++) {
      if (this.current[i] !== HEALTHS.indexOf(expect[i]!)) return false;
    }
    return true;
  }

  /** Observation indices per node, arrival order, from `since` on. */
  byNode(nodes: number, since: number): number[][] {
    const groups: number[][] = Array.from({ length: nodes }, () => []);
    for (let i = 0; i < this.node.length; i++) {
      if (this.arrival[i]! >= since) groups[this.node[i]!]!.push(i);
    }
    return groups;
  }
}

export const BY_HEALTH = ['all', 'online', 'degraded', 'offline'] as const;

/** `make(key)` for each of `all` and the three healths. */
export const byHealth = <T>(make: (key: Health | 'all') => T): ByHealth<T> =>
  Object.fromEntries(BY_HEALTH.map((k) => [k, make(k)])) as ByHealth<T>;

const toData = (h: ByHealth<Histogram>): ByHealth<HistogramData> => byHealth((k) => h[k].toData());

/** Matches every dashboard's observations against the driver's successful changes. */
export function matchDeliveries(
  views: DashboardView[],
  changes: PresenceChange[],
  nodes: number,
  since: number,
  rule: MatchRule,
): Omit<DeliverySummary, 'errors' | 'errorCount'> {
  const perNode: PresenceChange[][] = Array.from({ length: nodes }, () => []);
  for (const change of changes) if (change.ok) perNode[change.node]!.push(change);
  for (const list of perNode) list.sort((a, b) => a.at - b.at);
  const made = perNode.reduce((sum, list) => sum + list.length, 0);

  const latency = byHealth(() => new Histogram());
  const fromEventAt = byHealth(() => new Histogram());
  const toEventAt = byHealth(() => new Histogram());
  let received = 0;
  let unexpected = 0;
  for (const view of views) {
    const groups = view.byNode(nodes, since);
    for (let node = 0; node < nodes; node++) {
      const list = perNode[node]!;
      let next = 0; // first change of this node not matched yet
      for (const i of groups[node]!) {
        const health = HEALTHS[view.health[i]!]!;
        const arrival = view.arrival[i]!;
        const cause = view.cause[i]!;
        let match = -1;
        for (let j = next; j < list.length && list[j]!.at <= arrival; j++) {
          const c = list[j]!;
          if (c.health !== health) continue;
          if (c.cause !== null && cause !== null && c.cause !== cause) continue;
          match = j;
          if (rule === 'every') break;
        }
        if (match < 0) {
          unexpected++;
          continue;
        }
        const change = list[match]!;
        received++;
        for (const key of ['all', health] as const) {
          latency[key].recordMs(arrival - change.at);
          const eventAt = view.eventAt[i]!;
          if (!Number.isNaN(eventAt)) {
            fromEventAt[key].recordMs(arrival - eventAt);
            toEventAt[key].recordMs(eventAt - change.at);
          }
        }
        next = match + 1;
      }
    }
  }
  return {
    dashboards: views.length,
    expected: made * views.length,
    received,
    unexpected,
    latency: toData(latency),
    fromEventAt: toData(fromEventAt),
    toEventAt: toData(toEventAt),
  };
}
