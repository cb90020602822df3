-- Token lineage: which token created which, so that a token never outlives the token that minted
-- it. `token.create` records the calling token here; its expiry is capped at the creator's (in the
-- inserting statement) and revoking a token revokes, transitively, every token it created
-- (src/auth/service.ts walks this column level by level). A creator is never deleted while a
-- child references it (tokens are revoked, not deleted; participant deletion cascades both).
-- Enrollment keys record the token that created them the same way: capped at its expiry and
-- revoked with it (and with any token it descends from).
ALTER TABLE api_tokens
  ADD COLUMN created_by_token_id uuid REFERENCES api_tokens (id) ON DELETE CASCADE,
  ADD CONSTRAINT api_tokens_not_own_creator CHECK (created_by_token_id <> id);

-- The revocation cascade looks children up by their creator.
CREATE INDEX api_tokens_created_by_idx ON api_tokens (created_by_token_id)
  WHERE created_by_token_id IS NOT NULL;

-- token.list pages a participant's tokens (and, for admins, everyone's) in creation order.
-- The first also serves every lookup by participant, so it replaces the single-column index.
CREATE INDEX api_tokens_participant_created_idx ON api_tokens (participant_id, created_at, id);
DROP INDEX api_tokens_participant_idx;
CREATE INDEX api_tokens_created_idx ON api_tokens (created_at, id);

ALTER TABLE enrollment_keys
  ADD COLUMN created_by_token_id uuid REFERENCES api_tokens (id) ON DELETE CASCADE;
CREATE INDEX enrollment_keys_created_by_token_idx ON enrollment_keys (created_by_token_id)
  WHERE created_by_token_id IS NOT NULL;
