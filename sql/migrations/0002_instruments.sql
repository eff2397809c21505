-- Tradable instruments. Rows come from hub/sql/seed/instruments.csv, loaded by `hub migrate`.

CREATE TABLE instruments (
    symbol     text PRIMARY KEY CHECK (symbol ~ '^[A-Z0-9.\-]{1,15}$'),
    name       text NOT NULL,
    category   text NOT NULL CHECK (category IN ('stock', 'etf', 'crypto')),
    currency   char(3) NOT NULL,
    tick_size  numeric NOT NULL CHECK (tick_size > 0),
    lot_size   numeric NOT NULL CHECK (lot_size > 0),
    tradable   boolean NOT NULL DEFAULT true
);

CREATE INDEX instruments_name_search ON instruments (lower(name) text_pattern_ops);
