-- What the agreements say, not only what they sum to: a pledge's basis
-- (a total, or an amount for every year of its range), the pledge it is a
-- part of (never counted with its whole), markers on contested or unverified
-- fields, the structured place of signing, and sources stored once per
-- agreement and linked to every fact they support.
ALTER TABLE agreements ADD COLUMN signed_place JSONB;
ALTER TABLE agreements ADD COLUMN markers JSONB NOT NULL DEFAULT '{}';

ALTER TABLE pledges ADD COLUMN basis TEXT NOT NULL DEFAULT 'total';
ALTER TABLE pledges ADD COLUMN part_of TEXT;
ALTER TABLE pledges ADD COLUMN markers JSONB NOT NULL DEFAULT '{}';
-- What totals count: the amount, times its years for a per-year pledge;
-- parts are left out of totals altogether (part_of IS NULL).
ALTER TABLE pledges ADD COLUMN counted_minor BIGINT NOT NULL DEFAULT 0;
-- The years a per-year pledge counts for; 0 for a total.
ALTER TABLE pledges ADD COLUMN years_counted BIGINT NOT NULL DEFAULT 0;
UPDATE pledges SET counted_minor = amount_minor;
CREATE INDEX pledges_part_of ON pledges (part_of);

ALTER TABLE sources ADD COLUMN pledge_ids JSONB NOT NULL DEFAULT '[]';
ALTER TABLE sources ADD COLUMN fields JSONB NOT NULL DEFAULT '[]';
UPDATE sources SET pledge_ids = jsonb_build_array(pledge_id) WHERE pledge_id IS NOT NULL;

-- One source per URL per agreement: the first (by position) is kept, takes
-- the pledges of the others, and the others' ids lead to it from now on.
CREATE TABLE source_aliases (
    alias     TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE
);
INSERT INTO source_aliases (alias, source_id)
SELECT s.id, k.id FROM sources s JOIN sources k
  ON k.agreement_id = s.agreement_id AND k.url = s.url
 AND k.position = (SELECT MIN(m.position) FROM sources m WHERE m.agreement_id = s.agreement_id AND m.url = s.url)
WHERE s.id <> k.id;
UPDATE sources SET pledge_ids = (
    SELECT COALESCE(jsonb_agg(DISTINCT p.value), '[]'::jsonb) FROM (
        SELECT j.value FROM sources d, jsonb_array_elements(d.pledge_ids) j
        WHERE d.id = sources.id OR d.id IN (SELECT alias FROM source_aliases WHERE source_id = sources.id)
    ) p
) WHERE id IN (SELECT source_id FROM source_aliases);
DELETE FROM sources WHERE id IN (SELECT alias FROM source_aliases);
CREATE UNIQUE INDEX sources_agreement_url ON sources (agreement_id, url);
UPDATE sources SET pledge_id = NULL;

-- The rollup counts what totals count, and the years of per-year pledges;
-- emptied here, it is rebuilt at the next start.
ALTER TABLE pledge_rollup ADD COLUMN years BIGINT NOT NULL DEFAULT 0;
ALTER TABLE pledge_rollup DROP CONSTRAINT pledge_rollup_pkey;
ALTER TABLE pledge_rollup ADD PRIMARY KEY (set_key, partner_code, year_key, kind, measure_key, currency) INCLUDE (total_minor, n, years);
DELETE FROM pledge_rollup;
