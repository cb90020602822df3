/** Prometheus metrics (prom-client), one registry per server instance. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Db } from '../db/pool.js';

export interface Metrics {
  registry: Registry;
  rpcRequests: Counter<'procedure' | 'code' | 'transport'>;
  rpcDuration: Histogram<'procedure' | 'transport'>;
  wsHeartbeatFastPath: Counter;
  wsConnections: Gauge;
  wsAdmissionRefused: Counter;
  transportRefusals: Counter<'reason'>;
  wsUnauthenticatedClosed: Counter<'reason'>;
  sweepTransitions: Counter<'to'>;
  sweepDuration: Histogram;
  sweepHolds: Counter<'reason'>;
  heartbeatBatchSize: Histogram;
  heartbeatBatchSeconds: Histogram;
  feedEvents: Counter;
  feedDeliveries: Counter;
}

export function createMetrics(db: Db, gauges: { feedSubscribers?: () => number } = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tether_process_' });
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
  new Gauge({
    name: 'tether_feed_subscribers',
    help: 'Open fleet.events subscriptions on this replica',
    registers: [registry],
    collect() {
      this.set(gauges.feedSubscribers?.() ?? 0);
    },
  });
  return {
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
    wsConnections: new Gauge({
      name: 'tether_ws_connections',
      help: 'Open WebSocket connections',
      registers: [registry],
    }),
    wsAdmissionRefused: new Counter({
      name: 'tether_ws_admission_refused_total',
      help: 'WebSocket upgrades refused with a retry-after answer (over TETHER_WS_ADMIT_PER_SECOND)',
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
  };
}
