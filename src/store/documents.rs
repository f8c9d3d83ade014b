//! An agreement's children as JSON the database builds: its area links,
//! sources and pledges (each pledge with its parts) come back as three
//! columns of the agreement's own row, so reading an agreement is one
//! statement and a page of them two, not one per kind of child.
//!
//! The objects are written once here over the dialect's JSON functions
//! ([`Dialect::JSON_OBJECT`], [`Dialect::json_array_of`]); the few values
//! that differ in JSON between the backends (an amount, a boolean) are
//! read by the documents' own types below.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::dialect::{Dialect, corrupt, from_json_text, vocabulary};
use crate::domain::agreement::AreaLink;
use crate::domain::area::AreaCode;
use crate::domain::marker::Markers;
use crate::domain::money::{Amount, Currency};
use crate::domain::pledge::Pledge;
use crate::domain::query::Include;
use crate::domain::source::Source;
use crate::store::StoreResult;

/// A statement's text built once per dialect and `shape`, and kept for the
/// life of the process: the texts are a few kilobytes each, so building
/// them again cost every read a noticeable share of its time, and there
/// are only a handful (two dialects, eight inclusions, a few statements).
pub(super) fn statement<D: Dialect>(
    shape: &'static str,
    include: Include,
    build: impl FnOnce() -> String,
) -> &'static str {
    type Key = (TypeId, &'static str, [bool; 3]);
    static TEXTS: LazyLock<Mutex<HashMap<Key, &'static str>>> = LazyLock::new(Default::default);
    let key = (
        TypeId::of::<D>(),
        shape,
        [include.areas, include.pledges, include.sources],
    );
    let texts = || TEXTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(text) = texts().get(&key) {
        return text;
    }
    // Built without the lock: a text may be built from another one.
    let built = build();
    texts()
        .entry(key)
        .or_insert_with(|| Box::leak(built.into_boxed_str()))
}

/// `{JSON_OBJECT}('key', value, ...)` of the pairs.
fn object<D: Dialect>(pairs: &[(&str, String)]) -> String {
    let fields: Vec<String> = pairs
        .iter()
        .map(|(key, value)| format!("'{key}', {value}"))
        .collect();
    format!("{}({})", D::JSON_OBJECT, fields.join(", "))
}

/// A source of the row `alias` as a JSON object.
pub(super) fn source_object<D: Dialect>(alias: &str) -> String {
    object::<D>(&[
        ("id", format!("{alias}.id")),
        ("agreement_id", format!("{alias}.agreement_id")),
        ("url", format!("{alias}.url")),
        ("title", format!("{alias}.title")),
        ("publisher", format!("{alias}.publisher")),
        ("published_on", format!("{alias}.published_on")),
        (
            "pledges",
            D::json_in_document(&format!("{alias}.pledge_ids")),
        ),
        ("fields", D::json_in_document(&format!("{alias}.fields"))),
        ("version", format!("{alias}.version")),
        ("created_at", format!("{alias}.created_at")),
        ("updated_at", format!("{alias}.updated_at")),
    ])
}

/// A pledge of the row `alias` as a JSON object, with the ids of the
/// pledges that are part of it (through the part_of index).
pub(super) fn pledge_object<D: Dialect>(alias: &str) -> String {
    let parts = format!(
        "(SELECT {} FROM pledges pp WHERE pp.part_of = {alias}.id)",
        D::json_array_of("pp.id", "pp.id")
    );
    object::<D>(&[
        ("id", format!("{alias}.id")),
        ("agreement_id", format!("{alias}.agreement_id")),
        ("amount", D::amount_in_document(&format!("{alias}.amount"))),
        ("currency", format!("{alias}.currency")),
        ("year_from", format!("{alias}.year_from")),
        ("year_to", format!("{alias}.year_to")),
        ("kind", format!("{alias}.kind")),
        ("measure", format!("{alias}.measure")),
        ("basis", format!("{alias}.basis")),
        ("part_of", format!("{alias}.part_of")),
        ("parts", parts),
        ("in_agreement_text", format!("{alias}.in_agreement_text")),
        ("description", format!("{alias}.description")),
        ("note", format!("{alias}.note")),
        ("markers", D::json_in_document(&format!("{alias}.markers"))),
        ("version", format!("{alias}.version")),
        ("created_at", format!("{alias}.created_at")),
        ("updated_at", format!("{alias}.updated_at")),
    ])
}

/// The columns `areas`, `sources` and `pledges` of the agreement whose id
/// is the SQL expression `agreement_id`: JSON arrays of what `include`
/// asks for, NULL for the rest. A pledge lists its sources, so pledges
/// bring the sources along.
pub(super) fn children_columns<D: Dialect>(agreement_id: &str, include: Include) -> String {
    let areas = if include.areas {
        let link = object::<D>(&[
            ("code", "l.area_code".into()),
            ("name", "ar.name".into()),
            ("name_uk", "ar.name_uk".into()),
            ("detail", "l.detail".into()),
        ]);
        format!(
            "(SELECT {} FROM agreement_areas l JOIN areas ar ON ar.code = l.area_code WHERE \
             l.agreement_id = {agreement_id})",
            D::json_array_of(&link, "l.area_code")
        )
    } else {
        "NULL".into()
    };
    let sources = if include.sources || include.pledges {
        format!(
            "(SELECT {} FROM sources so WHERE so.agreement_id = {agreement_id})",
            D::json_array_of(&source_object::<D>("so"), "so.position")
        )
    } else {
        "NULL".into()
    };
    let pledges = if include.pledges {
        format!(
            "(SELECT {} FROM pledges pl WHERE pl.agreement_id = {agreement_id})",
            D::json_array_of(&pledge_object::<D>("pl"), "pl.position")
        )
    } else {
        "NULL".into()
    };
    format!("{areas} AS areas_doc, {sources} AS sources_doc, {pledges} AS pledges_doc")
}

/// An area link as the database wrote it.
#[derive(Deserialize)]
pub(super) struct AreaLinkDocument {
    code: String,
    name: String,
    name_uk: Option<String>,
    detail: Option<String>,
}

impl From<AreaLinkDocument> for AreaLink {
    fn from(link: AreaLinkDocument) -> Self {
        AreaLink {
            code: AreaCode::from_trusted(link.code),
            name: link.name,
            name_uk: link.name_uk,
            detail: link.detail,
        }
    }
}

/// A source as the database wrote it: the domain's own shape.
#[derive(Deserialize)]
pub(super) struct SourceDocument {
    id: String,
    agreement_id: String,
    url: String,
    title: String,
    publisher: Option<String>,
    published_on: Option<NaiveDate>,
    pledges: Vec<String>,
    fields: Vec<String>,
    version: i64,
    #[serde(deserialize_with = "timestamp")]
    created_at: DateTime<Utc>,
    #[serde(deserialize_with = "timestamp")]
    updated_at: DateTime<Utc>,
}

impl From<SourceDocument> for Source {
    fn from(source: SourceDocument) -> Self {
        Source {
            id: source.id,
            agreement_id: source.agreement_id,
            url: source.url,
            title: source.title,
            publisher: source.publisher,
            published_on: source.published_on,
            pledges: source.pledges,
            fields: source.fields,
            version: source.version,
            created_at: source.created_at,
            updated_at: source.updated_at,
        }
    }
}

/// A pledge as the database wrote it, its vocabulary and amount still
/// text (parsed by [`PledgeDocument::into_pledge`]).
#[derive(Deserialize)]
pub(super) struct PledgeDocument {
    id: String,
    agreement_id: String,
    amount: String,
    currency: String,
    year_from: Option<i64>,
    year_to: Option<i64>,
    kind: String,
    measure: Option<String>,
    basis: String,
    part_of: Option<String>,
    parts: Vec<String>,
    #[serde(deserialize_with = "flag")]
    in_agreement_text: Option<bool>,
    description: Option<String>,
    note: Option<String>,
    markers: Markers,
    version: i64,
    #[serde(deserialize_with = "timestamp")]
    created_at: DateTime<Utc>,
    #[serde(deserialize_with = "timestamp")]
    updated_at: DateTime<Utc>,
}

impl PledgeDocument {
    /// The pledge, without its sources (the caller has the agreement's).
    pub(super) fn into_pledge(self) -> StoreResult<Pledge> {
        let mut parts = self.parts;
        parts.sort();
        Ok(Pledge {
            amount: Amount::parse(&self.amount).map_err(|e| corrupt("amount", e))?,
            currency: Currency::parse(&self.currency).map_err(|e| corrupt("currency", e))?,
            converted: None,
            year_from: self.year_from,
            year_to: self.year_to,
            kind: vocabulary(&self.kind)?,
            measure: self.measure.as_deref().map(vocabulary).transpose()?,
            basis: vocabulary(&self.basis)?,
            part_of: self.part_of,
            parts,
            in_agreement_text: self.in_agreement_text,
            description: self.description,
            note: self.note,
            markers: self.markers,
            sources: Vec::new(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            id: self.id,
            agreement_id: self.agreement_id,
        })
    }
}

/// A boolean as JSON true/false (PostgreSQL) or 1/0 (SQLite, which has no
/// boolean type), or null.
fn flag<'de, De: serde::Deserializer<'de>>(deserializer: De) -> Result<Option<bool>, De::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
    }
    Ok(
        Option::<Flag>::deserialize(deserializer)?.map(|flag| match flag {
            Flag::Bool(b) => b,
            Flag::Int(i) => i != 0,
        }),
    )
}

/// A timestamp as either backend writes it in JSON: RFC 3339, with a `T`
/// or a space between date and time.
fn timestamp<'de, De: serde::Deserializer<'de>>(
    deserializer: De,
) -> Result<DateTime<Utc>, De::Error> {
    let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
    DateTime::parse_from_rfc3339(&text)
        .or_else(|_| chrono::DateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .map(|at| at.with_timezone(&Utc))
        .map_err(serde::de::Error::custom)
}

/// The children of one agreement, from its three document columns.
pub(super) struct ChildDocuments {
    pub areas: Vec<AreaLink>,
    pub sources: Vec<Source>,
    pub pledges: Vec<Pledge>,
}

impl ChildDocuments {
    /// Reads the columns [`children_columns`] made; `include` says which
    /// the caller wanted (sources come along with pledges, and are
    /// dropped again unless asked for).
    pub(super) fn read(
        areas: Option<&str>,
        sources: Option<&str>,
        pledges: Option<&str>,
        include: Include,
    ) -> StoreResult<Self> {
        let areas: Vec<AreaLinkDocument> = areas
            .map(|text| from_json_text("area links", text))
            .transpose()?
            .unwrap_or_default();
        let sources: Vec<Source> = sources
            .map(|text| from_json_text::<Vec<SourceDocument>>("sources", text))
            .transpose()?
            .unwrap_or_default()
            .into_iter()
            .map(Source::from)
            .collect();
        let mut read_pledges = Vec::new();
        for document in pledges
            .map(|text| from_json_text::<Vec<PledgeDocument>>("pledges", text))
            .transpose()?
            .unwrap_or_default()
        {
            let mut pledge = document.into_pledge()?;
            pledge.sources = sources
                .iter()
                .filter(|s| s.pledges.contains(&pledge.id))
                .cloned()
                .collect();
            read_pledges.push(pledge);
        }
        Ok(ChildDocuments {
            areas: areas.into_iter().map(AreaLink::from).collect(),
            sources: if include.sources { sources } else { Vec::new() },
            pledges: read_pledges,
        })
    }
}
