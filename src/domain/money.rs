//! Money: exact decimal amounts and ISO 4217 currencies. No float ever
//! touches a figure; amounts travel as JSON strings.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use super::currency_codes::ISO_4217_CODES;

/// The largest total of one currency over the whole store, in minor units:
/// below `i64::MAX` with room, so every sum the stats compute is exact.
pub const MAX_TOTAL_MINOR: i64 = 9_000_000_000_000_000_000;

/// A positive amount with at most two decimal places and at most 16 integer
/// digits, so its minor units (cents) fit a 64-bit integer exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Decimal);

const MAX_INTEGER_DIGITS: usize = 16;

impl Amount {
    /// Parses the decimal text a client sent: digits, an optional point and
    /// up to two decimals. No sign, exponent, separators or spaces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (integer, fraction) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if text.starts_with('-') {
            return Err("must not be negative".into());
        }
        if !digits_only(integer) || fraction.is_some_and(|f| !digits_only(f)) {
            return Err(
                "must be a decimal number written as a string, such as \"4500000000\" or \"1000000.50\""
                    .into(),
            );
        }
        if fraction.is_some_and(|f| f.trim_end_matches('0').len() > 2) {
            return Err("must have at most two decimal places".into());
        }
        if integer.trim_start_matches('0').len() > MAX_INTEGER_DIGITS {
            return Err(format!(
                "must have at most {MAX_INTEGER_DIGITS} integer digits"
            ));
        }
        let value =
            Decimal::from_str(text).map_err(|_| "is not a valid decimal number".to_string())?;
        Self::from_decimal(value)
    }

    /// Accepts a decimal read back from a store (e.g. NUMERIC(20, 2)).
    pub fn from_decimal(value: Decimal) -> Result<Self, String> {
        if value <= Decimal::ZERO {
            return Err("must be greater than zero".into());
        }
        if value.normalize().scale() > 2 {
            return Err("must have at most two decimal places".into());
        }
        Ok(Self(value.normalize()))
    }

    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// The amount in hundredths: exact, since there are at most two decimals.
    pub fn minor_units(&self) -> i64 {
        let mut cents = self.0;
        cents.rescale(2);
        i64::try_from(cents.mantissa()).unwrap_or(i64::MAX)
    }

    /// The amount of `minor` hundredths (a sum of minor units, say).
    pub fn from_minor_units(minor: i64) -> Result<Self, String> {
        Self::from_decimal(Decimal::new(minor, 2))
    }
}

/// The canonical text: whole amounts without decimals ("4500000000"), others
/// with exactly two ("1000000.50"), so the same figure always reads the same.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.fract().is_zero() {
            write!(f, "{}", self.0.trunc().normalize())
        } else {
            let mut two_places = self.0;
            two_places.rescale(2);
            write!(f, "{two_places}")
        }
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An ISO 4217 alphabetic code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Currency(String);

impl Currency {
    pub fn parse(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        if ISO_4217_CODES.binary_search(&upper.as_str()).is_ok() {
            Ok(Self(upper))
        } else {
            Err(format!(
                "{text:?} is not an ISO 4217 currency code (e.g. USD, EUR, GBP)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Decimal places of the currency's minor unit (ISO 4217): none for the
    /// yen or the króna, three for the Kuwaiti dinar, two for most.
    pub fn minor_unit(&self) -> u32 {
        if ZERO_DECIMAL.binary_search(&self.0.as_str()).is_ok() {
            0
        } else if THREE_DECIMAL.binary_search(&self.0.as_str()).is_ok() {
            3
        } else if FOUR_DECIMAL.binary_search(&self.0.as_str()).is_ok() {
            4
        } else {
            2
        }
    }

    /// An amount is written in this currency's units: `1.50 JPY` is not an
    /// amount of yen. (The service keeps at most two decimals whatever the
    /// currency allows.)
    pub fn check(&self, amount: &Amount) -> Result<(), String> {
        let places = amount.as_decimal().normalize().scale();
        if places > self.minor_unit() {
            return Err(match self.minor_unit() {
                0 => format!(
                    "{} has no minor unit (ISO 4217): the amount must be a whole number",
                    self.0
                ),
                n => format!("{} has {n} decimal places at most (ISO 4217)", self.0),
            });
        }
        Ok(())
    }
}

/// ISO 4217 currencies without a minor unit (sorted).
const ZERO_DECIMAL: [&str; 17] = [
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// ISO 4217 currencies with three decimal places (sorted).
const THREE_DECIMAL: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
/// ISO 4217 currencies with four decimal places (sorted).
const FOUR_DECIMAL: [&str; 2] = ["CLF", "UYW"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_render_canonically() {
        assert_eq!(
            Amount::parse("4500000000").unwrap().to_string(),
            "4500000000"
        );
        assert_eq!(
            Amount::parse("1000000.5").unwrap().to_string(),
            "1000000.50"
        );
        assert_eq!(
            Amount::parse("1000000.50").unwrap().to_string(),
            "1000000.50"
        );
        assert_eq!(
            Amount::parse("2500000000.00").unwrap().to_string(),
            "2500000000"
        );
        assert_eq!(Amount::parse("0.01").unwrap().to_string(), "0.01");
    }

    #[test]
    fn bad_amounts_are_refused() {
        for bad in [
            "-5", "0", "0.00", "1.234", "1e9", "", ".5", "5.", "1,000", " 5", "abc",
        ] {
            assert!(Amount::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Amount::parse("12345678901234567").is_err());
        assert!(Amount::parse("1234567890123456.99").is_ok());
    }

    #[test]
    fn minor_units_are_exact() {
        assert_eq!(
            Amount::parse("4500000000").unwrap().minor_units(),
            450_000_000_000
        );
        assert_eq!(
            Amount::parse("1000000.5").unwrap().minor_units(),
            100_000_050
        );
        assert_eq!(
            Amount::parse("9999999999999999.99").unwrap().minor_units(),
            999_999_999_999_999_999
        );
        assert_eq!(
            Amount::from_minor_units(100_000_050).unwrap().to_string(),
            "1000000.50"
        );
        assert_eq!(Amount::from_minor_units(30).unwrap().to_string(), "0.30");
    }

    #[test]
    fn store_decimals_come_back_canonical() {
        let stored = Decimal::from_str("4500000000.00").unwrap();
        assert_eq!(
            Amount::from_decimal(stored).unwrap().to_string(),
            "4500000000"
        );
    }

    #[test]
    fn amounts_respect_the_minor_unit() {
        let jpy = Currency::parse("JPY").unwrap();
        let isk = Currency::parse("isk").unwrap();
        let eur = Currency::parse("EUR").unwrap();
        assert!(jpy.check(&Amount::parse("1.50").unwrap()).is_err());
        assert!(isk.check(&Amount::parse("4000000000.5").unwrap()).is_err());
        assert!(jpy.check(&Amount::parse("1.00").unwrap()).is_ok());
        assert!(eur.check(&Amount::parse("1.50").unwrap()).is_ok());
        assert_eq!(Currency::parse("KWD").unwrap().minor_unit(), 3);
        for list in [&ZERO_DECIMAL[..], &THREE_DECIMAL[..], &FOUR_DECIMAL[..]] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "sorted");
            assert!(list.iter().all(|c| Currency::parse(c).is_ok()), "ISO 4217");
        }
    }

    #[test]
    fn currencies_are_iso_4217() {
        assert_eq!(Currency::parse("usd").unwrap().as_str(), "USD");
        assert!(Currency::parse("XYZ").is_err());
        assert!(Currency::parse("US").is_err());
    }
}

super::string_schema!(
    Amount,
    r"^[0-9]{1,16}(\.[0-9]{1,2})?$",
    "An exact decimal amount as a string: up to 16 integer digits and 2 decimals, never a float",
    "4500000000"
);
super::string_schema!(Currency, "^[A-Z]{3}$", "An ISO 4217 currency code", "USD");
