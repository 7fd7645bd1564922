-- v15: a grant of an identity key is an explicit act, signed twice. Each identity key carries
-- the public half of its grant authority (an Ed25519 key derived from the identity key's
-- secret, so only its holders can sign; see the domain's `grant.rs`); each officer key the
-- public half of its owner's personal signing key (derived from the box key, so only that
-- officer signs with it). A grant names who made it, with which key, and carries both
-- signatures over its terms. Grants made before this version have neither: they still open
-- for those who hold them, but authorise nothing further.
ALTER TABLE identity_keys ADD COLUMN authority TEXT;
ALTER TABLE officer_keys ADD COLUMN signing TEXT;
ALTER TABLE identity_grants ADD COLUMN granted_by TEXT;
ALTER TABLE identity_grants ADD COLUMN signature TEXT;
ALTER TABLE identity_grants ADD COLUMN granter_key TEXT;
ALTER TABLE identity_grants ADD COLUMN granter_signature TEXT;
