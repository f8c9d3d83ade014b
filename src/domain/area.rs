//! Cooperation areas: the vocabulary of what partners cooperate on.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::text::slug;

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

super::string_schema!(
    AreaCode,
    "^[a-z0-9]+(-[a-z0-9]+)*$",
    "A cooperation area's code: a slug of at most 64 characters",
    "demining"
);
