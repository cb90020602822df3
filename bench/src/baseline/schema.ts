/** The baseline's own presence table: one row per node, default fillfactor, primary key only. */
export const BASELINE_TABLE = 'bench_baseline_presence';

/** The baseline's commands: a row per invocation, picked up by its node's next poll. */
export const BASELINE_COMMANDS_TABLE = 'bench_baseline_commands';

/** Both tables (the sweep's database gets the commands table too, unused). */
export const BASELINE_SCHEMA = `CREATE TABLE IF NOT EXISTS ${BASELINE_TABLE} (
  node_id           text PRIMARY KEY,
  health_state      text NOT NULL,
  last_heartbeat_at timestamptz NOT NULL,
  metrics           jsonb
);
CREATE TABLE IF NOT EXISTS ${BASELINE_COMMANDS_TABLE} (
  id          bigserial PRIMARY KEY,
  node_id     text NOT NULL,
  input       jsonb NOT NULL,
  state       text NOT NULL DEFAULT 'pending',
  output      jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS ${BASELINE_COMMANDS_TABLE}_pending
  ON ${BASELINE_COMMANDS_TABLE} (node_id) WHERE state = 'pending'`;
