-- v12: an identity key that was granted to someone who may no longer see identity (an
-- account disabled, or moved to a role without identity_view) is retired: it still opens
-- what it sealed, for those who hold it, and nothing new is sealed to it. 1 on every laptop
-- that retires it, so two laptops retiring it at once agree.
ALTER TABLE identity_keys ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;
