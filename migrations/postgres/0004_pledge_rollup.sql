-- Pledge totals per partner, pledge year, kind, measure and currency, kept
-- in step by the write path, so charts over everything read a few hundred
-- rows instead of every pledge. -1 and '' stand for an unknown year and measure.
CREATE TABLE pledge_rollup (
    partner_code TEXT COLLATE "C" NOT NULL,
    year_key     BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    measure_key  TEXT NOT NULL,
    currency     TEXT NOT NULL,
    total_minor  BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (partner_code, year_key, kind, measure_key, currency)
);

INSERT INTO pledge_rollup (partner_code, year_key, kind, measure_key, currency, total_minor, n)
SELECT a.partner_code, COALESCE(pl.year_from, -1), pl.kind, COALESCE(pl.measure, ''), pl.currency,
       SUM(pl.amount_minor), COUNT(*)
FROM pledges pl JOIN agreements a ON a.id = pl.agreement_id
GROUP BY a.partner_code, COALESCE(pl.year_from, -1), pl.kind, COALESCE(pl.measure, ''), pl.currency;
