-- Querying: exact amounts as integer minor units (cents) for comparisons and
-- sums, a full-text index, and indexes for the sort orders.

ALTER TABLE pledges ADD COLUMN amount_minor BIGINT;
UPDATE pledges SET amount_minor = CAST(amount * 100 AS BIGINT);
ALTER TABLE pledges ALTER COLUMN amount_minor SET NOT NULL;
CREATE INDEX pledges_currency_amount ON pledges (currency, amount_minor, agreement_id);
CREATE INDEX pledges_kind ON pledges (kind, agreement_id);

-- The searchable text of each agreement, folded (lower case, no accents) by
-- the service, which keeps it in step with every write.
CREATE TABLE agreement_search (
    agreement_id TEXT COLLATE "C" PRIMARY KEY REFERENCES agreements (id) ON DELETE CASCADE,
    document     TSVECTOR NOT NULL
);
-- fastupdate off: no pending list that every search would have to scan.
CREATE INDEX agreement_search_document ON agreement_search USING GIN (document) WITH (fastupdate = off);

CREATE INDEX agreements_signed ON agreements (signed_on, id);
CREATE INDEX agreements_updated ON agreements (updated_at, id);
CREATE INDEX agreements_title ON agreements (title, id);
CREATE INDEX agreements_status ON agreements (status, id);
