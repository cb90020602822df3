/**
 * Prometheus metrics (prom-client), one registry per server instance. Every name starts with
 * `tether_`. Per-replica figures (calls, sockets, sweeps run here) add up across replicas;
 * the `tether_fleet_*` gauges and `tether_feed_head_event_id` describe the whole fleet and are
 * the same on every replica (fleet.ts): aggregate those with `max`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Db } from '../db/pool.js';
import { ATTACHMENT_STATES, FleetGauges, HEALTH_STATES, type FleetSnapshot } from './fleet.js';

/** WebSocket sessions on this replica by what authenticated them. */
export interface WsSessionCounts {
  node: number;
  participant: number;
  unauthenticated: number;
}

export interface MetricsSources {
  feedSubscribers?: () => number;
  /** The feed hub's position: every event up to it has been handed out on this replica. */
  feedCursor?: () => string;
  /** The feed hub reads nothing while nobody needs it: it owes no event then (lag 0). */
  feedPaused?: () => boolean;
  wsSessions?: () => WsSessionCounts;
  /** Milliseconds between fleet statements (default fleet.ts `FLEET_REFRESH_MS`). */
  fleetRefreshMs?: number;
  /** WebSocket admission's state (server/admission.ts). */
  admission?: () => { limit: number; inFlight: number; loopDelayMs: number };
}

export interface Metrics {
  registry: Registry;
  rpcRequests: Counter<'procedure' | 'code' | 'transport'>;
  rpcDuration: Histogram<'procedure' | 'transport'>;
  wsHeartbeatFastPath: Counter;
  httpHeartbeatFastPath: Counter;
  wsConnections: Gauge;
  wsAdmissionRefused: Counter;
  wsKeepAliveTerminated: Counter;
  wsHandshakes: Counter<'result'>;
  wsUpgradeBatchSize: Histogram;
  transportRefusals: Counter<'reason'>;
  wsUnauthenticatedClosed: Counter<'reason'>;
  sweepTransitions: Counter<'to'>;
  sweepDuration: Histogram;
  sweepHolds: Counter<'reason'>;
  heartbeatBatchSize: Histogram;
  heartbeatBatchSeconds: Histogram;
  feedEvents: Counter;
  feedDeliveries: Counter;
  feedDeliverySeconds: Histogram;
  sweepLastCompleted: Gauge;
  sweepFailures: Counter;
}

export function createMetrics(db: Db, gauges: MetricsSources = {}): Metrics {
  const registry = new Registry();
  // prom-client's names already start with process_/nodejs_: the prefix is ours alone.
  collectDefaultMetrics({ register: registry, prefix: 'tether_' });
  const pool = db.pool;
  new Gauge({
    name: 'tether_db_pool_connections',
    help: 'PostgreSQL pool connections by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.set({ state: 'total' }, pool.totalCount);
      this.set({ state: 'idle' }, pool.idleCount);
      this.set({ state: 'waiting' }, pool.waitingCount);
    },
  });
  if (gauges.admission) {
    const admission = gauges.admission;
    new Gauge({
      name: 'tether_ws_admission_limit',
      help: 'WebSocket handshakes allowed in flight now (adaptive; capped by TETHER_WS_MAX_HANDSHAKES)',
      registers: [registry],
      collect() {
        this.set(admission().limit);
      },
    });
    new Gauge({
      name: 'tether_ws_handshakes_in_flight',
      help: 'WebSocket upgrades admitted whose first context is not built yet',
      registers: [registry],
      collect() {
        this.set(admission().inFlight);
      },
    });
    new Gauge({
      name: 'tether_ws_admission_loop_delay_seconds',
      help: "Event-loop delay over admission's last control step (mean beyond the 10 ms resolution)",
      registers: [registry],
      collect() {
        this.set(admission().loopDelayMs / 1_000);
      },
    });
  }
  new Gauge({
    name: 'tether_feed_subscribers',
    help: 'Open fleet.events subscriptions on this replica',
    registers: [registry],
    collect() {
      this.set(gauges.feedSubscribers?.() ?? 0);
    },
  });
  new Gauge({
    name: 'tether_ws_sessions',
    help: 'Open WebSocket sessions on this replica by kind: node, participant, unauthenticated (no or a refused credential, or connectionParams not received yet)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const counts: WsSessionCounts = gauges.wsSessions?.() ?? {
        node: 0,
        participant: 0,
        unauthenticated: 0,
      };
      this.set({ kind: 'node' }, counts.node);
      this.set({ kind: 'participant' }, counts.participant);
      this.set({ kind: 'unauthenticated' }, counts.unauthenticated);
    },
  });

  const owed = (): string | null => (gauges.feedPaused?.() ? null : (gauges.feedCursor?.() ?? '0'));
  const fleet = new FleetGauges(db, owed, gauges.fleetRefreshMs);
  /**
   * A gauge filled from the fleet snapshot. The registry collects every metric concurrently, so
   * each one awaits the same snapshot (one statement: fleet.ts reads once for all of them);
   * without a snapshot (database unreachable) labelled series are dropped and an unlabelled
   * gauge reads NaN (it cannot be absent), so no stale or zero number passes for a reading.
   */
  const fromFleet = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (gauge: Gauge<L>, snapshot: FleetSnapshot) => void,
  ): void => {
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const snapshot = await fleet.current();
        this.reset();
        if (snapshot) fill(this, snapshot);
        else if (labelNames.length === 0) (this as Gauge).set(Number.NaN);
      },
    });
  };
  new Gauge({
    name: 'tether_database_up',
    help: 'Whether this replica read the database at its last fleet statement (1) or not (0)',
    registers: [registry],
    async collect() {
      this.set((await fleet.current()) ? 1 : 0);
    },
  });
  fromFleet(
    'tether_fleet_nodes',
    'Active nodes by presence health (fleet-wide, the same on every replica: aggregate with max)',
    ['health'],
    (g, s) => {
      for (const health of HEALTH_STATES) g.set({ health }, s.nodesByHealth[health]);
    },
  );
  fromFleet(
    'tether_fleet_node_attachments',
    'Active nodes by the state of their active attachment, none = not attached (fleet-wide: aggregate with max)',
    ['state'],
    (g, s) => {
      for (const state of ATTACHMENT_STATES) g.set({ state }, s.nodesByAttachment[state]);
    },
  );
  fromFleet(
    'tether_fleet_nodes_revoked',
    'Revoked nodes (fleet-wide: aggregate with max)',
    [],
    (g, s) => g.set(s.revokedNodes),
  );
  fromFleet(
    'tether_feed_head_event_id',
    'Newest committed fleet event id (fleet-wide: aggregate with max)',
    [],
    (g, s) => g.set(s.headEventId),
  );
  fromFleet(
    'tether_feed_lag_seconds',
    'Age of the oldest committed fleet event this replica has not yet handed to its subscriptions (0: caught up)',
    [],
    (g, s) => g.set(s.feedLagSeconds),
  );
  new Gauge({
    name: 'tether_feed_cursor_event_id',
    help: 'Every fleet event up to this id has been handed to the subscriptions on this replica',
    registers: [registry],
    collect() {
      this.set(Number(gauges.feedCursor?.() ?? 0));
    },
  });

  const metrics: Metrics = {
    registry,
    rpcRequests: new Counter({
      name: 'tether_rpc_requests_total',
      help: 'tRPC calls by procedure and result code (ok or the Tether error code)',
      labelNames: ['procedure', 'code', 'transport'],
      registers: [registry],
    }),
    rpcDuration: new Histogram({
      name: 'tether_rpc_duration_seconds',
      help: 'tRPC call duration by procedure',
      labelNames: ['procedure', 'transport'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    wsHeartbeatFastPath: new Counter({
      name: 'tether_ws_heartbeat_fast_path_total',
      help: 'WebSocket heartbeats served by the fast path (also counted in tether_rpc_requests_total)',
      registers: [registry],
    }),
    httpHeartbeatFastPath: new Counter({
      name: 'tether_http_heartbeat_fast_path_total',
      help: 'Plain HTTP heartbeats served by the fast path (also counted in tether_rpc_requests_total)',
      registers: [registry],
    }),
    wsConnections: new Gauge({
      name: 'tether_ws_connections',
      help: 'Open WebSocket connections',
      registers: [registry],
    }),
    wsAdmissionRefused: new Counter({
      name: 'tether_ws_admission_refused_total',
      help: 'WebSocket upgrades refused with a retry-after answer (handshakes in flight at the admission limit, or over TETHER_WS_ADMIT_PER_SECOND)',
      registers: [registry],
    }),
    wsKeepAliveTerminated: new Counter({
      name: 'tether_ws_keepalive_terminated_total',
      help: 'WebSocket sessions terminated because nothing answered a keep-alive ping within TETHER_WS_PONG_WAIT_MS',
      registers: [registry],
    }),
    wsHandshakes: new Counter({
      name: 'tether_ws_handshakes_total',
      help: 'WebSocket upgrades with a bearer token, by outcome: resumed, fresh (no resume claim), not_resumed:<reason>, refused_400 (bad claim), refused_401, refused_429 (auth-failure lockout), refused_503',
      labelNames: ['result'],
      registers: [registry],
    }),
    wsUpgradeBatchSize: new Histogram({
      name: 'tether_ws_upgrade_batch_size',
      help: 'Upgrades with a bearer token decided per batch (one credential lookup and one resume statement each)',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [registry],
    }),
    transportRefusals: new Counter({
      name: 'tether_transport_refusals_total',
      help: 'Calls or upgrades refused before dispatch: batch (over TETHER_MAX_BATCH_CALLS), in_flight (TETHER_WS_MAX_IN_FLIGHT), unauthenticated_per_peer (TETHER_WS_MAX_UNAUTHENTICATED_PER_PEER)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    wsUnauthenticatedClosed: new Counter({
      name: 'tether_ws_unauthenticated_closed_total',
      help: 'WebSockets closed for not authenticating: connection_params (none within TETHER_WS_AUTH_DEADLINE_MS), anonymous_idle (TETHER_WS_ANONYMOUS_IDLE_MS)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    sweepTransitions: new Counter({
      name: 'tether_sweep_transitions_total',
      help: 'Presence transitions made by the staleness sweep',
      labelNames: ['to'],
      registers: [registry],
    }),
    sweepDuration: new Histogram({
      name: 'tether_sweep_duration_seconds',
      help: 'Duration of presence sweeps run by this replica',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    sweepHolds: new Counter({
      name: 'tether_sweep_holds_total',
      help: 'Times the sweep held demotions (startup grace or a stall of this server)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    heartbeatBatchSize: new Histogram({
      name: 'tether_heartbeat_batch_size',
      help: 'Nodes written per heartbeat batch (group commit)',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [registry],
    }),
    heartbeatBatchSeconds: new Histogram({
      name: 'tether_heartbeat_batch_seconds',
      help: 'Time to write and commit one heartbeat batch',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: [registry],
    }),
    feedEvents: new Counter({
      name: 'tether_feed_events_total',
      help: 'Fleet events read by this replica for fan-out',
      registers: [registry],
    }),
    feedDeliveries: new Counter({
      name: 'tether_feed_deliveries_total',
      help: 'Fleet events handed to subscriptions on this replica',
      registers: [registry],
    }),
    feedDeliverySeconds: new Histogram({
      name: 'tether_feed_delivery_seconds',
      help: 'From a new-events notification reaching this replica to the announced events being handed to its subscriptions',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    sweepLastCompleted: new Gauge({
      name: 'tether_sweep_last_completed_timestamp_seconds',
      help: 'Unix time of the last maintenance round this replica completed (swept, or found another replica sweeping or a hold)',
      registers: [registry],
    }),
    sweepFailures: new Counter({
      name: 'tether_sweep_failures_total',
      help: 'Maintenance rounds that failed (database unreachable or a statement failed)',
      registers: [registry],
    }),
  };
  // Present from the start at 0, so that rate() and increase() see the first transitions.
  for (const to of ['degraded', 'offline']) metrics.sweepTransitions.inc({ to }, 0);
  return metrics;
}
