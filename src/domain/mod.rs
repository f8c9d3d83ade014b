//! The types that are always valid. Request bodies are deserialised into loose
//! `*Body` shapes (see [`crate::wire`]) and then parsed into these; nothing
//! downstream re-checks them.

pub mod agreement;
pub mod api_key;
pub mod area;
pub mod checks;
pub mod clock;
mod currency_codes;
pub mod dataset;
pub mod lang;
pub mod marker;
pub mod money;
pub mod partner;
pub mod pledge;
pub mod query;
pub mod rates;
pub mod source;
pub mod text;
pub mod webhook;

use serde::Serialize;

/// One reason a request body was rejected, addressed by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// For a reference that names nothing (a partner): what it may have
    /// meant, nearest first, for a client to offer as choices.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub closest_matches: Vec<Suggestion>,
}

/// Something a mistyped reference may have meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub code: String,
    pub name: String,
    pub name_uk: Option<String>,
}

/// A field name or message longer than this is cut: they may quote what a
/// client sent, and an answer must not grow with a hostile request.
const MAX_FIELD_ERROR_CHARS: usize = 300;

fn cut(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MAX_FIELD_ERROR_CHARS) {
        text.truncate(at);
        text.push('…');
    }
    text
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: cut(field.into()),
            message: cut(message.into()),
            closest_matches: Vec::new(),
        }
    }

    pub fn with_matches(mut self, closest_matches: Vec<Suggestion>) -> Self {
        self.closest_matches = closest_matches;
        self
    }
}

/// Collects every problem in a body so a client learns all of them at once,
/// not one per round trip.
#[derive(Debug, Default)]
pub struct Problems {
    errors: Vec<FieldError>,
    prefix: String,
}

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    /// Problems of a nested object, reported under `prefix` (e.g. `pledges[0]`).
    pub fn nested(prefix: &str) -> Self {
        Self {
            errors: Vec::new(),
            prefix: prefix.to_owned(),
        }
    }

    fn path(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_owned()
        } else if field.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let path = self.path(field);
        self.errors.push(FieldError::new(path, message));
    }

    /// Keeps the value when it parsed, records the message when it did not.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    /// A field that must be present.
    pub fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.add(field, "is required");
        }
        value
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// Parses one body with `parse_into`, all or nothing.
    pub fn whole<T>(
        parse_into: impl FnOnce(&mut Problems) -> Option<T>,
    ) -> Result<T, Vec<FieldError>> {
        let mut problems = Problems::new();
        match parse_into(&mut problems) {
            Some(value) if problems.is_empty() => Ok(value),
            _ => Err(problems.into_errors()),
        }
    }

    /// Parses a list of bodies (`pledges`, `sources`), each with its index
    /// in the paths of its problems; keeps what parsed.
    pub fn each<B, T>(
        &mut self,
        field: &str,
        bodies: Vec<B>,
        max: usize,
        parse_into: impl Fn(B, &mut Problems) -> Option<T>,
    ) -> Vec<T> {
        if bodies.len() > max {
            self.add(field, format!("must have at most {max} entries"));
        }
        bodies
            .into_iter()
            .enumerate()
            .filter_map(|(i, body)| {
                let mut nested = Problems::nested(&self.path(&format!("{field}[{i}]")));
                let parsed = parse_into(body, &mut nested);
                self.errors.extend(nested.errors);
                parsed
            })
            .collect()
    }
}

/// Parses a closed vocabulary (`kind`, `status`, ...) from its snake_case name.
pub trait Vocabulary: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;

    fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                format!("must be one of: {}", names.join(", "))
            })
    }
}

/// Declares a closed vocabulary enum with its wire names.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $crate::domain::Vocabulary for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::domain::Vocabulary::as_str(*self))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                <Self as $crate::domain::Vocabulary>::parse(text)
            }
        }
    };
}
pub(crate) use vocabulary;

/// Documents a type that travels as a string of a known shape.
macro_rules! string_schema {
    ($name:ty, $pattern:literal, $description:literal, $example:literal) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .description(Some($description))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use string_schema;

/// The kinds of record the history and the change feed hold (`dataset`:
/// a bulk load of generated agreements).
pub const ENTITIES: [&str; 7] = [
    "agreement",
    "pledge",
    "source",
    "partner",
    "area",
    "rate",
    "dataset",
];
