//! Sources: where every fact comes from.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceDraft {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub url: String,
    pub title: String,
    pub publisher: Option<String>,
    pub published_on: Option<NaiveDate>,
    /// The pledges of the agreement it supports.
    pub pledges: Vec<String>,
    /// The agreement's fields it supports by name (`signed_on`, ...).
    pub fields: Vec<String>,
}

/// A source, stored once per agreement and linked to every fact it
/// supports: the agreement itself, any of its pledges, named fields.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Source {
    pub id: String,
    pub agreement_id: String,
    pub url: String,
    pub title: String,
    pub publisher: Option<String>,
    pub published_on: Option<NaiveDate>,
    /// Ids of the agreement's pledges it supports.
    pub pledges: Vec<String>,
    /// Fields of the agreement it supports by name.
    pub fields: Vec<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Source {
    pub fn draft(&self) -> SourceDraft {
        SourceDraft {
            id: Some(self.id.clone()),
            url: self.url.clone(),
            title: self.title.clone(),
            publisher: self.publisher.clone(),
            published_on: self.published_on,
            pledges: self.pledges.clone(),
            fields: self.fields.clone(),
        }
    }
}
