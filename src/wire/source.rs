//! The wire shape of a source and its parsing into a [`SourceDraft`].

use serde::Deserialize;

use crate::domain::marker::AGREEMENT_FIELDS;
use crate::domain::source::SourceDraft;
use crate::domain::text::{bounded, child_id, optional_bounded, optional_date, web_url};
use crate::domain::{FieldError, Problems};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    #[schema(pattern = r"^\s*[A-Za-z0-9]+(-[A-Za-z0-9]+)*\s*$", max_length = 120)]
    pub id: Option<String>,
    pub agreement_id: Option<String>,
    /// The one pledge it supports (older form of `pledges`, still read).
    #[schema(
        pattern = r"^\s*[A-Za-z0-9]+(-[A-Za-z0-9]+)*\s*$",
        max_length = 120,
        deprecated
    )]
    pub pledge_id: Option<String>,
    /// Ids of the agreement's pledges it supports.
    #[schema(max_items = 200)]
    pub pledges: Option<Vec<String>>,
    /// Fields of the agreement it supports by name.
    #[schema(max_items = 20)]
    pub fields: Option<Vec<String>>,
    #[schema(
        required = true,
        nullable = false,
        max_length = 2048,
        pattern = r"^\s*(https?://(\[[0-9A-Fa-f:.]+\]|[^\s/?#\[\]:@]+)(:[0-9]{1,5})?([/?#][^\s]*)?)\s*$"
    )]
    pub url: Option<String>,
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    )]
    pub title: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub publisher: Option<String>,
    #[schema(value_type = Option<String>, pattern = r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2})?\s*$")]
    pub published_on: Option<String>,
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

impl SourceBody {
    pub fn parse_into(self, problems: &mut Problems) -> Option<SourceDraft> {
        let id = self.id.and_then(|id| problems.check("id", child_id(&id)));
        let mut pledges: Vec<String> = Vec::new();
        if let Some(id) = self.pledge_id.filter(|id| !id.trim().is_empty())
            && let Some(id) = problems.check("pledge_id", child_id(&id))
        {
            pledges.push(id);
        }
        for (i, id) in self.pledges.unwrap_or_default().iter().enumerate() {
            if let Some(id) = problems.check(&format!("pledges[{i}]"), child_id(id))
                && !pledges.contains(&id)
            {
                pledges.push(id);
            }
        }
        let mut fields: Vec<String> = Vec::new();
        for (i, field) in self.fields.unwrap_or_default().iter().enumerate() {
            let field = field.trim();
            if !AGREEMENT_FIELDS.contains(&field) {
                problems.add(
                    &format!("fields[{i}]"),
                    format!(
                        "is not a field of an agreement; one of: {}",
                        AGREEMENT_FIELDS.join(", ")
                    ),
                );
            } else if !fields.iter().any(|f| f == field) {
                fields.push(field.to_owned());
            }
        }
        let url = problems
            .required("url", self.url)
            .and_then(|u| problems.check("url", web_url(&u)));
        let title = problems
            .required("title", self.title)
            .and_then(|t| problems.check("title", bounded(&t, 500)));
        let publisher = problems
            .check(
                "publisher",
                optional_bounded(self.publisher.as_deref(), 200),
            )
            .flatten();
        let published_on = problems
            .check("published_on", optional_date(self.published_on.as_deref()))
            .flatten();
        Some(SourceDraft {
            id,
            url: url?,
            title: title?,
            publisher,
            published_on,
            pledges,
            fields,
        })
    }

    pub fn parse(self) -> Result<SourceDraft, Vec<FieldError>> {
        Problems::whole(|problems| self.parse_into(problems))
    }
}
