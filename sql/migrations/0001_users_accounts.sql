-- Users, their cash accounts and refresh tokens.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE CHECK (length(email) <= 254 AND email = lower(email)),
    name          text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    timestamptz NOT NULL
);

CREATE TABLE accounts (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    -- Unconstrained NUMERIC keeps every amount exactly as the domain computed it, scale included
    -- (a crypto fill can cost fractions of a cent); rounding to cents happens at the API edge.
    cash          numeric NOT NULL CHECK (cash >= 0),
    reserved_cash numeric NOT NULL DEFAULT 0 CHECK (reserved_cash >= 0),
    currency      char(3) NOT NULL,
    created_at    timestamptz NOT NULL,
    CHECK (reserved_cash <= cash)
);

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
