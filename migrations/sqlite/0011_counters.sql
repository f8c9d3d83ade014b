-- Counts and totals kept in step by triggers, in the transaction of every
-- write (create, update, delete, import, restore, child writes, bulk load),
-- so a read costs the number of groups, never the number of rows.

-- Agreement counts for each set of dimensions a count or a grouping can
-- ask for at once (set_key names them, like the pledge rollup's): none, each
-- one, each pair, all five but the area, and an area with each other one.
-- A dimension outside the set holds '*' (-2 for the year and legal nature); -1 stands for an unknown
-- year or legal nature (binding_key: 1 binding, 0 not). With an area in the
-- set, a row counts area links, which is agreements per area. Rows whose
-- count fell to 0 stay; readers skip them.
CREATE TABLE agreement_rollup (
    set_key      TEXT NOT NULL,
    area_code    TEXT NOT NULL,
    partner_code TEXT NOT NULL,
    year_key     INTEGER NOT NULL,
    status       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    binding_key  INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (set_key, area_code, partner_code, year_key, status, kind, binding_key)
) WITHOUT ROWID;

CREATE TABLE agreement_rollup_sets (
    set_key     TEXT PRIMARY KEY,
    has_area    INTEGER NOT NULL,
    has_partner INTEGER NOT NULL,
    has_year    INTEGER NOT NULL,
    has_status  INTEGER NOT NULL,
    has_kind    INTEGER NOT NULL,
    has_binding INTEGER NOT NULL
);
INSERT INTO agreement_rollup_sets VALUES
    ('', 0, 0, 0, 0, 0, 0),
    ('partner', 0, 1, 0, 0, 0, 0), ('year', 0, 0, 1, 0, 0, 0), ('status', 0, 0, 0, 1, 0, 0),
    ('kind', 0, 0, 0, 0, 1, 0), ('binding', 0, 0, 0, 0, 0, 1),
    ('partner,year', 0, 1, 1, 0, 0, 0), ('partner,status', 0, 1, 0, 1, 0, 0), ('partner,kind', 0, 1, 0, 0, 1, 0),
    ('partner,binding', 0, 1, 0, 0, 0, 1), ('year,status', 0, 0, 1, 1, 0, 0), ('year,kind', 0, 0, 1, 0, 1, 0),
    ('year,binding', 0, 0, 1, 0, 0, 1), ('status,kind', 0, 0, 0, 1, 1, 0), ('status,binding', 0, 0, 0, 1, 0, 1),
    ('kind,binding', 0, 0, 0, 0, 1, 1),
    ('partner,year,status,kind,binding', 0, 1, 1, 1, 1, 1),
    ('area', 1, 0, 0, 0, 0, 0), ('area,partner', 1, 1, 0, 0, 0, 0), ('area,year', 1, 0, 1, 0, 0, 0),
    ('area,status', 1, 0, 0, 1, 0, 0), ('area,kind', 1, 0, 0, 0, 1, 0), ('area,binding', 1, 0, 0, 0, 0, 1);

-- The rollup keys of every agreement (area '*') and of every area link.
CREATE VIEW agreement_rollup_keys AS
SELECT a.id AS agreement_id, s.set_key, '*' AS area_code,
       CASE WHEN s.has_partner THEN a.partner_code ELSE '*' END AS partner_code,
       CASE WHEN s.has_year THEN COALESCE(CAST(substr(a.signed_on, 1, 4) AS INTEGER), -1) ELSE -2 END AS year_key,
       CASE WHEN s.has_status THEN a.status ELSE '*' END AS status,
       CASE WHEN s.has_kind THEN a.kind ELSE '*' END AS kind,
       CASE WHEN s.has_binding THEN COALESCE(a.legally_binding, -1) ELSE -2 END AS binding_key
FROM agreements a, agreement_rollup_sets s WHERE s.has_area = 0
UNION ALL
SELECT a.id, s.set_key, l.area_code,
       CASE WHEN s.has_partner THEN a.partner_code ELSE '*' END,
       CASE WHEN s.has_year THEN COALESCE(CAST(substr(a.signed_on, 1, 4) AS INTEGER), -1) ELSE -2 END,
       CASE WHEN s.has_status THEN a.status ELSE '*' END,
       CASE WHEN s.has_kind THEN a.kind ELSE '*' END,
       CASE WHEN s.has_binding THEN COALESCE(a.legally_binding, -1) ELSE -2 END
FROM agreement_areas l JOIN agreements a ON a.id = l.agreement_id, agreement_rollup_sets s WHERE s.has_area = 1;

INSERT INTO agreement_rollup
SELECT set_key, area_code, partner_code, year_key, status, kind, binding_key, COUNT(*)
FROM agreement_rollup_keys GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- The pledge rollup's sets (see 0004) as rows, and every pledge's keys in
-- them: parts are never counted (part_of IS NULL), like the totals.
CREATE TABLE pledge_rollup_sets (
    set_key     TEXT PRIMARY KEY,
    has_year    INTEGER NOT NULL,
    has_kind    INTEGER NOT NULL,
    has_measure INTEGER NOT NULL
);
INSERT INTO pledge_rollup_sets VALUES
    ('', 0, 0, 0), ('year', 1, 0, 0), ('kind', 0, 1, 0), ('measure', 0, 0, 1),
    ('year,kind', 1, 1, 0), ('year,measure', 1, 0, 1), ('kind,measure', 0, 1, 1), ('year,kind,measure', 1, 1, 1);

CREATE VIEW pledge_rollup_keys AS
SELECT pl.id AS pledge_id, pl.agreement_id, s.set_key, a.partner_code,
       CASE WHEN s.has_year THEN COALESCE(pl.year_from, -1) ELSE -2 END AS year_key,
       CASE WHEN s.has_kind THEN pl.kind ELSE '*' END AS kind,
       CASE WHEN s.has_measure THEN COALESCE(pl.measure, '') ELSE '*' END AS measure_key,
       pl.currency, pl.counted_minor, pl.years_counted
FROM pledges pl JOIN agreements a ON a.id = pl.agreement_id, pledge_rollup_sets s
WHERE pl.part_of IS NULL;

-- Rebuilt from the pledges, so the deltas below start from the truth.
DELETE FROM pledge_rollup;
INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
SELECT set_key, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
FROM pledge_rollup_keys GROUP BY 1, 2, 3, 4, 5, 6;

-- Each write adds (after) or takes away (before) the keys it touches. A
-- deleted agreement takes its links and pledges with it before it goes;
-- their cascade then finds no agreement and changes nothing.
CREATE TRIGGER agreement_counted AFTER INSERT ON agreements BEGIN
    INSERT INTO agreement_rollup
    SELECT set_key, area_code, partner_code, year_key, status, kind, binding_key, COUNT(*)
    FROM agreement_rollup_keys WHERE agreement_id = NEW.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER agreement_uncounted BEFORE DELETE ON agreements BEGIN
    INSERT INTO agreement_rollup
    SELECT set_key, area_code, partner_code, year_key, status, kind, binding_key, -COUNT(*)
    FROM agreement_rollup_keys WHERE agreement_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = n + excluded.n;
    INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_rollup_keys WHERE agreement_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER agreement_before_recount BEFORE UPDATE OF partner_code, signed_on, status, kind, legally_binding ON agreements
WHEN OLD.partner_code IS NOT NEW.partner_code OR OLD.signed_on IS NOT NEW.signed_on OR OLD.status IS NOT NEW.status
  OR OLD.kind IS NOT NEW.kind OR OLD.legally_binding IS NOT NEW.legally_binding
BEGIN
    INSERT INTO agreement_rollup
    SELECT set_key, area_code, partner_code, year_key, status, kind, binding_key, -COUNT(*)
    FROM agreement_rollup_keys WHERE agreement_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = n + excluded.n;
    INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_rollup_keys WHERE agreement_id = OLD.id AND OLD.partner_code IS NOT NEW.partner_code GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER agreement_after_recount AFTER UPDATE OF partner_code, signed_on, status, kind, legally_binding ON agreements
WHEN OLD.partner_code IS NOT NEW.partner_code OR OLD.signed_on IS NOT NEW.signed_on OR OLD.status IS NOT NEW.status
  OR OLD.kind IS NOT NEW.kind OR OLD.legally_binding IS NOT NEW.legally_binding
BEGIN
    INSERT INTO agreement_rollup
    SELECT set_key, area_code, partner_code, year_key, status, kind, binding_key, COUNT(*)
    FROM agreement_rollup_keys WHERE agreement_id = NEW.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = n + excluded.n;
    INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_rollup_keys WHERE agreement_id = NEW.id AND OLD.partner_code IS NOT NEW.partner_code GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER area_link_counted AFTER INSERT ON agreement_areas BEGIN
    INSERT INTO agreement_rollup
    SELECT set_key, area_code, partner_code, year_key, status, kind, binding_key, COUNT(*)
    FROM agreement_rollup_keys WHERE agreement_id = NEW.agreement_id AND area_code = NEW.area_code GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER area_link_uncounted BEFORE DELETE ON agreement_areas BEGIN
    INSERT INTO agreement_rollup
    SELECT set_key, area_code, partner_code, year_key, status, kind, binding_key, -COUNT(*)
    FROM agreement_rollup_keys WHERE agreement_id = OLD.agreement_id AND area_code = OLD.area_code GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER area_link_before_move BEFORE UPDATE OF agreement_id, area_code ON agreement_areas BEGIN
    INSERT INTO agreement_rollup
    SELECT set_key, area_code, partner_code, year_key, status, kind, binding_key, -COUNT(*)
    FROM agreement_rollup_keys WHERE agreement_id = OLD.agreement_id AND area_code = OLD.area_code GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER area_link_after_move AFTER UPDATE OF agreement_id, area_code ON agreement_areas BEGIN
    INSERT INTO agreement_rollup
    SELECT set_key, area_code, partner_code, year_key, status, kind, binding_key, COUNT(*)
    FROM agreement_rollup_keys WHERE agreement_id = NEW.agreement_id AND area_code = NEW.area_code GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, status, kind, binding_key) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER pledge_counted AFTER INSERT ON pledges BEGIN
    INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_rollup_keys WHERE pledge_id = NEW.id GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER pledge_uncounted BEFORE DELETE ON pledges BEGIN
    INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_rollup_keys WHERE pledge_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER pledge_before_recount
BEFORE UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges BEGIN
    INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_rollup_keys WHERE pledge_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER pledge_after_recount
AFTER UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges BEGIN
    INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_rollup_keys WHERE pledge_id = NEW.id GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

-- Pledge totals by area, for the area alone and with one of year, kind or
-- measure (the partner always in the key, as in the pledge rollup): a pledge
-- counts once under each area of its agreement.
CREATE TABLE pledge_area_rollup (
    set_key      TEXT NOT NULL,
    area_code    TEXT NOT NULL,
    partner_code TEXT NOT NULL,
    year_key     INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    measure_key  TEXT NOT NULL,
    currency     TEXT NOT NULL,
    total_minor  INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    years        INTEGER NOT NULL,
    PRIMARY KEY (set_key, area_code, partner_code, year_key, kind, measure_key, currency)
) WITHOUT ROWID;

CREATE VIEW pledge_area_rollup_keys AS
SELECT pl.id AS pledge_id, pl.agreement_id, s.set_key, l.area_code, a.partner_code,
       CASE WHEN s.has_year THEN COALESCE(pl.year_from, -1) ELSE -2 END AS year_key,
       CASE WHEN s.has_kind THEN pl.kind ELSE '*' END AS kind,
       CASE WHEN s.has_measure THEN COALESCE(pl.measure, '') ELSE '*' END AS measure_key,
       pl.currency, pl.counted_minor, pl.years_counted
FROM pledges pl JOIN agreements a ON a.id = pl.agreement_id JOIN agreement_areas l ON l.agreement_id = pl.agreement_id,
     pledge_rollup_sets s
WHERE pl.part_of IS NULL AND s.has_year + s.has_kind + s.has_measure <= 1;

INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
FROM pledge_area_rollup_keys GROUP BY 1, 2, 3, 4, 5, 6, 7;

CREATE TRIGGER pledge_area_counted AFTER INSERT ON pledges BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE pledge_id = NEW.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER pledge_area_uncounted BEFORE DELETE ON pledges BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE pledge_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER pledge_area_before_recount BEFORE UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE pledge_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER pledge_area_after_recount AFTER UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE pledge_id = NEW.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER area_link_pledges_counted AFTER INSERT ON agreement_areas BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE agreement_id = NEW.agreement_id AND area_code = NEW.area_code GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER area_link_pledges_uncounted BEFORE DELETE ON agreement_areas BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE agreement_id = OLD.agreement_id AND area_code = OLD.area_code GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER area_link_pledges_before_move BEFORE UPDATE OF agreement_id, area_code ON agreement_areas BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE agreement_id = OLD.agreement_id AND area_code = OLD.area_code GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER area_link_pledges_after_move AFTER UPDATE OF agreement_id, area_code ON agreement_areas BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE agreement_id = NEW.agreement_id AND area_code = NEW.area_code GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER agreement_pledge_areas_uncounted BEFORE DELETE ON agreements BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE agreement_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER agreement_pledge_areas_before_move BEFORE UPDATE OF partner_code ON agreements
WHEN OLD.partner_code IS NOT NEW.partner_code BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE agreement_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER agreement_pledge_areas_after_move AFTER UPDATE OF partner_code ON agreements
WHEN OLD.partner_code IS NOT NEW.partner_code BEGIN
    INSERT INTO pledge_area_rollup (set_key, area_code, partner_code, year_key, kind, measure_key, currency, total_minor, n, years)
    SELECT set_key, area_code, partner_code, year_key, kind, measure_key, currency, SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_area_rollup_keys WHERE agreement_id = NEW.id GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (set_key, area_code, partner_code, year_key, kind, measure_key, currency) DO UPDATE SET
        total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

-- A partner's first and last signing: the ends of one run of this index.
CREATE INDEX agreements_partner_signed ON agreements (partner_code, signed_on);
-- The order of sort=signed_on (an unknown date first), so a page and the
-- timeline walk it from the cursor on instead of sorting every agreement.
CREATE INDEX agreements_signed_sort ON agreements ((COALESCE(signed_on, '0001-01-01')), id);
-- A filter on the kind, like the one on the status, finds its agreements in id order.
CREATE INDEX agreements_kind ON agreements (kind, id);
-- The history of one kind of record, newest first.
CREATE INDEX history_entity_seq ON history (entity, seq);
-- The parts of a page's pledges: most pledges are part of nothing, and an
-- index of every pledge's part_of (mostly NULL) looked useless to the planner.
CREATE INDEX pledges_parts ON pledges (part_of) WHERE part_of IS NOT NULL;

-- The partner's name beside each agreement, kept by triggers, so
-- sort=partner walks one index from its cursor (the name lives in partners,
-- and an order over two tables sorted every agreement for each page).
ALTER TABLE agreements ADD COLUMN partner_name TEXT;
UPDATE agreements SET partner_name = (SELECT name FROM partners WHERE code = agreements.partner_code);
CREATE INDEX agreements_partner_name ON agreements (partner_name, id);
CREATE TRIGGER agreement_partner_named AFTER INSERT ON agreements BEGIN
    UPDATE agreements SET partner_name = (SELECT name FROM partners WHERE code = NEW.partner_code) WHERE id = NEW.id;
END;
CREATE TRIGGER agreement_partner_renamed AFTER UPDATE OF partner_code ON agreements BEGIN
    UPDATE agreements SET partner_name = (SELECT name FROM partners WHERE code = NEW.partner_code) WHERE id = NEW.id;
END;
CREATE TRIGGER partner_renamed AFTER UPDATE OF name ON partners BEGIN
    UPDATE agreements SET partner_name = NEW.name WHERE partner_code = NEW.code;
END;
