//! The wire shape of a cooperation area and its parsing into an [`AreaDraft`].

use serde::Deserialize;

use crate::domain::area::{AreaCode, AreaDraft};
use crate::domain::text::{bounded, optional_bounded};
use crate::domain::{FieldError, Problems};

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
