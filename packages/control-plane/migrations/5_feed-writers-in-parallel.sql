-- The feed's writers no longer wait for each other; its readers wait for the writers.
--
-- Until now every transaction that appended an event took one exclusive advisory lock and held
-- it through its commit (migration 2), so ids were drawn in commit order. It also meant that only
-- one such transaction could be between its first event and its commit at any time: the commit's
-- WAL flush, and every round trip to a busy server, was spent under that lock. A reconnect wave
-- of 10 000 nodes (three event-writing transactions each: bind, attach, capabilities) committed
-- one at a time, and half of the server's sessions waited on the lock.
--
-- Readers need one guarantee: once they have read "every event up to id N", no event with an id
-- at or below N can still appear. Writers now announce themselves instead of queueing:
--
--  * tether_feed_writer(), called before a transaction draws its first event id, draws a *mark*
--    from the feed's sequence and takes an exclusive advisory lock on that mark (a key nobody
--    else takes). Every event id the transaction draws afterwards is above its mark. The mark
--    itself is never an event (a gap; feed ids already have gaps after rollbacks).
--  * tether_feed_settled() reads the last id issued, then waits for every writer whose mark is
--    below it to commit or roll back (a shared lock on the writer's key: it waits for that one
--    writer and blocks nobody). It returns that id: every event at or below it is now either
--    committed or gone, so a read in a *later statement* (a later snapshot) sees all of them.
--    A writer that took its mark after the scan of pg_locks drew it after the last id was read,
--    so all of its events are above the returned id.
--
-- Per-entity order is unchanged: writers take their row locks before their first event, so two
-- transactions about one node draw their ids in the order they commit.

-- Marks live in the single-bigint advisory key space, offset by 2^62, so they cannot meet the
-- hashtext() keys used elsewhere (those are 32-bit values).
CREATE FUNCTION tether_feed_writer() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  mark bigint;
BEGIN
  IF COALESCE(current_setting('tether.feed_mark', true), '') = '' THEN
    mark := nextval('fleet_events_id_seq');
    PERFORM pg_advisory_xact_lock(4611686018427387904 + mark);
    PERFORM set_config('tether.feed_mark', mark::text, true);
  END IF;
  RETURN true;
END
$$;

CREATE FUNCTION tether_feed_settled() RETURNS bigint
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
       AND l.classid::bigint >= 1073741824
       AND k.key - 4611686018427387904 < issued
     ORDER BY k.key
  LOOP
    PERFORM pg_advisory_lock_shared(writer);
    PERFORM pg_advisory_unlock_shared(writer);
  END LOOP;
  RETURN issued;
END
$$;

CREATE OR REPLACE FUNCTION tether_fleet_events_assign_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM tether_feed_writer();
  NEW.id := nextval('fleet_events_id_seq');
  RETURN NEW;
END
$$;

DROP FUNCTION tether_feed_lock();
