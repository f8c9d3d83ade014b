//! `?convert=CUR` on pledge-bearing JSON answers: each pledge gains a
//! `converted` member computed from the annual average rates of its year
//! (see [`crate::domain::rates`]). Without the parameter nothing changes.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};

use serde::Deserialize;
use utoipa::IntoParams;

use super::params::CurrencyCode;
use crate::domain::FieldError;
use crate::domain::agreement::Agreement;
use crate::domain::money::Currency;
use crate::domain::pledge::Pledge;
use crate::domain::rates::RateTable;
use crate::error::ApiResult;
use crate::store::{AnnualFilter, Store};

/// The query parameter.
pub const CONVERT: &str = "convert";

/// `?convert=`, on every answer that holds pledges.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConvertParam {
    /// Adds each pledge's amount converted to this ISO 4217 currency at the annual average rate of its year (JSON only)
    #[param(value_type = Option<CurrencyCode>, inline)]
    pub convert: Option<String>,
}

impl ConvertParam {
    /// The currency named, if any, where `convert` is the only parameter.
    pub fn target(&self) -> ApiResult<Option<Currency>> {
        let mut errors = Vec::new();
        let target = target(self.convert.as_deref(), &mut errors);
        if errors.is_empty() {
            Ok(target)
        } else {
            Err(crate::error::ApiError::InvalidQuery(errors))
        }
    }
}

/// The currency `?convert=` names, if any; a bad one is an error of `convert`.
pub fn target(value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Currency> {
    match Currency::parse(value?) {
        Ok(currency) => Some(currency),
        Err(message) => {
            errors.push(FieldError::new(CONVERT, message));
            None
        }
    }
}

/// The year a pledge converts at: its first year, else its agreement's signing year.
pub fn pledge_year(pledge: &Pledge, signed_on: Option<NaiveDate>) -> Option<i64> {
    pledge
        .year_from
        .or_else(|| signed_on.map(|d| i64::from(d.year())))
}

/// The annual rates a response needs, read once, as of one rates revision.
pub struct Converter {
    target: Currency,
    table: RateTable,
    revision: i64,
}

impl Converter {
    /// Converts one agreement's pledges into `target`, when one is asked
    /// for; the converter (for its ETag) when it was.
    pub async fn agreement_into(
        store: &dyn Store,
        target: Option<Currency>,
        agreement: &mut Agreement,
    ) -> ApiResult<Option<Converter>> {
        let Some(target) = target else {
            return Ok(None);
        };
        let converter =
            Self::for_agreements(store, target, std::slice::from_ref(agreement)).await?;
        converter.convert_agreement(agreement);
        Ok(Some(converter))
    }

    /// Reads the annual averages of these (currency, year) pairs and of the
    /// target in those years: a handful of rows.
    pub async fn load(
        store: &dyn Store,
        target: Currency,
        needs: impl IntoIterator<Item = (Currency, Option<i64>)>,
    ) -> ApiResult<Self> {
        let mut currencies: BTreeSet<Currency> = BTreeSet::new();
        let mut years: BTreeSet<i64> = BTreeSet::new();
        for (currency, year) in needs {
            // Same currency: no rate needed.
            if currency != target
                && let Some(year) = year
            {
                years.insert(year);
                currencies.insert(currency);
            }
        }
        if !years.is_empty() {
            currencies.insert(target.clone());
        }
        currencies.retain(|c| c.as_str() != "EUR");
        let filter = AnnualFilter {
            currencies: currencies.into_iter().collect(),
            years: Some(years.into_iter().collect()),
        };
        let annual = if filter.currencies.is_empty() {
            // Nothing to read but the revision.
            store
                .annual_rates(&AnnualFilter {
                    currencies: Vec::new(),
                    years: Some(Vec::new()),
                })
                .await?
        } else {
            store.annual_rates(&filter).await?
        };
        Ok(Self {
            target,
            table: RateTable::new(annual.items),
            revision: annual.revision,
        })
    }

    /// For the pledges of these agreements.
    pub async fn for_agreements(
        store: &dyn Store,
        target: Currency,
        agreements: &[Agreement],
    ) -> ApiResult<Self> {
        let needs = agreements.iter().flat_map(|a| {
            a.pledges
                .iter()
                .map(move |p| (p.currency.clone(), pledge_year(p, a.signed_on)))
        });
        Self::load(store, target, needs.collect::<Vec<_>>()).await
    }

    pub fn table(&self) -> &RateTable {
        &self.table
    }

    pub fn convert_pledge(&self, pledge: &mut Pledge, signed_on: Option<NaiveDate>) {
        pledge.converted = Some(self.table.convert(
            pledge.amount,
            &pledge.currency,
            &self.target,
            pledge_year(pledge, signed_on),
        ));
    }

    pub fn convert_agreement(&self, agreement: &mut Agreement) {
        let signed_on = agreement.signed_on;
        for pledge in &mut agreement.pledges {
            self.convert_pledge(pledge, signed_on);
        }
    }

    /// The ETag of a converted single resource: its version, the currency and
    /// the rates revision, so a rates change is never answered 304. Weak: it
    /// tags a derived view, never a version to send back in If-Match.
    pub fn etag(&self, version: i64) -> String {
        format!(
            "W/\"{version}-{}-r{}\"",
            self.target.as_str(),
            self.revision
        )
    }
}
