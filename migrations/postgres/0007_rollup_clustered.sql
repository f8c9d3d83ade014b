-- The totals carried in the rollup's key index: a chart is an index-only
-- scan of one run of the key instead of a visit to each row.
ALTER TABLE pledge_rollup DROP CONSTRAINT pledge_rollup_pkey;
ALTER TABLE pledge_rollup ADD PRIMARY KEY (set_key, partner_code, year_key, kind, measure_key, currency) INCLUDE (total_minor, n);
