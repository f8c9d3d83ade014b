-- Core schema: partners, cooperation areas, agreements with their pledges and sources.
-- Amounts are NUMERIC, so no figure is ever rounded. Keys, titles and names
-- compare byte-wise (COLLATE "C"), so lists sort the same on every server
-- and on SQLite, whatever the database's locale.

CREATE TABLE partners (
    code       TEXT COLLATE "C" PRIMARY KEY,
    iso3       TEXT UNIQUE,
    kind       TEXT NOT NULL CHECK (kind IN ('country', 'organization')),
    name       TEXT COLLATE "C" NOT NULL,
    name_uk    TEXT,
    aliases    JSONB NOT NULL DEFAULT '[]',
    version    BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Every spelling a partner can be looked up by, folded (lower case, no accents).
-- rank orders the kinds of match: 0 code, 1 alpha-3, 2 name, 3 alias.
CREATE TABLE partner_keys (
    key          TEXT COLLATE "C" NOT NULL,
    partner_code TEXT COLLATE "C" NOT NULL REFERENCES partners (code) ON DELETE CASCADE,
    rank         BIGINT NOT NULL,
    PRIMARY KEY (key, partner_code)
);
CREATE INDEX partner_keys_partner ON partner_keys (partner_code);

CREATE TABLE areas (
    code        TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE agreements (
    id              TEXT COLLATE "C" PRIMARY KEY,
    partner_code    TEXT COLLATE "C" NOT NULL REFERENCES partners (code),
    title           TEXT COLLATE "C" NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    signed_on       DATE,
    signed_at       TEXT,
    signatories     JSONB NOT NULL DEFAULT '[]',
    term_years      BIGINT,
    expires_on      DATE,
    legally_binding BOOLEAN,
    summary         TEXT,
    text_url        TEXT,
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX agreements_partner ON agreements (partner_code, id);

CREATE TABLE agreement_areas (
    agreement_id TEXT COLLATE "C" NOT NULL REFERENCES agreements (id) ON DELETE CASCADE,
    area_code    TEXT COLLATE "C" NOT NULL REFERENCES areas (code),
    detail       TEXT,
    PRIMARY KEY (agreement_id, area_code)
);
CREATE INDEX agreement_areas_area ON agreement_areas (area_code, agreement_id);

CREATE TABLE pledges (
    id                TEXT COLLATE "C" PRIMARY KEY,
    agreement_id      TEXT COLLATE "C" NOT NULL REFERENCES agreements (id) ON DELETE CASCADE,
    position          BIGINT NOT NULL,
    amount            NUMERIC(20, 2) NOT NULL CHECK (amount > 0),
    currency          TEXT NOT NULL,
    year_from         BIGINT,
    year_to           BIGINT,
    kind              TEXT NOT NULL,
    measure           TEXT,
    in_agreement_text BOOLEAN,
    description       TEXT,
    note              TEXT,
    version           BIGINT NOT NULL DEFAULT 1,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX pledges_agreement ON pledges (agreement_id, position);

CREATE TABLE sources (
    id           TEXT COLLATE "C" PRIMARY KEY,
    agreement_id TEXT COLLATE "C" NOT NULL REFERENCES agreements (id) ON DELETE CASCADE,
    pledge_id    TEXT COLLATE "C" REFERENCES pledges (id) ON DELETE SET NULL,
    position     BIGINT NOT NULL,
    url          TEXT NOT NULL,
    title        TEXT NOT NULL,
    publisher    TEXT,
    published_on DATE,
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX sources_agreement ON sources (agreement_id, position);
CREATE INDEX sources_pledge ON sources (pledge_id);
