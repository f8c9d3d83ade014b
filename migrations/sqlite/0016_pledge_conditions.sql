-- Pledge totals under a condition on their agreement: its year of signing,
-- status, kind or legal nature (one of them, or all four at once), beside
-- each set of the pledge rollup (0004, 0011). A statistic of pledges with
-- `status=`, `kind=`, `legally_binding=` or whole years of signing read every
-- matching pledge and its agreement (up to 600 ms at 100,000 agreements);
-- these sets answer it from rows whose number grows with the groups. Kept
-- by triggers in the writing transaction, like the other rollups. A
-- dimension outside the set holds '*' (-2 for the years and legal nature);
-- -1 stands for an unknown year or legal nature, '' for an unknown measure.
CREATE TABLE pledge_condition_sets (
    set_key            TEXT PRIMARY KEY,
    has_year           INTEGER NOT NULL,
    has_kind           INTEGER NOT NULL,
    has_measure        INTEGER NOT NULL,
    has_signed         INTEGER NOT NULL,
    has_status         INTEGER NOT NULL,
    has_agreement_kind INTEGER NOT NULL,
    has_binding        INTEGER NOT NULL
);
-- Each pledge set with each one agreement condition; the sets without a
-- pledge dimension and with the pledge kind also with all four at once.
INSERT INTO pledge_condition_sets
SELECT p.set_key || '|' || c.name, p.has_year, p.has_kind, p.has_measure,
       c.has_signed, c.has_status, c.has_agreement_kind, c.has_binding
FROM pledge_rollup_sets p,
     (SELECT 'signed' AS name, 1 AS has_signed, 0 AS has_status, 0 AS has_agreement_kind, 0 AS has_binding
      UNION ALL SELECT 'status', 0, 1, 0, 0
      UNION ALL SELECT 'kind', 0, 0, 1, 0
      UNION ALL SELECT 'binding', 0, 0, 0, 1
      UNION ALL SELECT 'signed,status,kind,binding', 1, 1, 1, 1) c
WHERE c.name <> 'signed,status,kind,binding' OR p.set_key IN ('', 'kind');

CREATE TABLE pledge_condition_rollup (
    set_key        TEXT NOT NULL,
    partner_code   TEXT NOT NULL,
    year_key       INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    measure_key    TEXT NOT NULL,
    currency       TEXT NOT NULL,
    signed_key     INTEGER NOT NULL,
    status         TEXT NOT NULL,
    agreement_kind TEXT NOT NULL,
    binding_key    INTEGER NOT NULL,
    total_minor    INTEGER NOT NULL,
    n              INTEGER NOT NULL,
    years          INTEGER NOT NULL,
    PRIMARY KEY (set_key, partner_code, year_key, kind, measure_key, currency,
                 signed_key, status, agreement_kind, binding_key)
) WITHOUT ROWID;

-- Every counted pledge's keys in every set (parts are never counted).
CREATE VIEW pledge_condition_keys AS
SELECT pl.id AS pledge_id, pl.agreement_id, s.set_key, a.partner_code,
       CASE WHEN s.has_year THEN COALESCE(pl.year_from, -1) ELSE -2 END AS year_key,
       CASE WHEN s.has_kind THEN pl.kind ELSE '*' END AS kind,
       CASE WHEN s.has_measure THEN COALESCE(pl.measure, '') ELSE '*' END AS measure_key,
       pl.currency,
       CASE WHEN s.has_signed THEN COALESCE(CAST(substr(a.signed_on, 1, 4) AS INTEGER), -1) ELSE -2 END AS signed_key,
       CASE WHEN s.has_status THEN a.status ELSE '*' END AS status,
       CASE WHEN s.has_agreement_kind THEN a.kind ELSE '*' END AS agreement_kind,
       CASE WHEN s.has_binding THEN COALESCE(a.legally_binding, -1) ELSE -2 END AS binding_key,
       pl.counted_minor, pl.years_counted
FROM pledges pl JOIN agreements a ON a.id = pl.agreement_id, pledge_condition_sets s
WHERE pl.part_of IS NULL;

INSERT INTO pledge_condition_rollup
SELECT set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key,
       SUM(counted_minor), COUNT(*), SUM(years_counted)
FROM pledge_condition_keys GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;

-- Each write adds (after) or takes away (before) the keys it touches. A
-- deleted agreement takes its pledges' keys with it before it goes; their
-- cascade then finds no agreement and changes nothing.
CREATE TRIGGER pledge_condition_counted AFTER INSERT ON pledges BEGIN
    INSERT INTO pledge_condition_rollup
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key,
           SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_condition_keys WHERE pledge_id = NEW.id GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key)
    DO UPDATE SET total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER pledge_condition_uncounted BEFORE DELETE ON pledges BEGIN
    INSERT INTO pledge_condition_rollup
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key,
           -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_condition_keys WHERE pledge_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key)
    DO UPDATE SET total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER pledge_condition_before_recount
BEFORE UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges BEGIN
    INSERT INTO pledge_condition_rollup
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key,
           -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_condition_keys WHERE pledge_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key)
    DO UPDATE SET total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER pledge_condition_after_recount
AFTER UPDATE OF id, agreement_id, currency, year_from, kind, measure, part_of, counted_minor, years_counted ON pledges BEGIN
    INSERT INTO pledge_condition_rollup
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key,
           SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_condition_keys WHERE pledge_id = NEW.id GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key)
    DO UPDATE SET total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER agreement_pledges_uncounted BEFORE DELETE ON agreements BEGIN
    INSERT INTO pledge_condition_rollup
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key,
           -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_condition_keys WHERE agreement_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key)
    DO UPDATE SET total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER agreement_pledges_before_recount BEFORE UPDATE OF partner_code, signed_on, status, kind, legally_binding ON agreements
WHEN OLD.partner_code IS NOT NEW.partner_code OR OLD.signed_on IS NOT NEW.signed_on OR OLD.status IS NOT NEW.status
  OR OLD.kind IS NOT NEW.kind OR OLD.legally_binding IS NOT NEW.legally_binding
BEGIN
    INSERT INTO pledge_condition_rollup
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key,
           -SUM(counted_minor), -COUNT(*), -SUM(years_counted)
    FROM pledge_condition_keys WHERE agreement_id = OLD.id GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key)
    DO UPDATE SET total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;

CREATE TRIGGER agreement_pledges_after_recount AFTER UPDATE OF partner_code, signed_on, status, kind, legally_binding ON agreements
WHEN OLD.partner_code IS NOT NEW.partner_code OR OLD.signed_on IS NOT NEW.signed_on OR OLD.status IS NOT NEW.status
  OR OLD.kind IS NOT NEW.kind OR OLD.legally_binding IS NOT NEW.legally_binding
BEGIN
    INSERT INTO pledge_condition_rollup
    SELECT set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key,
           SUM(counted_minor), COUNT(*), SUM(years_counted)
    FROM pledge_condition_keys WHERE agreement_id = NEW.id GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    ON CONFLICT (set_key, partner_code, year_key, kind, measure_key, currency, signed_key, status, agreement_kind, binding_key)
    DO UPDATE SET total_minor = total_minor + excluded.total_minor, n = n + excluded.n, years = years + excluded.years;
END;
