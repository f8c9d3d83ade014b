-- Core schema: partners, cooperation areas, agreements with their pledges and sources.
-- Timestamps are RFC 3339 text (UTC, milliseconds); dates are YYYY-MM-DD text;
-- amounts are canonical decimal text, never REAL, so no figure is ever rounded.

CREATE TABLE partners (
    code       TEXT PRIMARY KEY,
    iso3       TEXT UNIQUE,
    kind       TEXT NOT NULL CHECK (kind IN ('country', 'organization')),
    name       TEXT NOT NULL,
    name_uk    TEXT,
    aliases    TEXT NOT NULL DEFAULT '[]',
    version    INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Every spelling a partner can be looked up by, folded (lower case, no accents).
-- rank orders the kinds of match: 0 code, 1 alpha-3, 2 name, 3 alias.
CREATE TABLE partner_keys (
    key          TEXT NOT NULL,
    partner_code TEXT NOT NULL REFERENCES partners (code) ON DELETE CASCADE,
    rank         INTEGER NOT NULL,
    PRIMARY KEY (key, partner_code)
);
CREATE INDEX partner_keys_partner ON partner_keys (partner_code);

CREATE TABLE areas (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE agreements (
    id              TEXT PRIMARY KEY,
    partner_code    TEXT NOT NULL REFERENCES partners (code),
    title           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    signed_on       TEXT,
    signed_at       TEXT,
    signatories     TEXT NOT NULL DEFAULT '[]',
    term_years      INTEGER,
    expires_on      TEXT,
    legally_binding BOOLEAN,
    summary         TEXT,
    text_url        TEXT,
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX agreements_partner ON agreements (partner_code, id);

CREATE TABLE agreement_areas (
    agreement_id TEXT NOT NULL REFERENCES agreements (id) ON DELETE CASCADE,
    area_code    TEXT NOT NULL REFERENCES areas (code),
    detail       TEXT,
    PRIMARY KEY (agreement_id, area_code)
);
CREATE INDEX agreement_areas_area ON agreement_areas (area_code, agreement_id);

CREATE TABLE pledges (
    id                TEXT PRIMARY KEY,
    agreement_id      TEXT NOT NULL REFERENCES agreements (id) ON DELETE CASCADE,
    position          INTEGER NOT NULL,
    amount            TEXT NOT NULL,
    currency          TEXT NOT NULL,
    year_from         INTEGER,
    year_to           INTEGER,
    kind              TEXT NOT NULL,
    measure           TEXT,
    in_agreement_text BOOLEAN,
    description       TEXT,
    note              TEXT,
    version           INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX pledges_agreement ON pledges (agreement_id, position);

CREATE TABLE sources (
    id           TEXT PRIMARY KEY,
    agreement_id TEXT NOT NULL REFERENCES agreements (id) ON DELETE CASCADE,
    pledge_id    TEXT REFERENCES pledges (id) ON DELETE SET NULL,
    position     INTEGER NOT NULL,
    url          TEXT NOT NULL,
    title        TEXT NOT NULL,
    publisher    TEXT,
    published_on TEXT,
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX sources_agreement ON sources (agreement_id, position);
CREATE INDEX sources_pledge ON sources (pledge_id);
