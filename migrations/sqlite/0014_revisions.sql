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
    began INTEGER NOT NULL
);
INSERT INTO revision_history (id, began) SELECT 1, seq FROM revision WHERE id = 1;

CREATE TABLE partners_versions AS SELECT CAST(0 AS INTEGER) AS rev_from, CAST(NULL AS INTEGER) AS rev_to, * FROM partners WHERE 0;
INSERT INTO partners_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, * FROM partners;
CREATE INDEX partners_versions_key ON partners_versions (code, rev_from, rev_to);
CREATE TRIGGER partners_versioned_insert AFTER INSERT ON partners BEGIN
    INSERT INTO partners_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM partners WHERE code = NEW.code;
END;
CREATE TRIGGER partners_versioned_update AFTER UPDATE ON partners BEGIN
    DELETE FROM partners_versions WHERE code = OLD.code AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE partners_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE code = OLD.code AND rev_to IS NULL;
    INSERT INTO partners_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM partners WHERE code = NEW.code;
END;
CREATE TRIGGER partners_versioned_delete AFTER DELETE ON partners BEGIN
    DELETE FROM partners_versions WHERE code = OLD.code AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE partners_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE code = OLD.code AND rev_to IS NULL;
END;

CREATE TABLE partner_keys_versions AS SELECT CAST(0 AS INTEGER) AS rev_from, CAST(NULL AS INTEGER) AS rev_to, * FROM partner_keys WHERE 0;
INSERT INTO partner_keys_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, * FROM partner_keys;
CREATE INDEX partner_keys_versions_key ON partner_keys_versions (key, partner_code, rev_from, rev_to);
CREATE TRIGGER partner_keys_versioned_insert AFTER INSERT ON partner_keys BEGIN
    INSERT INTO partner_keys_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM partner_keys WHERE key = NEW.key AND partner_code = NEW.partner_code;
END;
CREATE TRIGGER partner_keys_versioned_update AFTER UPDATE ON partner_keys BEGIN
    DELETE FROM partner_keys_versions WHERE key = OLD.key AND partner_code = OLD.partner_code AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE partner_keys_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE key = OLD.key AND partner_code = OLD.partner_code AND rev_to IS NULL;
    INSERT INTO partner_keys_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM partner_keys WHERE key = NEW.key AND partner_code = NEW.partner_code;
END;
CREATE TRIGGER partner_keys_versioned_delete AFTER DELETE ON partner_keys BEGIN
    DELETE FROM partner_keys_versions WHERE key = OLD.key AND partner_code = OLD.partner_code AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE partner_keys_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE key = OLD.key AND partner_code = OLD.partner_code AND rev_to IS NULL;
END;

CREATE TABLE areas_versions AS SELECT CAST(0 AS INTEGER) AS rev_from, CAST(NULL AS INTEGER) AS rev_to, * FROM areas WHERE 0;
INSERT INTO areas_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, * FROM areas;
CREATE INDEX areas_versions_key ON areas_versions (code, rev_from, rev_to);
CREATE TRIGGER areas_versioned_insert AFTER INSERT ON areas BEGIN
    INSERT INTO areas_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM areas WHERE code = NEW.code;
END;
CREATE TRIGGER areas_versioned_update AFTER UPDATE ON areas BEGIN
    DELETE FROM areas_versions WHERE code = OLD.code AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE areas_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE code = OLD.code AND rev_to IS NULL;
    INSERT INTO areas_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM areas WHERE code = NEW.code;
END;
CREATE TRIGGER areas_versioned_delete AFTER DELETE ON areas BEGIN
    DELETE FROM areas_versions WHERE code = OLD.code AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE areas_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE code = OLD.code AND rev_to IS NULL;
END;

CREATE TABLE agreements_versions AS SELECT CAST(0 AS INTEGER) AS rev_from, CAST(NULL AS INTEGER) AS rev_to, * FROM agreements WHERE 0;
INSERT INTO agreements_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, * FROM agreements;
CREATE INDEX agreements_versions_key ON agreements_versions (id, rev_from, rev_to);
CREATE TRIGGER agreements_versioned_insert AFTER INSERT ON agreements BEGIN
    INSERT INTO agreements_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM agreements WHERE id = NEW.id;
END;
CREATE TRIGGER agreements_versioned_update AFTER UPDATE ON agreements BEGIN
    DELETE FROM agreements_versions WHERE id = OLD.id AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE agreements_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE id = OLD.id AND rev_to IS NULL;
    INSERT INTO agreements_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM agreements WHERE id = NEW.id;
END;
CREATE TRIGGER agreements_versioned_delete AFTER DELETE ON agreements BEGIN
    DELETE FROM agreements_versions WHERE id = OLD.id AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE agreements_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE id = OLD.id AND rev_to IS NULL;
END;

CREATE TABLE agreement_areas_versions AS SELECT CAST(0 AS INTEGER) AS rev_from, CAST(NULL AS INTEGER) AS rev_to, * FROM agreement_areas WHERE 0;
INSERT INTO agreement_areas_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, * FROM agreement_areas;
CREATE INDEX agreement_areas_versions_key ON agreement_areas_versions (agreement_id, area_code, rev_from, rev_to);
CREATE TRIGGER agreement_areas_versioned_insert AFTER INSERT ON agreement_areas BEGIN
    INSERT INTO agreement_areas_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM agreement_areas WHERE agreement_id = NEW.agreement_id AND area_code = NEW.area_code;
END;
CREATE TRIGGER agreement_areas_versioned_update AFTER UPDATE ON agreement_areas BEGIN
    DELETE FROM agreement_areas_versions WHERE agreement_id = OLD.agreement_id AND area_code = OLD.area_code AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE agreement_areas_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE agreement_id = OLD.agreement_id AND area_code = OLD.area_code AND rev_to IS NULL;
    INSERT INTO agreement_areas_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM agreement_areas WHERE agreement_id = NEW.agreement_id AND area_code = NEW.area_code;
END;
CREATE TRIGGER agreement_areas_versioned_delete AFTER DELETE ON agreement_areas BEGIN
    DELETE FROM agreement_areas_versions WHERE agreement_id = OLD.agreement_id AND area_code = OLD.area_code AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE agreement_areas_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE agreement_id = OLD.agreement_id AND area_code = OLD.area_code AND rev_to IS NULL;
END;

CREATE TABLE pledges_versions AS SELECT CAST(0 AS INTEGER) AS rev_from, CAST(NULL AS INTEGER) AS rev_to, * FROM pledges WHERE 0;
INSERT INTO pledges_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, * FROM pledges;
CREATE INDEX pledges_versions_key ON pledges_versions (id, rev_from, rev_to);
CREATE INDEX pledges_versions_agreement_id ON pledges_versions (agreement_id, rev_from, rev_to);
CREATE INDEX pledges_versions_part_of ON pledges_versions (part_of, rev_from, rev_to);
CREATE TRIGGER pledges_versioned_insert AFTER INSERT ON pledges BEGIN
    INSERT INTO pledges_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM pledges WHERE id = NEW.id;
END;
CREATE TRIGGER pledges_versioned_update AFTER UPDATE ON pledges BEGIN
    DELETE FROM pledges_versions WHERE id = OLD.id AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE pledges_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE id = OLD.id AND rev_to IS NULL;
    INSERT INTO pledges_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM pledges WHERE id = NEW.id;
END;
CREATE TRIGGER pledges_versioned_delete AFTER DELETE ON pledges BEGIN
    DELETE FROM pledges_versions WHERE id = OLD.id AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE pledges_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE id = OLD.id AND rev_to IS NULL;
END;

CREATE TABLE sources_versions AS SELECT CAST(0 AS INTEGER) AS rev_from, CAST(NULL AS INTEGER) AS rev_to, * FROM sources WHERE 0;
INSERT INTO sources_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, * FROM sources;
CREATE INDEX sources_versions_key ON sources_versions (id, rev_from, rev_to);
CREATE INDEX sources_versions_agreement_id ON sources_versions (agreement_id, rev_from, rev_to);
CREATE TRIGGER sources_versioned_insert AFTER INSERT ON sources BEGIN
    INSERT INTO sources_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM sources WHERE id = NEW.id;
END;
CREATE TRIGGER sources_versioned_update AFTER UPDATE ON sources BEGIN
    DELETE FROM sources_versions WHERE id = OLD.id AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE sources_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE id = OLD.id AND rev_to IS NULL;
    INSERT INTO sources_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM sources WHERE id = NEW.id;
END;
CREATE TRIGGER sources_versioned_delete AFTER DELETE ON sources BEGIN
    DELETE FROM sources_versions WHERE id = OLD.id AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE sources_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE id = OLD.id AND rev_to IS NULL;
END;

CREATE TABLE source_aliases_versions AS SELECT CAST(0 AS INTEGER) AS rev_from, CAST(NULL AS INTEGER) AS rev_to, * FROM source_aliases WHERE 0;
INSERT INTO source_aliases_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, * FROM source_aliases;
CREATE INDEX source_aliases_versions_key ON source_aliases_versions (alias, rev_from, rev_to);
CREATE TRIGGER source_aliases_versioned_insert AFTER INSERT ON source_aliases BEGIN
    INSERT INTO source_aliases_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM source_aliases WHERE alias = NEW.alias;
END;
CREATE TRIGGER source_aliases_versioned_update AFTER UPDATE ON source_aliases BEGIN
    DELETE FROM source_aliases_versions WHERE alias = OLD.alias AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE source_aliases_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE alias = OLD.alias AND rev_to IS NULL;
    INSERT INTO source_aliases_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM source_aliases WHERE alias = NEW.alias;
END;
CREATE TRIGGER source_aliases_versioned_delete AFTER DELETE ON source_aliases BEGIN
    DELETE FROM source_aliases_versions WHERE alias = OLD.alias AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE source_aliases_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE alias = OLD.alias AND rev_to IS NULL;
END;

CREATE TABLE exchange_rates_versions AS SELECT CAST(0 AS INTEGER) AS rev_from, CAST(NULL AS INTEGER) AS rev_to, * FROM exchange_rates WHERE 0;
INSERT INTO exchange_rates_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, * FROM exchange_rates;
CREATE INDEX exchange_rates_versions_key ON exchange_rates_versions (currency, day, rev_from, rev_to);
CREATE TRIGGER exchange_rates_versioned_insert AFTER INSERT ON exchange_rates BEGIN
    INSERT INTO exchange_rates_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM exchange_rates WHERE currency = NEW.currency AND day = NEW.day;
END;
CREATE TRIGGER exchange_rates_versioned_update AFTER UPDATE ON exchange_rates BEGIN
    DELETE FROM exchange_rates_versions WHERE currency = OLD.currency AND day = OLD.day AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE exchange_rates_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE currency = OLD.currency AND day = OLD.day AND rev_to IS NULL;
    INSERT INTO exchange_rates_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM exchange_rates WHERE currency = NEW.currency AND day = NEW.day;
END;
CREATE TRIGGER exchange_rates_versioned_delete AFTER DELETE ON exchange_rates BEGIN
    DELETE FROM exchange_rates_versions WHERE currency = OLD.currency AND day = OLD.day AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE exchange_rates_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE currency = OLD.currency AND day = OLD.day AND rev_to IS NULL;
END;

CREATE TABLE annual_rates_versions AS SELECT CAST(0 AS INTEGER) AS rev_from, CAST(NULL AS INTEGER) AS rev_to, * FROM annual_rates WHERE 0;
INSERT INTO annual_rates_versions SELECT (SELECT seq FROM revision WHERE id = 1), NULL, * FROM annual_rates;
CREATE INDEX annual_rates_versions_key ON annual_rates_versions (currency, year, rev_from, rev_to);
CREATE TRIGGER annual_rates_versioned_insert AFTER INSERT ON annual_rates BEGIN
    INSERT INTO annual_rates_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM annual_rates WHERE currency = NEW.currency AND year = NEW.year;
END;
CREATE TRIGGER annual_rates_versioned_update AFTER UPDATE ON annual_rates BEGIN
    DELETE FROM annual_rates_versions WHERE currency = OLD.currency AND year = OLD.year AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE annual_rates_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE currency = OLD.currency AND year = OLD.year AND rev_to IS NULL;
    INSERT INTO annual_rates_versions SELECT (SELECT seq + 1 FROM revision WHERE id = 1), NULL, * FROM annual_rates WHERE currency = NEW.currency AND year = NEW.year;
END;
CREATE TRIGGER annual_rates_versioned_delete AFTER DELETE ON annual_rates BEGIN
    DELETE FROM annual_rates_versions WHERE currency = OLD.currency AND year = OLD.year AND rev_to IS NULL AND rev_from = (SELECT seq + 1 FROM revision WHERE id = 1);
    UPDATE annual_rates_versions SET rev_to = (SELECT seq + 1 FROM revision WHERE id = 1) WHERE currency = OLD.currency AND year = OLD.year AND rev_to IS NULL;
END;

