//! The wire shape of exchange rates sent as JSON, and its reading into a
//! [`RatesFile`]: every member a string, so no rate passes through a float.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::FieldError;
use crate::domain::rates::{
    DailyRate, Errors, Rate, RateItems, RatesFile, rate_date, rated_currency,
};

/// `{"items": [...]}`: rates as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatesBody {
    pub items: Vec<RateItemBody>,
}

/// One rate as JSON: every member a string. Also the body of a PUT, where
/// `date` and `currency` may repeat the path.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateItemBody {
    #[serde(default)]
    pub date: Option<Value>,
    #[serde(default)]
    pub currency: Option<Value>,
    #[serde(default)]
    pub rate: Option<Value>,
}

/// Reads one member of an item: a string, parsed.
fn item_field<T>(
    errors: &mut Errors<FieldError>,
    index: usize,
    name: &str,
    value: Option<Value>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Option<T> {
    let field = format!("items[{index}].{name}");
    match value {
        Some(Value::String(text)) => match parse(&text) {
            Ok(value) => Some(value),
            Err(message) => {
                errors.push(FieldError::new(field, message));
                None
            }
        },
        None | Some(Value::Null) => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                field,
                "must be a string (rates are decimal strings such as \"1.0823\", never JSON numbers)",
            ));
            None
        }
    }
}

impl RatesBody {
    /// Reads `{"items": [{"date", "currency", "rate"}, ...]}`; errors are
    /// addressed `items[3].rate`.
    pub fn parse(self) -> Result<RatesFile, Vec<FieldError>> {
        let mut gathered = RateItems::default();
        if self.items.is_empty() {
            gathered
                .errors
                .push(FieldError::new("items", "must hold at least one rate"));
        }
        for (i, item) in self.items.into_iter().enumerate() {
            let errors = &mut gathered.errors;
            let date = item_field(errors, i, "date", item.date, rate_date);
            let currency = item_field(errors, i, "currency", item.currency, rated_currency);
            let rate = item_field(errors, i, "rate", item.rate, Rate::parse);
            if let (Some(date), Some(currency), Some(rate)) = (date, currency, rate) {
                gathered.push(
                    i,
                    DailyRate {
                        currency,
                        date,
                        rate,
                    },
                );
            }
        }
        gathered.finish()
    }
}
