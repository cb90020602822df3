-- Metrics history: a fixed ring of samples per node (docs/decisions/0008-metrics-history.md).
--
-- Heartbeats carry small metrics; the presence row keeps the latest document (`metrics`) and now
-- when it was reported. A short history lives in `runtime_node_metrics`: at most one sample per
-- node per sample interval (15 s by default), in slots 0 … N−1 (N = 240 by default: an hour)
-- written in turn, each slot overwriting its previous sample. The table holds at most N rows per
-- node whatever the uptime, and a sample is an in-place update of non-indexed columns (HOT) once
-- the ring is full. Samples are written by the heartbeat's own statement; the presence row keeps
-- the slot the next sample goes to.
--
-- `metrics_reported_at` is NULL while the metrics were reported by the row's last beat (then
-- `last_heartbeat_at` is their time): nodes that send metrics on every beat never write it, so a
-- beat's row version (and WAL record) carries no second changing timestamp. A beat without
-- metrics sets it to the time of the metrics it keeps. Rows from before this migration read as
-- reported at their last beat, the best estimate there is.
ALTER TABLE runtime_node_presence
  ADD COLUMN metrics_reported_at timestamptz,
  ADD COLUMN metrics_slot smallint NOT NULL DEFAULT 0 CHECK (metrics_slot >= 0);

CREATE TABLE runtime_node_metrics (
  node_id            text NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
  slot               smallint NOT NULL CHECK (slot >= 0),
  sampled_at         timestamptz NOT NULL,
  cpu_percent        float8,
  memory_used_bytes  float8,
  memory_total_bytes float8,
  uptime_seconds     float8,
  gauges             jsonb,
  PRIMARY KEY (node_id, slot)
) WITH (fillfactor = 70);
