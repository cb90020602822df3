-- Access policy (docs/decisions/0013-access-policy.md): who may invoke a node's capability.
--
-- `node_capability_policies` holds one row per node × capability whose policy was ever set; no
-- row means `owner` (only the node's owner and admins). A policy may be set for a capability the
-- node does not declare (yet): declarations come and go, the owner's decision stays.
--
-- `capability_leases` is the lease history: a lease is active while `ended_at` is NULL, and at
-- most one lease per node × capability is active, enforced by the partial unique index (never by
-- a read-then-write check). A lease past `expires_at` no longer lets its holder invoke, whether or
-- not the sweep has ended it yet; the sweep (or the next acquire) ends it with reason `expired`.
CREATE TABLE node_capability_policies (
  node_id    text NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
  capability text NOT NULL CHECK (capability ~ '^[a-z][a-z0-9._-]{0,127}$'),
  policy     text NOT NULL CHECK (policy IN ('owner', 'free', 'leased', 'gated')),
  updated_by uuid NOT NULL REFERENCES participants (id),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, capability)
);

CREATE TABLE capability_leases (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  node_id       text NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
  capability    text NOT NULL CHECK (capability ~ '^[a-z][a-z0-9._-]{0,127}$'),
  holder_id     uuid NOT NULL REFERENCES participants (id),
  acquired_at   timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  renewed_at    timestamptz,
  ended_at      timestamptz,
  end_reason    text CHECK (end_reason IN ('released', 'broken', 'expired')),
  ended_by      uuid REFERENCES participants (id),
  CHECK ((ended_at IS NULL) = (end_reason IS NULL)),
  CHECK (expires_at > acquired_at)
);
CREATE UNIQUE INDEX capability_leases_one_active ON capability_leases (node_id, capability)
  WHERE ended_at IS NULL;
-- The sweep's scan: active leases by expiry.
CREATE INDEX capability_leases_active_expiry ON capability_leases (expires_at) WHERE ended_at IS NULL;
-- Leases of a node, newest first (history).
CREATE INDEX capability_leases_node_idx ON capability_leases (node_id, capability, acquired_at DESC);
