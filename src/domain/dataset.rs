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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetBody {
    pub partners: Option<Vec<PartnerBody>>,
    pub areas: Option<Vec<AreaBody>>,
    pub agreements: Option<Vec<AgreementBody>>,
}

fn prefixed(prefix: String, errors: Vec<FieldError>) -> impl Iterator<Item = FieldError> {
    errors.into_iter().map(move |e| FieldError {
        field: format!("{prefix}.{}", e.field),
        message: e.message,
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
    let mut seen: Vec<&str> = Vec::new();
    for (i, key) in keys.enumerate() {
        if seen.contains(&key) {
            problems.add(
                &format!("{section}[{i}]"),
                format!("{key:?} appears more than once"),
            );
        }
        seen.push(key);
    }
}
