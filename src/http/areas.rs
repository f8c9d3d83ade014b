//! /v1/areas: the cooperation-area vocabulary and the agreements in each area.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{IfMatch, JsonBody, ListBody, PageQuery, patched};
use super::listing::{self, Scope};
use super::params::Params;
use super::{AppState, created, single};
use crate::auth::Caller;
use crate::domain::FieldError;
use crate::domain::area::{Area, AreaCode, AreaDraft};
use crate::error::{ApiError, ApiResult};
use crate::store::{PageRequest, Store, StoreError};
use crate::wire::area::AreaBody;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, patch, remove))
        .routes(routes!(agreements))
}

/// An unknown area is a 404 naming the nearest codes, so a typo is answered.
async fn unknown_area(store: &dyn Store, code: &str) -> ApiError {
    // Codes are slugs of at most this many characters: a longer one cannot
    // match, said without computing (or echoing) anything.
    if code.chars().count() > crate::domain::area::MAX_CODE_CHARS {
        return ApiError::BadRequest(format!(
            "an area code is at most {} characters: no area has a longer one",
            crate::domain::area::MAX_CODE_CHARS
        ));
    }
    let wanted = code.trim().to_ascii_lowercase();
    let everything = PageRequest {
        after: None,
        limit: 500,
    };
    let mut nearest: Vec<(usize, Area)> = match store.list_areas(&everything).await {
        Ok(page) => page
            .items
            .into_iter()
            .map(|a| {
                let score = if wanted.len() >= 3 && a.code.as_str().contains(&wanted) {
                    0
                } else {
                    strsim::osa_distance(&wanted, a.code.as_str())
                };
                (score, a)
            })
            .filter(|(score, _)| *score <= (wanted.len() / 3).max(2))
            .collect(),
        Err(_) => Vec::new(),
    };
    nearest.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.code.cmp(&b.1.code)));
    let closest: Vec<Value> = nearest
        .iter()
        .take(5)
        .map(|(_, a)| json!({"code": a.code, "name": a.name}))
        .collect();
    ApiError::NotFound {
        detail: format!("no cooperation area {code:?}; closest_matches lists the nearest codes"),
        extensions: Some(json!({ "closest_matches": closest })),
    }
}

async fn load(store: &dyn Store, code: &str) -> ApiResult<Area> {
    let found = match AreaCode::parse(code) {
        Ok(parsed) => store.get_area(&parsed).await?,
        Err(_) => None,
    };
    match found {
        Some(area) => Ok(area),
        None => Err(unknown_area(store, code).await),
    }
}

fn same_code(draft: &AreaDraft, area: &Area) -> ApiResult<()> {
    if draft.code == area.code {
        Ok(())
    } else {
        Err(ApiError::Validation(vec![FieldError::new(
            "code",
            format!("cannot be changed (this area is {})", area.code.as_str()),
        )]))
    }
}

#[utoipa::path(get, path = "/v1/areas", tag = "areas", params(super::extract::PageQuery),
    responses((status = 200, description = "A page of areas", body = crate::http::openapi::AreaPage,
        headers(("ETag" = String, description = "The store revision"), ("Link" = String, description = "rel=next: the next page")))))]
async fn list(
    State(state): State<AppState>,
    Params(query): Params<PageQuery>,
) -> ApiResult<Response> {
    let page = state.store.list_areas(&query.page_request()?).await?;
    Ok(axum::Json(ListBody::from(page)).into_response())
}

#[utoipa::path(get, path = "/v1/areas/{code}", tag = "areas", params(("code" = String, Path, description = "An area code, e.g. demining")),
    responses((status = 200, description = "The area", body = Area, headers(("ETag" = String, description = "The version")))))]
async fn show(State(state): State<AppState>, Path(code): Path<String>) -> ApiResult<Response> {
    let area = load(state.store.as_ref(), &code).await?;
    Ok(single(&area, area.version))
}

/// The agreements that cooperate in one area; the same filters, formats and paging as /v1/agreements.
#[utoipa::path(get, path = "/v1/areas/{code}/agreements", tag = "agreements",
    params(("code" = String, Path, description = "An area code, e.g. demining"), super::listing::AgreementListParams),
    responses((status = 200, description = "A page of agreements (JSON), or CSV, NDJSON or a text table",
        headers(("ETag" = String, description = "The store revision and this variant"), ("Link" = String, description = "rel=next: the next page")),
        content((crate::http::openapi::AgreementPage = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"), (String = "text/plain")))))]
async fn agreements(
    State(state): State<AppState>,
    Path(code): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Existence only: the area's agreement count is not needed here.
    let known = match AreaCode::parse(&code) {
        Ok(parsed) if state.store.area_exists(&parsed).await? => Some(parsed),
        _ => None,
    };
    match known {
        Some(area) => listing::respond(&state, &uri, &headers, Scope::Area(area)).await,
        None => Err(unknown_area(state.store.as_ref(), &code).await),
    }
}

#[utoipa::path(post, path = "/v1/areas", tag = "areas", request_body = AreaBody,
    responses((status = 201, description = "Created", body = Area,
        headers(("ETag" = String, description = "The version"), ("Location" = String, description = "The new area's URL")))))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<AreaBody>,
) -> ApiResult<Response> {
    let draft = body.parse().map_err(ApiError::Validation)?;
    let area = state.store.create_area(&caller.name, &draft).await?;
    Ok(created(
        &format!("/v1/areas/{}", area.code.as_str()),
        &area,
        area.version,
    ))
}

#[utoipa::path(put, path = "/v1/areas/{code}", tag = "areas", params(("code" = String, Path, description = "An area code, e.g. demining")), request_body = AreaBody,
    responses((status = 200, description = "Replaced", body = Area, headers(("ETag" = String, description = "The new version")))))]
async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(code): Path<String>,
    JsonBody(mut body): JsonBody<AreaBody>,
) -> ApiResult<Response> {
    let current = load(state.store.as_ref(), &code).await?;
    let if_match = if_match.with_body_version(body.version);
    let expected = if_match.expected(current.version)?;
    body.code
        .get_or_insert_with(|| current.code.as_str().to_owned());
    let draft = body.parse().map_err(ApiError::Validation)?;
    same_code(&draft, &current)?;
    let area = state
        .store
        .replace_area(&caller.name, &draft, expected)
        .await
        .map_err(|e| if_match.on_error(e))?;
    Ok(single(&area, area.version))
}

#[utoipa::path(patch, path = "/v1/areas/{code}", tag = "areas", params(("code" = String, Path, description = "An area code, e.g. demining")),
    request_body(content = Object, description = "A merge patch (RFC 7396)", content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Changed", body = Area, headers(("ETag" = String, description = "The new version")))))]
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(code): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> ApiResult<Response> {
    let if_match = if_match.with_patch_version(&patch)?;
    super::retry_on_version_race(|| async {
        let current = load(state.store.as_ref(), &code).await?;
        let expected = if_match
            .expected(current.version)?
            .unwrap_or(current.version);
        let draft = patched::<AreaBody>(&current.draft(), &patch)?
            .parse()
            .map_err(ApiError::Validation)?;
        same_code(&draft, &current)?;
        let area = state
            .store
            .replace_area(&caller.name, &draft, Some(expected))
            .await
            .map_err(|e| if_match.on_error(e))?;
        Ok(single(&area, area.version))
    })
    .await
}

/// Only a area no agreement names can be deleted (else 409).
#[utoipa::path(delete, path = "/v1/areas/{code}", tag = "areas", params(("code" = String, Path, description = "An area code, e.g. demining")), responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(code): Path<String>,
) -> ApiResult<StatusCode> {
    let area = load(state.store.as_ref(), &code).await?;
    let expected = if_match.expected(area.version)?;
    state
        .store
        .delete_area(&caller.name, &area.code, expected)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("no cooperation area {code:?}")),
            other => if_match.on_error(other),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
