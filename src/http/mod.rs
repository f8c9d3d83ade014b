//! The HTTP API: one module per resource, merged into one router here, with
//! the middleware every request passes through.

mod agreements;
mod areas;
mod auth;
mod checks;
mod children;
mod conditional;
mod convert;
pub mod cors;
mod dashboard;
mod embed;
mod extract;
mod feed;
mod headers;
mod history;
mod idempotency;
mod import;
mod invalidation;
mod lang;
pub mod limits;
mod listing;
mod live;
mod middleware;
pub mod observe;
mod openapi;
mod params;
mod partner_lookup;
mod partners;
mod pretty;
mod query;
mod rates;
mod render_cache;
pub mod revisions;
mod stats;
mod text_view;
mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::store::Store;

pub use params::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// What every handler can reach: one `Arc`, so the per-request clones that
/// axum's extractors and middleware make cost one reference count, not one
/// per part (the profile in docs/performance-and-contract.md).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct AppParts {
    pub store: Arc<dyn Store>,
    pub options: Arc<HttpOptions>,
    pub metrics: Arc<observe::Metrics>,
    pub live: Arc<live::Live>,
    pub freshness: Arc<conditional::Freshness>,
    /// Open event streams, in total and per client.
    pub event_streams: Arc<limits::Slots>,
    /// Webhook subscriptions and deliveries, on the store's pool.
    pub webhooks: crate::store::webhooks::WebhookStore,
    /// The API as it answered at past revisions, a few kept ready.
    pub past: Arc<revisions::Past>,
}

/// Settings of the HTTP layer itself.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Largest body of POST /v1/import, in bytes.
    pub import_body_limit: usize,
    /// Largest body of POST /v1/rates, in bytes.
    pub rates_body_limit: usize,
    /// Reads need a key too.
    pub read_auth: bool,
    /// Changes to existing resources need If-Match.
    pub require_if_match: bool,
    pub rate_limits: limits::RateLimits,
    /// ACCORDS_CORS_ORIGINS: empty (no CORS), `*`, or a list of origins.
    pub cors_origins: String,
    /// ACCORDS_EMBED_ORIGINS: who may frame /embed/ answers, as the
    /// `frame-ancestors` sources (see [`cors::frame_ancestors`]).
    pub embed_frame_ancestors: String,
    /// A request running longer is answered 408.
    pub request_timeout: Duration,
    /// Cache-Control of every read (default: revalidate each time).
    pub cache_control: String,
    /// Cache-Control of answers at a past revision (`?revision=`, `?as_of=`),
    /// which never change (default: cached for a year, immutable).
    pub past_cache_control: String,
    /// Bytes of rendered read answers kept until the store's revision
    /// moves; 0 renders every read afresh.
    pub render_cache_bytes: usize,
    /// Caps on connections and event streams, and the connection timeouts.
    pub connections: ConnectionLimits,
    /// ACCORDS_WEBHOOK_ALLOW_PRIVATE: webhooks may point at loopback,
    /// private and link-local addresses.
    pub webhook_allow_private: bool,
}

/// What one client, and all of them, may hold open; defaults are safe at
/// `ulimit -n 1024` (connections stay well under the descriptors left
/// after the database's).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections in total (0: unlimited).
    pub total: usize,
    /// Open connections per client address (trusted proxies count only in the total).
    pub per_client: usize,
    /// A request's headers must arrive within this (also closes a
    /// keep-alive connection idle this long before its next request).
    pub header_timeout: Duration,
    /// A connection with no byte read or written for this long is closed.
    pub idle_timeout: Duration,
    /// The longest wait for the next piece of a request body.
    pub body_timeout: Duration,
    /// Open event streams (GET /v1/events) in total and per client.
    pub event_streams_total: usize,
    pub event_streams_per_client: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            total: 512,
            per_client: 64,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            event_streams_total: 256,
            event_streams_per_client: 8,
        }
    }
}

impl HttpOptions {
    /// The largest body a request to `path` may send: bulk uploads have
    /// their own limits, everything else the general one.
    pub fn body_limit_for(&self, path: &str) -> usize {
        match path {
            "/v1/import" => self.import_body_limit,
            "/v1/rates" => self.rates_body_limit,
            _ => self.body_limit,
        }
    }
}

impl Default for HttpOptions {
    /// The settings of `accords serve` without configuration, except that
    /// rate limits are off (the CLI turns them on).
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            import_body_limit: 64 * 1024 * 1024,
            rates_body_limit: 16 * 1024 * 1024,
            read_auth: false,
            require_if_match: false,
            rate_limits: limits::RateLimits {
                read_per_second: 0,
                write_per_second: 0,
                trusted_proxies: Vec::new(),
            },
            cors_origins: String::new(),
            embed_frame_ancestors: "*".into(),
            request_timeout: Duration::from_secs(30),
            cache_control: "no-cache".into(),
            past_cache_control: PAST_CACHE_CONTROL.into(),
            render_cache_bytes: 8 * 1024 * 1024,
            connections: ConnectionLimits::default(),
            webhook_allow_private: false,
        }
    }
}

/// The default Cache-Control of an answer at a past revision.
pub const PAST_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Builds the whole API from its state; tests drive it in-process.
/// `metrics` also carries the shutdown flag that turns /readyz to 503.
pub fn router(
    store: Arc<dyn Store>,
    options: HttpOptions,
    metrics: Arc<observe::Metrics>,
) -> Result<Router, String> {
    let cors = cors::cors_layer(&options.cors_origins)?;
    let limiter = Arc::new(limits::RateLimiter::new(options.rate_limits.clone()));
    let event_streams = limits::Slots::new(
        "event streams",
        options.connections.event_streams_total,
        options.connections.event_streams_per_client,
    );
    let body_timeout = options.connections.body_timeout;
    let freshness = Arc::new(conditional::Freshness::new(options.render_cache_bytes));
    let state = AppState(Arc::new(AppParts {
        webhooks: crate::store::webhooks::WebhookStore::new(store.database()),
        store,
        options: Arc::new(options),
        metrics,
        live: Arc::default(),
        freshness,
        event_streams,
        past: Arc::new(revisions::Past::new()),
    }));
    let import_limit = DefaultBodyLimit::max(state.options.import_body_limit);
    let (routes, spec) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(prometheus))
        .merge(agreements::router())
        .merge(partners::router())
        .merge(areas::router())
        .merge(children::router())
        .merge(history::router())
        .merge(checks::router())
        .merge(stats::router())
        .merge(revisions::router())
        .merge(rates::router())
        .merge(rates::bulk_router().layer(DefaultBodyLimit::max(state.options.rates_body_limit)))
        .merge(live::router())
        .merge(feed::router())
        .merge(dashboard::router())
        .merge(embed::router())
        .merge(import::router().layer(import_limit))
        .merge(webhooks::router())
        .split_for_parts();
    let spec = openapi::complete(spec);
    state.past.declare(&spec);
    let api = routes
        .merge(openapi::docs_router(spec))
        .fallback(unknown_route);
    Ok(middleware::stack(api, state, limiter, cors, body_timeout))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Up", body = Object, example = json!({"status": "ok"}))))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// The process can serve: the store answers and is migrated, and no
/// shutdown has begun (a load balancer then stops sending requests here).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Object, example = json!({"status": "ready", "backend": "sqlite"})),
        (status = 503, description = "The store cannot be reached, or shutdown has begun", body = openapi::Problem, content_type = "application/problem+json"),
    ))]
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ApiResult<Json<serde_json::Value>> {
    if state
        .metrics
        .shutting_down
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    state.store.ready().await?;
    Ok(Json(
        serde_json::json!({"status": "ready", "backend": state.store.backend()}),
    ))
}

/// Prometheus metrics: requests by route and status, latencies, pool use.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics in the Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
async fn prometheus(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let text = state.metrics.render(state.store.pool_status());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("there is no route {method} {}", uri.path()))
}

/// A single resource with its version as a strong ETag.
pub(crate) fn single<T: Serialize>(resource: &T, version: i64) -> Response {
    let mut response = Json(resource).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// A view of a single resource under its own ETag (a converted agreement,
/// say, whose tag also names the currency and the rates revision).
pub(crate) fn single_tagged<T: Serialize>(resource: &T, etag: &str) -> Response {
    let mut response = Json(resource).into_response();
    if let Ok(etag) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// 201 Created with the new resource's address and the resource itself.
pub(crate) fn created<T: Serialize>(location: &str, resource: &T, version: i64) -> Response {
    let mut response = single(resource, version);
    *response.status_mut() = StatusCode::CREATED;
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Enough for every editor of a busy summit desk to get through: each round
/// of a race lets at least one writer win.
const RACE_RETRIES: usize = 16;

/// A read-modify-write (PATCH) that lost a race with another writer starts
/// again from the new version, so no edit is lost and none overwritten.
pub(crate) async fn retry_on_version_race<F, Fut>(mut attempt: F) -> ApiResult<Response>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ApiResult<Response>>,
{
    for _ in 0..RACE_RETRIES {
        match attempt().await {
            Err(ApiError::VersionConflict { .. }) => continue,
            other => return other,
        }
    }
    attempt().await
}
