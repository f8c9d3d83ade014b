//! The export format: the whole store as one JSON document, also the import
//! format and the shape of the bundled seed data.

use serde::Serialize;

use super::agreement::AgreementDraft;
use super::area::AreaDraft;
use super::partner::PartnerDraft;

/// Sections in dependency order: partners and areas before the agreements
/// that name them. A missing section leaves that part of the store as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dataset {
    pub partners: Vec<PartnerDraft>,
    pub areas: Vec<AreaDraft>,
    pub agreements: Vec<AgreementDraft>,
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
