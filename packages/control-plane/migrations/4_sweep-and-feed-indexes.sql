-- Every presence transition appends one fleet_events row, so each index on the feed is paid per
-- transition (a mass demotion of 100 000 nodes inserts 100 000 rows into each). The index on
-- `at` served only retention's "first event younger than the retention window", which the
-- primary key answers as well: ids follow commit order, so that is the first id, scanning
-- upwards, whose `at` is inside the window, and everything below it is what retention deletes
-- next (a short walk when retention runs every few minutes).
DROP INDEX fleet_events_at_idx;

-- A presence transition must not touch any index either: the partial index on live rows named
-- `health_state` in its predicate, so every transition (online ↔ degraded ↔ offline) was a
-- non-HOT update writing a new entry into both indexes of the row (and, after each checkpoint,
-- full images of those index pages: 3.1 MB of WAL for a sweep demoting 1 000 nodes, 151 kB
-- without it). The sweep reads the table sequentially anyway once more than a few percent of
-- the fleet is live, and the online queries reach presence rows through the primary key.
DROP INDEX runtime_node_presence_live_idx;
