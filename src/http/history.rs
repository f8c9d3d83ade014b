//! The audit history: who changed what, when, and the version it made.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{ListBody, PageQuery, parse_instant, path_id};
use super::listing::text_wanted;
use super::params::{EntityName, JsonOrText, PageLimit, Params, Text};
use crate::error::{ApiError, ApiResult};
use crate::store::{ENTITIES, HistoryFilter};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(everything))
        .routes(routes!(of_agreement))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// From this instant (RFC 3339) or date (YYYY-MM-DD)
    #[param(value_type = Option<Text>, inline)]
    since: Option<String>,
    /// Before this instant (RFC 3339) or date (YYYY-MM-DD)
    #[param(value_type = Option<Text>, inline)]
    until: Option<String>,
    /// Only changes made with this key name (or cli, seed)
    #[param(value_type = Option<Text>, inline)]
    key: Option<String>,
    /// Only this kind of record
    #[param(value_type = Option<EntityName>, inline)]
    entity: Option<String>,
    /// Only this record
    #[param(value_type = Option<Text>, inline)]
    id: Option<String>,
    /// Entries per page (default 50)
    #[param(value_type = Option<PageLimit>, inline)]
    limit: Option<String>,
    /// The next_cursor of the previous page
    #[param(value_type = Option<Text>, inline)]
    cursor: Option<String>,
    /// json (default) or text: one heading per change and a `field: before → after` line per field (or Accept: text/plain)
    #[param(value_type = Option<JsonOrText>, inline)]
    format: Option<String>,
}

/// `since` or `until`: an RFC 3339 timestamp or a date.
fn instant(name: &str, text: &str) -> ApiResult<DateTime<Utc>> {
    parse_instant(text).ok_or_else(|| {
        ApiError::InvalidQuery(vec![crate::domain::FieldError::new(
            name,
            "must be an RFC 3339 timestamp or a YYYY-MM-DD date",
        )])
    })
}

impl HistoryQuery {
    /// `format=text` (or `Accept: text/plain`): the history to read.
    fn text(&self, headers: &HeaderMap) -> ApiResult<bool> {
        text_wanted(self.format.as_deref(), headers).map_err(|e| ApiError::InvalidQuery(vec![e]))
    }

    fn filter(self) -> ApiResult<HistoryFilter> {
        let page = PageQuery {
            limit: self.limit,
            cursor: self.cursor,
        }
        .page_request()?;
        let before_seq = page
            .after
            .map(|seq| seq.parse::<i64>())
            .transpose()
            .map_err(|_| ApiError::BadRequest("cursor is not one this service gave out".into()))?;
        for (name, value) in [("key", &self.key), ("id", &self.id)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(ApiError::InvalidQuery(vec![
                    crate::domain::FieldError::new(name, "must not be empty"),
                ]));
            }
        }
        if let Some(entity) = &self.entity
            && !ENTITIES.contains(&entity.as_str())
        {
            return Err(ApiError::BadRequest(format!(
                "entity must be one of: {}",
                ENTITIES.join(", ")
            )));
        }
        Ok(HistoryFilter {
            since: self
                .since
                .as_deref()
                .map(|t| instant("since", t))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| instant("until", t))
                .transpose()?,
            actor: self.key,
            entity: self.entity,
            entity_id: self.id,
            agreement_id: None,
            before_seq,
            limit: page.limit,
        })
    }
}

/// The audit history of everything: who changed what, when; newest first.
#[utoipa::path(get, path = "/v1/history", tag = "data desk", params(HistoryQuery),
    responses((status = 200, description = "A page of history entries (JSON), or the page as text to read",
        content((crate::http::openapi::HistoryPage = "application/json"), (String = "text/plain")))))]
async fn everything(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(query): Params<HistoryQuery>,
) -> ApiResult<Response> {
    let text = query.text(&headers)?;
    let page = state.store.history(&query.filter()?).await?;
    Ok(answer(page, text))
}

fn answer(page: crate::store::Page<crate::store::HistoryEntry>, text: bool) -> Response {
    let body = ListBody::from(page);
    if !text {
        return axum::Json(body).into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        super::text_view::history(&body.items, body.next_cursor.as_deref()),
    )
        .into_response()
}

/// The agreement's own entries and those of its pledges and sources; also
/// for a deleted agreement, which stays in history.
/// One agreement's history, including its pledges and sources.
#[utoipa::path(get, path = "/v1/agreements/{id}/history", tag = "data desk",
    params(("id" = String, Path, description = "The agreement id"), HistoryQuery),
    responses((status = 200, description = "A page of history entries (JSON), or the page as text to read",
        content((crate::http::openapi::HistoryPage = "application/json"), (String = "text/plain")))))]
async fn of_agreement(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Params(query): Params<HistoryQuery>,
) -> ApiResult<Response> {
    let id = path_id(&id)?;
    let text = query.text(&headers)?;
    let mut filter = query.filter()?;
    filter.agreement_id = Some(id.clone());
    let page = state.store.history(&filter).await?;
    if page.items.is_empty() && filter.before_seq.is_none() {
        // A filter that matches none of a known agreement's entries is an
        // empty page; only an agreement with no history at all is unknown.
        let any = HistoryFilter {
            agreement_id: Some(id.clone()),
            limit: 1,
            ..HistoryFilter::default()
        };
        if state.store.history(&any).await?.items.is_empty() {
            return Err(ApiError::not_found(format!(
                "agreement {id:?} has no history"
            )));
        }
    }
    Ok(answer(page, text))
}
