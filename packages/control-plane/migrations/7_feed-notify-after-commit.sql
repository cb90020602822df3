-- New fleet events are announced after their commit, not inside the writing transaction.
--
-- Until now a statement trigger sent `NOTIFY tether_events` from every transaction that wrote an
-- event. PostgreSQL serialises the commits of notifying transactions: each takes one
-- database-wide lock before it commits and holds it through its WAL flush. In a reconnect wave
-- (thousands of attaches and binds, each writing events) 28–31 % of the server's sessions waited
-- on that lock. The application now sends the notification itself, once the writing transaction
-- has committed, from its pool in a transaction of its own and coalesced (at most one in flight
-- per process): see `notifyAfterCommit` in src/db/pool.ts and `feedWritten` in
-- src/events/append.ts. A process writing events without it is seen by the hubs' safety poll.
DROP TRIGGER fleet_events_notify ON fleet_events;
DROP FUNCTION tether_fleet_events_notify();
