-- API keys for scripts and SDKs (the Alpaca-compatible /v2 routes). The secret is stored only as
-- its SHA-256 (hex): it is 240 random bits, so a slow hash would add nothing. Revoked keys stay,
-- with revoked_at set, so that a key id is never reused and the history is kept.

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    key_id      text NOT NULL UNIQUE,  -- the lookup on every authenticated request
    secret_hash text NOT NULL CHECK (length(secret_hash) = 64),
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX api_keys_user_live ON api_keys (user_id, created_at) WHERE revoked_at IS NULL;
