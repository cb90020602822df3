/** The baseline's own presence table: one row per node, default fillfactor, primary key only. */
export const BASELINE_TABLE = 'bench_baseline_presence';

export const BASELINE_SCHEMA = `CREATE TABLE IF NOT EXISTS ${BASELINE_TABLE} (
  node_id           text PRIMARY KEY,
  health_state      text NOT NULL,
  last_heartbeat_at timestamptz NOT NULL,
  metrics           jsonb
)`;
