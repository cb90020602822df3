-- The fleet event feed in commit order, with one notification per writing statement.
--
-- Subscribers resume with "every event after id N". That is only exact if ids become visible in
-- id order, i.e. no transaction commits id 10 after another has already committed id 11. So ids
-- are not drawn by a column default (drawn early, committed in any order) but by a row trigger
-- that first takes a transaction-scoped advisory lock: the next writer can only draw its ids
-- once the holder has committed or rolled back. The lock is taken only by transactions that
-- really append an event (a heartbeat that changes nothing never touches it). Writers append
-- their events after taking every row lock they need, so the holder never waits on a row.

ALTER TABLE fleet_events ALTER COLUMN id DROP DEFAULT;

CREATE FUNCTION tether_fleet_events_assign_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- (0x74657468 = 'teth', 1): the two-key advisory lock space, apart from single-key locks.
  PERFORM pg_advisory_xact_lock(1952805992, 1);
  NEW.id := nextval('fleet_events_id_seq');
  RETURN NEW;
END
$$;

CREATE TRIGGER fleet_events_assign_id
  BEFORE INSERT ON fleet_events
  FOR EACH ROW EXECUTE FUNCTION tether_fleet_events_assign_id();

-- One NOTIFY per inserting statement (a sweep demoting 10 000 nodes sends one), carrying the
-- id range "first-last". Listeners re-read rows by id, so a lost notification only delays.
CREATE FUNCTION tether_fleet_events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  first_id bigint;
  last_id bigint;
BEGIN
  SELECT min(id), max(id) INTO first_id, last_id FROM inserted;
  IF last_id IS NOT NULL THEN
    PERFORM pg_notify('tether_events', first_id::text || '-' || last_id::text);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER fleet_events_notify
  AFTER INSERT ON fleet_events
  REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION tether_fleet_events_notify();

-- Retention deletes the oldest events; the highest deleted id is kept so that a subscriber
-- resuming from before it learns its cursor expired (ids may have gaps, so min(id) cannot tell).
CREATE TABLE fleet_event_retention (
  singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  deleted_through bigint NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO fleet_event_retention DEFAULT VALUES;
