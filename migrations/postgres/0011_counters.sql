-- Counts and totals kept in step by triggers, in the transaction of every
-- write (create, update, delete, import, restore, child writes, bulk load),
-- so a read costs the number of groups, never the number of rows.

-- Agreement counts for each set of dimensions a count or a grouping can
-- ask for at once (set_key names them, like the pledge rollup's): none, each
-- one, each pair, all five but the area, and an area with each other one.
-- A dimension outside the set holds '*' (-2 for the year and legal nature); -1 stands for an unknown
-- year or legal nature (binding_key: 1 binding, 0 not). With an area in the
-- set, a row counts area links, which is agreements per area. Rows whose
-- count fell to 0 stay; readers skip them. The count rides in the key's
-- index, so a reader scans the index only.
CREATE TABLE agreement_rollup (
    set_key      TEXT COLLATE "C" NOT NULL,
    area_code    TEXT COLLATE "C" NOT NULL,
    partner_code TEXT COLLATE "C" NOT NULL,
    year_key     BIGINT NOT NULL,
    status       TEXT COLLATE "C" NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    binding_key  BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (set_key, area_code, partner_code, year_key, status, kind, binding_key) INCLUDE (n)
);

CREATE TABLE agreement_rollup_sets (
    set_key     TEXT COLLATE "C" PRIMARY KEY,
    has_area    BOOLEAN NOT NULL,
    has_partner BOOLEAN NOT NULL,
    has_year    BOOLEAN NOT NULL,
    has_status  BOOLEAN NOT NULL,
    has_kind    BOOLEAN NOT NULL,
    has_binding BOOLEAN NOT NULL
);
INSERT INTO agreement_rollup_sets VALUES
    ('', false, false, false, false, false, false),
    ('partner', false, true, false, false, false, false), ('year', false, false, true, false, false, false),
    ('status', false, false, false, true, false, false), ('kind', false, false, false, false, true, false),
    ('binding', false, false, false, false, false, true),
    ('partner,year', false, true, true, false, false, false), ('partner,status', false, true, false, true, false, false),
    ('partner,kind', false, true, false, false, true, false), ('partner,binding', false, true, false, false, false, true),
    ('year,status', false, false, true, true, false, false), ('year,kind', false, false, true, false, true, false),
    ('year,binding', false, false, true, false, false, true), ('status,kind', false, false, false, true, true, false),
    ('status,binding', false, false, false, true, false, true), ('kind,binding', false, false, false, false, true, true),
    ('partner,year,status,kind,binding', false, true, true, true, true, true),
    ('area', true, false, false, false, false, false), ('area,partner', true, true, false, false, false, false),
    ('area,year', true, false, true, false, false, false), ('area,status', true, false, false, true, false, false),
    ('area,kind', true, false, false, false, true, false), ('area,binding', true, false, false, false, false, true);

-- The rollup keys of every agreement (area '*') and of every area link.
CREATE VIEW agreement_rollup_keys AS
SELECT a.id AS agreement_id, s.set_key, '*' COLLATE "C" AS area_code,
       CASE WHEN s.has_partner THEN a.partner_code ELSE '*' END AS partner_code,
       CASE WHEN s.has_year THEN COALESCE(CAST(EXTRACT(YEAR FROM a.signed_on) AS BIGINT), -1) ELSE -2 END AS year_key,
       CASE WHEN s.has_status THEN a.status ELSE '*' END AS status,
       CASE WHEN s.has_kind THEN a.kind ELSE '*' END AS kind,
       CASE WHEN NOT s.has_binding THEN -2 WHEN a.legally_binding IS NULL THEN -1 WHEN a.legally_binding THEN 1 ELSE 0 END AS binding_key
FROM agreements a CROSS JOIN agreement_rollup_sets s WHERE NOT s.has_area
UNION ALL
SELECT a.id, s.set_key, l.area_code,
       CASE WHEN s.has_partner THEN a.partner_code ELSE '*' END,
       CASE WHEN s.has_year THEN COALESCE(CAST(EXTRACT(YEAR FROM a.signed_on) AS BIGINT), -1) ELSE -2 END,
       CASE WHEN s.has_status THEN a.status ELSE '*' END,
       CASE WHEN s.has_kind THEN a.kind ELSE '*' END,
       CASE WHEN NOT s.has_binding THEN -2 WHEN a.legally_binding IS NULL THEN -1 WHEN a.legally_binding THEN 1 ELSE 0 END
FROM agreement_areas l JOIN agreements a ON a.id = l.agreement_id CROSS JOIN agreement_rollup_sets s WHERE s.has_area;

INSERT INTO agreement_rollup
SELECT set_key, area_code, partner_code, year_key, status, kind, binding_key, COUNT(*)
FROM agreement_rollup_keys GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- The pledge rollup's sets (see 0004) as rows, and every pledge's keys in
-- them: parts are never counted (part_of IS NULL), like the totals.
CREATE TABLE pledge_rollup_sets (
    set_key     TEXT PRIMARY KEY,
    has_year    BOOLEAN NOT NULL,
    has_kind    BOOLEAN NOT NULL,
    has_measure BOOLEAN NOT NULL
);
INSERT INTO pledge_rollup_sets VALUES
    ('', false, false, false), ('year', true, false, false), ('kind', false, true, false), ('measure', false, false, true),
    ('year,kind', true, true, false), ('year,measure', true, false, true), ('kind,measure', false, true, true),
    ('year,kind,measure', true, true, true);

CREATE VIEW pledge_rollup_keys AS
SELECT pl.id AS pledge_id, pl.agreement_id, s.set_key, a.partner_code,
       CASE WHEN s.has_year THEN COALESCE(pl.year_from, -1) ELSE -2 END AS year_key,
       CASE WHEN s.has_kind THEN pl.kind ELSE '*' END AS kind,
       CASE WHEN s.has_measure THEN COALESCE(pl.measure, '') ELSE '*' END AS measure_key,
       pl.currency, pl.counted_minor, pl.years_counted
FROM pledges pl JOIN agreements a ON a.id = pl.agreement_id CROSS JOIN pledge_rollup_sets s
WHERE pl.part_of IS NULL;

-- Rebuilt from the pledges, so the deltas below start from the truth.
DELETE FROM pledge_rollup;
INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
SELECT set_key, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
FROM pledge_rollup_keys GROUP BY 1, 2, 3, 4, 5, 6;

-- Adds (sign 1) or takes away (-1) the keys of one agreement and its links,
-- or of one of its links (area). PL/pgSQL keeps each statement's plan for the
-- session. Ordered, so writers lock rows in one order.
CREATE FUNCTION agreement_rollup_add(p_agreement TEXT, p_area TEXT, p_sign BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agreement_rollup AS r (set_key, area_code, partner_code, year_key, status, kind, binding_key, n)
    SELECT k.set_key, k.area_code, k.partner_code, k.year_key, k.status, k.kind, k.binding_key, p_sign * COUNT(*)
    FROM agreement_rollup_keys k WHERE k.agreement_id = p_agreement AND (p_area IS NULL OR k.area_code = p_area)
    GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = r.n + EXCLUDED.n;
END $$;

-- The same for the pledge rollup: every pledge of an agreement, or one pledge.
CREATE FUNCTION pledge_rollup_add(p_agreement TEXT, p_pledge TEXT, p_sign BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_pledge IS NULL THEN
        INSERT INTO pledge_rollup AS r (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
        SELECT k.set_key, k.partner_code, k.year_key, k.kind, k.measure_key, k.currency,
               CAST(p_sign * SUM(k.counted_minor) AS BIGINT), p_sign * COUNT(*), CAST(p_sign * SUM(k.years_counted) AS BIGINT)
        FROM pledge_rollup_keys k WHERE k.agreement_id = p_agreement
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
            total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    ELSE
        INSERT INTO pledge_rollup AS r (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
        SELECT k.set_key, k.partner_code, k.year_key, k.kind, k.measure_key, k.currency,
               CAST(p_sign * SUM(k.counted_minor) AS BIGINT), p_sign * COUNT(*), CAST(p_sign * SUM(k.years_counted) AS BIGINT)
        FROM pledge_rollup_keys k WHERE k.pledge_id = p_pledge
        GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
            total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    END IF;
END $$;

-- Inserts count once per statement, from the rows it inserted (a bulk load
-- inserts hundreds at a time); changes and deletions once per row. A
-- deleted agreement takes its links and pledges with it before it goes;
-- their cascade then finds no agreement and changes nothing.
CREATE FUNCTION agreements_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agreement_rollup AS r (set_key, area_code, partner_code, year_key, status, kind, binding_key, n)
    SELECT k.set_key, k.area_code, k.partner_code, k.year_key, k.status, k.kind, k.binding_key, COUNT(*)
    FROM agreement_rollup_keys k WHERE k.agreement_id IN (SELECT id FROM added) AND k.area_code = '*'
    GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = r.n + EXCLUDED.n;
    RETURN NULL;
END $$;
CREATE TRIGGER agreements_counted AFTER INSERT ON agreements REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION agreements_counted();

CREATE FUNCTION area_links_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO agreement_rollup AS r (set_key, area_code, partner_code, year_key, status, kind, binding_key, n)
    SELECT k.set_key, k.area_code, k.partner_code, k.year_key, k.status, k.kind, k.binding_key, COUNT(*)
    FROM agreement_rollup_keys k WHERE (k.agreement_id, k.area_code) IN (SELECT agreement_id, area_code FROM added)
    GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = r.n + EXCLUDED.n;
    RETURN NULL;
END $$;
CREATE TRIGGER area_links_counted AFTER INSERT ON agreement_areas REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION area_links_counted();

CREATE FUNCTION pledges_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pledge_rollup AS r (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT k.set_key, k.partner_code, k.year_key, k.kind, k.measure_key, k.currency,
           CAST(SUM(k.counted_minor) AS BIGINT), COUNT(*), CAST(SUM(k.years_counted) AS BIGINT)
    FROM pledge_rollup_keys k WHERE k.pledge_id IN (SELECT id FROM added)
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    RETURN NULL;
END $$;
CREATE TRIGGER pledges_counted AFTER INSERT ON pledges REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION pledges_counted();

CREATE FUNCTION agreement_recounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM agreement_rollup_add(OLD.id, NULL, -1);
        PERFORM pledge_rollup_add(OLD.id, NULL, -1);
        RETURN OLD;
    ELSIF TG_WHEN = 'BEFORE' THEN
        PERFORM agreement_rollup_add(OLD.id, NULL, -1);
        IF OLD.partner_code IS DISTINCT FROM NEW.partner_code THEN
            PERFORM pledge_rollup_add(OLD.id, NULL, -1);
        END IF;
        RETURN NEW;
    ELSE
        PERFORM agreement_rollup_add(NEW.id, NULL, 1);
        IF OLD.partner_code IS DISTINCT FROM NEW.partner_code THEN
            PERFORM pledge_rollup_add(NEW.id, NULL, 1);
        END IF;
        RETURN NEW;
    END IF;
END $$;
CREATE TRIGGER agreement_uncounted BEFORE DELETE ON agreements FOR EACH ROW EXECUTE FUNCTION agreement_recounted();
CREATE TRIGGER agreement_before_recount BEFORE UPDATE OF partner_code, signed_on, status, kind, legally_binding ON agreements
    FOR EACH ROW WHEN (OLD.partner_code IS DISTINCT FROM NEW.partner_code OR OLD.signed_on IS DISTINCT FROM NEW.signed_on
        OR OLD.status IS DISTINCT FROM NEW.status OR OLD.kind IS DISTINCT FROM NEW.kind
        OR OLD.legally_binding IS DISTINCT FROM NEW.legally_binding)
    EXECUTE FUNCTION agreement_recounted();
CREATE TRIGGER agreement_after_recount AFTER UPDATE OF partner_code, signed_on, status, kind, legally_binding ON agreements
    FOR EACH ROW WHEN (OLD.partner_code IS DISTINCT FROM NEW.partner_code OR OLD.signed_on IS DISTINCT FROM NEW.signed_on
        OR OLD.status IS DISTINCT FROM NEW.status OR OLD.kind IS DISTINCT FROM NEW.kind
        OR OLD.legally_binding IS DISTINCT FROM NEW.legally_binding)
    EXECUTE FUNCTION agreement_recounted();

CREATE FUNCTION area_link_recounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_WHEN = 'AFTER' THEN
        PERFORM agreement_rollup_add(NEW.agreement_id, NEW.area_code, 1);
        RETURN NEW;
    END IF;
    PERFORM agreement_rollup_add(OLD.agreement_id, OLD.area_code, -1);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER area_link_uncounted BEFORE DELETE ON agreement_areas FOR EACH ROW EXECUTE FUNCTION area_link_recounted();
CREATE TRIGGER area_link_before_move BEFORE UPDATE OF agreement_id, area_code ON agreement_areas
    FOR EACH ROW EXECUTE FUNCTION area_link_recounted();
CREATE TRIGGER area_link_after_move AFTER UPDATE OF agreement_id, area_code ON agreement_areas
    FOR EACH ROW EXECUTE FUNCTION area_link_recounted();

CREATE FUNCTION pledge_recounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_WHEN = 'AFTER' THEN
        PERFORM pledge_rollup_add(NULL, NEW.id, 1);
        RETURN NEW;
    END IF;
    PERFORM pledge_rollup_add(NULL, OLD.id, -1);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER pledge_uncounted BEFORE DELETE ON pledges FOR EACH ROW EXECUTE FUNCTION pledge_recounted();
CREATE TRIGGER pledge_before_recount
    BEFORE UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges
    FOR EACH ROW EXECUTE FUNCTION pledge_recounted();
CREATE TRIGGER pledge_after_recount
    AFTER UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges
    FOR EACH ROW EXECUTE FUNCTION pledge_recounted();

-- Pledge totals by area, for the area alone and with one of year, kind or
-- measure (the partner always in the key, as in the pledge rollup): a pledge
-- counts once under each area of its agreement.
CREATE TABLE pledge_area_rollup (
    set_key      TEXT NOT NULL,
    area_code    TEXT COLLATE "C" NOT NULL,
    partner_code TEXT COLLATE "C" NOT NULL,
    year_key     BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    measure_key  TEXT NOT NULL,
    currency     TEXT NOT NULL,
    total_minor  BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    years        BIGINT NOT NULL,
    PRIMARY KEY (set_key, area_code, partner_code, year_key, kind, measure_key, currency) INCLUDE (total_minor, n, years)
);

CREATE VIEW pledge_area_rollup_keys AS
SELECT pl.id AS pledge_id, pl.agreement_id, s.set_key, l.area_code, a.partner_code,
       CASE WHEN s.has_year THEN COALESCE(pl.year_from, -1) ELSE -2 END AS year_key,
       CASE WHEN s.has_kind THEN pl.kind ELSE '*' END AS kind,
       CASE WHEN s.has_measure THEN COALESCE(pl.measure, '') ELSE '*' END AS measure_key,
       pl.currency, pl.counted_minor, pl.years_counted
FROM pledges pl JOIN agreements a ON a.id = pl.agreement_id JOIN agreement_areas l ON l.agreement_id = pl.agreement_id
     CROSS JOIN pledge_rollup_sets s
WHERE pl.part_of IS NULL AND CAST(s.has_year AS INT) + CAST(s.has_kind AS INT) + CAST(s.has_measure AS INT) <= 1;

INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
FROM pledge_area_rollup_keys GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- Adds (sign 1) or takes away (-1) the area totals of one pledge, of an
-- agreement's pledges under one of its areas, or of all its pledges.
CREATE FUNCTION pledge_area_rollup_add(p_agreement TEXT, p_area TEXT, p_pledge TEXT, p_sign BIGINT)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_pledge IS NOT NULL THEN
        INSERT INTO pledge_area_rollup AS r (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
        SELECT k.set_key, k.area_code, k.partner_code, k.year_key, k.kind, k.measure_key, k.currency,
               CAST(p_sign * SUM(k.counted_minor) AS BIGINT), p_sign * COUNT(*), CAST(p_sign * SUM(k.years_counted) AS BIGINT)
        FROM pledge_area_rollup_keys k WHERE k.pledge_id = p_pledge
        GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
            total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    ELSIF p_area IS NOT NULL THEN
        INSERT INTO pledge_area_rollup AS r (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
        SELECT k.set_key, k.area_code, k.partner_code, k.year_key, k.kind, k.measure_key, k.currency,
               CAST(p_sign * SUM(k.counted_minor) AS BIGINT), p_sign * COUNT(*), CAST(p_sign * SUM(k.years_counted) AS BIGINT)
        FROM pledge_area_rollup_keys k WHERE k.agreement_id = p_agreement AND k.area_code = p_area
        GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
            total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    ELSE
        INSERT INTO pledge_area_rollup AS r (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
        SELECT k.set_key, k.area_code, k.partner_code, k.year_key, k.kind, k.measure_key, k.currency,
               CAST(p_sign * SUM(k.counted_minor) AS BIGINT), p_sign * COUNT(*), CAST(p_sign * SUM(k.years_counted) AS BIGINT)
        FROM pledge_area_rollup_keys k WHERE k.agreement_id = p_agreement
        GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
            total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    END IF;
END $$;

CREATE FUNCTION pledges_area_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pledge_area_rollup AS r (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
        SELECT k.set_key, k.area_code, k.partner_code, k.year_key, k.kind, k.measure_key, k.currency,
               CAST(SUM(k.counted_minor) AS BIGINT), COUNT(*), CAST(SUM(k.years_counted) AS BIGINT)
        FROM pledge_area_rollup_keys k WHERE k.pledge_id IN (SELECT id FROM added)
        GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
            total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    RETURN NULL;
END $$;
CREATE TRIGGER pledges_area_counted AFTER INSERT ON pledges REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION pledges_area_counted();

CREATE FUNCTION area_links_pledges_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pledge_area_rollup AS r (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
        SELECT k.set_key, k.area_code, k.partner_code, k.year_key, k.kind, k.measure_key, k.currency,
               CAST(SUM(k.counted_minor) AS BIGINT), COUNT(*), CAST(SUM(k.years_counted) AS BIGINT)
        FROM pledge_area_rollup_keys k WHERE (k.agreement_id, k.area_code) IN (SELECT agreement_id, area_code FROM added)
        GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
            total_minor = r.total_minor + EXCLUDED.total_minor, n = r.n + EXCLUDED.n, years = r.years + EXCLUDED.years;
    RETURN NULL;
END $$;
CREATE TRIGGER area_links_pledges_counted AFTER INSERT ON agreement_areas REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION area_links_pledges_counted();

CREATE FUNCTION pledge_area_recounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_WHEN = 'AFTER' THEN
        PERFORM pledge_area_rollup_add(NULL, NULL, NEW.id, 1);
        RETURN NEW;
    END IF;
    PERFORM pledge_area_rollup_add(NULL, NULL, OLD.id, -1);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER pledge_area_uncounted BEFORE DELETE ON pledges FOR EACH ROW EXECUTE FUNCTION pledge_area_recounted();
CREATE TRIGGER pledge_area_before_recount BEFORE UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges
    FOR EACH ROW EXECUTE FUNCTION pledge_area_recounted();
CREATE TRIGGER pledge_area_after_recount AFTER UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges
    FOR EACH ROW EXECUTE FUNCTION pledge_area_recounted();

CREATE FUNCTION area_link_pledges_recounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_WHEN = 'AFTER' THEN
        PERFORM pledge_area_rollup_add(NEW.agreement_id, NEW.area_code, NULL, 1);
        RETURN NEW;
    END IF;
    PERFORM pledge_area_rollup_add(OLD.agreement_id, OLD.area_code, NULL, -1);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER area_link_pledges_uncounted BEFORE DELETE ON agreement_areas
    FOR EACH ROW EXECUTE FUNCTION area_link_pledges_recounted();
CREATE TRIGGER area_link_pledges_before_move BEFORE UPDATE OF agreement_id, area_code ON agreement_areas
    FOR EACH ROW EXECUTE FUNCTION area_link_pledges_recounted();
CREATE TRIGGER area_link_pledges_after_move AFTER UPDATE OF agreement_id, area_code ON agreement_areas
    FOR EACH ROW EXECUTE FUNCTION area_link_pledges_recounted();

CREATE FUNCTION agreement_pledge_areas_recounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_WHEN = 'AFTER' THEN
        PERFORM pledge_area_rollup_add(NEW.id, NULL, NULL, 1);
        RETURN NEW;
    END IF;
    PERFORM pledge_area_rollup_add(OLD.id, NULL, NULL, -1);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER agreement_pledge_areas_uncounted BEFORE DELETE ON agreements
    FOR EACH ROW EXECUTE FUNCTION agreement_pledge_areas_recounted();
CREATE TRIGGER agreement_pledge_areas_before_move BEFORE UPDATE OF partner_code ON agreements
    FOR EACH ROW WHEN (OLD.partner_code IS DISTINCT FROM NEW.partner_code) EXECUTE FUNCTION agreement_pledge_areas_recounted();
CREATE TRIGGER agreement_pledge_areas_after_move AFTER UPDATE OF partner_code ON agreements
    FOR EACH ROW WHEN (OLD.partner_code IS DISTINCT FROM NEW.partner_code) EXECUTE FUNCTION agreement_pledge_areas_recounted();

-- A partner's first and last signing: the ends of one run of this index.
CREATE INDEX agreements_partner_signed ON agreements (partner_code, signed_on);
-- The order of sort=signed_on (an unknown date first), so a page and the
-- timeline walk it from the cursor on instead of sorting every agreement.
CREATE INDEX agreements_signed_sort ON agreements ((COALESCE(signed_on, DATE '0001-01-01')), id);
-- A filter on the kind, like the one on the status, finds its agreements in id order.
CREATE INDEX agreements_kind ON agreements (kind, id);
-- The history of one kind of record, newest first.
CREATE INDEX history_entity_seq ON history (entity, seq);

-- The partner's name beside each agreement, kept by triggers, so
-- sort=partner walks one index from its cursor (the name lives in partners,
-- and an order over two tables sorted every agreement for each page).
ALTER TABLE agreements ADD COLUMN partner_name TEXT COLLATE "C";
UPDATE agreements a SET partner_name = p.name FROM partners p WHERE p.code = a.partner_code;
CREATE INDEX agreements_partner_name ON agreements (partner_name, id);
CREATE FUNCTION agreement_partner_named() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.partner_name := (SELECT name FROM partners WHERE code = NEW.partner_code);
    RETURN NEW;
END $$;
CREATE TRIGGER agreement_partner_named BEFORE INSERT OR UPDATE OF partner_code ON agreements
    FOR EACH ROW EXECUTE FUNCTION agreement_partner_named();
CREATE FUNCTION partner_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agreements SET partner_name = NEW.name WHERE partner_code = NEW.code;
    RETURN NULL;
END $$;
CREATE TRIGGER partner_renamed AFTER UPDATE OF name ON partners
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION partner_renamed();
