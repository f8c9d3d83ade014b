//! Pledges and sources: the children of an agreement, each reachable under
//! its agreement (/v1/agreements/{id}/pledges) and on its own
//! (/v1/pledges/{id}). Both behave the same, so one set of handlers serves
//! both through the [`Child`] trait.

use std::future::Future;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::agreements::load as load_agreement;
use super::convert::ConvertParam;
use super::convert::{Converter, pledge_year};
use super::extract::{IfMatch, JsonBody, ListBody, patched};
use super::invalidation::Reads;
use super::params::{NoParams, read};
use super::{AppState, created, single, single_tagged};
use crate::auth::Caller;
use crate::domain::FieldError;
use crate::domain::agreement::Agreement;
use crate::domain::money::Currency;
use crate::domain::pledge::{Pledge, PledgeDraft, child_id};
use crate::domain::source::{Source, SourceDraft};
use crate::error::{ApiError, ApiResult};
use crate::store::{Store, StoreError, StoreResult};
use crate::wire::pledge::PledgeBody;
use crate::wire::source::SourceBody;

/// What the handlers need to know of a kind of child.
pub trait Child: Serialize + Sized + Send + Sync + 'static {
    type Body: DeserializeOwned + Send + 'static;
    type Draft: Serialize + Send + Sync + 'static;
    /// "pledge", "source": for messages.
    const NAME: &'static str;
    /// Whether `?convert=` applies: only pledges carry amounts.
    const CONVERTIBLE: bool;

    /// The pledge this child is, if it is one.
    fn as_pledge_mut(&mut self) -> Option<&mut Pledge> {
        None
    }

    fn id(&self) -> &str;
    fn agreement_id(&self) -> &str;
    fn version(&self) -> i64;
    fn draft(&self) -> Self::Draft;
    fn of_agreement(agreement: Agreement) -> Vec<Self>;
    /// The id and agreement a body names, if it names them.
    fn body_ids(body: &Self::Body) -> (Option<&str>, Option<&str>);
    /// The version a body says it edits (a precondition like If-Match).
    fn body_version(body: &Self::Body) -> Option<i64>;
    fn parse(body: Self::Body) -> Result<Self::Draft, Vec<FieldError>>;

    fn get<'a>(
        store: &'a dyn Store,
        id: &'a str,
    ) -> impl Future<Output = StoreResult<Option<Self>>> + Send + 'a;
    fn create<'a>(
        store: &'a dyn Store,
        actor: &'a str,
        agreement_id: &'a str,
        draft: &'a Self::Draft,
    ) -> impl Future<Output = StoreResult<Self>> + Send + 'a;
    fn replace<'a>(
        store: &'a dyn Store,
        actor: &'a str,
        id: &'a str,
        draft: &'a Self::Draft,
        expected: Option<i64>,
    ) -> impl Future<Output = StoreResult<Self>> + Send + 'a;
    fn delete<'a>(
        store: &'a dyn Store,
        actor: &'a str,
        id: &'a str,
        expected: Option<i64>,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a;
}

impl Child for Pledge {
    type Body = PledgeBody;
    type Draft = PledgeDraft;
    const NAME: &'static str = "pledge";
    const CONVERTIBLE: bool = true;

    fn body_version(body: &PledgeBody) -> Option<i64> {
        body.version
    }

    fn as_pledge_mut(&mut self) -> Option<&mut Pledge> {
        Some(self)
    }

    fn id(&self) -> &str {
        &self.id
    }
    fn agreement_id(&self) -> &str {
        &self.agreement_id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn draft(&self) -> PledgeDraft {
        Pledge::draft(self)
    }
    fn of_agreement(agreement: Agreement) -> Vec<Self> {
        agreement.pledges
    }
    fn body_ids(body: &PledgeBody) -> (Option<&str>, Option<&str>) {
        (body.id.as_deref(), body.agreement_id.as_deref())
    }
    fn parse(body: PledgeBody) -> Result<PledgeDraft, Vec<FieldError>> {
        body.parse()
    }
    fn get<'a>(
        store: &'a dyn Store,
        id: &'a str,
    ) -> impl Future<Output = StoreResult<Option<Self>>> + Send + 'a {
        store.get_pledge(id)
    }
    fn create<'a>(
        store: &'a dyn Store,
        actor: &'a str,
        agreement_id: &'a str,
        draft: &'a PledgeDraft,
    ) -> impl Future<Output = StoreResult<Self>> + Send + 'a {
        store.create_pledge(actor, agreement_id, draft)
    }
    fn replace<'a>(
        store: &'a dyn Store,
        actor: &'a str,
        id: &'a str,
        draft: &'a PledgeDraft,
        expected: Option<i64>,
    ) -> impl Future<Output = StoreResult<Self>> + Send + 'a {
        store.replace_pledge(actor, id, draft, expected)
    }
    fn delete<'a>(
        store: &'a dyn Store,
        actor: &'a str,
        id: &'a str,
        expected: Option<i64>,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a {
        store.delete_pledge(actor, id, expected)
    }
}

impl Child for Source {
    type Body = SourceBody;
    type Draft = SourceDraft;
    const NAME: &'static str = "source";
    const CONVERTIBLE: bool = false;

    fn body_version(body: &SourceBody) -> Option<i64> {
        body.version
    }

    fn id(&self) -> &str {
        &self.id
    }
    fn agreement_id(&self) -> &str {
        &self.agreement_id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn draft(&self) -> SourceDraft {
        Source::draft(self)
    }
    fn of_agreement(agreement: Agreement) -> Vec<Self> {
        agreement.sources
    }
    fn body_ids(body: &SourceBody) -> (Option<&str>, Option<&str>) {
        (body.id.as_deref(), body.agreement_id.as_deref())
    }
    fn parse(body: SourceBody) -> Result<SourceDraft, Vec<FieldError>> {
        body.parse()
    }
    fn get<'a>(
        store: &'a dyn Store,
        id: &'a str,
    ) -> impl Future<Output = StoreResult<Option<Self>>> + Send + 'a {
        store.get_source(id)
    }
    fn create<'a>(
        store: &'a dyn Store,
        actor: &'a str,
        agreement_id: &'a str,
        draft: &'a SourceDraft,
    ) -> impl Future<Output = StoreResult<Self>> + Send + 'a {
        store.create_source(actor, agreement_id, draft)
    }
    fn replace<'a>(
        store: &'a dyn Store,
        actor: &'a str,
        id: &'a str,
        draft: &'a SourceDraft,
        expected: Option<i64>,
    ) -> impl Future<Output = StoreResult<Self>> + Send + 'a {
        store.replace_source(actor, id, draft, expected)
    }
    fn delete<'a>(
        store: &'a dyn Store,
        actor: &'a str,
        id: &'a str,
        expected: Option<i64>,
    ) -> impl Future<Output = StoreResult<()>> + Send + 'a {
        store.delete_source(actor, id, expected)
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pledge::list, pledge::create))
        .routes(routes!(
            pledge::show,
            pledge::replace,
            pledge::patch,
            pledge::remove
        ))
        .routes(routes!(source::list, source::create))
        .routes(routes!(
            source::show,
            source::replace,
            source::patch,
            source::remove
        ))
}

/// The documented, concrete handlers of one kind of child: each calls the
/// generic handler above for its type.
macro_rules! child_handlers {
    ($module:ident, $child:ty, $body:ty, $list:literal, $one:literal, $name:literal, $params:ty, $list_schema:ty) => {
        mod $module {
            use super::*;

            #[utoipa::path(get, path = $list, tag = "pledges and sources",
                params(("id" = String, Path, description = "The agreement id"), $params),
                responses((status = 200, description = "The agreement's items", body = $list_schema,
                    headers(("ETag" = String, description = "The store revision")))))]
            pub async fn list(state: State<AppState>, id: Path<String>, uri: Uri) -> ApiResult<Response> {
                super::list::<$child>(state, id, uri).await
            }

            #[utoipa::path(post, path = $list, tag = "pledges and sources",
                params(("id" = String, Path, description = "The agreement id")),
                request_body = $body,
                responses((status = 201, description = "Created", body = $child,
                    headers(("ETag" = String, description = "The version"), ("Location" = String, description = "Its URL")))))]
            pub async fn create(
                state: State<AppState>,
                caller: Caller,
                id: Path<String>,
                body: JsonBody<$body>,
            ) -> ApiResult<Response> {
                super::create::<$child>(state, caller, id, body).await
            }

            #[utoipa::path(get, path = $one, tag = "pledges and sources",
                params(("id" = String, Path, description = $name), $params),
                responses((status = 200, description = "The item", body = $child,
                    headers(("ETag" = String, description = "The version")))))]
            pub async fn show(state: State<AppState>, id: Path<String>, uri: Uri) -> ApiResult<Response> {
                super::show::<$child>(state, id, uri).await
            }

            #[utoipa::path(put, path = $one, tag = "pledges and sources",
                params(("id" = String, Path, description = $name)),
                request_body = $body,
                responses((status = 200, description = "Replaced", body = $child,
                    headers(("ETag" = String, description = "The new version")))))]
            pub async fn replace(
                state: State<AppState>,
                caller: Caller,
                if_match: IfMatch,
                id: Path<String>,
                body: JsonBody<$body>,
            ) -> ApiResult<Response> {
                super::replace::<$child>(state, caller, if_match, id, body).await
            }

            #[utoipa::path(patch, path = $one, tag = "pledges and sources",
                params(("id" = String, Path, description = $name)),
                request_body(content = Object, description = "A merge patch (RFC 7396)", content_type = "application/merge-patch+json"),
                responses((status = 200, description = "Changed", body = $child,
                    headers(("ETag" = String, description = "The new version")))))]
            pub async fn patch(
                state: State<AppState>,
                caller: Caller,
                if_match: IfMatch,
                id: Path<String>,
                body: JsonBody<Value>,
            ) -> ApiResult<Response> {
                super::patch::<$child>(state, caller, if_match, id, body).await
            }

            #[utoipa::path(delete, path = $one, tag = "pledges and sources",
                params(("id" = String, Path, description = $name)),
                responses((status = 204, description = "Deleted")))]
            pub async fn remove(
                state: State<AppState>,
                caller: Caller,
                if_match: IfMatch,
                id: Path<String>,
            ) -> ApiResult<StatusCode> {
                super::remove::<$child>(state, caller, if_match, id).await
            }
        }
    };
}

child_handlers!(
    pledge,
    Pledge,
    PledgeBody,
    "/v1/agreements/{id}/pledges",
    "/v1/pledges/{id}",
    "The pledge id, e.g. ua-jp-2024-p1",
    crate::http::convert::ConvertParam,
    crate::http::openapi::PledgeList
);
child_handlers!(
    source,
    Source,
    SourceBody,
    "/v1/agreements/{id}/sources",
    "/v1/sources/{id}",
    "The source id, e.g. ua-jp-2024-s1",
    crate::http::params::NoParams,
    crate::http::openapi::SourceList
);

fn not_found<C: Child>(id: &str) -> ApiError {
    ApiError::not_found(format!("no {} {id:?}", C::NAME))
}

async fn load<C: Child>(store: &dyn Store, id: &str) -> ApiResult<C> {
    let id = child_id(id).map_err(|_| not_found::<C>(id))?;
    C::get(store, &id).await?.ok_or_else(|| not_found::<C>(&id))
}

/// A body may repeat its child's id and agreement, but not change them.
fn parse_for<C: Child>(body: C::Body, current: &C) -> ApiResult<C::Draft> {
    let mut errors = Vec::new();
    let (id, agreement_id) = C::body_ids(&body);
    if agreement_id.is_some_and(|a| a != current.agreement_id()) {
        errors.push(FieldError::new(
            "agreement_id",
            format!(
                "cannot be changed; create the {} under the other agreement",
                C::NAME
            ),
        ));
    }
    if id.is_some_and(|i| i != current.id()) {
        errors.push(FieldError::new(
            "id",
            format!("cannot be changed (this {} is {})", C::NAME, current.id()),
        ));
    }
    match C::parse(body) {
        Ok(draft) if errors.is_empty() => Ok(draft),
        Ok(_) => Err(ApiError::Validation(errors)),
        Err(more) => Err(ApiError::Validation(
            errors.into_iter().chain(more).collect(),
        )),
    }
}

/// `?convert=` for pledges; sources take no parameter at all.
fn convert_target<C: Child>(uri: &Uri) -> ApiResult<Option<Currency>> {
    if C::CONVERTIBLE {
        read::<ConvertParam>(uri.query())?.target()
    } else {
        read::<NoParams>(uri.query())?;
        Ok(None)
    }
}

async fn list<C: Child>(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let target = convert_target::<C>(&uri)?;
    let mut agreement = load_agreement(state.store.as_ref(), &id).await?;
    Converter::agreement_into(state.store.as_ref(), target, &mut agreement).await?;
    let reads = Reads::Agreement(agreement.id.clone());
    let body = ListBody::whole(C::of_agreement(agreement));
    Ok(read_from(axum::Json(body).into_response(), reads))
}

/// An answer marked with what it read, so a write elsewhere keeps it.
fn read_from(mut response: Response, reads: Reads) -> Response {
    response.extensions_mut().insert(reads);
    response
}

async fn create<C: Child>(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<C::Body>,
) -> ApiResult<Response> {
    let agreement = load_agreement(state.store.as_ref(), &id).await?;
    let (given_id, given_agreement) = C::body_ids(&body);
    if given_agreement.is_some_and(|a| a != agreement.id) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "agreement_id",
            format!(
                "must be {} (the agreement in the path) or left out",
                agreement.id
            ),
        )]));
    }
    let given_id = given_id.map(str::to_owned).unwrap_or_default();
    let draft = C::parse(body).map_err(ApiError::Validation)?;
    let child = C::create(state.store.as_ref(), &caller.name, &agreement.id, &draft)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("no agreement {:?}", agreement.id)),
            StoreError::Invalid(errors) if errors.iter().all(|e| e.field == "id") => {
                ApiError::Conflict(format!("a {} with id {given_id:?} already exists", C::NAME))
            }
            other => other.into(),
        })?;
    let plural = format!("{}s", C::NAME);
    Ok(created(
        &format!("/v1/{plural}/{}", child.id()),
        &child,
        child.version(),
    ))
}

async fn show<C: Child>(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let target = convert_target::<C>(&uri)?;
    let mut child: C = load(state.store.as_ref(), &id).await?;
    let version = child.version();
    let reads = Reads::Agreement(child.agreement_id().to_owned());
    let (Some(target), Some(pledge)) = (target, child.as_pledge_mut()) else {
        return Ok(read_from(single(&child, version), reads));
    };
    // Without a year of its own, a pledge converts at its agreement's signing year.
    let signed_on = match pledge.year_from {
        Some(_) => None,
        None => state
            .store
            .get_agreement(&pledge.agreement_id)
            .await?
            .and_then(|a| a.signed_on),
    };
    let need = (pledge.currency.clone(), pledge_year(pledge, signed_on));
    let converter = Converter::load(state.store.as_ref(), target, [need]).await?;
    converter.convert_pledge(pledge, signed_on);
    Ok(read_from(
        single_tagged(&child, &converter.etag(version)),
        reads,
    ))
}

async fn replace<C: Child>(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<C::Body>,
) -> ApiResult<Response> {
    let current: C = load(state.store.as_ref(), &id).await?;
    let if_match = if_match.with_body_version(C::body_version(&body));
    let expected = if_match.expected(current.version())?;
    let draft = parse_for(body, &current)?;
    let child = C::replace(
        state.store.as_ref(),
        &caller.name,
        current.id(),
        &draft,
        expected,
    )
    .await
    .map_err(|e| if_match.on_error(e))?;
    Ok(single(&child, child.version()))
}

async fn patch<C: Child>(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> ApiResult<Response> {
    let if_match = if_match.with_patch_version(&patch)?;
    super::retry_on_version_race(|| async {
        let current: C = load(state.store.as_ref(), &id).await?;
        let expected = if_match
            .expected(current.version())?
            .unwrap_or(current.version());
        let draft = parse_for(patched(&current.draft(), &patch)?, &current)?;
        let child = C::replace(
            state.store.as_ref(),
            &caller.name,
            current.id(),
            &draft,
            Some(expected),
        )
        .await
        .map_err(|e| if_match.on_error(e))?;
        Ok(single(&child, child.version()))
    })
    .await
}

async fn remove<C: Child>(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let current: C = load(state.store.as_ref(), &id).await?;
    let expected = if_match.expected(current.version())?;
    C::delete(state.store.as_ref(), &caller.name, current.id(), expected)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => not_found::<C>(current.id()),
            other => if_match.on_error(other),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
