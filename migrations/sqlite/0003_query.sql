-- Querying: exact amounts as integer minor units (cents) for comparisons and
-- sums, a full-text index, and indexes for the sort orders.

ALTER TABLE pledges ADD COLUMN amount_minor INTEGER NOT NULL DEFAULT 0;
-- Amounts are stored canonically: no decimals, or exactly two.
UPDATE pledges SET amount_minor = CASE
    WHEN instr(amount, '.') > 0 THEN CAST(replace(amount, '.', '') AS INTEGER)
    ELSE CAST(amount AS INTEGER) * 100
END;
CREATE INDEX pledges_currency_amount ON pledges (currency, amount_minor, agreement_id);
CREATE INDEX pledges_kind ON pledges (kind, agreement_id);

-- The searchable text of each agreement, folded (lower case, no accents) by
-- the service, which keeps it in step with every write.
CREATE VIRTUAL TABLE agreement_search USING fts5 (
    agreement_id UNINDEXED,
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE INDEX agreements_signed ON agreements (signed_on, id);
CREATE INDEX agreements_updated ON agreements (updated_at, id);
CREATE INDEX agreements_title ON agreements (title, id);
CREATE INDEX agreements_status ON agreements (status, id);
