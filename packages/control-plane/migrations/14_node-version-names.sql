-- Contract 2.0 gives the two versions two names: the contract version a client speaks stays
-- `x-tether-client-version` on the wire; the node's own software version, compared with a
-- session's floor, is `nodeVersion`. The columns follow, and so do the stored event payloads
-- (replayed through fleet.list / fleet.events with today's schemas).
ALTER TABLE nodes RENAME COLUMN client_version TO node_version;
ALTER TABLE runtime_node_attachments RENAME COLUMN client_version TO node_version;
ALTER TABLE sessions RENAME COLUMN min_client_version TO min_node_version;
ALTER TABLE sessions RENAME CONSTRAINT sessions_min_client_version_format TO sessions_min_node_version_format;

UPDATE fleet_events
   SET payload = (payload - 'clientVersion') || jsonb_build_object('nodeVersion', payload -> 'clientVersion')
 WHERE type = 'runtimenode.attached' AND payload ? 'clientVersion';
