//! The wire shape of a pledge and its parsing into a [`PledgeDraft`].

use serde::Deserialize;
use serde_json::Value;

use crate::domain::marker::{PLEDGE_FIELDS, parse_markers};
use crate::domain::money::{Amount, Currency};
use crate::domain::pledge::{PledgeBasis, PledgeDraft, PledgeKind, PledgeMeasure, YEARS};
use crate::domain::text::{child_id, optional_bounded};
use crate::domain::{FieldError, Problems, Vocabulary};

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
