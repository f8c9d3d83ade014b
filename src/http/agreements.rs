//! /v1/agreements: the agreements themselves, each embedding its partner,
//! areas, pledges and sources so that one GET answers a lookup.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use serde::Deserialize;
use utoipa::IntoParams;

use super::convert::{self, ConvertParam, Converter};
use super::extract::path_id;
use super::extract::{IfMatch, JsonBody, patched};
use super::listing::{self, Scope};
use super::params::{And, Params};
use super::partner_lookup::find_one_partner;
use super::{AppState, created, single, single_tagged};
use crate::auth::Caller;
use crate::domain::FieldError;
use crate::domain::agreement::{Agreement, AgreementDraft};
use crate::domain::partner::PartnerCode;
use crate::error::{ApiError, ApiResult};
use crate::store::{Store, StoreError};
use crate::wire::agreement::AgreementBody;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, patch, remove))
        .routes(routes!(restore))
}

pub async fn load(store: &dyn Store, id: &str) -> ApiResult<Agreement> {
    let id = path_id(id)?;
    store
        .get_agreement(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no agreement {id:?}")))
}

/// Resolves the body's partner reference (a code, a name, an alias) and
/// parses the body; an unknown partner is a field error of the body, with
/// the closest matches beside it (as a 404 for the same reference lists them).
async fn parse_body(store: &dyn Store, body: AgreementBody) -> ApiResult<AgreementDraft> {
    let mut closest_matches = Vec::new();
    let partner: Result<Option<PartnerCode>, String> = match body.partner_ref() {
        Err(message) => Err(message),
        Ok(None) => Ok(None),
        Ok(Some(reference)) => match find_one_partner(store, &reference).await? {
            Ok(code) => Ok(Some(code)),
            Err(unresolved) => {
                let message = format!(
                    "is not a known partner: {}",
                    unresolved.pointing_at_matches()
                );
                closest_matches = unresolved.closest;
                Err(message)
            }
        },
    };
    body.parse(partner).map_err(|mut errors| {
        if let Some(error) = errors.iter_mut().find(|e| e.field == "partner") {
            error.closest_matches = closest_matches;
        }
        ApiError::Validation(errors)
    })
}

/// A body may repeat the resource's id, but not change it.
fn same_id(draft: &AgreementDraft, id: &str) -> ApiResult<()> {
    match draft.id.as_deref() {
        Some(given) if given != id => Err(ApiError::Validation(vec![FieldError::new(
            "id",
            format!("cannot be changed (this agreement is {id})"),
        )])),
        _ => Ok(()),
    }
}

/// Agreements matching the filters, paged; also CSV, NDJSON or a text table.
#[utoipa::path(get, path = "/v1/agreements", tag = "agreements",
    params(listing::AgreementListParams),
    responses(
        (status = 200, description = "A page of agreements (JSON), or the whole result as CSV, NDJSON or a text table (streamed)",
            headers(("ETag" = String, description = "The store revision and this variant"), ("Link" = String, description = "rel=next: the next page")),
            content(
                (crate::http::openapi::AgreementPage = "application/json"),
                (String = "text/csv"),
                (String = "application/x-ndjson"),
                (String = "text/plain"),
            )),
    ))]
async fn list(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    listing::respond(&state, &uri, &headers, Scope::All).await
}

/// One agreement; `?convert=USD` adds each pledge's converted amount;
/// `format=text` (or `Accept: text/plain`) a text view to read and cite.
#[utoipa::path(get, path = "/v1/agreements/{id}", tag = "agreements",
    params(("id" = String, Path, description = "The agreement id, e.g. ua-jp-2024"), ShowParams),
    responses((status = 200, description = "The agreement with its partner, areas, pledges and sources",
        content((Agreement = "application/json"), (String = "text/plain")),
        headers(("ETag" = String, description = "The version, e.g. \"3\" (the text view: \"3t\")")))))]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(And(convert, ShowFormat { format })): Params<ShowParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let target = convert::target(convert.convert.as_deref(), &mut errors);
    let text = super::listing::text_wanted(format.as_deref(), &headers).unwrap_or_else(|error| {
        errors.push(error);
        false
    });
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let mut agreement = load(state.store.as_ref(), &id).await?;
    let etag = match Converter::agreement_into(state.store.as_ref(), target, &mut agreement).await?
    {
        Some(converter) => converter.etag(agreement.version),
        None => format!("\"{}\"", agreement.version),
    };
    // Each representation has its own strong tag (and the answer varies by
    // Accept); writes take the JSON one in If-Match.
    let tagged = |suffix: &str| format!("{}{suffix}\"", etag.trim_end_matches('"'));
    let mut response = if text {
        let mut response = (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            super::text_view::agreement(&agreement, crate::domain::lang::current()),
        )
            .into_response();
        if let Ok(value) = axum::http::HeaderValue::from_str(&tagged("t")) {
            response
                .headers_mut()
                .insert(axum::http::header::ETAG, value);
        }
        response
    } else {
        single_tagged(&agreement, &etag)
    };
    response.headers_mut().insert(
        axum::http::header::VARY,
        axum::http::HeaderValue::from_static("Accept"),
    );
    response
        .extensions_mut()
        .insert(super::invalidation::Reads::Agreement(agreement.id));
    Ok(response)
}

/// The format of a single agreement.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ShowFormat {
    /// json (default) or text: the agreement to read, each pledge in words and digits, sources numbered
    #[param(value_type = Option<super::params::JsonOrText>, inline)]
    format: Option<String>,
}

type ShowParams = And<ConvertParam, ShowFormat>;

/// Creates an agreement; without an id it gets one such as `ua-jp-2024`.
#[utoipa::path(post, path = "/v1/agreements", tag = "agreements",
    request_body = AgreementBody,
    responses((status = 201, description = "Created", body = Agreement,
        headers(("ETag" = String, description = "The version"), ("Location" = String, description = "The new agreement's URL")))))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<AgreementBody>,
) -> ApiResult<Response> {
    let mut draft = parse_body(state.store.as_ref(), body).await?;
    draft.settle_expiry(None);
    let agreement = state.store.create_agreement(&caller.name, &draft).await?;
    Ok(created(
        &format!("/v1/agreements/{}", agreement.id),
        &agreement,
        agreement.version,
    ))
}

/// Replaces the agreement: child lists left out are kept, given ones replace the old.
#[utoipa::path(put, path = "/v1/agreements/{id}", tag = "agreements",
    params(("id" = String, Path, description = "The agreement id, e.g. ua-jp-2024")), request_body = AgreementBody,
    responses((status = 200, description = "Replaced", body = Agreement, headers(("ETag" = String, description = "The new version")))))]
async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AgreementBody>,
) -> ApiResult<Response> {
    let current = load(state.store.as_ref(), &id).await?;
    let if_match = if_match.with_body_version(body.version);
    let expected = if_match.expected(current.version)?;
    let mut draft = parse_body(state.store.as_ref(), body).await?;
    same_id(&draft, &current.id)?;
    draft.settle_expiry(Some(&current));
    let agreement = state
        .store
        .replace_agreement(&caller.name, &current.id, &draft, expected)
        .await
        .map_err(|e| if_match.on_error(e))?;
    Ok(single(&agreement, agreement.version))
}

/// Changes some fields (JSON merge patch, RFC 7396): null clears a field.
#[utoipa::path(patch, path = "/v1/agreements/{id}", tag = "agreements",
    params(("id" = String, Path, description = "The agreement id, e.g. ua-jp-2024")),
    request_body(content = Object, description = "A merge patch of the agreement's fields", content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Changed", body = Agreement, headers(("ETag" = String, description = "The new version")))))]
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> ApiResult<Response> {
    let if_match = if_match.with_patch_version(&patch)?;
    super::retry_on_version_race(|| async {
        let current = load(state.store.as_ref(), &id).await?;
        let expected = if_match
            .expected(current.version)?
            .unwrap_or(current.version);
        let body = patched::<AgreementBody>(&current.draft(), &patch)?;
        let mut draft = parse_body(state.store.as_ref(), body).await?;
        same_id(&draft, &current.id)?;
        draft.settle_expiry(None);
        let agreement = state
            .store
            .replace_agreement(&caller.name, &current.id, &draft, Some(expected))
            .await
            .map_err(|e| if_match.on_error(e))?;
        Ok(single(&agreement, agreement.version))
    })
    .await
}

/// Deletes the agreement and its pledges and sources (restorable).
#[utoipa::path(delete, path = "/v1/agreements/{id}", tag = "agreements",
    params(("id" = String, Path, description = "The agreement id, e.g. ua-jp-2024")), responses((status = 204, description = "Deleted")))]
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
        .delete_agreement(&caller.name, &current.id, expected)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("no agreement {id:?}")),
            other => if_match.on_error(other),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Brings a deleted agreement back, with its pledges, areas and sources.
#[utoipa::path(post, path = "/v1/agreements/{id}/restore", tag = "agreements",
    params(("id" = String, Path, description = "The agreement id, e.g. ua-jp-2024")),
    responses((status = 201, description = "Restored", body = Agreement,
        headers(("ETag" = String, description = "The version"), ("Location" = String, description = "The agreement's URL")))))]
async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&id)?;
    let agreement = state
        .store
        .restore_agreement(&caller.name, &id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => {
                ApiError::not_found(format!("agreement {id:?} was never deleted"))
            }
            other => other.into(),
        })?;
    Ok(created(
        &format!("/v1/agreements/{}", agreement.id),
        &agreement,
        agreement.version,
    ))
}
