-- Rate limits shared by every replica: the failed-authentication lockout and the public-call
-- limit (pairing, enrollment) per peer address. Kept in each process's memory they gave an
-- attacker N times the budget behind N replicas.
--
-- One row per (scope, key) holds a token bucket in its "theoretical arrival time" form (GCRA):
-- `tat_ms` (epoch milliseconds, database clock) is when the bucket would be full again; a take
-- is allowed while `tat_ms` is at most (burst - 1) refill intervals ahead of now. One upsert
-- per take decides and records atomically (src/limits/shared-buckets.ts); `allowed` is that
-- decision, returned to the caller (a row cannot return its old values). A row whose `tat_ms`
-- is in the past is a full bucket, the same as no row: the maintenance loop deletes those.
--
-- UNLOGGED: no WAL per take. A crash of PostgreSQL empties the table (every bucket full again)
-- and standbys do not have it; for limits that refill within minutes that is acceptable.
CREATE UNLOGGED TABLE rate_limit_buckets (
  scope   text NOT NULL,
  key     text NOT NULL,
  tat_ms  double precision NOT NULL,
  allowed boolean NOT NULL,
  PRIMARY KEY (scope, key)
) WITH (fillfactor = 70);
