//! The export format: the whole store as one JSON document, also the import
//! format and the shape of the bundled seed data.

use serde::{Deserialize, Serialize};

use super::agreement::{AgreementBody, AgreementDraft};
use super::area::{AreaBody, AreaDraft};
use super::partner::{PartnerBody, PartnerCode, PartnerDraft};
use super::{FieldError, Problems};

/// Sections in dependency order: partners and areas before the agreements
/// that name them. A missing section leaves that part of the store as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dataset {
    pub partners: Vec<PartnerDraft>,
    pub areas: Vec<AreaDraft>,
    pub agreements: Vec<AgreementDraft>,
}

/// The body of an import: any section may be left out.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetBody {
    pub partners: Option<Vec<PartnerBody>>,
    pub areas: Option<Vec<AreaBody>>,
    pub agreements: Option<Vec<AgreementBody>>,
}

fn prefixed(prefix: String, errors: Vec<FieldError>) -> impl Iterator<Item = FieldError> {
    errors.into_iter().map(move |e| FieldError {
        field: format!("{prefix}.{}", e.field),
        ..e
    })
}

impl DatasetBody {
    /// Parses every record, reporting all problems with their paths. In an
    /// import a partner must be named by its code and every agreement needs its id.
    pub fn parse(self) -> Result<Dataset, Vec<FieldError>> {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut dataset = Dataset::default();
        for (i, body) in self.partners.unwrap_or_default().into_iter().enumerate() {
            match body.parse() {
                Ok(draft) => dataset.partners.push(draft),
                Err(e) => errors.extend(prefixed(format!("partners[{i}]"), e)),
            }
        }
        for (i, body) in self.areas.unwrap_or_default().into_iter().enumerate() {
            match body.parse() {
                Ok(draft) => dataset.areas.push(draft),
                Err(e) => errors.extend(prefixed(format!("areas[{i}]"), e)),
            }
        }
        for (i, body) in self.agreements.unwrap_or_default().into_iter().enumerate() {
            let partner = body
                .partner_ref()
                .and_then(|r| r.map(|r| PartnerCode::parse(&r)).transpose());
            if body.id.is_none() {
                errors.push(FieldError::new(
                    format!("agreements[{i}].id"),
                    "is required in an import",
                ));
            }
            match body.parse(partner) {
                Ok(draft) => dataset.agreements.push(draft),
                Err(e) => errors.extend(prefixed(format!("agreements[{i}]"), e)),
            }
        }
        let mut problems = Problems::new();
        duplicates(
            &mut problems,
            "partners",
            dataset.partners.iter().map(|p| p.code.as_str()),
        );
        duplicates(
            &mut problems,
            "areas",
            dataset.areas.iter().map(|a| a.code.as_str()),
        );
        duplicates(
            &mut problems,
            "agreements",
            dataset
                .agreements
                .iter()
                .map(|a| a.id.as_deref().unwrap_or_default()),
        );
        errors.extend(problems.into_errors());
        if errors.is_empty() {
            Ok(dataset)
        } else {
            Err(errors)
        }
    }
}

fn duplicates<'a>(problems: &mut Problems, section: &str, keys: impl Iterator<Item = &'a str>) {
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (i, key) in keys.enumerate() {
        if !seen.insert(key) {
            problems.add(
                &format!("{section}[{i}]"),
                format!("{key:?} appears more than once"),
            );
        }
    }
}

/// The most errors an import reports; past it they are only counted.
pub const MAX_IMPORT_ERRORS: usize = 1_000;

/// Why an import body could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Not JSON (or more than one JSON value).
    Syntax(String),
    /// A value of the wrong type at `path`: (path, message).
    Type(String, String),
    /// Valid JSON whose records are not valid: every error (at most
    /// [`MAX_IMPORT_ERRORS`], then a count of the rest).
    Invalid(Vec<FieldError>),
}

/// Reads an import body agreement by agreement: each is parsed into its
/// draft as it is read and its body dropped, and once one is invalid the
/// rest are only checked, not kept, with errors past [`MAX_IMPORT_ERRORS`]
/// only counted. So the memory an import takes is its bytes plus the drafts
/// of a valid one, not a copy of every record and every error.
pub fn read(reader: impl std::io::Read) -> Result<Dataset, ReadError> {
    let deserializer = &mut serde_json::Deserializer::from_reader(reader);
    let streamed: Streamed = serde_path_to_error::deserialize(&mut *deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let message = inner.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            ReadError::Type(if path == "." { String::new() } else { path }, message)
        } else {
            ReadError::Syntax(inner.to_string())
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ReadError::Syntax(e.to_string()))?;
    let Streamed {
        partners,
        areas,
        agreements,
        mut errors,
        more,
    } = streamed;
    let head = DatasetBody {
        partners,
        areas,
        agreements: None,
    };
    let mut dataset = match head.parse() {
        Ok(dataset) => dataset,
        Err(head_errors) => {
            errors.splice(0..0, head_errors);
            Dataset::default()
        }
    };
    let mut problems = Problems::new();
    duplicates(
        &mut problems,
        "agreements",
        agreements
            .iter()
            .map(|a| a.id.as_deref().unwrap_or_default()),
    );
    errors.extend(problems.into_errors());
    if errors.is_empty() {
        dataset.agreements = agreements;
        return Ok(dataset);
    }
    if more > 0 {
        errors.push(FieldError::new(
            "agreements",
            format!("... and {more} more error(s)"),
        ));
    }
    Err(ReadError::Invalid(errors))
}

/// The import body as it is read (see [`read`]).
struct Streamed {
    partners: Option<Vec<PartnerBody>>,
    areas: Option<Vec<AreaBody>>,
    agreements: Vec<AgreementDraft>,
    errors: Vec<FieldError>,
    more: usize,
}

impl<'de> Deserialize<'de> for Streamed {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StreamedVisitor)
    }
}

struct StreamedVisitor;

impl<'de> serde::de::Visitor<'de> for StreamedVisitor {
    type Value = Streamed;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with partners, areas and agreements")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Streamed, A::Error> {
        let mut streamed = Streamed {
            partners: None,
            areas: None,
            agreements: Vec::new(),
            errors: Vec::new(),
            more: 0,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "partners" => streamed.partners = map.next_value()?,
                "areas" => streamed.areas = map.next_value()?,
                "agreements" => map.next_value_seed(AgreementsSeed(&mut streamed))?,
                other => {
                    return Err(serde::de::Error::unknown_field(
                        other,
                        &["partners", "areas", "agreements"],
                    ));
                }
            }
        }
        Ok(streamed)
    }
}

struct AgreementsSeed<'a>(&'a mut Streamed);

impl<'de> serde::de::DeserializeSeed<'de> for AgreementsSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> serde::de::Visitor<'de> for AgreementsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of agreements")
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let streamed = self.0;
        let mut i = 0usize;
        while let Some(body) = seq.next_element::<AgreementBody>()? {
            let partner = body
                .partner_ref()
                .and_then(|r| r.map(|r| PartnerCode::parse(&r)).transpose());
            let mut errors = Vec::new();
            if body.id.is_none() {
                errors.push(FieldError::new(
                    format!("agreements[{i}].id"),
                    "is required in an import",
                ));
            }
            match body.parse(partner) {
                Ok(draft) if errors.is_empty() && streamed.errors.is_empty() => {
                    streamed.agreements.push(draft);
                }
                // Nothing will be written: what is valid need not be kept.
                Ok(_) => {}
                Err(e) => errors.extend(prefixed(format!("agreements[{i}]"), e)),
            }
            if !errors.is_empty() {
                streamed.agreements = Vec::new();
            }
            for error in errors {
                if streamed.errors.len() < MAX_IMPORT_ERRORS {
                    streamed.errors.push(error);
                } else {
                    streamed.more += 1;
                }
            }
            i += 1;
        }
        Ok(())
    }
}

/// What an import did to one row: a partner, an area, an agreement, or one of
/// an agreement's pledges, sources, area links or signatories.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RowChange {
    /// partner, area, agreement, pledge, source, agreement_area or signatory.
    pub entity: &'static str,
    /// The row's key: a code or id; an area link's area code; a signatory's name.
    pub id: String,
    /// The agreement a child row belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement_id: Option<String>,
    pub action: RowAction,
    /// Field by field, for a changed row.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RowAction {
    Added,
    Changed,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldChange {
    pub field: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// An agreement's child lists and the key that identifies a row in each.
const CHILD_LISTS: [(&str, &str, &str); 4] = [
    ("signatories", "signatory", "name"),
    ("areas", "agreement_area", "code"),
    ("pledges", "pledge", "id"),
    ("sources", "source", "id"),
];

/// The rows that differ between a record before and after an import, as an
/// editor would read them: the record's own fields, then each child row added,
/// changed field by field, or removed.
pub fn row_changes(
    entity: &'static str,
    id: &str,
    before: Option<serde_json::Value>,
    after: serde_json::Value,
) -> Vec<RowChange> {
    use serde_json::Value;
    let as_object = |value: Option<Value>| match value {
        Some(Value::Object(object)) => Some(object),
        _ => None,
    };
    let before = as_object(before);
    let mut after = as_object(Some(after)).unwrap_or_default();
    let mut changes = Vec::new();
    let is_agreement = entity == "agreement";
    let mut children = Vec::new();
    let mut before_fields = before.clone().unwrap_or_default();
    if is_agreement {
        for (list, child, key) in CHILD_LISTS {
            let old = before_fields.remove(list);
            let new = after.remove(list);
            children.push((child, key, old, new));
        }
    }
    match before {
        None => changes.push(RowChange {
            entity,
            id: id.to_owned(),
            agreement_id: None,
            action: RowAction::Added,
            fields: Vec::new(),
        }),
        Some(_) => {
            let fields = field_changes(&before_fields, &after);
            if !fields.is_empty() {
                changes.push(RowChange {
                    entity,
                    id: id.to_owned(),
                    agreement_id: None,
                    action: RowAction::Changed,
                    fields,
                });
            }
        }
    }
    for (child, key, old, new) in children {
        let rows = |list: Option<Value>| -> Vec<(String, serde_json::Map<String, Value>)> {
            match list {
                Some(Value::Array(items)) => items
                    .into_iter()
                    .filter_map(|item| match item {
                        Value::Object(object) => Some((
                            object
                                .get(key)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            object,
                        )),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let (old, new) = (rows(old), rows(new));
        let row = |row_id: &str, action, fields| RowChange {
            entity: child,
            id: row_id.to_owned(),
            agreement_id: Some(id.to_owned()),
            action,
            fields,
        };
        for (row_id, fields) in &new {
            match old.iter().find(|(old_id, _)| old_id == row_id) {
                None => changes.push(row(row_id, RowAction::Added, Vec::new())),
                Some((_, old_fields)) => {
                    let fields = field_changes(old_fields, fields);
                    if !fields.is_empty() {
                        changes.push(row(row_id, RowAction::Changed, fields));
                    }
                }
            }
        }
        for (row_id, _) in &old {
            if !new.iter().any(|(new_id, _)| new_id == row_id) {
                changes.push(row(row_id, RowAction::Removed, Vec::new()));
            }
        }
    }
    changes
}

fn field_changes(
    before: &serde_json::Map<String, serde_json::Value>,
    after: &serde_json::Map<String, serde_json::Value>,
) -> Vec<FieldChange> {
    let null = serde_json::Value::Null;
    let mut names: Vec<&String> = after.keys().chain(before.keys()).collect();
    names.dedup();
    let mut seen: Vec<&String> = Vec::new();
    let mut changes = Vec::new();
    for name in names {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let (old, new) = (
            before.get(name).unwrap_or(&null),
            after.get(name).unwrap_or(&null),
        );
        if old != new {
            changes.push(FieldChange {
                field: name.clone(),
                before: old.clone(),
                after: new.clone(),
            });
        }
    }
    changes
}
