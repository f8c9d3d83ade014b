//! Facts that are not plain facts: a field the sources disagree about
//! (contested) or one no source confirms (unverified) carries a marker with
//! a note and the sources on each side, shown next to the value. And the
//! place of signing, as structured fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::text::{optional_bounded, slug};
use super::{Problems, Vocabulary, vocabulary};

vocabulary!(
    /// Why a value is marked: sources disagree (contested, each side
    /// named), or no source confirms it (unverified: shown, never as fact).
    MarkerStatus {
        Contested => "contested",
        Unverified => "unverified",
    }
);

/// The fields of an agreement a marker or a source may name.
pub const AGREEMENT_FIELDS: &[&str] = &[
    "title",
    "title_uk",
    "kind",
    "status",
    "signed_on",
    "signed_at",
    "signed_place",
    "signatories",
    "term_years",
    "expires_on",
    "legally_binding",
    "summary",
    "text_url",
    "areas",
];

/// The fields of a pledge a marker may name.
pub const PLEDGE_FIELDS: &[&str] = &[
    "amount",
    "currency",
    "year_from",
    "year_to",
    "kind",
    "measure",
    "basis",
    "part_of",
    "in_agreement_text",
    "description",
];

impl<'de> Deserialize<'de> for MarkerStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        <Self as Vocabulary>::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A stored marker reads back as it was written (checked when written).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Marker {
    pub status: MarkerStatus,
    pub note: String,
    /// Sources (ids of the same agreement) that state the value.
    pub sources_for: Vec<String>,
    /// Sources that contradict it or call it unclear.
    pub sources_against: Vec<String>,
}

/// Markers by field name; empty for most records.
pub type Markers = BTreeMap<String, Marker>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkerBody {
    status: Option<String>,
    note: Option<String>,
    #[serde(default)]
    sources_for: Vec<String>,
    #[serde(default)]
    sources_against: Vec<String>,
}

/// Parses `{"field": {"status", "note", "sources_for", "sources_against"}}`;
/// `fields` are the names a marker may take. Source ids are checked against
/// the agreement's sources where the agreement is parsed.
pub fn parse_markers(problems: &mut Problems, value: Option<Value>, fields: &[&str]) -> Markers {
    let mut markers = Markers::new();
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return markers;
    };
    let Value::Object(members) = value else {
        problems.add(
            "markers",
            "must be an object of field name -> {status, note, sources_for, sources_against}",
        );
        return markers;
    };
    for (field, body) in members {
        let path = format!("markers.{field}");
        if !fields.contains(&field.as_str()) {
            problems.add(
                &path,
                format!(
                    "is not a field that can be marked; one of: {}",
                    fields.join(", ")
                ),
            );
            continue;
        }
        let body: MarkerBody = match serde_json::from_value(body) {
            Ok(body) => body,
            Err(e) => {
                problems.add(&path, e.to_string());
                continue;
            }
        };
        let status = problems
            .required(&format!("{path}.status"), body.status)
            .and_then(|s| problems.check(&format!("{path}.status"), MarkerStatus::parse(&s)));
        let note = problems
            .check(
                &format!("{path}.note"),
                optional_bounded(body.note.as_deref(), 2000),
            )
            .flatten();
        if note.is_none() {
            problems.add(
                &format!("{path}.note"),
                "is required: say what is contested or unverified, and by whom",
            );
        }
        let mut ids = |list: Vec<String>, name: &str| -> Vec<String> {
            list.iter()
                .enumerate()
                .filter_map(|(i, id)| problems.check(&format!("{path}.{name}[{i}]"), slug(id, 120)))
                .collect()
        };
        let sources_for = ids(body.sources_for, "sources_for");
        let sources_against = ids(body.sources_against, "sources_against");
        if let (Some(status), Some(note)) = (status, note) {
            markers.insert(
                field,
                Marker {
                    status,
                    note,
                    sources_for,
                    sources_against,
                },
            );
        }
    }
    markers
}

/// Where an agreement was signed, as fields a reader can group and compare
/// ("Kyiv" and "Kyiv, Ukraine" are one place). `signed_at` stays the text
/// to display.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Place {
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub venue: Option<String>,
    /// The summit or meeting, e.g. "G7 summit".
    pub event: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceBody {
    city: Option<String>,
    country: Option<String>,
    venue: Option<String>,
    event: Option<String>,
}

/// Parses `{"city", "country", "venue", "event"}`; all-null is no place.
pub fn parse_place(problems: &mut Problems, value: Option<Value>) -> Option<Place> {
    let value = value.filter(|v| !v.is_null())?;
    let body: PlaceBody = match serde_json::from_value(value) {
        Ok(body) => body,
        Err(e) => {
            problems.add("signed_place", e.to_string());
            return None;
        }
    };
    let mut text = |name: &str, value: Option<String>| {
        problems
            .check(
                &format!("signed_place.{name}"),
                optional_bounded(value.as_deref(), 200),
            )
            .flatten()
    };
    let city = text("city", body.city);
    let venue = text("venue", body.venue);
    let event = text("event", body.event);
    let country = body.country.filter(|c| !c.trim().is_empty()).and_then(|c| {
        let upper = c.trim().to_ascii_uppercase();
        let valid = upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_uppercase());
        if valid {
            Some(upper)
        } else {
            problems.add(
                "signed_place.country",
                "must be an ISO 3166-1 alpha-2 code such as IT",
            );
            None
        }
    });
    let place = Place {
        city,
        country,
        venue,
        event,
    };
    (place != Place::default()).then_some(place)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn markers_name_fields_status_and_a_note() {
        let mut problems = Problems::new();
        let markers = parse_markers(
            &mut problems,
            Some(
                json!({"legally_binding": {"status": "contested", "note": "Kyiv says binding", "sources_for": ["ua-us-2024-s1"], "sources_against": ["ua-us-2024-s3"]}}),
            ),
            AGREEMENT_FIELDS,
        );
        assert!(problems.into_errors().is_empty());
        assert_eq!(markers["legally_binding"].status, MarkerStatus::Contested);
        let mut problems = Problems::new();
        parse_markers(
            &mut problems,
            Some(
                json!({"colour": {"status": "contested", "note": "x"}, "title": {"status": "maybe"}}),
            ),
            AGREEMENT_FIELDS,
        );
        let fields: Vec<String> = problems
            .into_errors()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "markers.colour",
                "markers.title.status",
                "markers.title.note"
            ]
        );
    }

    #[test]
    fn places_are_structured() {
        let mut problems = Problems::new();
        let place = parse_place(
            &mut problems,
            Some(json!({"city": "Fasano", "country": "it", "venue": null, "event": "G7 summit"})),
        );
        assert!(problems.into_errors().is_empty());
        assert_eq!(place.unwrap().country.as_deref(), Some("IT"));
        let mut problems = Problems::new();
        assert_eq!(
            parse_place(&mut problems, Some(json!({"city": null}))),
            None
        );
        parse_place(&mut problems, Some(json!({"country": "Italy"})));
        assert_eq!(problems.into_errors().len(), 1);
    }
}
