-- Price bars (OHLCV) by symbol, timeframe and bucket start, written by the feed (the only
-- writer) and read by market data. docs/market-history.md explains the layout and the retention.
--
-- One partition per timeframe: the churning minute bars (rewritten every second while they form,
-- pruned after 30 days) never share heap pages with the long-lived hourly and daily ones, so a
-- year of daily bars is a few hundred kilobytes, and pruning and vacuum stay in one partition.
-- The primary key (symbol, timeframe, t) is the only index: it serves every range read, in both
-- directions. The retention prune scans the one partition it prunes, once a day; an index on t
-- for it would win the planner over for the reads and make them filter 34 symbols' rows.
-- fillfactor leaves room on each page for the forming bars' updates to stay HOT (no new index
-- entries per update).

CREATE TABLE bars (
    symbol    text NOT NULL,
    timeframe text NOT NULL,
    t         timestamptz NOT NULL,   -- the bucket's start
    o         numeric NOT NULL,
    h         numeric NOT NULL,
    l         numeric NOT NULL,
    c         numeric NOT NULL,
    v         numeric NOT NULL CHECK (v >= 0),
    n         integer NOT NULL CHECK (n >= 0),
    notional  numeric NOT NULL CHECK (notional >= 0),  -- sum of price x size: vw = notional / v
    as_of     timestamptz NOT NULL,   -- the latest trade folded in: which of two writes is kept
    PRIMARY KEY (symbol, timeframe, t),
    CHECK (l > 0 AND l <= o AND l <= c AND h >= o AND h >= c),
    CHECK (as_of >= t)
) PARTITION BY LIST (timeframe);

CREATE TABLE bars_1min PARTITION OF bars FOR VALUES IN ('1Min') WITH (fillfactor = 90);
CREATE TABLE bars_5min PARTITION OF bars FOR VALUES IN ('5Min') WITH (fillfactor = 90);
CREATE TABLE bars_15min PARTITION OF bars FOR VALUES IN ('15Min') WITH (fillfactor = 90);
CREATE TABLE bars_1hour PARTITION OF bars FOR VALUES IN ('1Hour') WITH (fillfactor = 90);
CREATE TABLE bars_1day PARTITION OF bars FOR VALUES IN ('1Day') WITH (fillfactor = 90);
