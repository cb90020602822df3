/** What a dashboard saw, matched against what the presence driver did (docs/performance.md). */
import { Histogram } from './histogram.js';

export type Health = 'online' | 'degraded' | 'offline';
const HEALTHS: Health[] = ['online', 'degraded', 'offline'];

/** One value per changed-to health, and one for all changes together. */
export type ByHealth<T> = Record<Health | 'all', T>;

export const byHealth = <T>(make: (key: Health | 'all') => T): ByHealth<T> =>
  Object.fromEntries((['all', ...HEALTHS] as const).map((k) => [k, make(k)])) as ByHealth<T>;

/**
 * A change the driver made to tracked node `node` (index into `nodeIds`): `at` when it acted (the
 * latency's reference), `cause` the one a feed delivery carries (null: any), `ok` it succeeded
 * (only those are expected), `ackMs` its own latency (beat → ack, open → first beat acked).
 */
export interface PresenceChange {
  node: number;
  health: Health;
  at: number;
  cause: string | null;
  ok: boolean;
  ackMs: number | null;
  error?: string;
}

/** `every`: each change must arrive, in order (a feed); `latest`: a poll sees the newest state. */
export type MatchRule = 'every' | 'latest';

/** One dashboard: the last health per node (−1: unknown) and every observation, compactly. */
export class DashboardView {
  readonly current: Int8Array;
  readonly node: number[] = [];
  readonly health: number[] = [];
  readonly arrival: number[] = [];
  readonly eventAt: number[] = [];
  readonly cause: (string | null)[] = [];

  constructor(nodes: number, initial: Health | null) {
    this.current = new Int8Array(nodes).fill(initial === null ? -1 : HEALTHS.indexOf(initial));
  }

  /** `node` is now `health` (a poll reports every row: only changes count; `eventAt` NaN). */
  observe(node: number, health: Health, arrival: number, eventAt: number, cause: string | null) {
    const code = HEALTHS.indexOf(health);
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
    return expect.every((health, i) => this.current[i] === HEALTHS.indexOf(health));
  }
}

/**
 * Matches every dashboard's observations from `since` on against the driver's successful changes:
 * per dashboard and node, in time order; observations matching no change are `unexpected`.
 */
export function matchDeliveries(
  views: DashboardView[],
  changes: PresenceChange[],
  nodes: number,
  since: number,
  rule: MatchRule,
) {
  const perNode: PresenceChange[][] = Array.from({ length: nodes }, () => []);
  for (const change of changes) if (change.ok) perNode[change.node]!.push(change);
  for (const list of perNode) list.sort((a, b) => a.at - b.at);
  const made = perNode.reduce((sum, list) => sum + list.length, 0);
  // change → dashboard; feed only: event `at` → dashboard, and change → event `at`
  const [latency, fromEventAt, toEventAt] = [0, 1, 2].map(() => byHealth(() => new Histogram()));
  let received = 0;
  let unexpected = 0;
  for (const view of views) {
    const next = new Array<number>(nodes).fill(0); // per node, its first change not matched yet
    for (let i = 0; i < view.node.length; i++) {
      const arrival = view.arrival[i]!;
      if (arrival < since) continue;
      const node = view.node[i]!;
      const list = perNode[node]!;
      const health = HEALTHS[view.health[i]!]!;
      const cause = view.cause[i]!;
      let match = -1;
      for (let j = next[node]!; j < list.length && list[j]!.at <= arrival; j++) {
        const c = list[j]!;
        if (c.health !== health || (c.cause !== null && cause !== null && c.cause !== cause)) {
          continue;
        }
        match = j;
        if (rule === 'every') break;
      }
      if (match < 0) {
        unexpected++;
        continue;
      }
      const change = list[match]!;
      const eventAt = view.eventAt[i]!;
      received++;
      for (const key of ['all', health] as const) {
        latency![key].recordMs(arrival - change.at);
        if (!Number.isNaN(eventAt)) {
          fromEventAt![key].recordMs(arrival - eventAt);
          toEventAt![key].recordMs(eventAt - change.at);
        }
      }
      next[node] = match + 1;
    }
  }
  const data = (h: ByHealth<Histogram>) => byHealth((k) => h[k].toData());
  return {
    dashboards: views.length,
    expected: made * views.length,
    received,
    unexpected,
    latency: data(latency!),
    fromEventAt: data(fromEventAt!),
    toEventAt: data(toEventAt!),
  };
}
