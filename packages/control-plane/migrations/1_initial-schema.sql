-- Tether initial schema (SPEC §3). Invariants live here where PostgreSQL can hold them:
-- CHECK enums, foreign keys, unique (node_id, session_id) and at most one ACTIVE attachment
-- per node (partial unique index), so no read-then-write race can break them.

CREATE TABLE participants (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  role        text NOT NULL CHECK (role IN ('admin', 'member')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);

CREATE TABLE api_tokens (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  participant_id uuid NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
  token_hash     bytea NOT NULL CONSTRAINT api_tokens_token_hash_key UNIQUE CHECK (octet_length(token_hash) = 32),
  name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_used_at   timestamptz,
  expires_at     timestamptz,
  revoked_at     timestamptz
);
CREATE INDEX api_tokens_participant_idx ON api_tokens (participant_id);

CREATE TABLE sessions (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name               text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  state              text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'archived')),
  -- MAJOR.MINOR floor, only ever raised; NULL admits every version.
  min_client_version text CONSTRAINT sessions_min_client_version_format
                       CHECK (min_client_version ~ '^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$'
                              AND char_length(min_client_version) <= 64),
  created_by         uuid NOT NULL REFERENCES participants (id),
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_created_by_idx ON sessions (created_by);

CREATE TABLE session_memberships (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id     uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  participant_id uuid NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
  role           text NOT NULL CHECK (role IN ('owner', 'collaborator', 'runtime contributor', 'viewer')),
  state          text NOT NULL DEFAULT 'active' CHECK (state IN ('pending', 'active', 'suspended', 'revoked')),
  joined_at      timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT session_memberships_session_participant_key UNIQUE (session_id, participant_id)
);
CREATE INDEX session_memberships_participant_idx ON session_memberships (participant_id);

CREATE TABLE nodes (
  node_id              text PRIMARY KEY
                         CHECK (char_length(node_id) BETWEEN 1 AND 256
                                AND node_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$'),
  owner_participant_id uuid NOT NULL REFERENCES participants (id),
  name                 text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  node_type            text NOT NULL CHECK (char_length(node_type) BETWEEN 1 AND 64),
  platform             text CHECK (char_length(platform) <= 128),
  location             text CHECK (char_length(location) <= 200),
  labels               jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
  metadata             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  capabilities         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(capabilities) = 'object'),
  client_version       text,
  -- NULL only between a pairing approval and its claim.
  token_hash           bytea CONSTRAINT nodes_token_hash_key UNIQUE CHECK (octet_length(token_hash) = 32),
  status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  enrolled_at          timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  revoked_at           timestamptz,
  CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);
CREATE INDEX nodes_owner_idx ON nodes (owner_participant_id, node_id);
CREATE INDEX nodes_node_type_idx ON nodes (node_type, node_id);
CREATE INDEX nodes_location_idx ON nodes (location, node_id) WHERE location IS NOT NULL;
-- "who can do Y": key-existence (?) lookups on declared capabilities.
CREATE INDEX nodes_capabilities_gin ON nodes USING gin (capabilities);
CREATE INDEX nodes_labels_gin ON nodes USING gin (labels jsonb_path_ops);

CREATE TABLE enrollment_keys (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  key_hash     bytea NOT NULL CONSTRAINT enrollment_keys_key_hash_key UNIQUE CHECK (octet_length(key_hash) = 32),
  created_by   uuid NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
  reusable     boolean NOT NULL DEFAULT false,
  labels       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  revoked_at   timestamptz,
  use_count    integer NOT NULL DEFAULT 0 CHECK (use_count >= 0),
  last_used_at timestamptz
);
CREATE INDEX enrollment_keys_created_by_idx ON enrollment_keys (created_by);

CREATE TABLE pairing_requests (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  pairing_code      text NOT NULL,
  claim_secret_hash bytea NOT NULL CONSTRAINT pairing_requests_claim_secret_hash_key UNIQUE
                      CHECK (octet_length(claim_secret_hash) = 32),
  state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'claimed')),
  name              text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  node_type         text NOT NULL CHECK (char_length(node_type) BETWEEN 1 AND 64),
  platform          text,
  requested_node_id text,
  metadata          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
  requester_address text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  expires_at        timestamptz NOT NULL,
  decided_by        uuid REFERENCES participants (id),
  decided_at        timestamptz,
  node_id           text REFERENCES nodes (node_id),
  claimed_at        timestamptz
);
-- A pending code is unique, so an operator can type it to find the request.
CREATE UNIQUE INDEX pairing_requests_pending_code_key ON pairing_requests (pairing_code) WHERE state = 'pending';
CREATE INDEX pairing_requests_state_idx ON pairing_requests (state, created_at);

CREATE TABLE runtime_node_attachments (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id     uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  participant_id uuid NOT NULL REFERENCES participants (id),
  node_id        text NOT NULL REFERENCES nodes (node_id),
  capabilities   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(capabilities) = 'object'),
  client_version text NOT NULL,
  state          text NOT NULL DEFAULT 'registering'
                   CHECK (state IN ('registering', 'online', 'degraded', 'offline', 'revoked')),
  attached_at    timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT runtime_node_attachments_node_session_key UNIQUE (node_id, session_id)
);
-- At most one active attachment per node, held by the database (SQLSTATE 23505 on conflict).
CREATE UNIQUE INDEX runtime_node_attachments_one_active_per_node
  ON runtime_node_attachments (node_id)
  WHERE state IN ('registering', 'online', 'degraded');
CREATE INDEX runtime_node_attachments_session_idx ON runtime_node_attachments (session_id, node_id);

-- One row per node; heartbeats update it in place. fillfactor leaves room for HOT updates,
-- and no index covers last_heartbeat_at so a beat never touches an index.
CREATE TABLE runtime_node_presence (
  node_id           text PRIMARY KEY REFERENCES nodes (node_id) ON DELETE CASCADE,
  health_state      text NOT NULL DEFAULT 'offline' CHECK (health_state IN ('online', 'degraded', 'offline')),
  last_heartbeat_at timestamptz,
  online_since      timestamptz,
  connection_id     text,
  metrics           jsonb,
  changed_at        timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);
-- The sweep only looks at live rows; offline ones (usually most) stay out of the index.
CREATE INDEX runtime_node_presence_live_idx ON runtime_node_presence (health_state) WHERE health_state <> 'offline';

CREATE TABLE fleet_events (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  type       text NOT NULL,
  node_id    text,
  session_id uuid,
  payload    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX fleet_events_at_idx ON fleet_events (at);
CREATE INDEX fleet_events_node_idx ON fleet_events (node_id, id) WHERE node_id IS NOT NULL;
CREATE INDEX fleet_events_session_idx ON fleet_events (session_id, id) WHERE session_id IS NOT NULL;
