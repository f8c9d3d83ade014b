//! Idempotent POSTs: a retry that carries the same `Idempotency-Key` and body
//! gets the first answer again and creates nothing; the same key with another
//! body is a 422. Keys are per API key and kept 48 hours.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::auth::Caller;
use crate::domain::FieldError;
use crate::domain::area::AreaCode;
use crate::domain::partner::PartnerCode;
use crate::error::ApiError;
use crate::store::{CommittedChange, Reservation, StoredResponse};

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
/// Response headers a replay must repeat.
const KEPT_HEADERS: &[&str] = &["content-type", "location", "etag"];
/// Responses are small JSON documents; anything larger is not kept.
const MAX_KEPT_BODY: usize = 4 * 1024 * 1024;

/// Whether [`idempotent_post`] has anything to do: a POST with a key.
pub fn concerns<B>(request: &axum::http::Request<B>) -> bool {
    request.method() == Method::POST && request.headers().contains_key(IDEMPOTENCY_KEY)
}

pub async fn idempotent_post(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    match run_once(&state, key, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

fn well_formed(key: &HeaderValue) -> Option<String> {
    let text = key.to_str().ok()?.trim();
    ((1..=255).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| text.to_owned())
}

async fn run_once(
    state: &AppState,
    key: HeaderValue,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let key = well_formed(&key).ok_or_else(|| {
        ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters".into())
            .into_response()
    })?;
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return Ok(next.run(request).await);
    };
    let (parts, body) = request.into_parts();
    let limit = state.options.body_limit_for(parts.uri.path());
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        ApiError::PayloadTooLarge("the request body is larger than the configured limit".into())
            .into_response()
    })?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b" ");
    hasher.update(parts.uri.to_string());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let request_hash: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    let store = state.store.as_ref();
    match store
        .reserve_idempotency_key(&caller.name, &key, &request_hash)
        .await
        .map_err(|e| ApiError::from(e).into_response())?
    {
        Reservation::Replay(stored) => return Ok(replay(stored)),
        Reservation::Committed(change) => return Ok(answer_committed(state, change).await),
        Reservation::Mismatch => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "Idempotency-Key",
                "was already used with a different request; use a new key for a new request",
            )])
            .into_response());
        }
        Reservation::InProgress => {
            return Err(ApiError::Conflict(
                "the first request with this Idempotency-Key is still running; retry shortly"
                    .into(),
            )
            .into_response());
        }
        Reservation::Reserved => {}
    }

    // Every change the request commits is tied to the key in its own
    // transaction (see `Reservation::Committed`).
    let response = crate::store::with_idempotency_key(
        caller.name.clone(),
        key.clone(),
        next.run(Request::from_parts(parts, Body::from(bytes))),
    )
    .await;
    let status = response.status();
    if !status.is_success() {
        // A failed request may be retried with the same key and run again.
        let _ = store.release_idempotency_key(&caller.name, &key).await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_KEPT_BODY).await else {
        let _ = store.release_idempotency_key(&caller.name, &key).await;
        return Err(
            ApiError::Internal("a response too large to keep for replay".into()).into_response(),
        );
    };
    let stored = StoredResponse {
        status: status.as_u16(),
        headers: KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                Some((
                    name.to_string(),
                    parts.headers.get(*name)?.to_str().ok()?.to_owned(),
                ))
            })
            .collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    if let Err(error) = store
        .complete_idempotency_key(&caller.name, &key, &stored)
        .await
    {
        tracing::warn!(%error, "could not keep a response for idempotent replay");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// The answer to a retry whose first request committed its change and then
/// died before its answer was kept: the resource it wrote, as it is now
/// (201 with its Location for a creation), or for a bulk change a note of
/// what was committed. Nothing is written again.
async fn answer_committed(state: &AppState, change: CommittedChange) -> Response {
    let store = state.store.as_ref();
    let id = change.entity_id.as_str();
    // The resource as it is now, and its version, if it is still there.
    fn now<T: serde::Serialize>(
        found: crate::store::StoreResult<Option<T>>,
        version: impl Fn(&T) -> i64,
    ) -> Option<(serde_json::Result<serde_json::Value>, i64)> {
        found
            .ok()
            .flatten()
            .map(|r| (serde_json::to_value(&r), version(&r)))
    }
    let (location, found) = match change.entity.as_str() {
        "agreement" => (
            format!("/v1/agreements/{id}"),
            now(store.get_agreement(id).await, |a| a.version),
        ),
        "pledge" => (
            format!("/v1/pledges/{id}"),
            now(store.get_pledge(id).await, |p| p.version),
        ),
        "source" => (
            format!("/v1/sources/{id}"),
            now(store.get_source(id).await, |s| s.version),
        ),
        "partner" => (
            format!("/v1/partners/{id}"),
            match PartnerCode::parse(id) {
                Ok(code) => now(store.get_partner(&code).await, |p| p.version),
                Err(_) => None,
            },
        ),
        "area" => (
            format!("/v1/areas/{id}"),
            match AreaCode::parse(id) {
                Ok(code) => now(store.get_area(&code).await, |a| a.version),
                Err(_) => None,
            },
        ),
        _ => (String::new(), None),
    };
    let mut response = match found {
        Some((Ok(resource), version)) if change.op == "create" => {
            super::created(&location, &resource, version)
        }
        Some((Ok(resource), version)) => super::single(&resource, version),
        _ => axum::Json(serde_json::json!({
            "committed": true,
            "change": change.seq,
            "entity": change.entity,
            "id": change.entity_id,
            "op": change.op,
            "detail": "the first request with this Idempotency-Key committed this change, then its answer was lost; nothing was written again (see GET /v1/changes)",
        }))
        .into_response(),
    };
    response.headers_mut().insert(
        HeaderName::from_static(REPLAYED),
        HeaderValue::from_static("true"),
    );
    response
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert(
        HeaderName::from_static(REPLAYED),
        HeaderValue::from_static("true"),
    );
    response
}
