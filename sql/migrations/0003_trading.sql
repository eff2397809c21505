-- Positions, orders and their audit trail, executions, the transactional outbox, idempotency
-- records, and watchlists. Amounts are exact NUMERIC; the CHECKs keep money and shares safe
-- whatever the code above does.

CREATE TABLE positions (
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    symbol          text NOT NULL REFERENCES instruments (symbol),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    qty             numeric NOT NULL CHECK (qty >= 0),
    reserved_qty    numeric NOT NULL DEFAULT 0 CHECK (reserved_qty >= 0),
    avg_entry_price numeric NOT NULL CHECK (avg_entry_price >= 0),
    realized_pl     numeric NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, symbol),
    CHECK (reserved_qty <= qty)
);
CREATE INDEX positions_user ON positions (user_id);

CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_order_id  text,
    symbol           text NOT NULL REFERENCES instruments (symbol),
    side             text NOT NULL CHECK (side IN ('buy', 'sell')),
    type             text NOT NULL CHECK (type IN ('market', 'limit', 'stop', 'stop_limit')),
    time_in_force    text NOT NULL CHECK (time_in_force IN ('day', 'gtc', 'ioc', 'fok')),
    qty              numeric NOT NULL CHECK (qty > 0),
    limit_price      numeric CHECK (limit_price > 0),
    stop_price       numeric CHECK (stop_price > 0),
    status           text NOT NULL CHECK (status IN ('pending_new', 'new', 'partially_filled',
                         'pending_cancel', 'filled', 'canceled', 'expired', 'rejected')),
    filled_qty       numeric NOT NULL DEFAULT 0 CHECK (filled_qty >= 0),
    filled_avg_price numeric,
    reserved_cash    numeric NOT NULL DEFAULT 0 CHECK (reserved_cash >= 0),
    reserved_qty     numeric NOT NULL DEFAULT 0 CHECK (reserved_qty >= 0),
    reject_reason    text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    submitted_at     timestamptz,
    filled_at        timestamptz,
    canceled_at      timestamptz,
    expired_at       timestamptz,
    triggered        boolean NOT NULL DEFAULT false,
    version          integer NOT NULL,
    CHECK (filled_qty <= qty),
    UNIQUE (account_id, client_order_id)
);
CREATE INDEX orders_user_created ON orders (user_id, created_at DESC, id DESC);
-- The working set (what the trigger index rebuilds from and the sweeper scans), and recent changes
-- (what the index refreshes from).
CREATE INDEX orders_working ON orders (updated_at)
    WHERE status IN ('pending_new', 'new', 'partially_filled', 'pending_cancel');
CREATE INDEX orders_updated ON orders (updated_at);

CREATE TABLE executions (
    id         uuid PRIMARY KEY,  -- unique per fill: a replayed fill cannot be stored twice
    order_id   uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    account_id uuid NOT NULL,
    symbol     text NOT NULL,
    side       text NOT NULL,
    qty        numeric NOT NULL CHECK (qty > 0),
    price      numeric NOT NULL CHECK (price > 0),
    at         timestamptz NOT NULL
);
CREATE INDEX executions_order ON executions (order_id);

CREATE TABLE order_events (
    seq      bigserial PRIMARY KEY,  -- insertion order: one transaction's events share `at`
    id       uuid NOT NULL UNIQUE,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    type     text NOT NULL,
    at       timestamptz NOT NULL,
    body     jsonb NOT NULL  -- the event with the order as it became: the append-only audit trail
);
CREATE INDEX order_events_order ON order_events (order_id, seq);

CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,     -- 'orders' (to RabbitMQ) or 'stream' (to the fan-out engine)
    body       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts   integer NOT NULL DEFAULT 0,
    -- A relay leases rows for a while instead of holding row locks while it publishes; a relay
    -- that dies lets its lease run out and another takes the rows over.
    claimed_until timestamptz,
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

CREATE TABLE idempotency_keys (
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text NOT NULL,
    fingerprint  text NOT NULL,
    status       integer NOT NULL,
    body         bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE watchlists (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    symbols    text[] NOT NULL DEFAULT '{}' CHECK (cardinality(symbols) <= 20),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX watchlists_user ON watchlists (user_id, created_at);
