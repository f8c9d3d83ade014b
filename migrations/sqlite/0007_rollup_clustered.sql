-- The rollup kept in its key's order (WITHOUT ROWID): a chart reads one
-- contiguous run of the key, totals included, instead of looking up each
-- row in the table by rowid.
CREATE TABLE pledge_rollup_clustered (
    set_key      TEXT NOT NULL,
    partner_code TEXT NOT NULL,
    year_key     INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    measure_key  TEXT NOT NULL,
    currency     TEXT NOT NULL,
    total_minor  INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (set_key, partner_code, year_key, kind, measure_key, currency)
) WITHOUT ROWID;
INSERT INTO pledge_rollup_clustered SELECT set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n FROM pledge_rollup;
DROP TABLE pledge_rollup;
ALTER TABLE pledge_rollup_clustered RENAME TO pledge_rollup;
