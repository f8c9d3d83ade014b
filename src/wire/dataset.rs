//! The wire shape of an import or export document and its parsing into a
//! [`Dataset`], whole or streamed agreement by agreement.

use serde::Deserialize;

use super::agreement::AgreementBody;
use super::area::AreaBody;
use super::partner::PartnerBody;
use crate::domain::agreement::AgreementDraft;
use crate::domain::dataset::Dataset;
use crate::domain::partner::PartnerCode;
use crate::domain::{FieldError, Problems};

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
