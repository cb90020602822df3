/**
 * The metrics history: a fixed ring of samples per node in `runtime_node_metrics` (migration 9;
 * docs/decisions/0009-metrics-history.md). Invariants:
 *  - at most one sample per node per sample interval: a beat carrying metrics takes a sample only
 *    when it is the first report in its interval (intervals aligned to the epoch, by the
 *    database clock), however often the node beats;
 *  - at most `samples` rows per node, ever: slots 0 … samples−1 are written in turn (the next slot
 *    is kept on the presence row), each overwriting its previous sample, so the table never
 *    grows with time;
 *  - a sample is written by the statement that writes the beat (no extra round trip), after the
 *    beat locked the node's presence row, so two writers never race for one node's ring; a beat
 *    that takes no sample writes nothing here;
 *  - a ring row is only ever updated in non-indexed columns (HOT-friendly).
 * The SQL fragments below are shared by the heartbeat batch and the single-beat path.
 */

export interface MetricsHistoryPolicy {
  /** At most one sample per node per this many milliseconds (fractions allowed, ≥ 1 µs). */
  sampleIntervalMs: number;
  /** Samples kept per node. */
  samples: number;
}

/** One sample per 15 s (the default beat cadence) for an hour. */
export const DEFAULT_METRICS_HISTORY: MetricsHistoryPolicy = {
  sampleIntervalMs: 15_000,
  samples: 240,
};

/** The policy as statement parameters: the interval (an SQL interval literal) and the ring size. */
export function historyParams(policy: MetricsHistoryPolicy): [string, number] {
  const micros = Math.max(1, Math.round(policy.sampleIntervalMs * 1000));
  return [`${micros} microseconds`, policy.samples];
}

/**
 * SQL: when the metrics of presence row `p` were reported, NULL without metrics. The column
 * `metrics_reported_at` is NULL while that is the row's last beat (the usual case: every beat
 * carries metrics), so a beat does not write one more changing timestamp into the row (and the
 * WAL) just to repeat `last_heartbeat_at`; it is set only when a beat without metrics moves
 * `last_heartbeat_at` past the report.
 */
export function metricsReportedAtSql(p: string): string {
  return `CASE WHEN ${p}.metrics IS NULL THEN NULL
              ELSE COALESCE(${p}.metrics_reported_at, ${p}.last_heartbeat_at) END`;
}

/**
 * SQL: whether a beat reporting `metrics` (jsonb, NULL when the beat carries none) takes a sample,
 * given when the node last reported metrics (`reportedBefore`). `interval` is an SQL expression
 * of type interval. Aligned buckets rather than "interval since the last sample", so the
 * presence row needs no sample time of its own: the previous report is in an earlier bucket
 * exactly when this is the bucket's first report.
 */
export function takesSampleSql(metrics: string, reportedBefore: string, interval: string): string {
  return `(${metrics} IS NOT NULL AND (${reportedBefore} IS NULL
      OR date_bin(${interval}, now(), TIMESTAMPTZ 'epoch')
         > date_bin(${interval}, ${reportedBefore}, TIMESTAMPTZ 'epoch')))`;
}

/**
 * SQL: the presence SET items that go with a change (`p` is the presence row, its columns the
 * values before the change): metrics reported by a beat are "reported at the last beat"
 * (`metrics_reported_at` NULL, see metricsReportedAtSql); a beat without metrics pins the report
 * time of the metrics it keeps; `metrics_slot` advances when the beat takes a sample.
 */
export function metricsPresenceSetSql(v: {
  metrics: string;
  beat: string;
  takeSample: string;
  samples: string;
}): string {
  return `metrics_reported_at = CASE WHEN ${v.metrics} IS NOT NULL AND ${v.beat} THEN NULL
                                     WHEN ${v.metrics} IS NOT NULL THEN now()
                                     WHEN ${v.beat} THEN ${metricsReportedAtSql('p')}
                                     ELSE p.metrics_reported_at END,
    metrics_slot = CASE WHEN ${v.takeSample} THEN (p.metrics_slot % ${v.samples} + 1) % ${v.samples}
                        ELSE p.metrics_slot END`;
}

const SAMPLE_COLUMNS = `sampled_at = date_trunc('milliseconds', now()),
    cpu_percent = (s.sample->>'cpuPercent')::float8,
    memory_used_bytes = (s.sample->>'memoryUsedBytes')::float8,
    memory_total_bytes = (s.sample->>'memoryTotalBytes')::float8,
    uptime_seconds = (s.sample->>'uptimeSeconds')::float8,
    gauges = s.sample->'gauges'`;

/**
 * SQL: two CTEs (`ring_updated`, `ring_inserted`) that write the samples of `source` — a CTE with
 * `node_id`, `sample` (the metrics document, NULL for a beat that takes no sample) and
 * `sample_slot` — into the ring. A full ring's slot is overwritten by a plain UPDATE (no
 * INSERT … ON CONFLICT: that locks the row first, one more WAL record per sample); only a slot
 * never written yet is inserted, with ON CONFLICT for the rare statement whose snapshot predates
 * another writer's insert of that slot. Times are kept to the millisecond, as the wire shows
 * them, so a `since` taken from a sample's `at` excludes that sample.
 */
export function metricsSamplesSql(source: string): string {
  return `ring_updated AS (
  UPDATE runtime_node_metrics m SET ${SAMPLE_COLUMNS}
    FROM ${source} s
   WHERE s.sample IS NOT NULL AND m.node_id = s.node_id AND m.slot = s.sample_slot
  RETURNING m.node_id
), ring_inserted AS (
  INSERT INTO runtime_node_metrics AS m
         (node_id, slot, sampled_at, cpu_percent, memory_used_bytes, memory_total_bytes,
          uptime_seconds, gauges)
  SELECT s.node_id, s.sample_slot, date_trunc('milliseconds', now()),
         (s.sample->>'cpuPercent')::float8, (s.sample->>'memoryUsedBytes')::float8,
         (s.sample->>'memoryTotalBytes')::float8, (s.sample->>'uptimeSeconds')::float8,
         s.sample->'gauges'
    FROM ${source} s
   WHERE s.sample IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM ring_updated r WHERE r.node_id = s.node_id)
  ON CONFLICT (node_id, slot) DO UPDATE SET
    sampled_at = EXCLUDED.sampled_at,
    cpu_percent = EXCLUDED.cpu_percent,
    memory_used_bytes = EXCLUDED.memory_used_bytes,
    memory_total_bytes = EXCLUDED.memory_total_bytes,
    uptime_seconds = EXCLUDED.uptime_seconds,
    gauges = EXCLUDED.gauges
)`;
}
