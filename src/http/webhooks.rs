//! /v1/webhooks: subscriptions to the change feed, delivered as signed
//! HTTP POSTs (Standard Webhooks), and their deliveries. Admin keys only;
//! the signing secret is shown once, in the answer that creates it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{IfMatch, JsonBody, patched};
use super::params::Params;
use super::partner_lookup::find_one_partner;
use crate::auth::Caller;
use crate::domain::FieldError;
use crate::domain::webhook::{self, MAX_DESCRIPTION_CHARS, MAX_LIST};
use crate::error::{ApiError, ApiResult};
use crate::store::webhooks::{
    Delivery, DeliveryStatus, RetryRefusal, Subscription, SubscriptionDraft, WebhookFilters,
};

/// Subscriptions one service keeps at most: each change is matched against
/// every one in the writing transaction.
pub const MAX_SUBSCRIPTIONS: i64 = 100;
const DEFAULT_DELIVERIES: u32 = 50;
const MAX_DELIVERIES: u32 = 200;
/// The longest agreement id a filter may name.
const MAX_AGREEMENT_ID: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, patch, remove))
        .routes(routes!(test))
        .routes(routes!(deliveries))
        .routes(routes!(retry))
}

/// A subscription as sent: `url` and `events` are required.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// Where deliveries are POSTed: http or https; no private, loopback or
    /// link-local address unless ACCORDS_WEBHOOK_ALLOW_PRIVATE=true.
    #[schema(example = "https://hooks.example.org/accords")]
    url: String,
    /// Event types: `*`, `<entity>.*` or `<entity>.<action>` (`agreement.updated`, `pledge.created`).
    #[schema(example = json!(["agreement.*", "pledge.created"]))]
    events: Vec<String>,
    #[serde(default)]
    filters: FiltersBody,
    #[serde(default)]
    description: String,
    /// False pauses deliveries; true (again) resumes them and clears `disabled_reason`.
    #[serde(default = "enabled")]
    enabled: bool,
}

fn enabled() -> bool {
    true
}

/// Only changes with these values; each field left out or empty matches anything.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FiltersBody {
    /// Partners, by code or any name (`JP`, `japan`); a change matches by its agreement's partner.
    #[serde(default)]
    partner: Vec<String>,
    /// Agreement ids; a change to a pledge or source matches by its agreement.
    #[serde(default)]
    agreement: Vec<String>,
}

/// A subscription; its secret is never shown again after creation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    #[schema(example = "wh_3f9a1c0d2b7e4a68")]
    id: String,
    url: String,
    description: String,
    events: Vec<String>,
    filters: Filters,
    enabled: bool,
    /// Why deliveries stopped, when the service disabled the subscription.
    disabled_reason: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    /// Moves with every change; the ETag, and what If-Match names.
    version: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Filters {
    partner: Vec<String>,
    agreement: Vec<String>,
}

/// The answer to a creation: the subscription and its signing secret, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    webhook: Webhook,
    /// `whsec_` and the base64 key: the receiver verifies signatures with it. Shown only here.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    items: Vec<Webhook>,
}

/// One delivery of one event to one subscription, and how sending it went.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    id: i64,
    /// The `webhook-id` header, the same on every attempt: receivers drop duplicates by it.
    #[schema(example = "msg_42_wh_3f9a1c0d2b7e4a68")]
    message_id: String,
    #[schema(example = "agreement.updated")]
    event: String,
    /// The change's number in the feed (/v1/changes); null for a test ping.
    seq: Option<i64>,
    #[schema(example = "pending")]
    status: String,
    attempts: i64,
    /// The receiver's status code at the last attempt (null: no answer).
    last_status: Option<i64>,
    last_error: Option<String>,
    /// When the next attempt is due (pending deliveries only).
    next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    last_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    items: Vec<WebhookDelivery>,
    /// Pass as `before` for the next (older) page; null on the last.
    next_before: Option<i64>,
}

/// The query of the delivery list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `failed`.
    #[param(value_type = Option<String>, pattern = "^(pending|delivered|failed)$")]
    status: Option<String>,
    /// Only deliveries older than this one (the `next_before` of the page before).
    #[param(value_type = Option<i64>, minimum = 1)]
    before: Option<String>,
    /// Items per page (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

impl From<Subscription> for Webhook {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id,
            url: s.url,
            description: s.description,
            events: s.events,
            filters: Filters {
                partner: s.filters.partner,
                agreement: s.filters.agreement,
            },
            enabled: s.enabled,
            disabled_reason: s.disabled_reason,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
        }
    }
}

impl From<Delivery> for WebhookDelivery {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            message_id: d.message_id,
            event: d.event,
            seq: d.feed_seq,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            last_attempt_at: d.last_attempt_at,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }
}

/// The body as it would be sent whole, for a PATCH to merge into.
fn body_of(s: &Subscription) -> WebhookBody {
    WebhookBody {
        url: s.url.clone(),
        events: s.events.clone(),
        filters: FiltersBody {
            partner: s.filters.partner.clone(),
            agreement: s.filters.agreement.clone(),
        },
        description: s.description.clone(),
        enabled: s.enabled,
    }
}

/// Checks every field, reporting all problems at once.
async fn parse(state: &AppState, body: WebhookBody) -> ApiResult<SubscriptionDraft> {
    let mut errors = Vec::new();
    // Stored as parsed: normalised, anything unprintable percent-encoded.
    let url = match webhook::parse_url(&body.url, state.options.webhook_allow_private) {
        Ok(url) => url.to_string(),
        Err(message) => {
            errors.push(FieldError::new("url", message));
            String::new()
        }
    };
    if body.events.is_empty() {
        errors.push(FieldError::new(
            "events",
            "name at least one event type (`*`: all)",
        ));
    }
    if body.events.len() > MAX_LIST {
        errors.push(FieldError::new(
            "events",
            format!("at most {MAX_LIST} event types"),
        ));
    }
    for (i, event) in body.events.iter().enumerate().take(MAX_LIST) {
        if let Err(message) = webhook::parse_event(event) {
            errors.push(FieldError::new(format!("events[{i}]"), message));
        }
    }
    let mut partners = Vec::new();
    if body.filters.partner.len() > MAX_LIST {
        errors.push(FieldError::new(
            "filters.partner",
            format!("at most {MAX_LIST} partners"),
        ));
    }
    for (i, reference) in body.filters.partner.iter().enumerate().take(MAX_LIST) {
        match find_one_partner(state.store.as_ref(), reference).await? {
            Ok(code) => partners.push(code.as_str().to_owned()),
            Err(unresolved) => errors.push(FieldError::new(
                format!("filters.partner[{i}]"),
                unresolved.pointing_at_matches(),
            )),
        }
    }
    if body.filters.agreement.len() > MAX_LIST {
        errors.push(FieldError::new(
            "filters.agreement",
            format!("at most {MAX_LIST} agreements"),
        ));
    }
    for (i, id) in body.filters.agreement.iter().enumerate().take(MAX_LIST) {
        if id.trim().is_empty() || id.len() > MAX_AGREEMENT_ID || id.chars().any(char::is_control) {
            errors.push(FieldError::new(
                format!("filters.agreement[{i}]"),
                format!("must be an agreement id (1 to {MAX_AGREEMENT_ID} characters)"),
            ));
        }
    }
    if body.description.chars().count() > MAX_DESCRIPTION_CHARS
        || body
            .description
            .chars()
            .any(|c| c.is_control() && c != '\n')
    {
        errors.push(FieldError::new(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters, no control characters"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(SubscriptionDraft {
        url,
        description: body.description,
        events: body.events,
        filters: WebhookFilters {
            partner: partners,
            agreement: body.filters.agreement,
        },
        enabled: body.enabled,
    })
}

async fn load(state: &AppState, id: &str) -> ApiResult<Subscription> {
    state
        .webhooks
        .get_subscription(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no webhook {id:?}")))
}

fn location(id: &str) -> String {
    format!("/v1/webhooks/{id}")
}

/// A JSON answer under its ETag (the version, or else a digest of the
/// body), or a 304 when If-None-Match names it. The shared layer never keeps
/// or tags these admin-only answers (see `live::conditional`), so they tag
/// themselves; `no-store` keeps them out of every cache.
fn tagged<T: Serialize>(
    headers: &HeaderMap,
    status: StatusCode,
    body: &T,
    version: Option<i64>,
) -> ApiResult<Response> {
    let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let etag = match version {
        Some(version) => format!("\"{version}\""),
        None => {
            let digest = Sha256::digest(&bytes);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            format!("W/\"{hex}\"")
        }
    };
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let unchanged = status == StatusCode::OK
        && headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| tag.trim() == "*" || bare(tag) == bare(&etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Every subscription, in id order. Admin keys only.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "The subscriptions (never their secrets)", body = WebhookList,
        headers(("ETag" = String, description = "A digest of the list")))))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let items = state
        .webhooks
        .list_subscriptions()
        .await?
        .into_iter()
        .map(Webhook::from)
        .collect();
    tagged(&headers, StatusCode::OK, &WebhookList { items }, None)
}

/// Subscribes a URL to changes; the answer holds the signing secret, shown
/// only this once. Changes committed from now on are delivered. Admin keys only.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = WebhookBody,
    responses((status = 201, description = "Created; `secret` is shown only here", body = CreatedWebhook,
        headers(("Location" = String, description = "The subscription's URL"), ("ETag" = String, description = "The version")))))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<WebhookBody>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let draft = parse(&state, body).await?;
    if state.webhooks.count_subscriptions().await? >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::Conflict(format!(
            "there are already {MAX_SUBSCRIPTIONS} webhooks, the most one service keeps; delete one first"
        )));
    }
    let id = webhook::generate_id().map_err(ApiError::Internal)?;
    let secret = webhook::generate_secret().map_err(ApiError::Internal)?;
    let subscription = state
        .webhooks
        .create_subscription(&id, &secret, &draft, crate::domain::clock::now())
        .await?;
    tracing::info!(webhook = %id, url = %subscription.url, key = %caller.name, "webhook created");
    let version = subscription.version;
    let mut response = tagged(
        &headers,
        StatusCode::CREATED,
        &CreatedWebhook {
            webhook: subscription.into(),
            secret,
        },
        Some(version),
    )?;
    if let Ok(value) = HeaderValue::from_str(&location(&id)) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "The subscription's id (wh_...)")),
    responses((status = 200, description = "The subscription (never its secret)", body = Webhook,
        headers(("ETag" = String, description = "The version")))))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let subscription = load(&state, &id).await?;
    let version = subscription.version;
    tagged(
        &headers,
        StatusCode::OK,
        &Webhook::from(subscription),
        Some(version),
    )
}

/// Changes a subscription (a JSON merge patch of the body it was created
/// with). `"enabled": true` resumes a disabled one: deliveries still
/// pending are sent, in order.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "The subscription's id (wh_...)")),
    request_body(content = Object, description = "A merge patch (RFC 7396) of the subscription's body", content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Changed", body = Webhook, headers(("ETag" = String, description = "The new version")))))]
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(mut patch): JsonBody<Value>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let if_match = if_match.with_patch_version(&patch)?;
    // The version is a precondition, not a setting.
    if let Value::Object(members) = &mut patch {
        members.remove("version");
    }
    super::retry_on_version_race(|| async {
        let current = load(&state, &id).await?;
        let expected = if_match
            .expected(current.version)?
            .unwrap_or(current.version);
        let body = patched::<WebhookBody>(&body_of(&current), &patch)?;
        let draft = parse(&state, body).await?;
        let subscription = state
            .webhooks
            .update_subscription(&id, &draft, expected, crate::domain::clock::now())
            .await
            .map_err(|e| if_match.on_error(e))?;
        let version = subscription.version;
        tagged(
            &headers,
            StatusCode::OK,
            &Webhook::from(subscription),
            Some(version),
        )
    })
    .await
}

/// Deletes a subscription and its deliveries, sent or not.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "The subscription's id (wh_...)")),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let current = load(&state, &id).await?;
    let expected = if_match.expected(current.version)?;
    state
        .webhooks
        .delete_subscription(&id, expected)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ApiError::not_found(format!("there is no webhook {id:?}"))
            }
            other => if_match.on_error(other),
        })?;
    tracing::info!(webhook = %id, key = %caller.name, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a test delivery (`webhook.ping`), sent at once and retried like
/// any other, but outside the order of the subscription's events.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path, description = "The subscription's id (wh_...)")),
    responses((status = 202, description = "Queued; follow it in the deliveries list", body = WebhookDelivery)))]
async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let subscription = load(&state, &id).await?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| ApiError::Internal(e.to_string()))?;
    let message_id = format!(
        "msg_ping_{}",
        nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let delivery = state
        .webhooks
        .queue_ping(&subscription.id, &message_id, crate::domain::clock::now())
        .await?;
    accepted(delivery)
}

/// 202: a delivery queued, as it stands.
fn accepted(delivery: Delivery) -> ApiResult<Response> {
    let body = WebhookDelivery::from(delivery);
    tagged(&HeaderMap::new(), StatusCode::ACCEPTED, &body, None)
}

/// A subscription's deliveries, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "The subscription's id (wh_...)"), DeliveryQuery),
    responses((status = 200, description = "A page of deliveries, newest first", body = DeliveryList,
        headers(("ETag" = String, description = "A digest of the page")))))]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Params(query): Params<DeliveryQuery>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let mut errors = Vec::new();
    let status = query.status.as_deref().and_then(|text| {
        let status = DeliveryStatus::parse(text);
        if status.is_none() {
            errors.push(FieldError::new(
                "status",
                "must be pending, delivered or failed",
            ));
        }
        status
    });
    let before = query.before.as_deref().and_then(|text| {
        let before = text.parse::<i64>().ok().filter(|b| *b > 0);
        if before.is_none() {
            errors.push(FieldError::new(
                "before",
                "must be a delivery id (a whole number from 1)",
            ));
        }
        before
    });
    let limit = super::params::limit(
        query.limit.as_deref(),
        DEFAULT_DELIVERIES,
        MAX_DELIVERIES,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    load(&state, &id).await?;
    let items: Vec<WebhookDelivery> = state
        .webhooks
        .list_deliveries(&id, status, before, limit)
        .await?
        .into_iter()
        .map(WebhookDelivery::from)
        .collect();
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|d| d.id))
        .flatten();
    tagged(
        &headers,
        StatusCode::OK,
        &DeliveryList { items, next_before },
        None,
    )
}

/// Sends one delivery again now, whatever became of it, with a fresh retry
/// window (a manual retry is outside the subscription's order). 409 while
/// it is being sent.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    params(("id" = String, Path, description = "The subscription's id (wh_...)"), ("delivery_id" = i64, Path, description = "The delivery's id")),
    responses((status = 202, description = "Queued again", body = WebhookDelivery)))]
async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    load(&state, &id).await?;
    let not_found =
        || ApiError::not_found(format!("webhook {id:?} has no delivery {delivery_id:?}"));
    let number = delivery_id.parse::<i64>().map_err(|_| not_found())?;
    match state
        .webhooks
        .retry_delivery(&id, number, crate::domain::clock::now())
        .await?
    {
        Ok(delivery) => accepted(delivery),
        Err(RetryRefusal::NotFound) => Err(not_found()),
        Err(RetryRefusal::InFlight) => Err(ApiError::Conflict(
            "the delivery is being sent right now; look at it again shortly".into(),
        )),
    }
}
