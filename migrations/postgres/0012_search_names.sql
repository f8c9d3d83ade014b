-- Search now also finds an agreement by its partner's names (English and
-- Ukrainian) and its areas' names. Emptying the index makes the store
-- rebuild it with the new text when it next opens
-- (rebuild_search_index_if_stale).
DELETE FROM agreement_search;

-- The change feed can start at a time (`since=2026-12-01T10:00:00Z`): the
-- first change at or after it, found in one step.
CREATE INDEX history_at ON history (at, feed_seq);
