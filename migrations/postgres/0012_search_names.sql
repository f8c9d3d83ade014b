-- Search now also finds an agreement by its partner's names (English and
-- Ukrainian) and its areas' names. Emptying the index makes the store
-- rebuild it with the new text when it next opens
-- (rebuild_search_index_if_stale).
DELETE FROM agreement_search;
