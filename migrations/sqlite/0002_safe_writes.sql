-- API keys, idempotent retries and the audit history.

-- A key is "acc_<id>_<secret>": the id finds the row, only a hash of the
-- secret is kept.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    scope       TEXT NOT NULL CHECK (scope IN ('write', 'admin')),
    secret_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);

-- One row per (key name, Idempotency-Key): the request's hash and, once it
-- finished, the response to replay. A NULL status means "in progress".
CREATE TABLE idempotency_keys (
    caller       TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER,
    headers      TEXT,
    body         TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Every change: who, when, what, and the version it produced.
CREATE TABLE history (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    entity       TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    agreement_id TEXT,
    op           TEXT NOT NULL,
    version      INTEGER NOT NULL,
    before       TEXT,
    after        TEXT
);
CREATE INDEX history_entity ON history (entity, entity_id, seq);
CREATE INDEX history_agreement ON history (agreement_id, seq);
CREATE INDEX history_actor ON history (actor, seq);
