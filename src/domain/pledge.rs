//! Pledges: what a partner promised, in exact amounts, with their sources.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::marker::{Markers, PLEDGE_FIELDS, parse_markers};
use super::money::{Amount, Currency};
use super::rates::Converted;
use super::source::Source;
use super::text::optional_bounded;
use super::{FieldError, Problems, Vocabulary, vocabulary};

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
const YEARS: std::ops::RangeInclusive<i64> = 1991..=2100;

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

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PledgeBody {
    #[schema(pattern = r"^\s*[A-Za-z0-9]+(-[A-Za-z0-9]+)*\s*$", max_length = 120)]
    pub id: Option<String>,
    pub agreement_id: Option<String>,
    #[schema(value_type = String, required = true, nullable = false, pattern = r"^[0-9]{1,16}(\.[0-9]{1,2})?$", example = "4500000000")]
    pub amount: Option<Value>,
    #[schema(
        required = true,
        nullable = false,
        pattern = r"^\s*[A-Za-z]{3}\s*$",
        example = "USD"
    )]
    pub currency: Option<String>,
    #[schema(minimum = 1991, maximum = 2100)]
    pub year_from: Option<i64>,
    #[schema(minimum = 1991, maximum = 2100)]
    pub year_to: Option<i64>,
    #[schema(value_type = PledgeKind, required = true, nullable = false)]
    pub kind: Option<String>,
    #[schema(value_type = Option<PledgeMeasure>)]
    pub measure: Option<String>,
    /// `total` (the default) or `per_year`.
    #[schema(value_type = Option<PledgeBasis>)]
    pub basis: Option<String>,
    /// The id of the pledge (any agreement) this one is part of.
    #[schema(pattern = r"^\s*[A-Za-z0-9]+(-[A-Za-z0-9]+)*\s*$", max_length = 120)]
    pub part_of: Option<String>,
    #[schema(ignore)]
    #[serde(default)]
    pub parts: Option<serde::de::IgnoredAny>,
    /// Contested or unverified fields: `{"amount": {"status": "contested", "note": "...", "sources_for": [...], "sources_against": [...]}}`.
    #[schema(value_type = Option<Object>)]
    pub markers: Option<Value>,
    pub in_agreement_text: Option<bool>,
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub note: Option<String>,
    #[schema(ignore)]
    #[serde(default)]
    pub sources: Option<serde::de::IgnoredAny>,
    /// The version you edited (as in its ETag): a precondition exactly
    /// like If-Match; a stale one is a 412.
    #[serde(default)]
    pub version: Option<i64>,
    #[schema(ignore)]
    #[serde(default)]
    pub created_at: Option<serde::de::IgnoredAny>,
    #[schema(ignore)]
    #[serde(default)]
    pub updated_at: Option<serde::de::IgnoredAny>,
}

fn parse_amount(value: &Value) -> Result<Amount, String> {
    match value {
        Value::String(text) => Amount::parse(text),
        // Whole JSON numbers are exact, so they are accepted; fractions are not,
        // because a JSON parser may already have turned them into floats.
        Value::Number(n) if n.is_u64() => Amount::parse(&n.to_string()),
        Value::Number(n) if n.is_i64() => Err("must not be negative".into()),
        Value::Number(_) => Err(
            "must be a decimal string such as \"1000000.50\"; fractional JSON numbers are not exact"
                .into(),
        ),
        _ => Err("must be a decimal string such as \"4500000000\"".into()),
    }
}

fn parse_year(problems: &mut Problems, field: &str, year: Option<i64>) -> Option<i64> {
    let year = year?;
    if YEARS.contains(&year) {
        Some(year)
    } else {
        problems.add(
            field,
            format!(
                "must be a year between {} and {}",
                YEARS.start(),
                YEARS.end()
            ),
        );
        None
    }
}

impl PledgeBody {
    /// Parses a pledge; `problems` carries the path prefix (e.g. `pledges[2]`).
    pub fn parse_into(self, problems: &mut Problems) -> Option<PledgeDraft> {
        let id = self.id.and_then(|id| problems.check("id", child_id(&id)));
        let amount = problems
            .required("amount", self.amount.filter(|v| !v.is_null()))
            .and_then(|v| problems.check("amount", parse_amount(&v)));
        let currency = problems
            .required("currency", self.currency)
            .and_then(|c| problems.check("currency", Currency::parse(&c)));
        let year_from = parse_year(problems, "year_from", self.year_from);
        let year_to = parse_year(problems, "year_to", self.year_to);
        if let (Some(from), Some(to)) = (year_from, year_to)
            && to < from
        {
            problems.add("year_to", "must not be before year_from");
        }
        let kind = problems
            .required("kind", self.kind)
            .and_then(|k| problems.check("kind", PledgeKind::parse(&k)));
        let measure = self
            .measure
            .and_then(|m| problems.check("measure", PledgeMeasure::parse(&m)));
        let basis = match self.basis {
            None => Some(PledgeBasis::Total),
            Some(b) => problems.check("basis", PledgeBasis::parse(&b)),
        };
        if basis == Some(PledgeBasis::PerYear) && (year_from.is_none() || year_to.is_none()) {
            problems.add(
                "basis",
                "a per-year pledge needs year_from and year_to: the years it is promised for",
            );
        }
        let part_of = self
            .part_of
            .filter(|p| !p.trim().is_empty())
            .and_then(|p| problems.check("part_of", child_id(&p)));
        if let (Some(part_of), Some(id)) = (&part_of, &id)
            && part_of == id
        {
            problems.add("part_of", "must name another pledge, not this one");
        }
        if let (Some(amount), Some(currency)) = (&amount, &currency) {
            problems.check("amount", currency.check(amount));
        }
        let markers = parse_markers(problems, self.markers, PLEDGE_FIELDS);
        let description = problems
            .check(
                "description",
                optional_bounded(self.description.as_deref(), 2000),
            )
            .flatten();
        let note = problems
            .check("note", optional_bounded(self.note.as_deref(), 2000))
            .flatten();
        let draft = PledgeDraft {
            id,
            amount: amount?,
            currency: currency?,
            year_from,
            year_to,
            kind: kind?,
            measure,
            basis: basis?,
            part_of,
            in_agreement_text: self.in_agreement_text,
            description,
            note,
            markers,
        };
        if draft.counted_minor().is_none() {
            problems.add(
                "amount",
                "counted for each of its years, this amount is more than the service can total exactly",
            );
            return None;
        }
        Some(draft)
    }

    pub fn parse(self) -> Result<PledgeDraft, Vec<FieldError>> {
        Problems::whole(|problems| self.parse_into(problems))
    }
}
