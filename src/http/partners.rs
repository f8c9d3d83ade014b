//! /v1/partners: look a partner up by any name it goes by.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{IfMatch, JsonBody, ListBody, PageQuery, Params, patched};
use super::listing::{self, Scope};
use super::{AppState, created, single};
use crate::auth::Caller;
use crate::domain::partner::{Partner, PartnerBody, PartnerCode, PartnerDraft};
use crate::error::{ApiError, ApiResult};
use crate::store::Store;

use super::partner_lookup::resolve_partner;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, patch, remove))
        .routes(routes!(agreements))
}

#[utoipa::path(get, path = "/v1/partners", tag = "partners", params(super::extract::PageQuery),
    responses((status = 200, description = "A page of partners", body = crate::http::openapi::PartnerPage,
        headers(("ETag" = String, description = "The store revision"), ("Link" = String, description = "rel=next: the next page")))))]
async fn list(
    State(state): State<AppState>,
    Params(query): Params<PageQuery>,
) -> ApiResult<Response> {
    let page = state.store.list_partners(&query.page_request()?).await?;
    Ok(axum::Json(ListBody::from(page)).into_response())
}

#[utoipa::path(get, path = "/v1/partners/{reference}", tag = "partners", params(("reference" = String, Path, description = "A partner code (JP), alpha-3 (JPN), or name or alias in English or Ukrainian, any case or accents")),
    responses((status = 200, description = "The partner", body = Partner, headers(("ETag" = String, description = "The version")))))]
async fn show(State(state): State<AppState>, Path(reference): Path<String>) -> ApiResult<Response> {
    let code = resolve_partner(state.store.as_ref(), &reference).await?;
    let partner = state.store.get_partner(&code).await?.ok_or_else(|| {
        ApiError::not_found(format!("partner {} was just removed", code.as_str()))
    })?;
    Ok(single(&partner, partner.version))
}

/// The agreements of one partner; the same filters, formats and paging as /v1/agreements.
#[utoipa::path(get, path = "/v1/partners/{reference}/agreements", tag = "agreements",
    params(("reference" = String, Path, description = "A partner code (JP), alpha-3 (JPN), or name or alias in English or Ukrainian, any case or accents"), crate::http::openapi::AgreementListParams),
    responses((status = 200, description = "A page of agreements (JSON), or CSV, NDJSON or a text table",
        headers(("ETag" = String, description = "The store revision and this variant"), ("Link" = String, description = "rel=next: the next page")),
        content((crate::http::openapi::AgreementPage = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"), (String = "text/plain")))))]
async fn agreements(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let code = resolve_partner(state.store.as_ref(), &reference).await?;
    listing::respond(&state, &uri, &headers, Scope::Partner(code)).await
}

#[utoipa::path(post, path = "/v1/partners", tag = "partners", request_body = PartnerBody,
    responses((status = 201, description = "Created", body = Partner,
        headers(("ETag" = String, description = "The version"), ("Location" = String, description = "The new partner's URL")))))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<PartnerBody>,
) -> ApiResult<Response> {
    let draft = body.parse().map_err(ApiError::Validation)?;
    let partner = state.store.create_partner(&caller.name, &draft).await?;
    Ok(created(
        &format!("/v1/partners/{}", partner.code.as_str()),
        &partner,
        partner.version,
    ))
}

/// The body's code must be the partner's own: codes are identities, not fields.
fn same_code(draft: &PartnerDraft, code: &PartnerCode) -> ApiResult<()> {
    if draft.code == *code {
        Ok(())
    } else {
        Err(ApiError::Validation(vec![crate::domain::FieldError::new(
            "code",
            format!("cannot be changed (this partner is {})", code.as_str()),
        )]))
    }
}

async fn load(store: &dyn Store, reference: &str) -> ApiResult<Partner> {
    let code = resolve_partner(store, reference).await?;
    store
        .get_partner(&code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("partner {} was just removed", code.as_str())))
}

#[utoipa::path(put, path = "/v1/partners/{reference}", tag = "partners", params(("reference" = String, Path, description = "A partner code (JP), alpha-3 (JPN), or name or alias in English or Ukrainian, any case or accents")), request_body = PartnerBody,
    responses((status = 200, description = "Replaced", body = Partner, headers(("ETag" = String, description = "The new version")))))]
async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(reference): Path<String>,
    JsonBody(mut body): JsonBody<PartnerBody>,
) -> ApiResult<Response> {
    let current = load(state.store.as_ref(), &reference).await?;
    let if_match = if_match.with_body_version(body.version);
    let expected = if_match.expected(current.version)?;
    body.code
        .get_or_insert_with(|| current.code.as_str().to_owned());
    let draft = body.parse().map_err(ApiError::Validation)?;
    same_code(&draft, &current.code)?;
    let partner = state
        .store
        .replace_partner(&caller.name, &draft, expected)
        .await
        .map_err(|e| if_match.on_error(e))?;
    Ok(single(&partner, partner.version))
}

#[utoipa::path(patch, path = "/v1/partners/{reference}", tag = "partners", params(("reference" = String, Path, description = "A partner code (JP), alpha-3 (JPN), or name or alias in English or Ukrainian, any case or accents")),
    request_body(content = Object, description = "A merge patch (RFC 7396)", content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Changed", body = Partner, headers(("ETag" = String, description = "The new version")))))]
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(reference): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> ApiResult<Response> {
    let code = resolve_partner(state.store.as_ref(), &reference).await?;
    let if_match = if_match.with_patch_version(&patch)?;
    super::retry_on_version_race(|| async {
        let current = load(state.store.as_ref(), code.as_str()).await?;
        let expected = if_match
            .expected(current.version)?
            .unwrap_or(current.version);
        let draft = patched::<PartnerBody>(&current.draft(), &patch)?
            .parse()
            .map_err(ApiError::Validation)?;
        same_code(&draft, &code)?;
        let partner = state
            .store
            .replace_partner(&caller.name, &draft, Some(expected))
            .await
            .map_err(|e| if_match.on_error(e))?;
        Ok(single(&partner, partner.version))
    })
    .await
}

/// Only a partner no agreement names can be deleted (else 409).
#[utoipa::path(delete, path = "/v1/partners/{reference}", tag = "partners", params(("reference" = String, Path, description = "A partner code (JP), alpha-3 (JPN), or name or alias in English or Ukrainian, any case or accents")), responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(reference): Path<String>,
) -> ApiResult<StatusCode> {
    let current = load(state.store.as_ref(), &reference).await?;
    let expected = if_match.expected(current.version)?;
    state
        .store
        .delete_partner(&caller.name, &current.code, expected)
        .await
        .map_err(|e| if_match.on_error(e))?;
    Ok(StatusCode::NO_CONTENT)
}
