-- Pledge totals per partner and currency, for every combination of pledge
-- year, kind and measure (set_key names the combination: '', 'year',
-- 'kind', 'year,kind', ...). Kept in step by the write path, one partner at a
-- time, so a chart over everything reads a few rows per partner instead of
-- every pledge. A dimension outside the set is '*' (or -2 for the year);
-- -1 and '' stand for an unknown year and measure.
CREATE TABLE pledge_rollup (
    set_key      TEXT NOT NULL,
    partner_code TEXT COLLATE "C" NOT NULL,
    year_key     BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    measure_key  TEXT NOT NULL,
    currency     TEXT NOT NULL,
    total_minor  BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (set_key, partner_code, year_key, kind, measure_key, currency)
);
