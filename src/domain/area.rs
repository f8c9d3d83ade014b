//! Cooperation areas: the vocabulary of what partners cooperate on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::text::{bounded, optional_bounded, slug};
use super::{FieldError, Problems};

/// A slug such as `demining` or `cyber-security`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct AreaCode(String);

/// The longest area code.
pub const MAX_CODE_CHARS: usize = 64;

impl AreaCode {
    pub fn parse(text: &str) -> Result<Self, String> {
        slug(text, MAX_CODE_CHARS).map(Self)
    }

    pub fn from_trusted(code: String) -> Self {
        Self(code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Area {
    pub code: AreaCode,
    pub name: String,
    /// The name in Ukrainian; null until one is given.
    pub name_uk: Option<String>,
    pub description: Option<String>,
    /// How many agreements cooperate in this area.
    pub agreement_count: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaDraft {
    pub code: AreaCode,
    pub name: String,
    pub name_uk: Option<String>,
    pub description: Option<String>,
}

impl Area {
    pub fn draft(&self) -> AreaDraft {
        AreaDraft {
            code: self.code.clone(),
            name: self.name.clone(),
            name_uk: self.name_uk.clone(),
            description: self.description.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaBody {
    #[schema(
        required = true,
        nullable = false,
        pattern = r"^\s*[A-Za-z0-9]+(-[A-Za-z0-9]+)*\s*$",
        max_length = 64,
        example = "demining"
    )]
    pub code: Option<String>,
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// The name in Ukrainian.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub name_uk: Option<String>,
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
    #[schema(ignore)]
    #[serde(default)]
    pub agreement_count: Option<serde::de::IgnoredAny>,
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

impl AreaBody {
    pub fn parse(self) -> Result<AreaDraft, Vec<FieldError>> {
        let mut problems = Problems::new();
        let code = problems
            .required("code", self.code)
            .and_then(|c| problems.check("code", AreaCode::parse(&c)));
        let name = problems
            .required("name", self.name)
            .and_then(|n| problems.check("name", bounded(&n, 200)));
        let name_uk = problems
            .check("name_uk", optional_bounded(self.name_uk.as_deref(), 200))
            .flatten();
        let description = problems
            .check(
                "description",
                optional_bounded(self.description.as_deref(), 2000),
            )
            .flatten();
        match (code, name) {
            (Some(code), Some(name)) if problems.is_empty() => Ok(AreaDraft {
                code,
                name,
                name_uk,
                description,
            }),
            _ => Err(problems.into_errors()),
        }
    }
}

super::string_schema!(
    AreaCode,
    "^[a-z0-9]+(-[a-z0-9]+)*$",
    "A cooperation area's code: a slug of at most 64 characters",
    "demining"
);
