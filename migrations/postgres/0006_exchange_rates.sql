-- Exchange rates: units of `currency` per 1 EUR on a day (the ECB reference
-- rate layout), exact: positive, at most 10 decimal places and 12 integer
-- digits. EUR is 1 by definition and never stored.
CREATE TABLE exchange_rates (
    currency TEXT COLLATE "C" NOT NULL CHECK (currency <> 'EUR'),
    day      DATE NOT NULL,
    rate     NUMERIC(22, 10) NOT NULL CHECK (rate > 0),
    PRIMARY KEY (currency, day)
);

-- The annual average conversion uses, per currency and year: recomputed (in
-- Rust, exactly) in the transaction of every write that touches the year, so
-- a request reads a handful of rows. `average` is decimal text with up to 28
-- significant digits.
CREATE TABLE annual_rates (
    currency  TEXT COLLATE "C" NOT NULL,
    year      BIGINT NOT NULL,
    average   TEXT NOT NULL,
    days      BIGINT NOT NULL CHECK (days > 0),
    first_day DATE NOT NULL,
    last_day  DATE NOT NULL,
    PRIMARY KEY (currency, year)
);

-- The change number of the latest rates change: the ETag of a converted
-- resource names it, so a rates change is never answered 304.
ALTER TABLE revision ADD COLUMN rates_seq BIGINT NOT NULL DEFAULT 0;
