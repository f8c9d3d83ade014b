//! Sources: /v1/agreements/{id}/sources and /v1/sources/{id}.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::agreements::load as load_agreement;
use super::extract::{IfMatch, JsonBody, ListBody, from_document, merge_patch};
use super::{AppState, created, single};
use crate::auth::Caller;
use crate::domain::FieldError;
use crate::domain::pledge::child_id;
use crate::domain::source::{Source, SourceBody, SourceDraft};
use crate::error::{ApiError, ApiResult};
use crate::store::{Store, StoreError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/agreements/{id}/sources", get(list).post(create))
        .route(
            "/v1/sources/{id}",
            get(show).put(replace).patch(patch).delete(remove),
        )
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no source {id:?}"))
}

async fn load(store: &dyn Store, id: &str) -> ApiResult<Source> {
    let id = child_id(id).map_err(|_| not_found(id))?;
    store.get_source(&id).await?.ok_or_else(|| not_found(&id))
}

/// A source body may repeat its id and agreement, but not change them.
fn parse_for(body: SourceBody, current: &Source) -> ApiResult<SourceDraft> {
    let mut errors = Vec::new();
    if body
        .agreement_id
        .as_deref()
        .is_some_and(|a| a != current.agreement_id)
    {
        errors.push(FieldError::new(
            "agreement_id",
            "cannot be changed; create the source under the other agreement",
        ));
    }
    if body.id.as_deref().is_some_and(|i| i != current.id) {
        errors.push(FieldError::new(
            "id",
            format!("cannot be changed (this source is {})", current.id),
        ));
    }
    match body.parse() {
        Ok(draft) if errors.is_empty() => Ok(draft),
        Ok(_) => Err(ApiError::Validation(errors)),
        Err(more) => Err(ApiError::Validation(
            errors.into_iter().chain(more).collect(),
        )),
    }
}

async fn list(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let agreement = load_agreement(state.store.as_ref(), &id).await?;
    let body = ListBody {
        items: agreement.sources,
        next_cursor: None,
    };
    Ok(axum::Json(body).into_response())
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SourceBody>,
) -> ApiResult<Response> {
    let agreement = load_agreement(state.store.as_ref(), &id).await?;
    if body
        .agreement_id
        .as_deref()
        .is_some_and(|a| a != agreement.id)
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "agreement_id",
            format!(
                "must be {} (the agreement in the path) or left out",
                agreement.id
            ),
        )]));
    }
    let draft = body.parse().map_err(ApiError::Validation)?;
    let source = state
        .store
        .create_source(&caller.name, &agreement.id, &draft)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("no agreement {:?}", agreement.id)),
            StoreError::Invalid(errors) if errors.iter().all(|e| e.field == "id") => {
                ApiError::Conflict(format!(
                    "a source with id {:?} already exists",
                    draft.id.clone().unwrap_or_default()
                ))
            }
            other => other.into(),
        })?;
    Ok(created(
        &format!("/v1/sources/{}", source.id),
        &source,
        source.version,
    ))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let source = load(state.store.as_ref(), &id).await?;
    Ok(single(&source, source.version))
}

async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SourceBody>,
) -> ApiResult<Response> {
    let current = load(state.store.as_ref(), &id).await?;
    let expected = if_match.expected(current.version)?;
    let draft = parse_for(body, &current)?;
    let source = state
        .store
        .replace_source(&caller.name, &current.id, &draft, expected)
        .await
        .map_err(|e| if_match.on_error(e))?;
    Ok(single(&source, source.version))
}

async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> ApiResult<Response> {
    super::retry_on_version_race(|| async {
        let current = load(state.store.as_ref(), &id).await?;
        let expected = if_match
            .expected(current.version)?
            .unwrap_or(current.version);
        let mut document =
            serde_json::to_value(current.draft()).map_err(|e| ApiError::Internal(e.to_string()))?;
        merge_patch(&mut document, &patch);
        let draft = parse_for(from_document(document)?, &current)?;
        let source = state
            .store
            .replace_source(&caller.name, &current.id, &draft, Some(expected))
            .await
            .map_err(|e| if_match.on_error(e))?;
        Ok(single(&source, source.version))
    })
    .await
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let current = load(state.store.as_ref(), &id).await?;
    let expected = if_match.expected(current.version)?;
    state
        .store
        .delete_source(&caller.name, &current.id, expected)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => not_found(&current.id),
            other => if_match.on_error(other),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
