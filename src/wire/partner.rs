//! The wire shape of a partner and its parsing into a [`PartnerDraft`].

use serde::Deserialize;

use crate::domain::partner::{MAX_NAME_CHARS, PartnerCode, PartnerDraft, PartnerKind};
use crate::domain::text::{bounded, optional_bounded};
use crate::domain::{FieldError, Problems, Vocabulary};

/// The loose shape of a partner in a request body, before parsing.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerBody {
    #[schema(
        required = true,
        nullable = false,
        pattern = r"^\s*[A-Za-z][A-Za-z0-9]{1,7}\s*$",
        example = "JP"
    )]
    pub code: Option<String>,
    #[schema(pattern = r"^\s*([A-Za-z]{3})?\s*$", example = "JPN")]
    pub iso3: Option<String>,
    #[schema(value_type = PartnerKind, required = true, nullable = false)]
    pub kind: Option<String>,
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub name_uk: Option<String>,
    #[schema(max_items = 50, inline, value_type = Option<Vec<AliasText>>)]
    pub aliases: Option<Vec<String>>,
    // Read-only fields a client may echo back from a GET; ignored.
    #[schema(ignore)]
    #[serde(default)]
    pub agreement_count: Option<serde::de::IgnoredAny>,
    #[schema(ignore)]
    #[serde(default)]
    pub first_signed_on: Option<serde::de::IgnoredAny>,
    #[schema(ignore)]
    #[serde(default)]
    pub last_signed_on: Option<serde::de::IgnoredAny>,
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

const MAX_ALIASES: usize = 50;

impl PartnerBody {
    pub fn parse(self) -> Result<PartnerDraft, Vec<FieldError>> {
        let mut problems = Problems::new();
        let code = problems
            .required("code", self.code)
            .and_then(|c| problems.check("code", PartnerCode::parse(&c)));
        let iso3 = match self.iso3.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let upper = text.to_ascii_uppercase();
                if upper.len() == 3 && upper.bytes().all(|b| b.is_ascii_uppercase()) {
                    Some(upper)
                } else {
                    problems.add("iso3", "must be an ISO 3166-1 alpha-3 code such as JPN");
                    None
                }
            }
        };
        let kind = problems
            .required("kind", self.kind)
            .and_then(|k| problems.check("kind", PartnerKind::parse(&k)));
        let name = problems
            .required("name", self.name)
            .and_then(|n| problems.check("name", bounded(&n, MAX_NAME_CHARS)));
        let name_uk = problems
            .check(
                "name_uk",
                optional_bounded(self.name_uk.as_deref(), MAX_NAME_CHARS),
            )
            .flatten();
        let raw_aliases = self.aliases.unwrap_or_default();
        if raw_aliases.len() > MAX_ALIASES {
            problems.add(
                "aliases",
                format!("must have at most {MAX_ALIASES} entries"),
            );
        }
        let mut aliases: Vec<String> = Vec::new();
        for (i, alias) in raw_aliases.iter().enumerate() {
            if let Some(alias) =
                problems.check(&format!("aliases[{i}]"), bounded(alias, MAX_NAME_CHARS))
                && !aliases.contains(&alias)
            {
                aliases.push(alias);
            }
        }
        match (code, kind, name) {
            (Some(code), Some(kind), Some(name)) if problems.is_empty() => Ok(PartnerDraft {
                code,
                iso3,
                kind,
                name,
                name_uk,
                aliases,
            }),
            _ => Err(problems.into_errors()),
        }
    }
}

/// One alias: non-empty text of at most 200 characters.
#[derive(utoipa::ToSchema)]
#[schema(
    min_length = 1,
    max_length = 200,
    pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
)]
pub struct AliasText(#[allow(dead_code)] String);
