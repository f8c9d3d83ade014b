-- Pledge totals under a condition on their agreement: its year of signing,
-- status, kind or legal nature (one of them, or all four at once), beside
-- each set of the pledge rollup (0004, 0011). A statistic of pledges with
-- `status=`, `kind=`, `legally_binding=` or whole years of signing read every
-- matching pledge and its agreement (100-250 ms at 100,000 agreements);
-- these sets answer it from rows whose number grows with the groups. Kept
-- by triggers in the writing transaction, like the other rollups. A
-- dimension outside the set holds '*' (-2 for the years and legal nature);
-- -1 stands for an unknown year or legal nature, '' for an unknown measure.
CREATE TABLE pledge_condition_sets (
    set_key            TEXT PRIMARY KEY,
    has_year           BOOLEAN NOT NULL,
    has_kind           BOOLEAN NOT NULL,
    has_measure        BOOLEAN NOT NULL,
    has_signed         BOOLEAN NOT NULL,
    has_status         BOOLEAN NOT NULL,
    has_agreement_kind BOOLEAN NOT NULL,
    has_binding        BOOLEAN NOT NULL
);
-- Each pledge set with each one agreement condition; the sets without a
-- pledge dimension and with the pledge kind also with all four at once.
INSERT INTO pledge_condition_sets
SELECT p.set_key || '|' || c.name, p.has_year, p.has_kind, p.has_measure,
       c.has_signed, c.has_status, c.has_agreement_kind, c.has_binding
FROM pledge_rollup_sets p CROSS JOIN (VALUES
    ('signed', TRUE, FALSE, FALSE, FALSE),
    ('status', FALSE, TRUE, FALSE, FALSE),
    ('kind', FALSE, FALSE, TRUE, FALSE),
    ('binding', FALSE, FALSE, FALSE, TRUE),
    ('signed,status,kind,binding', TRUE, TRUE, TRUE, TRUE)
) AS c (name, has_signed, has_status, has_agreement_kind, has_binding)
WHERE c.name <> 'signed,status,kind,binding' OR p.set_key IN ('', 'kind');

CREATE TABLE pledge_condition_rollup (
    set_key        TEXT NOT NULL,
    partner_code   TEXT COLLATE "C" NOT NULL,
    year_key       BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    measure_key    TEXT NOT NULL,
    currency       TEXT NOT NULL,
    signed_key     BIGINT NOT NULL,
    status         TEXT NOT NULL,
    agreement_kind TEXT NOT NULL,
    binding_key    BIGINT NOT NULL,
    total_minor    BIGINT NOT NULL,
    n              BIGINT NOT NULL,
    years          BIGINT NOT NULL,
    PRIMARY KEY (set_key, partner_code, year_key, kind, measure_key, currency,
                 signed_key, status, agreement_kind, binding_key) INCLUDE (total_minor, n, years)
);

-- Every counted pledge's keys in every set (parts are never counted).
CREATE VIEW pledge_condition_keys AS
SELECT pl.id AS pledge_id, pl.agreement_id, s.set_key, a.partner_code,
       CASE WHEN s.has_year THEN COALESCE(pl.year_from, -1) ELSE -2 END AS year_key,
       CASE WHEN s.has_kind THEN pl.kind ELSE '*' END AS kind,
       CASE WHEN s.has_measure THEN COALESCE(pl.measure, '') ELSE '*' END AS measure_key,
       pl.currency,
       CASE WHEN s.has_signed THEN COALESCE(CAST(EXTRACT(YEAR FROM a.signed_on) AS BIGINT), -1) ELSE -2 END AS signed_key,
       CASE WHEN s.has_status THEN a.status ELSE '*' END AS status,
       CASE WHEN s.has_agreement_kind THEN a.kind ELSE '*' END AS agreement_kind,
       CASE WHEN NOT s.has_binding THEN -2 WHEN a.legally_binding IS NULL THEN -1 WHEN a.legally_binding THEN 1 ELSE 0 END
           AS binding_key,
       pl.counted_minor, pl.years_counted
FROM pledges pl JOIN agreements a ON a.id = pl.agreement_id CROSS JOIN pledge_condition_sets s
WHERE pl.part_of IS NULL;

INSERT INTO pledge_condition_rollup
SELECT set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key,
       CAST(SUM(counted_minor) AS BIGINT), COUNT(*), CAST(SUM(years_counted) AS BIGINT)
FROM pledge_condition_keys GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;

-- Adds (sign 1) or takes away (-1) the keys of every pledge of an agreement,
-- or of one pledge. Ordered, so writers lock rows in one order.
CREATE FUNCTION pledge_condition_add(p_agreement TEXT, p_pledge TEXT, p_sign BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_pledge IS NULL THEN
        INSERT INTO pledge_condition_rollup AS r
        SELECT k.set_key, k.partner_code, k.year_key, k.kind, k.measure_key, k.currency,
               k.signed_key, k.status, k.agreement_kind, k.binding_key,
               CAST(p_sign * SUM(k.counted_minor) AS BIGINT), p_sign * COUNT(*), CAST(p_sign * SUM(k.years_counted) AS BIGINT)
        FROM pledge_condition_keys k WHERE k.agreement_id = p_agreement
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
        ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key)
        DO UPDATE SET total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    ELSE
        INSERT INTO pledge_condition_rollup AS r
        SELECT k.set_key, k.partner_code, k.year_key, k.kind, k.measure_key, k.currency,
               k.signed_key, k.status, k.agreement_kind, k.binding_key,
               CAST(p_sign * SUM(k.counted_minor) AS BIGINT), p_sign * COUNT(*), CAST(p_sign * SUM(k.years_counted) AS BIGINT)
        FROM pledge_condition_keys k WHERE k.pledge_id = p_pledge
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
        ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key)
        DO UPDATE SET total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    END IF;
END $$;

-- Inserts count once per statement, joined outward from the rows inserted
-- (a bulk load inserts hundreds at once; see 0015); changes and deletions
-- once per row. A deleted agreement takes its pledges' keys with it before
-- it goes; their cascade then finds no agreement and changes nothing.
CREATE FUNCTION pledges_condition_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pledge_condition_rollup AS r
    SELECT s.set_key, a.partner_code,
           CASE WHEN s.has_year THEN COALESCE(pl.year_from, -1) ELSE -2 END,
           CASE WHEN s.has_kind THEN pl.kind ELSE '*' END,
           CASE WHEN s.has_measure THEN COALESCE(pl.measure, '') ELSE '*' END,
           pl.currency,
           CASE WHEN s.has_signed THEN COALESCE(CAST(EXTRACT(YEAR FROM a.signed_on) AS BIGINT), -1) ELSE -2 END,
           CASE WHEN s.has_status THEN a.status ELSE '*' END,
           CASE WHEN s.has_agreement_kind THEN a.kind ELSE '*' END,
           CASE WHEN NOT s.has_binding THEN -2 WHEN a.legally_binding IS NULL THEN -1 WHEN a.legally_binding THEN 1 ELSE 0 END,
           CAST(SUM(pl.counted_minor) AS BIGINT), COUNT(*), CAST(SUM(pl.years_counted) AS BIGINT)
    FROM added pl JOIN agreements a ON a.id = pl.agreement_id CROSS JOIN pledge_condition_sets s
    WHERE pl.part_of IS NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key)
    DO UPDATE SET total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    RETURN NULL;
END $$;
CREATE TRIGGER pledges_condition_counted AFTER INSERT ON pledges REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION pledges_condition_counted();

CREATE FUNCTION pledge_condition_recounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_WHEN = 'AFTER' THEN
        PERFORM pledge_condition_add(NULL, NEW.id, 1);
        RETURN NEW;
    END IF;
    PERFORM pledge_condition_add(NULL, OLD.id, -1);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER pledge_condition_uncounted BEFORE DELETE ON pledges
    FOR EACH ROW EXECUTE FUNCTION pledge_condition_recounted();
CREATE TRIGGER pledge_condition_before_recount
    BEFORE UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges
    FOR EACH ROW EXECUTE FUNCTION pledge_condition_recounted();
CREATE TRIGGER pledge_condition_after_recount
    AFTER UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges
    FOR EACH ROW EXECUTE FUNCTION pledge_condition_recounted();

CREATE FUNCTION agreement_pledges_recounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pledge_condition_add(OLD.id, NULL, -1);
        RETURN OLD;
    ELSIF TG_WHEN = 'BEFORE' THEN
        PERFORM pledge_condition_add(OLD.id, NULL, -1);
        RETURN NEW;
    ELSE
        PERFORM pledge_condition_add(NEW.id, NULL, 1);
        RETURN NEW;
    END IF;
END $$;
CREATE TRIGGER agreement_pledges_uncounted BEFORE DELETE ON agreements
    FOR EACH ROW EXECUTE FUNCTION agreement_pledges_recounted();
CREATE TRIGGER agreement_pledges_before_recount BEFORE UPDATE OF partner_code, signed_on, status, kind, legally_binding ON agreements
    FOR EACH ROW WHEN (OLD.partner_code IS DISTINCT FROM NEW.partner_code OR OLD.signed_on IS DISTINCT FROM NEW.signed_on
        OR OLD.status IS DISTINCT FROM NEW.status OR OLD.kind IS DISTINCT FROM NEW.kind
        OR OLD.legally_binding IS DISTINCT FROM NEW.legally_binding)
    EXECUTE FUNCTION agreement_pledges_recounted();
CREATE TRIGGER agreement_pledges_after_recount AFTER UPDATE OF partner_code, signed_on, status, kind, legally_binding ON agreements
    FOR EACH ROW WHEN (OLD.partner_code IS DISTINCT FROM NEW.partner_code OR OLD.signed_on IS DISTINCT FROM NEW.signed_on
        OR OLD.status IS DISTINCT FROM NEW.status OR OLD.kind IS DISTINCT FROM NEW.kind
        OR OLD.legally_binding IS DISTINCT FROM NEW.legally_binding)
    EXECUTE FUNCTION agreement_pledges_recounted();
