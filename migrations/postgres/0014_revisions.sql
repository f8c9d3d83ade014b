-- Revisions: every row of every table a read answer is made of, as it
-- stood at each revision of the store, so an answer can be given again
-- exactly as it was (`?revision=N`, `?as_of=`; see docs/revisions.md).
--
-- <table>_versions holds one row per version of a row: the revision that
-- made it (rev_from) and the one that replaced or deleted it (rev_to, NULL
-- while it is current). A version is visible at revision N when
-- rev_from <= N AND (rev_to IS NULL OR rev_to > N). The revision columns come
-- first, so a later migration that adds a column to a table adds it (last)
-- to its versions table too and the triggers' `*` stays aligned.
--
-- The triggers number a change with the revision its write will record:
-- every write changes its rows first and calls record() (which moves
-- revision.seq) after, so during the data writes that number is seq + 1.
-- Derived tables (the rollups, the search index) are not kept: they are
-- rebuilt from these rows. History began at the revision this migration ran
-- at; the rows then present are its first versions.

CREATE TABLE revision_history (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    began BIGINT NOT NULL
);
INSERT INTO revision_history (id, began) SELECT 1, seq FROM revision WHERE id = 1;

-- The revision is read FOR UPDATE: a writer takes the counter's row at its
-- first change instead of at record(), so two writers never number their
-- changes alike (the second waits, then reads the first's number).
CREATE TABLE partners_versions (rev_from BIGINT NOT NULL, rev_to BIGINT, LIKE partners);
INSERT INTO partners_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, t.* FROM partners t;
CREATE INDEX partners_versions_key ON partners_versions (code, rev_from, rev_to);
CREATE FUNCTION partners_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r BIGINT;
BEGIN
    SELECT seq + 1 INTO r FROM revision WHERE id = 1 FOR UPDATE;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM partners_versions WHERE code = OLD.code AND rev_to IS NULL AND rev_from = r;
        UPDATE partners_versions SET rev_to = r WHERE code = OLD.code AND rev_to IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO partners_versions SELECT r, NULL, (NEW).*;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER partners_versioned AFTER INSERT OR UPDATE OR DELETE ON partners
    FOR EACH ROW EXECUTE FUNCTION partners_versioned();

CREATE TABLE partner_keys_versions (rev_from BIGINT NOT NULL, rev_to BIGINT, LIKE partner_keys);
INSERT INTO partner_keys_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, t.* FROM partner_keys t;
CREATE INDEX partner_keys_versions_key ON partner_keys_versions (key, partner_code, rev_from, rev_to);
CREATE FUNCTION partner_keys_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r BIGINT;
BEGIN
    SELECT seq + 1 INTO r FROM revision WHERE id = 1 FOR UPDATE;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM partner_keys_versions WHERE key = OLD.key AND partner_code = OLD.partner_code AND rev_to IS NULL AND rev_from = r;
        UPDATE partner_keys_versions SET rev_to = r WHERE key = OLD.key AND partner_code = OLD.partner_code AND rev_to IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO partner_keys_versions SELECT r, NULL, (NEW).*;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER partner_keys_versioned AFTER INSERT OR UPDATE OR DELETE ON partner_keys
    FOR EACH ROW EXECUTE FUNCTION partner_keys_versioned();

CREATE TABLE areas_versions (rev_from BIGINT NOT NULL, rev_to BIGINT, LIKE areas);
INSERT INTO areas_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, t.* FROM areas t;
CREATE INDEX areas_versions_key ON areas_versions (code, rev_from, rev_to);
CREATE FUNCTION areas_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r BIGINT;
BEGIN
    SELECT seq + 1 INTO r FROM revision WHERE id = 1 FOR UPDATE;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM areas_versions WHERE code = OLD.code AND rev_to IS NULL AND rev_from = r;
        UPDATE areas_versions SET rev_to = r WHERE code = OLD.code AND rev_to IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO areas_versions SELECT r, NULL, (NEW).*;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER areas_versioned AFTER INSERT OR UPDATE OR DELETE ON areas
    FOR EACH ROW EXECUTE FUNCTION areas_versioned();

CREATE TABLE agreements_versions (rev_from BIGINT NOT NULL, rev_to BIGINT, LIKE agreements);
INSERT INTO agreements_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, t.* FROM agreements t;
CREATE INDEX agreements_versions_key ON agreements_versions (id, rev_from, rev_to);
CREATE FUNCTION agreements_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r BIGINT;
BEGIN
    SELECT seq + 1 INTO r FROM revision WHERE id = 1 FOR UPDATE;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM agreements_versions WHERE id = OLD.id AND rev_to IS NULL AND rev_from = r;
        UPDATE agreements_versions SET rev_to = r WHERE id = OLD.id AND rev_to IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO agreements_versions SELECT r, NULL, (NEW).*;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER agreements_versioned AFTER INSERT OR UPDATE OR DELETE ON agreements
    FOR EACH ROW EXECUTE FUNCTION agreements_versioned();

CREATE TABLE agreement_areas_versions (rev_from BIGINT NOT NULL, rev_to BIGINT, LIKE agreement_areas);
INSERT INTO agreement_areas_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, t.* FROM agreement_areas t;
CREATE INDEX agreement_areas_versions_key ON agreement_areas_versions (agreement_id, area_code, rev_from, rev_to);
CREATE FUNCTION agreement_areas_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r BIGINT;
BEGIN
    SELECT seq + 1 INTO r FROM revision WHERE id = 1 FOR UPDATE;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM agreement_areas_versions WHERE agreement_id = OLD.agreement_id AND area_code = OLD.area_code AND rev_to IS NULL AND rev_from = r;
        UPDATE agreement_areas_versions SET rev_to = r WHERE agreement_id = OLD.agreement_id AND area_code = OLD.area_code AND rev_to IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO agreement_areas_versions SELECT r, NULL, (NEW).*;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER agreement_areas_versioned AFTER INSERT OR UPDATE OR DELETE ON agreement_areas
    FOR EACH ROW EXECUTE FUNCTION agreement_areas_versioned();

CREATE TABLE pledges_versions (rev_from BIGINT NOT NULL, rev_to BIGINT, LIKE pledges);
INSERT INTO pledges_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, t.* FROM pledges t;
CREATE INDEX pledges_versions_key ON pledges_versions (id, rev_from, rev_to);
CREATE INDEX pledges_versions_agreement_id ON pledges_versions (agreement_id, rev_from, rev_to);
CREATE INDEX pledges_versions_part_of ON pledges_versions (part_of, rev_from, rev_to);
CREATE FUNCTION pledges_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r BIGINT;
BEGIN
    SELECT seq + 1 INTO r FROM revision WHERE id = 1 FOR UPDATE;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM pledges_versions WHERE id = OLD.id AND rev_to IS NULL AND rev_from = r;
        UPDATE pledges_versions SET rev_to = r WHERE id = OLD.id AND rev_to IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO pledges_versions SELECT r, NULL, (NEW).*;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER pledges_versioned AFTER INSERT OR UPDATE OR DELETE ON pledges
    FOR EACH ROW EXECUTE FUNCTION pledges_versioned();

CREATE TABLE sources_versions (rev_from BIGINT NOT NULL, rev_to BIGINT, LIKE sources);
INSERT INTO sources_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, t.* FROM sources t;
CREATE INDEX sources_versions_key ON sources_versions (id, rev_from, rev_to);
CREATE INDEX sources_versions_agreement_id ON sources_versions (agreement_id, rev_from, rev_to);
CREATE FUNCTION sources_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r BIGINT;
BEGIN
    SELECT seq + 1 INTO r FROM revision WHERE id = 1 FOR UPDATE;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM sources_versions WHERE id = OLD.id AND rev_to IS NULL AND rev_from = r;
        UPDATE sources_versions SET rev_to = r WHERE id = OLD.id AND rev_to IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO sources_versions SELECT r, NULL, (NEW).*;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sources_versioned AFTER INSERT OR UPDATE OR DELETE ON sources
    FOR EACH ROW EXECUTE FUNCTION sources_versioned();

CREATE TABLE source_aliases_versions (rev_from BIGINT NOT NULL, rev_to BIGINT, LIKE source_aliases);
INSERT INTO source_aliases_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, t.* FROM source_aliases t;
CREATE INDEX source_aliases_versions_key ON source_aliases_versions (alias, rev_from, rev_to);
CREATE FUNCTION source_aliases_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r BIGINT;
BEGIN
    SELECT seq + 1 INTO r FROM revision WHERE id = 1 FOR UPDATE;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM source_aliases_versions WHERE alias = OLD.alias AND rev_to IS NULL AND rev_from = r;
        UPDATE source_aliases_versions SET rev_to = r WHERE alias = OLD.alias AND rev_to IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO source_aliases_versions SELECT r, NULL, (NEW).*;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER source_aliases_versioned AFTER INSERT OR UPDATE OR DELETE ON source_aliases
    FOR EACH ROW EXECUTE FUNCTION source_aliases_versioned();

CREATE TABLE exchange_rates_versions (rev_from BIGINT NOT NULL, rev_to BIGINT, LIKE exchange_rates);
INSERT INTO exchange_rates_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, t.* FROM exchange_rates t;
CREATE INDEX exchange_rates_versions_key ON exchange_rates_versions (currency, day, rev_from, rev_to);
CREATE FUNCTION exchange_rates_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r BIGINT;
BEGIN
    SELECT seq + 1 INTO r FROM revision WHERE id = 1 FOR UPDATE;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM exchange_rates_versions WHERE currency = OLD.currency AND day = OLD.day AND rev_to IS NULL AND rev_from = r;
        UPDATE exchange_rates_versions SET rev_to = r WHERE currency = OLD.currency AND day = OLD.day AND rev_to IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO exchange_rates_versions SELECT r, NULL, (NEW).*;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER exchange_rates_versioned AFTER INSERT OR UPDATE OR DELETE ON exchange_rates
    FOR EACH ROW EXECUTE FUNCTION exchange_rates_versioned();

CREATE TABLE annual_rates_versions (rev_from BIGINT NOT NULL, rev_to BIGINT, LIKE annual_rates);
INSERT INTO annual_rates_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, t.* FROM annual_rates t;
CREATE INDEX annual_rates_versions_key ON annual_rates_versions (currency, year, rev_from, rev_to);
CREATE FUNCTION annual_rates_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r BIGINT;
BEGIN
    SELECT seq + 1 INTO r FROM revision WHERE id = 1 FOR UPDATE;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM annual_rates_versions WHERE currency = OLD.currency AND year = OLD.year AND rev_to IS NULL AND rev_from = r;
        UPDATE annual_rates_versions SET rev_to = r WHERE currency = OLD.currency AND year = OLD.year AND rev_to IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO annual_rates_versions SELECT r, NULL, (NEW).*;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER annual_rates_versioned AFTER INSERT OR UPDATE OR DELETE ON annual_rates
    FOR EACH ROW EXECUTE FUNCTION annual_rates_versioned();

