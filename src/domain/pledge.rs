//! Pledges: what a partner promised, in exact amounts, with their sources.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::marker::Markers;
use super::money::{Amount, Currency};
use super::rates::Converted;
use super::source::Source;
use super::vocabulary;

vocabulary!(
    /// What kind of support a pledge is.
    PledgeKind {
        Military => "military",
        Financial => "financial",
        Humanitarian => "humanitarian",
        Reconstruction => "reconstruction",
        Mixed => "mixed",
    }
);

vocabulary!(
    /// Whether the amount is the whole promise, or promised again for every
    /// year from `year_from` to `year_to` ("at least ISK 4bn a year").
    PledgeBasis {
        Total => "total",
        PerYear => "per_year",
    }
);

vocabulary!(
    /// A multi-year promise, or money allocated for a given period.
    PledgeMeasure {
        Commitment => "commitment",
        Allocation => "allocation",
    }
);

pub use super::text::child_id;

/// Years a pledge can plausibly cover: from Ukraine's independence to 2100.
pub const YEARS: std::ops::RangeInclusive<i64> = 1991..=2100;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PledgeDraft {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub amount: Amount,
    pub currency: Currency,
    pub year_from: Option<i64>,
    pub year_to: Option<i64>,
    pub kind: PledgeKind,
    pub measure: Option<PledgeMeasure>,
    pub basis: PledgeBasis,
    /// The pledge (of any agreement) this one is a part of or restates:
    /// totals count the whole, never the part as well.
    pub part_of: Option<String>,
    pub in_agreement_text: Option<bool>,
    pub description: Option<String>,
    pub note: Option<String>,
    pub markers: Markers,
}

impl PledgeDraft {
    /// The years the amount counts for: each year of the range for a
    /// per-year pledge, else once.
    pub fn years_counted(&self) -> i64 {
        years_counted(self.basis, self.year_from, self.year_to)
    }

    /// What totals count of this pledge, in minor units: nothing for a part
    /// (its whole is counted), the amount times its years for a per-year
    /// pledge; None if that would not fit the service's exact totals.
    pub fn counted_minor(&self) -> Option<i64> {
        if self.part_of.is_some() {
            return Some(0);
        }
        self.amount
            .minor_units()
            .checked_mul(self.years_counted())
            .filter(|total| *total <= super::money::MAX_TOTAL_MINOR)
    }
}

fn years_counted(basis: PledgeBasis, from: Option<i64>, to: Option<i64>) -> i64 {
    match (basis, from, to) {
        (PledgeBasis::PerYear, Some(from), Some(to)) if to >= from => to - from + 1,
        _ => 1,
    }
}

/// A pledge as published: every figure comes with the sources that support it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Pledge {
    pub id: String,
    pub agreement_id: String,
    pub amount: Amount,
    pub currency: Currency,
    /// Only when a reader asked for it (`?convert=USD`); never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converted: Option<Converted>,
    pub year_from: Option<i64>,
    pub year_to: Option<i64>,
    pub kind: PledgeKind,
    pub measure: Option<PledgeMeasure>,
    /// `total`, or `per_year`: the amount each year from year_from to year_to.
    pub basis: PledgeBasis,
    /// The pledge this one is part of (never counted together with it).
    pub part_of: Option<String>,
    /// The pledges that are part of this one.
    pub parts: Vec<String>,
    pub in_agreement_text: Option<bool>,
    pub description: Option<String>,
    pub note: Option<String>,
    /// Contested or unverified fields, by name.
    #[schema(value_type = Object)]
    pub markers: Markers,
    pub sources: Vec<Source>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Pledge {
    pub fn draft(&self) -> PledgeDraft {
        PledgeDraft {
            id: Some(self.id.clone()),
            amount: self.amount,
            currency: self.currency.clone(),
            year_from: self.year_from,
            year_to: self.year_to,
            kind: self.kind,
            measure: self.measure,
            basis: self.basis,
            part_of: self.part_of.clone(),
            in_agreement_text: self.in_agreement_text,
            description: self.description.clone(),
            note: self.note.clone(),
            markers: self.markers.clone(),
        }
    }

    /// The years the amount counts for (see [`PledgeDraft::years_counted`]).
    pub fn years_counted(&self) -> i64 {
        years_counted(self.basis, self.year_from, self.year_to)
    }
}
