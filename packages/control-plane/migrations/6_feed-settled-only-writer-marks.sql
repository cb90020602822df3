-- tether_feed_settled() (migration 5) must wait only for feed writers. Its filter admitted every
-- single-bigint advisory key whose high half is at least 2^30 as unsigned, which includes
-- negative keys: hashtext() values (the sweeper's and the pruner's locks) made feed readers wait
-- for a whole sweep, and keys below -2^62 overflowed the mark arithmetic (SQLSTATE 22003).
-- Writer marks are exactly the keys in [2^62, 2^63): high half in [2^30, 2^31).
CREATE OR REPLACE FUNCTION tether_feed_settled() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  issued bigint;
  writer bigint;
BEGIN
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO issued FROM fleet_events_id_seq;
  FOR writer IN
    SELECT k.key
      FROM pg_locks l
     CROSS JOIN LATERAL (SELECT (l.classid::bigint << 32) | l.objid::bigint AS key) k
     WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.mode = 'ExclusiveLock'
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid::bigint BETWEEN 1073741824 AND 2147483647
       AND k.key - 4611686018427387904 < issued
     ORDER BY k.key
  LOOP
    PERFORM pg_advisory_lock_shared(writer);
    PERFORM pg_advisory_unlock_shared(writer);
  END LOOP;
  RETURN issued;
END
$$;
