//! Exchange rates against the euro, and converting pledges with them.
//!
//! A rate is the number of units of a currency one euro buys on a day, as the
//! ECB publishes its reference rates ("USD 1.0823"). Rates are exact
//! decimals; EUR itself is 1 by definition and never loaded. Conversion uses
//! the annual average of a year's loaded daily rates:
//!
//! - average = the arithmetic mean of the year's daily rates, rounded half to
//!   even to 28 significant digits (at most 28 decimals);
//! - rate(from → to, year) = average(to) / average(from), rounded half to
//!   even to 10 decimal places (EUR's average is exactly 1);
//! - converted amount = amount × rate, rounded half to even to the cent.
//!
//! Every division and rounding here is exact integer arithmetic on the
//! decimals' digits: no float ever touches a figure.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use super::FieldError;
use super::money::{Amount, Currency};

/// Decimal places a rate may have.
pub const RATE_DECIMALS: u32 = 10;
/// Integer digits a rate may have.
pub const RATE_INTEGER_DIGITS: usize = 12;
/// Significant digits an annual average keeps.
const AVERAGE_DIGITS: u32 = 28;

/// Units of a currency per 1 EUR: positive, at most 10 decimal places and
/// 12 integer digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(Decimal);

impl Rate {
    /// Parses decimal text: digits, an optional point and decimals. No sign,
    /// exponent, separators or spaces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let shape = "must be a positive decimal such as \"1.0823\"";
        if text.starts_with('-') {
            return Err(format!("{shape}, not negative"));
        }
        let (integer, fraction) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits_only(integer) || fraction.is_some_and(|f| !digits_only(f)) {
            return Err(format!("{shape}, not {text:?}"));
        }
        if fraction.is_some_and(|f| f.trim_end_matches('0').len() > RATE_DECIMALS as usize) {
            return Err(format!("must have at most {RATE_DECIMALS} decimal places"));
        }
        if integer.trim_start_matches('0').len() > RATE_INTEGER_DIGITS {
            return Err(format!(
                "must have at most {RATE_INTEGER_DIGITS} integer digits"
            ));
        }
        let value = Decimal::from_str(text).map_err(|_| format!("{shape}, not {text:?}"))?;
        Self::from_decimal(value)
    }

    /// Accepts a decimal read back from a store.
    pub fn from_decimal(value: Decimal) -> Result<Self, String> {
        if value <= Decimal::ZERO {
            return Err("must be a positive decimal, greater than zero".into());
        }
        let value = value.normalize();
        if value.scale() > RATE_DECIMALS {
            return Err(format!("must have at most {RATE_DECIMALS} decimal places"));
        }
        if value.trunc().to_string().trim_start_matches('0').len() > RATE_INTEGER_DIGITS {
            return Err(format!(
                "must have at most {RATE_INTEGER_DIGITS} integer digits"
            ));
        }
        Ok(Self(value))
    }

    pub fn as_decimal(&self) -> Decimal {
        self.0
    }
}

/// The canonical text: no trailing zeros ("1.0823", "156.33", "1").
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Currencies withdrawn from ISO 4217 (most replaced by the euro) whose
/// rates the ECB's historical file still carries: no pledge can be in them,
/// so a file's rates of these are skipped (and counted), not refused.
pub const WITHDRAWN: &[&str] = &[
    "ATS", "BEF", "CYP", "DEM", "EEK", "ESP", "FIM", "FRF", "GRD", "IEP", "ITL", "LTL", "LUF",
    "LVL", "MTL", "NLG", "PTE", "ROL", "SIT", "SKK", "TRL",
];

fn withdrawn(text: &str) -> Option<String> {
    let upper = text.trim().to_ascii_uppercase();
    WITHDRAWN.contains(&upper.as_str()).then_some(upper)
}

/// A currency whose rate can be loaded: ISO 4217, and not EUR.
pub fn rated_currency(text: &str) -> Result<Currency, String> {
    let currency = Currency::parse(text)?;
    if currency.as_str() == "EUR" {
        return Err("EUR is the base: its rate is 1 by definition and cannot be loaded".into());
    }
    Ok(currency)
}

/// A date as YYYY-MM-DD, or as the ECB's daily file writes it ("20 December 2024").
pub fn rate_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
        .or_else(|| {
            let words = text.split_whitespace().count() == 3;
            words
                .then(|| NaiveDate::parse_from_str(text, "%d %B %Y").ok())
                .flatten()
        })
        .filter(|d| (1999..=2200).contains(&d.year()))
        .ok_or_else(|| {
            format!("{text:?} is not a valid date (YYYY-MM-DD, from 1999, when the euro began)")
        })
}

/// One day's rate of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DailyRate {
    pub currency: Currency,
    pub date: NaiveDate,
    pub rate: Rate,
}

/// The mean of one currency's loaded rates in one year.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AnnualRate {
    pub currency: Currency,
    pub year: i64,
    #[serde(serialize_with = "decimal_text")]
    #[schema(value_type = String, pattern = r"^[0-9]+(\.[0-9]+)?$")]
    pub average: Decimal,
    pub days: i64,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
}

fn decimal_text<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&value.normalize())
}

impl AnnualRate {
    /// The annual rate of `currency` from its daily rates in `year` (any order).
    pub fn of(currency: Currency, year: i64, days: &[(NaiveDate, Rate)]) -> Option<Self> {
        let first_day = days.iter().map(|(d, _)| *d).min()?;
        let last_day = days.iter().map(|(d, _)| *d).max()?;
        let mut sum = Decimal::ZERO;
        for (_, rate) in days {
            sum = sum.checked_add(rate.as_decimal())?;
        }
        Some(Self {
            currency,
            year,
            average: mean(sum, days.len() as i64)?,
            days: days.len() as i64,
            first_day,
            last_day,
        })
    }
}

/// sum / count, rounded half to even to 28 significant digits.
fn mean(sum: Decimal, count: i64) -> Option<Decimal> {
    let count = Decimal::from(count);
    // Truncated, not rounded: 0.85 has no integer digit, though it rounds to 1.
    let whole = sum.checked_div(count)?.trunc();
    let integer_digits = if whole.is_zero() {
        0
    } else {
        whole.to_string().len() as u32
    };
    let scale = AVERAGE_DIGITS.saturating_sub(integer_digits).min(28);
    divide(sum, count, scale).map(|d| d.normalize())
}

/// Rounds `value / 10^scale` (value ≥ 0) to `target` decimal places, half to
/// even, as a mantissa at scale `target`.
fn round_scaled(value: u128, scale: u32, target: u32) -> Option<u128> {
    if scale <= target {
        return value.checked_mul(10u128.checked_pow(target - scale)?);
    }
    let unit = 10u128.checked_pow(scale - target)?;
    let (quotient, rest) = (value / unit, value % unit);
    // unit is a power of ten of at least 10, so half of it is exact.
    Some(round_half_even(quotient, rest.cmp(&(unit / 2))))
}

fn round_half_even(quotient: u128, against_half: Ordering) -> u128 {
    match against_half {
        Ordering::Greater => quotient + 1,
        Ordering::Equal if quotient % 2 == 1 => quotient + 1,
        _ => quotient,
    }
}

/// a / b, both positive, rounded half to even to `scale` decimal places;
/// computed exactly by long division on the digits. None when it does not fit.
pub fn divide(a: Decimal, b: Decimal, scale: u32) -> Option<Decimal> {
    if b <= Decimal::ZERO || a < Decimal::ZERO || scale > 28 {
        return None;
    }
    let (ma, mb) = (a.mantissa().unsigned_abs(), b.mantissa().unsigned_abs());
    // a / b × 10^scale = ma × 10^shift / mb
    let shift = i64::from(scale) + i64::from(b.scale()) - i64::from(a.scale());
    let (quotient, against_half) = if shift >= 0 {
        let mut quotient = ma / mb;
        let mut rest = ma % mb;
        for _ in 0..shift {
            // rest < mb < 2^96: ten times it still fits.
            let widened = rest * 10;
            quotient = quotient.checked_mul(10)?.checked_add(widened / mb)?;
            rest = widened % mb;
        }
        (quotient, (rest * 2).cmp(&mb))
    } else {
        let unit = 10u128.checked_pow(u32::try_from(-shift).ok()?)?;
        let whole = ma / mb;
        let rest = ma % mb;
        let (quotient, tail) = (whole / unit, whole % unit);
        // The dropped part is (tail + rest / mb) / unit; compare it with 1/2.
        let against_half = match tail.cmp(&(unit / 2)) {
            Ordering::Equal if rest > 0 => Ordering::Greater,
            other => other,
        };
        (quotient, against_half)
    };
    let rounded = round_half_even(quotient, against_half);
    Decimal::try_from_i128_with_scale(i128::try_from(rounded).ok()?, scale).ok()
}

/// The canonical text of money: whole amounts without decimals, others with
/// two, like [`Amount`]'s ("29812345.12", "4500000000", "0").
pub fn money_text(cents: u128) -> String {
    let (units, hundredths) = (cents / 100, cents % 100);
    if hundredths == 0 {
        units.to_string()
    } else {
        format!("{units}.{hundredths:02}")
    }
}

/// A rate's mantissa at exactly 10 decimal places.
fn rate_units(rate: Decimal) -> Option<u128> {
    let mut scaled = rate.normalize();
    if scaled.scale() > RATE_DECIMALS || scaled < Decimal::ZERO {
        return None;
    }
    scaled.rescale(RATE_DECIMALS);
    Some(scaled.mantissa().unsigned_abs())
}

/// `cents` hundredths × `rate`, exactly, at 12 decimal places (2 + 10).
pub fn product_units(cents: u128, rate: Decimal) -> Option<u128> {
    cents.checked_mul(rate_units(rate)?)
}

/// A sum of [`product_units`], rounded half to even to the cent.
pub fn cents_of_product_units(units: u128) -> Option<u128> {
    round_scaled(units, 2 + RATE_DECIMALS, 2)
}

/// The rate from one currency to another in a year, with what it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossRate {
    pub rate: Decimal,
    pub basis: String,
}

/// The annual rates a conversion may use, by currency and year.
#[derive(Debug, Clone, Default)]
pub struct RateTable {
    annual: HashMap<(String, i64), AnnualRate>,
}

/// What a pledge is worth in another currency, or why that is not known.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Converted {
    pub currency: Currency,
    pub amount: Option<String>,
    pub rate: Option<String>,
    pub year: Option<i64>,
    pub rate_basis: Option<String>,
    pub reason: Option<String>,
}

/// Why an amount could not be converted: no year to take a rate from.
pub const NO_YEAR: &str = "the pledge has no year: neither year_from nor a signing date";

impl RateTable {
    pub fn new(rates: impl IntoIterator<Item = AnnualRate>) -> Self {
        Self {
            annual: rates
                .into_iter()
                .map(|r| ((r.currency.as_str().to_owned(), r.year), r))
                .collect(),
        }
    }

    fn average(&self, currency: &Currency, year: i64) -> Option<(Decimal, Option<&AnnualRate>)> {
        if currency.as_str() == "EUR" {
            return Some((Decimal::ONE, None));
        }
        self.annual
            .get(&(currency.as_str().to_owned(), year))
            .map(|r| (r.average, Some(r)))
    }

    /// rate(from → to, year) = average(to) / average(from), rounded half to
    /// even to 10 decimal places; or the reason there is none.
    pub fn cross(&self, from: &Currency, to: &Currency, year: i64) -> Result<CrossRate, String> {
        if from == to {
            return Ok(CrossRate {
                rate: Decimal::ONE,
                basis: "same currency: no conversion".into(),
            });
        }
        let (source, target) = (self.average(from, year), self.average(to, year));
        let (Some((source, source_basis)), Some((target, target_basis))) = (source, target) else {
            let mut missing: Vec<&str> = Vec::new();
            if self.average(from, year).is_none() {
                missing.push(from.as_str());
            }
            if self.average(to, year).is_none() {
                missing.push(to.as_str());
            }
            return Err(format!(
                "no {} rate loaded for {year}",
                missing.join(" or ")
            ));
        };
        let rate = divide(target, source, RATE_DECIMALS)
            .filter(|r| !r.is_zero())
            .ok_or_else(|| {
                format!(
                    "the {} to {} rate for {year} does not fit 10 decimal places",
                    from.as_str(),
                    to.as_str()
                )
            })?;
        let describe = |r: &AnnualRate| {
            format!(
                "annual average of {} daily {} rates against EUR, {}..{}",
                r.days,
                r.currency.as_str(),
                r.first_day,
                r.last_day
            )
        };
        let basis = match (target_basis, source_basis) {
            (Some(t), None) => describe(t),
            (None, Some(s)) => format!("1 / {}", describe(s)),
            (Some(t), Some(s)) => format!("({}) / ({})", describe(t), describe(s)),
            (None, None) => "same currency: no conversion".into(),
        };
        Ok(CrossRate {
            rate: rate.normalize(),
            basis,
        })
    }

    /// Converts an amount with the rate of `year`; null with a reason when
    /// no rate (or no year) is there, never a guessed rate.
    pub fn convert(
        &self,
        amount: Amount,
        from: &Currency,
        to: &Currency,
        year: Option<i64>,
    ) -> Converted {
        let failed = |year: Option<i64>, reason: String| Converted {
            currency: to.clone(),
            amount: None,
            rate: None,
            year,
            rate_basis: None,
            reason: Some(reason),
        };
        if from == to {
            return Converted {
                currency: to.clone(),
                amount: Some(amount.to_string()),
                rate: Some("1".into()),
                year,
                rate_basis: Some("same currency: no conversion".into()),
                reason: None,
            };
        }
        let Some(year) = year else {
            return failed(None, NO_YEAR.into());
        };
        let cross = match self.cross(from, to, year) {
            Ok(cross) => cross,
            Err(reason) => return failed(Some(year), reason),
        };
        let cents = u128::try_from(amount.minor_units()).unwrap_or_default();
        match product_units(cents, cross.rate).and_then(cents_of_product_units) {
            Some(converted) => Converted {
                currency: to.clone(),
                amount: Some(money_text(converted)),
                rate: Some(cross.rate.to_string()),
                year: Some(year),
                rate_basis: Some(cross.basis),
                reason: None,
            },
            None => failed(
                Some(year),
                "the converted amount is too large to compute exactly".into(),
            ),
        }
    }
}

/// Where a rate came from in a file or a list, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateError {
    /// 1-based line of a CSV file, or the index of a JSON item.
    pub line: Option<u64>,
    pub column: Option<String>,
    pub message: String,
}

impl RateError {
    /// `rates.csv:12: column rate: must be ...`
    pub fn render(&self, file: &str) -> String {
        let mut text = file.to_owned();
        if let Some(line) = self.line {
            text.push_str(&format!(":{line}"));
        }
        if let Some(column) = &self.column {
            text.push_str(&format!(": column {column}"));
        }
        format!("{text}: {}", self.message)
    }

    /// As a problem's error entry: `{"field": "line 12, column rate", ...}`.
    pub fn field_error(&self) -> FieldError {
        let field = match (&self.line, &self.column) {
            (Some(line), Some(column)) => format!("line {line}, column {column}"),
            (Some(line), None) => format!("line {line}"),
            (None, Some(column)) => format!("column {column}"),
            (None, None) => String::new(),
        };
        FieldError::new(field, self.message.clone())
    }
}

/// The most errors a file reports; the last entry says how many more there were.
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// Errors as a file is read: the first [`MAX_REPORTED_ERRORS`] kept, the
/// rest only counted, so a file of a million bad rows costs the memory of a
/// thousand errors, not of a million.
pub struct Errors<T> {
    kept: Vec<T>,
    more: usize,
}

impl<T> Default for Errors<T> {
    fn default() -> Self {
        Self {
            kept: Vec::new(),
            more: 0,
        }
    }
}

impl<T> Errors<T> {
    pub fn push(&mut self, error: T) {
        if self.kept.len() < MAX_REPORTED_ERRORS {
            self.kept.push(error);
        } else {
            self.more += 1;
        }
    }

    pub fn extend(&mut self, errors: impl IntoIterator<Item = T>) {
        for error in errors {
            self.push(error);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// How many were found, kept or not.
    pub fn len(&self) -> usize {
        self.kept.len() + self.more
    }

    /// The kept errors, and how many more were found.
    pub fn into_parts(self) -> (Vec<T>, usize) {
        (self.kept, self.more)
    }
}

fn capped(errors: Errors<RateError>) -> Vec<RateError> {
    let (mut kept, more) = errors.into_parts();
    if more > 0 {
        kept.push(RateError {
            line: None,
            column: None,
            message: format!("... and {more} more error(s)"),
        });
    }
    kept
}

/// A set of daily rates, each (currency, date) once: a parsed rates file or
/// list, all valid, ready to load.
#[derive(Debug, Clone, PartialEq)]
pub struct RatesFile {
    pub rates: Vec<DailyRate>,
    /// Rates of withdrawn currencies (CYP, EEK, ... in the ECB's history),
    /// skipped: currency → how many values were left out.
    pub skipped: BTreeMap<String, usize>,
}

/// Records each (currency, date) once, naming the first place of a repeat.
#[derive(Default)]
struct Seen(HashMap<(Currency, NaiveDate), String>);

impl Seen {
    fn first(&mut self, currency: &Currency, date: NaiveDate, here: String) -> Option<String> {
        match self.0.get(&(currency.clone(), date)) {
            Some(first) => Some(first.clone()),
            None => {
                self.0.insert((currency.clone(), date), here);
                None
            }
        }
    }
}

enum Layout {
    /// `date,currency,rate`, in any order: the positions of the three.
    Long {
        date: usize,
        currency: usize,
        rate: usize,
    },
    /// `Date,USD,JPY,...`: the date's position, each rated column, and the
    /// columns of withdrawn currencies, whose values are skipped.
    Wide {
        date: usize,
        currencies: Vec<(usize, Currency)>,
        withdrawn: Vec<(usize, String)>,
    },
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

impl RatesFile {
    /// Parses a CSV file of rates against EUR, in either layout:
    ///
    /// - long: a header `date,currency,rate` (any order, any case), one rate a row;
    /// - wide (the ECB's): `Date,USD,JPY,...`, one day a row; `N/A` or an
    ///   empty cell is no rate; empty trailing columns are ignored.
    ///
    /// Dates are YYYY-MM-DD (or the ECB daily file's "20 December 2024").
    /// Every problem is reported with its line (and column), all at once.
    pub fn parse_csv(bytes: &[u8]) -> Result<Self, Vec<RateError>> {
        let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let mut errors: Errors<RateError> = Errors::default();
        let mut records = reader.byte_records();
        let header = match records.next() {
            None => {
                return Err(vec![RateError {
                    line: None,
                    column: None,
                    message: "the file is empty: it needs a header (date,currency,rate or Date,USD,JPY,...) and rates".into(),
                }]);
            }
            Some(Ok(record)) => record,
            Some(Err(error)) => return Err(vec![csv_error(&error)]),
        };
        let header_line = header.position().map_or(1, |p| p.line());
        let names: Vec<Result<String, RateError>> = header
            .iter()
            .enumerate()
            .map(|(i, field)| {
                std::str::from_utf8(field)
                    .map(str::to_owned)
                    .map_err(|_| RateError {
                        line: Some(header_line),
                        column: Some(format!("{}", i + 1)),
                        message: "is not valid UTF-8: send the file as UTF-8".into(),
                    })
            })
            .collect();
        let names: Vec<String> = names
            .into_iter()
            .map(|n| {
                n.unwrap_or_else(|e| {
                    errors.push(e);
                    String::new()
                })
            })
            .collect();
        let layout = layout_of(&names, header_line, &mut errors);
        let width = names.len();
        let mut seen = Seen(HashMap::new());
        let mut rates = Vec::new();
        let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
        if let Some(Layout::Wide { withdrawn, .. }) = &layout {
            for (_, code) in withdrawn {
                skipped.insert(code.clone(), 0);
            }
        }
        let mut rows = 0usize;
        for record in records {
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    errors.push(csv_error(&error));
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            // A line of nothing but separators is not a row.
            if record.iter().all(|f| f.is_empty()) {
                continue;
            }
            rows += 1;
            let error = |column: Option<&str>, message: String| RateError {
                line: Some(line),
                column: column.map(str::to_owned),
                message,
            };
            if record.len() != width {
                errors.push(error(
                    None,
                    format!("has {} fields where the header has {width}", record.len()),
                ));
                continue;
            }
            let mut cells: Vec<&str> = Vec::with_capacity(width);
            let mut readable = true;
            for (i, field) in record.iter().enumerate() {
                match std::str::from_utf8(field) {
                    Ok(text) => cells.push(text),
                    Err(_) => {
                        let column = names.get(i).filter(|n| !n.is_empty()).cloned();
                        let column = column.unwrap_or_else(|| format!("{}", i + 1));
                        errors.push(error(
                            Some(&column),
                            "is not valid UTF-8: send the file as UTF-8".into(),
                        ));
                        readable = false;
                    }
                }
            }
            let Some(layout) = layout.as_ref().filter(|_| readable) else {
                continue;
            };
            // Columns without a name (a trailing comma) must stay empty.
            for (i, name) in names.iter().enumerate() {
                if name.is_empty() && !cells[i].is_empty() {
                    errors.push(error(
                        Some(&format!("{}", i + 1)),
                        "has a value but no column name".into(),
                    ));
                }
            }
            match layout {
                Layout::Long {
                    date,
                    currency,
                    rate,
                } => {
                    let day = rate_date(cells[*date]).map_err(|m| error(Some("date"), m));
                    let code = if cells[*currency].is_empty() {
                        Err(error(Some("currency"), "is required".into()))
                    } else if withdrawn(cells[*currency]).is_some() {
                        Ok(None)
                    } else {
                        rated_currency(cells[*currency])
                            .map(Some)
                            .map_err(|m| error(Some("currency"), m))
                    };
                    let value = if cells[*rate].is_empty() {
                        Err(error(Some("rate"), "is required".into()))
                    } else {
                        Rate::parse(cells[*rate]).map_err(|m| error(Some("rate"), m))
                    };
                    match (day, code, value) {
                        (Ok(_), Ok(None), Ok(_)) => {
                            let code = withdrawn(cells[*currency]).unwrap_or_default();
                            *skipped.entry(code).or_default() += 1;
                        }
                        (Ok(day), Ok(Some(code)), Ok(value)) => {
                            if let Some(first) = seen.first(&code, day, format!("line {line}")) {
                                errors.push(error(
                                    None,
                                    format!(
                                        "{} on {day} is given twice: first on {first}",
                                        code.as_str()
                                    ),
                                ));
                            } else {
                                rates.push(DailyRate {
                                    currency: code,
                                    date: day,
                                    rate: value,
                                });
                            }
                        }
                        (day, code, value) => {
                            errors.extend(day.err());
                            errors.extend(code.err());
                            errors.extend(value.err());
                        }
                    }
                }
                Layout::Wide {
                    date,
                    currencies,
                    withdrawn,
                } => {
                    let day = match rate_date(cells[*date]) {
                        Ok(day) => day,
                        Err(message) => {
                            errors.push(error(Some(&names[*date]), message));
                            continue;
                        }
                    };
                    for (position, code) in currencies {
                        let cell = cells[*position];
                        if cell.is_empty() || cell.eq_ignore_ascii_case("N/A") {
                            continue;
                        }
                        match Rate::parse(cell) {
                            Ok(value) => {
                                if let Some(first) = seen.first(code, day, format!("line {line}")) {
                                    errors.push(error(
                                        Some(code.as_str()),
                                        format!(
                                            "{} on {day} is given twice: first on {first}",
                                            code.as_str()
                                        ),
                                    ));
                                } else {
                                    rates.push(DailyRate {
                                        currency: code.clone(),
                                        date: day,
                                        rate: value,
                                    });
                                }
                            }
                            Err(message) => errors.push(error(Some(code.as_str()), message)),
                        }
                    }
                    for (position, code) in withdrawn {
                        let cell = cells[*position];
                        if !cell.is_empty() && !cell.eq_ignore_ascii_case("N/A") {
                            *skipped.entry(code.clone()).or_default() += 1;
                        }
                    }
                }
            }
        }
        if errors.is_empty() && rates.is_empty() {
            errors.push(RateError {
                line: None,
                column: None,
                message: if rows == 0 {
                    "the file has a header but no rows of rates".into()
                } else {
                    "the file holds no rates of current currencies (every cell is N/A, empty or of a withdrawn currency)".into()
                },
            });
        }
        if errors.is_empty() {
            Ok(Self { rates, skipped })
        } else {
            Err(capped(errors))
        }
    }

    /// The currencies of the file, sorted, and its first and last dates.
    pub fn extent(&self) -> (Vec<String>, Option<NaiveDate>, Option<NaiveDate>) {
        let currencies: HashSet<&str> = self.rates.iter().map(|r| r.currency.as_str()).collect();
        let mut currencies: Vec<String> = currencies.into_iter().map(str::to_owned).collect();
        currencies.sort();
        let first = self.rates.iter().map(|r| r.date).min();
        let last = self.rates.iter().map(|r| r.date).max();
        (currencies, first, last)
    }
}

/// Rates given as the items of a JSON body, gathered in order by the wire
/// layer: a currency and day given twice is an error, and errors are
/// addressed `items[3].rate`.
#[derive(Default)]
pub struct RateItems {
    seen: Seen,
    rates: Vec<DailyRate>,
    /// What could not be read, in the order of the items.
    pub errors: Errors<FieldError>,
}

impl RateItems {
    /// The rate of item `i`, unless its currency and day came before.
    pub fn push(&mut self, i: usize, rate: DailyRate) {
        match self
            .seen
            .first(&rate.currency, rate.date, format!("items[{i}]"))
        {
            Some(first) => self.errors.push(FieldError::new(
                format!("items[{i}]"),
                format!(
                    "{} on {} is given twice: first as {first}",
                    rate.currency.as_str(),
                    rate.date
                ),
            )),
            None => self.rates.push(rate),
        }
    }

    /// The rates, or every error (the first [`MAX_REPORTED_ERRORS`]).
    pub fn finish(self) -> Result<RatesFile, Vec<FieldError>> {
        let Self { rates, errors, .. } = self;
        if errors.is_empty() {
            Ok(RatesFile {
                rates,
                skipped: BTreeMap::new(),
            })
        } else {
            let (kept, more) = errors.into_parts();
            let mut converted: Errors<RateError> = Errors::default();
            converted.extend(kept.into_iter().map(|e| RateError {
                line: None,
                column: Some(e.field),
                message: e.message,
            }));
            converted.more += more;
            let reported = capped(converted);
            Err(reported
                .into_iter()
                .map(|e| FieldError::new(e.column.unwrap_or_default(), e.message))
                .collect())
        }
    }
}

fn csv_error(error: &csv::Error) -> RateError {
    RateError {
        line: error.position().map(|p| p.line()),
        column: None,
        message: format!("cannot be read as CSV: {error}"),
    }
}

/// Which layout a header is, reporting missing, unknown and repeated columns.
fn layout_of(names: &[String], line: u64, errors: &mut Errors<RateError>) -> Option<Layout> {
    let error = |column: Option<&str>, message: String| RateError {
        line: Some(line),
        column: column.map(str::to_owned),
        message,
    };
    let lower: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let position = |name: &str| lower.iter().position(|n| n == name);
    let before = errors.len();
    for (i, name) in lower.iter().enumerate() {
        if !name.is_empty() && lower[..i].contains(name) {
            errors.push(error(
                Some(&names[i]),
                "is named twice in the header".into(),
            ));
        }
    }
    let long = position("currency").is_some() || position("rate").is_some();
    if long {
        for (i, name) in lower.iter().enumerate() {
            if !name.is_empty() && !["date", "currency", "rate"].contains(&name.as_str()) {
                errors.push(error(
                    Some(&names[i]),
                    "is not a column of the long layout: date, currency, rate".into(),
                ));
            }
        }
        let mut found = [0usize; 3];
        for (slot, name) in ["date", "currency", "rate"].iter().enumerate() {
            match position(name) {
                Some(i) => found[slot] = i,
                None => errors.push(error(
                    None,
                    format!(
                        "the header has no column {name} (the long layout is date,currency,rate)"
                    ),
                )),
            }
        }
        return (errors.len() == before).then_some(Layout::Long {
            date: found[0],
            currency: found[1],
            rate: found[2],
        });
    }
    let Some(date) = position("date") else {
        errors.push(error(
            None,
            "the header has no column date: it must be date,currency,rate or the ECB layout Date,USD,JPY,...".into(),
        ));
        return None;
    };
    let mut currencies = Vec::new();
    let mut withdrawn_columns = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if i == date || name.is_empty() {
            continue;
        }
        if let Some(code) = withdrawn(name) {
            withdrawn_columns.push((i, code));
            continue;
        }
        match rated_currency(name) {
            Ok(currency) => currencies.push((i, currency)),
            Err(message) => errors.push(error(Some(name), message)),
        }
    }
    if currencies.is_empty() && errors.len() == before {
        errors.push(error(
            None,
            "the header names no currency: it must be date,currency,rate or Date,USD,JPY,..."
                .into(),
        ));
    }
    (errors.len() == before).then_some(Layout::Wide {
        date,
        currencies,
        withdrawn: withdrawn_columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn c(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn rates_parse_strictly() {
        assert_eq!(Rate::parse("1.0823").unwrap().to_string(), "1.0823");
        assert_eq!(Rate::parse("156.330").unwrap().to_string(), "156.33");
        assert_eq!(Rate::parse("1.00000000000").unwrap().to_string(), "1");
        assert_eq!(
            Rate::parse("0.0000000001").unwrap().to_string(),
            "0.0000000001"
        );
        assert!(Rate::parse("999999999999.9999999999").is_ok());
        for bad in [
            "0",
            "0.0",
            "-1.2",
            "1e3",
            "",
            ".5",
            "5.",
            "1,2",
            " 1",
            "abc",
            "1.00000000001",
            "1000000000000",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn division_is_exact_and_rounds_half_to_even() {
        assert_eq!(divide(d("2"), d("3"), 10), Some(d("0.6666666667")));
        assert_eq!(
            divide(d("1"), d("8"), 2),
            Some(d("0.12")),
            "0.125: a tie, to even"
        );
        assert_eq!(
            divide(d("3"), d("8"), 2),
            Some(d("0.38")),
            "0.375: a tie, to even"
        );
        assert_eq!(
            divide(d("1.2500000001"), d("10"), 2),
            Some(d("0.13")),
            "just above a tie"
        );
        assert_eq!(divide(d("1"), d("1.0823"), 10), Some(d("0.9239582371")));
        assert_eq!(
            divide(d("156.33"), d("1.0823"), 10),
            Some(d("144.4423912039"))
        );
        // A dividend with more decimals than the result keeps.
        assert_eq!(
            divide(d("0.0000000000000000000000000025"), d("1"), 26),
            Some(d("0"))
        );
        assert_eq!(
            divide(d("0.0000000000000000000000000035"), d("1"), 27),
            Some(d("0.000000000000000000000000004"))
        );
        assert_eq!(divide(d("1"), d("0"), 2), None);
    }

    #[test]
    fn annual_means_are_exact() {
        let day = |n: u32| NaiveDate::from_ymd_opt(2024, 1, n).unwrap();
        let rates = [
            (day(2), Rate::parse("1.1").unwrap()),
            (day(3), Rate::parse("1.2").unwrap()),
            (day(4), Rate::parse("1.3").unwrap()),
        ];
        let annual = AnnualRate::of(c("USD"), 2024, &rates).unwrap();
        assert_eq!(annual.average, d("1.2"));
        assert_eq!(
            (annual.days, annual.first_day, annual.last_day),
            (3, day(2), day(4))
        );
        let thirds = [
            (day(2), Rate::parse("1").unwrap()),
            (day(3), Rate::parse("1").unwrap()),
            (day(4), Rate::parse("2").unwrap()),
        ];
        let annual = AnnualRate::of(c("USD"), 2024, &thirds).unwrap();
        let below_one = [
            (day(2), Rate::parse("0.82918").unwrap()),
            (day(3), Rate::parse("0.86905").unwrap()),
            (day(4), Rate::parse("0.8430").unwrap()),
        ];
        let annual_below_one = AnnualRate::of(c("GBP"), 2024, &below_one).unwrap();
        assert_eq!(
            annual_below_one.average.to_string(),
            "0.8470766666666666666666666667",
            "28 decimals below 1"
        );
        assert_eq!(
            annual.average.to_string(),
            "1.333333333333333333333333333",
            "28 significant digits"
        );
    }

    #[test]
    fn conversions_round_half_to_even_to_the_cent() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let annual = |code: &str, rate: &str| {
            AnnualRate::of(c(code), 2024, &[(day, Rate::parse(rate).unwrap())]).unwrap()
        };
        let table = RateTable::new([annual("USD", "1.25"), annual("JPY", "160")]);
        let amount = |text: &str| Amount::parse(text).unwrap();
        // 0.10 EUR × 1.25 = 0.125 USD: a tie, to the even 0.12.
        let converted = table.convert(amount("0.10"), &c("EUR"), &c("USD"), Some(2024));
        assert_eq!(converted.amount.as_deref(), Some("0.12"));
        assert_eq!(converted.rate.as_deref(), Some("1.25"));
        // 0.30 EUR × 1.25 = 0.375: a tie, to the even 0.38.
        assert_eq!(
            table
                .convert(amount("0.30"), &c("EUR"), &c("USD"), Some(2024))
                .amount
                .as_deref(),
            Some("0.38")
        );
        // USD → EUR: 1 / 1.25 = 0.8.
        let back = table.convert(amount("100"), &c("USD"), &c("EUR"), Some(2024));
        assert_eq!(
            (back.amount.as_deref(), back.rate.as_deref()),
            (Some("80"), Some("0.8"))
        );
        // JPY → USD: 1.25 / 160 = 0.0078125.
        let cross = table.convert(amount("1000000"), &c("JPY"), &c("USD"), Some(2024));
        assert_eq!(
            (cross.amount.as_deref(), cross.rate.as_deref()),
            (Some("7812.50"), Some("0.0078125"))
        );
        assert!(cross.rate_basis.unwrap().contains("JPY"));
        let missing = table.convert(amount("5"), &c("GBP"), &c("USD"), Some(2024));
        assert_eq!(
            missing.reason.as_deref(),
            Some("no GBP rate loaded for 2024")
        );
        assert_eq!(missing.amount, None);
        let missing = table.convert(amount("5"), &c("GBP"), &c("CHF"), Some(2023));
        assert_eq!(
            missing.reason.as_deref(),
            Some("no GBP or CHF rate loaded for 2023")
        );
        let no_year = table.convert(amount("5"), &c("USD"), &c("EUR"), None);
        assert_eq!(
            (no_year.reason.as_deref(), no_year.year),
            (Some(NO_YEAR), None)
        );
        let same = table.convert(amount("5.50"), &c("USD"), &c("USD"), None);
        assert_eq!(
            (same.amount.as_deref(), same.rate.as_deref()),
            (Some("5.50"), Some("1"))
        );
    }

    #[test]
    fn both_csv_layouts_parse() {
        let long = RatesFile::parse_csv(
            b"\xEF\xBB\xBFDate,Currency,Rate\n2024-01-02,usd,1.0956\n2024-01-02,JPY,155.8\n",
        )
        .unwrap();
        assert_eq!(long.rates.len(), 2);
        assert_eq!(long.rates[0].currency.as_str(), "USD");
        let trailing = RatesFile::parse_csv(b"date,currency,rate,\n2024-01-02,USD,1.1,\n").unwrap();
        assert_eq!(
            trailing.rates.len(),
            1,
            "an empty trailing column is tolerated"
        );
        let filled =
            RatesFile::parse_csv(b"date,currency,rate,\n2024-01-02,USD,1.1,x\n").unwrap_err();
        assert_eq!(
            filled[0].render("f"),
            "f:2: column 4: has a value but no column name"
        );
        let wide = RatesFile::parse_csv(
            b"Date,USD,JPY,CYP,\n2024-01-03,1.0919,N/A,,\n2024-01-02,1.0956,155.8,0.5851,\n",
        )
        .unwrap();
        assert_eq!(wide.rates.len(), 3);
        assert_eq!(
            wide.skipped,
            BTreeMap::from([("CYP".to_owned(), 1)]),
            "withdrawn: skipped, counted"
        );
        let daily =
            RatesFile::parse_csv(b"Date, USD, JPY, \n02 January 2024, 1.0956, 155.80, \n").unwrap();
        assert_eq!(
            daily.rates[0].date,
            NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()
        );
    }

    #[test]
    fn csv_errors_name_lines_and_columns() {
        let errors = RatesFile::parse_csv(b"date,currency,rate\n2024-13-01,USD,1\n2024-01-02,EUR,1\n2024-01-02,USD,0\n2024-01-03,USD,1.1\n2024-01-03,usd,1.2\n2024-01-04,XYZ,-1\n").unwrap_err();
        let rendered: Vec<String> = errors.iter().map(|e| e.render("r.csv")).collect();
        assert_eq!(rendered.len(), 6, "{rendered:#?}");
        assert!(
            rendered[0].starts_with("r.csv:2: column date: "),
            "{rendered:#?}"
        );
        assert!(rendered[1].starts_with("r.csv:3: column currency: EUR is the base"));
        assert!(rendered[2].starts_with("r.csv:4: column rate: "));
        assert!(
            rendered[3].starts_with("r.csv:6: USD on 2024-01-03 is given twice: first on line 5")
        );
        assert!(rendered[4].starts_with("r.csv:7: column currency: "));
        assert!(rendered[5].starts_with("r.csv:7: column rate: "));
        let missing = RatesFile::parse_csv(b"date,currency\n2024-01-02,USD\n").unwrap_err();
        assert_eq!(
            missing[0].render("r.csv"),
            "r.csv:1: the header has no column rate (the long layout is date,currency,rate)"
        );
        let bad_bytes = RatesFile::parse_csv(b"Date,USD\n2024-01-02,1.0\xE9\n").unwrap_err();
        assert_eq!(bad_bytes[0].field_error().field, "line 2, column USD");
        assert!(RatesFile::parse_csv(b"").is_err());
        assert!(RatesFile::parse_csv(b"Date,USD\n").is_err());
        let unknown = RatesFile::parse_csv(b"Date,USD,EUR\n2024-01-02,1,1\n").unwrap_err();
        assert_eq!(
            unknown[0].render("f"),
            "f:1: column EUR: EUR is the base: its rate is 1 by definition and cannot be loaded"
        );
    }
}

super::string_schema!(
    Rate,
    r"^[0-9]{1,12}(\.[0-9]{1,10})?$",
    "Units of a currency per 1 EUR, an exact decimal string",
    "1.0823"
);
