-- Resume in the WebSocket handshake: the digest (SHA-256, hex, of the canonical JSON) of the
-- capabilities an attachment last declared, written by attach and capability update, compared
-- with a reconnecting node's claim. NULL (attachments older than this migration) never matches:
-- those nodes attach once as before, which writes it.
ALTER TABLE runtime_node_attachments
  ADD COLUMN capabilities_digest text
    CONSTRAINT runtime_node_attachments_capabilities_digest_format
    CHECK (capabilities_digest ~ '^[0-9a-f]{64}$');
