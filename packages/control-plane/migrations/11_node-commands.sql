-- Commands: an invocation of a node's capability, stored before it is sent and moved through
-- its states by single guarded UPDATEs (docs/decisions/0012-command-delivery.md).
--
--   awaiting_approval → pending → delivered → running → succeeded | failed
--   any open state → expired (deadline) | cancelled; awaiting_approval → denied
--
-- `revision` counts the row's transitions (command.watch resumes by it). `fingerprint` is a hash
-- of what was asked (target, capability, command, input, timeout): the same idempotency key with
-- a different request is refused instead of answered with the earlier command.
CREATE TABLE node_commands (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  node_id          text NOT NULL REFERENCES nodes (node_id),
  capability       text NOT NULL CHECK (char_length(capability) BETWEEN 1 AND 128),
  command          text CHECK (char_length(command) BETWEEN 1 AND 128),
  input            jsonb NOT NULL DEFAULT '{}',
  state            text NOT NULL
                     CHECK (state IN ('awaiting_approval', 'pending', 'delivered', 'running',
                                      'succeeded', 'failed', 'expired', 'cancelled', 'denied')),
  caller_participant_id uuid NOT NULL REFERENCES participants (id),
  session_id       uuid REFERENCES sessions (id) ON DELETE SET NULL,
  idempotency_key  text NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
  fingerprint      text NOT NULL,
  targeted_by      text NOT NULL CHECK (targeted_by IN ('node', 'capability')),
  timeout_ms       integer NOT NULL CHECK (timeout_ms > 0),
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  delivered_at     timestamptz,
  started_at       timestamptz,
  finished_at      timestamptz,
  attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  output           jsonb,
  error            jsonb,
  decided_by       uuid REFERENCES participants (id),
  revision         integer NOT NULL DEFAULT 1,
  CONSTRAINT node_commands_caller_key UNIQUE (caller_participant_id, idempotency_key),
  CHECK ((state IN ('succeeded', 'failed', 'expired', 'cancelled', 'denied')) = (finished_at IS NOT NULL))
);

-- A node's open commands (delivery on subscribe and poll, the per-node cap).
CREATE INDEX node_commands_node_open_idx ON node_commands (node_id, created_at)
  WHERE state IN ('awaiting_approval', 'pending', 'delivered', 'running');
-- The sweep: open commands by deadline.
CREATE INDEX node_commands_expiry_idx ON node_commands (expires_at)
  WHERE state IN ('awaiting_approval', 'pending', 'delivered', 'running');
-- command.list: newest first, overall and by node, session, caller.
CREATE INDEX node_commands_created_idx ON node_commands (created_at DESC, id DESC);
CREATE INDEX node_commands_node_created_idx ON node_commands (node_id, created_at DESC, id DESC);
CREATE INDEX node_commands_session_created_idx ON node_commands (session_id, created_at DESC, id DESC)
  WHERE session_id IS NOT NULL;
-- The unique constraint's index (caller_participant_id, idempotency_key) serves the caller filter.

-- Targeting by capability picks the least recently commanded eligible node.
ALTER TABLE nodes ADD COLUMN last_commanded_at timestamptz;
