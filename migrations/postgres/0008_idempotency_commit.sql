-- The change a request with an Idempotency-Key committed, written in the
-- same transaction as the change: if the process dies before the answer is
-- kept, a retry finds the change and answers from it instead of writing again.
ALTER TABLE idempotency_keys ADD COLUMN committed_seq BIGINT;
