-- The change feed: every history entry gets a sequence number from a single
-- counter, taken in the writing transaction. Writers queue on the counter's
-- row, so numbers commit in order: a reader never sees 42 before 41.
-- The counter is also the store-wide revision behind list ETags.
CREATE TABLE revision (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO revision (id, seq) VALUES (1, (SELECT COALESCE(MAX(seq), 0) FROM history));

ALTER TABLE history ADD COLUMN feed_seq BIGINT;
ALTER TABLE history ADD COLUMN partner_code TEXT COLLATE "C";
UPDATE history SET feed_seq = seq;
UPDATE history SET partner_code = (SELECT a.partner_code FROM agreements a WHERE a.id = history.agreement_id)
    WHERE agreement_id IS NOT NULL;
UPDATE history SET partner_code = entity_id WHERE entity = 'partner';
CREATE UNIQUE INDEX history_feed ON history (feed_seq);
