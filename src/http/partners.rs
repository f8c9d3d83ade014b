//! /v1/partners: look a partner up by any name it goes by.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{IfMatch, JsonBody, ListBody, PageQuery, patched};
use super::listing::{self, Scope, text_wanted};
use super::params::Params;
use super::{AppState, created, single};
use crate::auth::Caller;
use crate::domain::FieldError;
use crate::domain::partner::{Partner, PartnerCode, PartnerDraft};
use crate::error::{ApiError, ApiResult};
use crate::store::Store;
use crate::wire::partner::PartnerBody;

use super::partner_lookup::resolve_partner;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, patch, remove))
        .routes(routes!(agreements))
}

/// The query of the partner list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartnerListQuery {
    /// Items per page (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The next_cursor of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// `true`: only the partners that have agreements (about 30 of 250).
    #[param(value_type = Option<bool>)]
    has_agreements: Option<String>,
    /// `json` (default) or `text`: a table to read (or `Accept: text/plain`).
    #[param(value_type = Option<String>, pattern = "^(json|text)$")]
    format: Option<String>,
}

#[utoipa::path(get, path = "/v1/partners", tag = "partners", params(PartnerListQuery),
    responses((status = 200, description = "A page of partners (JSON), or the page as a table to read",
        content((crate::http::openapi::PartnerPage = "application/json"), (String = "text/plain")),
        headers(("ETag" = String, description = "The store revision"), ("Link" = String, description = "rel=next: the next page")))))]
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(query): Params<PartnerListQuery>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let only_with_agreements = match query.has_agreements.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push(FieldError::new("has_agreements", "must be true or false"));
            false
        }
    };
    let text = text_wanted(query.format.as_deref(), &headers).unwrap_or_else(|error| {
        errors.push(error);
        false
    });
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let page_request = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page_request()?;
    let page = state
        .store
        .list_partners(&page_request, only_with_agreements)
        .await?;
    let body = ListBody::from(page);
    if text {
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            partner_table(&body.items, body.next_cursor.as_deref()),
        )
            .into_response());
    }
    Ok(axum::Json(body).into_response())
}

/// Partners as a table: code, names, how many agreements and when.
fn partner_table(partners: &[Partner], next_cursor: Option<&str>) -> String {
    use std::fmt::Write as _;
    let width = |f: &dyn Fn(&Partner) -> usize, title: usize| {
        partners.iter().map(f).max().unwrap_or(0).max(title)
    };
    let name = width(&|p| p.name.chars().count(), 4);
    let name_uk = width(&|p| p.name_uk.as_deref().unwrap_or("—").chars().count(), 7);
    let mut out = format!(
        "{:<4}  {:<name$}  {:<name_uk$}  {:>10}  {:<10}  LAST\n",
        "CODE", "NAME", "NAME_UK", "AGREEMENTS", "FIRST"
    );
    let date = |d: Option<chrono::NaiveDate>| d.map_or("—".to_owned(), |d| d.to_string());
    for p in partners {
        let _ = writeln!(
            out,
            "{:<4}  {:<name$}  {:<name_uk$}  {:>10}  {:<10}  {}",
            p.code.as_str(),
            p.name,
            p.name_uk.as_deref().unwrap_or("—"),
            p.agreement_count,
            date(p.first_signed_on),
            date(p.last_signed_on)
        );
    }
    if let Some(cursor) = next_cursor {
        let _ = writeln!(out, "more: add &cursor={cursor}");
    }
    out
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
    params(("reference" = String, Path, description = "A partner code (JP), alpha-3 (JPN), or name or alias in English or Ukrainian, any case or accents"), listing::PartnerAgreementListParams),
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
