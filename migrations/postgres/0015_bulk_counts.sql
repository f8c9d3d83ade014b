-- Inserts count from the rows they inserted, joined outward from the
-- statement's transition table. The functions of 0011 went through the
-- rollup views and asked for the inserted keys with IN: PostgreSQL cannot
-- push such a condition through a view's UNION ALL, so every statement of a
-- bulk load read every agreement and area link (a load slowed with the
-- store: 100,000 agreements took over an hour), and the estimates of that
-- plan turned on JIT compilation, another 0.8 s per statement. The counts
-- are the same; tests/api/scale.rs recounts after a bulk load.

CREATE OR REPLACE FUNCTION agreements_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agreement_rollup AS r (set_key, area_code, partner_code, year_key, status, kind, binding_key, n)
    SELECT s.set_key, '*',
           CASE WHEN s.has_partner THEN a.partner_code ELSE '*' END,
           CASE WHEN s.has_year THEN COALESCE(CAST(EXTRACT(YEAR FROM a.signed_on) AS BIGINT), -1) ELSE -2 END,
           CASE WHEN s.has_status THEN a.status ELSE '*' END,
           CASE WHEN s.has_kind THEN a.kind ELSE '*' END,
           CASE WHEN NOT s.has_binding THEN -2 WHEN a.legally_binding IS NULL THEN -1 WHEN a.legally_binding THEN 1 ELSE 0 END,
           COUNT(*)
    FROM added a CROSS JOIN agreement_rollup_sets s WHERE NOT s.has_area
    GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = r.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION area_links_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agreement_rollup AS r (set_key, area_code, partner_code, year_key, status, kind, binding_key, n)
    SELECT s.set_key, l.area_code,
           CASE WHEN s.has_partner THEN a.partner_code ELSE '*' END,
           CASE WHEN s.has_year THEN COALESCE(CAST(EXTRACT(YEAR FROM a.signed_on) AS BIGINT), -1) ELSE -2 END,
           CASE WHEN s.has_status THEN a.status ELSE '*' END,
           CASE WHEN s.has_kind THEN a.kind ELSE '*' END,
           CASE WHEN NOT s.has_binding THEN -2 WHEN a.legally_binding IS NULL THEN -1 WHEN a.legally_binding THEN 1 ELSE 0 END,
           COUNT(*)
    FROM added l JOIN agreements a ON a.id = l.agreement_id CROSS JOIN agreement_rollup_sets s WHERE s.has_area
    GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = r.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION pledges_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pledge_rollup AS r (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT s.set_key, a.partner_code,
           CASE WHEN s.has_year THEN COALESCE(pl.year_from, -1) ELSE -2 END,
           CASE WHEN s.has_kind THEN pl.kind ELSE '*' END,
           CASE WHEN s.has_measure THEN COALESCE(pl.measure, '') ELSE '*' END,
           pl.currency,
           CAST(SUM(pl.counted_minor) AS BIGINT), COUNT(*), CAST(SUM(pl.years_counted) AS BIGINT)
    FROM added pl JOIN agreements a ON a.id = pl.agreement_id CROSS JOIN pledge_rollup_sets s
    WHERE pl.part_of IS NULL
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION pledges_area_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pledge_area_rollup AS r (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT s.set_key, l.area_code, a.partner_code,
           CASE WHEN s.has_year THEN COALESCE(pl.year_from, -1) ELSE -2 END,
           CASE WHEN s.has_kind THEN pl.kind ELSE '*' END,
           CASE WHEN s.has_measure THEN COALESCE(pl.measure, '') ELSE '*' END,
           pl.currency,
           CAST(SUM(pl.counted_minor) AS BIGINT), COUNT(*), CAST(SUM(pl.years_counted) AS BIGINT)
    FROM added pl JOIN agreements a ON a.id = pl.agreement_id JOIN agreement_areas l ON l.agreement_id = pl.agreement_id
         CROSS JOIN pledge_rollup_sets s
    WHERE pl.part_of IS NULL AND CAST(s.has_year AS INT) + CAST(s.has_kind AS INT) + CAST(s.has_measure AS INT) <= 1
    GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION area_links_pledges_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pledge_area_rollup AS r (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT s.set_key, l.area_code, a.partner_code,
           CASE WHEN s.has_year THEN COALESCE(pl.year_from, -1) ELSE -2 END,
           CASE WHEN s.has_kind THEN pl.kind ELSE '*' END,
           CASE WHEN s.has_measure THEN COALESCE(pl.measure, '') ELSE '*' END,
           pl.currency,
           CAST(SUM(pl.counted_minor) AS BIGINT), COUNT(*), CAST(SUM(pl.years_counted) AS BIGINT)
    FROM added l JOIN pledges pl ON pl.agreement_id = l.agreement_id JOIN agreements a ON a.id = l.agreement_id
         CROSS JOIN pledge_rollup_sets s
    WHERE pl.part_of IS NULL AND CAST(s.has_year AS INT) + CAST(s.has_kind AS INT) + CAST(s.has_measure AS INT) <= 1
    GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    RETURN NULL;
END $$;
