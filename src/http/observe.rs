//! Observability, the parts tower-http's layers take (middleware.rs puts
//! them in the stack): the request id's rules, the one span per request
//! and its log line, and the counters behind GET /metrics (Prometheus text
//! format), kept by the `metrics` crate and rendered by
//! `metrics-exporter-prometheus`.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tower_http::request_id::{MakeRequestId, RequestId};

use super::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

const REQUESTS: &str = "accords_http_requests_total";
const DURATION: &str = "accords_http_request_duration_seconds";
const IN_FLIGHT: &str = "accords_http_requests_in_flight";
const SSE_CLIENTS: &str = "accords_sse_clients";
const CONNECTIONS_OPEN: &str = "accords_connections_open";
const CONNECTIONS_REFUSED: &str = "accords_connections_refused_total";
const POOL: &str = "accords_db_pool_connections";
const POOL_IDLE: &str = "accords_db_pool_idle_connections";
const DB_UNAVAILABLE: &str = "accords_db_unavailable_total";
const RATE_LIMITED: &str = "accords_rate_limited_total";
const WRITES: &str = "accords_write_transactions_total";
const CONFLICTS: &str = "accords_write_conflicts_total";
const WAL_BYTES: &str = "accords_db_wal_bytes";

/// How many requests between two drains of the latency samples into their
/// buckets (rendering drains too): bounds the samples held between scrapes
/// without a background task.
const UPKEEP_EVERY: u64 = 1024;

/// What the process counts about itself; read by GET /metrics. Each server
/// (and each in-process test router) has its own recorder, not the global
/// one, so two of them never count into each other.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    in_flight: Gauge,
    sse_clients: Gauge,
    connections_refused: Counter,
    db_unavailable: Counter,
    rate_limited: Counter,
    writes: Counter,
    conflicts: Counter,
    /// Requests recorded, for the upkeep above.
    recorded: AtomicU64,
    /// Set when the process has been asked to stop: /readyz turns 503.
    pub shutting_down: AtomicBool,
    /// The server's open connections, once it runs.
    connections: OnceLock<Arc<super::limits::Slots>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.into()), &BUCKETS)
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let (
            in_flight,
            sse_clients,
            connections_refused,
            db_unavailable,
            rate_limited,
            writes,
            conflicts,
        ) = metrics::with_local_recorder(&recorder, || {
            use metrics::{describe_counter, describe_gauge, describe_histogram};
            describe_counter!(
                REQUESTS,
                "HTTP requests answered, by matched route, method and status."
            );
            describe_histogram!(DURATION, "Time to answer, by matched route.");
            describe_gauge!(IN_FLIGHT, "Requests being answered now.");
            describe_gauge!(SSE_CLIENTS, "Open event streams (GET /v1/events).");
            describe_gauge!(CONNECTIONS_OPEN, "Open client connections.");
            describe_counter!(
                CONNECTIONS_REFUSED,
                "Connections refused because every place, or the client's share, was taken."
            );
            describe_gauge!(POOL, "Open database connections.");
            describe_gauge!(POOL_IDLE, "Open database connections not in use.");
            describe_counter!(
                DB_UNAVAILABLE,
                "Requests answered 503 because no database connection or lock came in time."
            );
            describe_counter!(
                RATE_LIMITED,
                "Requests refused with 429 by the per-client rate limits."
            );
            describe_counter!(
                WRITES,
                "Writes that committed (2xx answers to POST, PUT, PATCH and DELETE)."
            );
            describe_counter!(
                CONFLICTS,
                "Writes refused for a conflict or a stale If-Match (409, 412)."
            );
            describe_gauge!(
                WAL_BYTES,
                "SQLite's write-ahead log, in bytes, as last measured (checkpointed past 16 MiB)."
            );
            // Registered now, so a scrape shows them at 0 before anything happened.
            let counter = |name: &'static str| {
                let counter = metrics::counter!(name);
                counter.increment(0);
                counter
            };
            let gauge = |name: &'static str| {
                let gauge = metrics::gauge!(name);
                gauge.set(0.0);
                gauge
            };
            (
                gauge(IN_FLIGHT),
                gauge(SSE_CLIENTS),
                counter(CONNECTIONS_REFUSED),
                counter(DB_UNAVAILABLE),
                counter(RATE_LIMITED),
                counter(WRITES),
                counter(CONFLICTS),
            )
        });
        Self {
            in_flight,
            sse_clients,
            connections_refused,
            db_unavailable,
            rate_limited,
            writes,
            conflicts,
            recorded: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            connections: OnceLock::new(),
            handle,
            recorder,
        }
    }
}

/// The method as a label: the methods HTTP defines, every other token as
/// one `OTHER` label, so made-up methods cannot add series. Routes are the
/// router's own patterns (or `unmatched`) and statuses three digits, so
/// every label comes from a bounded set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

impl Metrics {
    /// Reports the server's open connections in /metrics.
    pub fn watch_connections(&self, connections: Arc<super::limits::Slots>) {
        let _ = self.connections.set(connections);
    }

    /// A connection was refused at a cap.
    pub fn connection_refused(&self) {
        self.connections_refused.increment(1);
    }

    /// An event stream opened; [`Metrics::stream_closed`] when it ends.
    pub fn stream_opened(&self) {
        self.sse_clients.increment(1.0);
    }

    pub fn stream_closed(&self) {
        self.sse_clients.decrement(1.0);
    }

    fn record(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let label = method_label(method);
        metrics::with_local_recorder(&self.recorder, || {
            metrics::counter!(REQUESTS, "route" => route.to_owned(), "method" => label, "status" => status.to_string())
                .increment(1);
            metrics::histogram!(DURATION, "route" => route.to_owned()).record(seconds);
        });
        let write = !method.is_safe();
        match status {
            503 => self.db_unavailable.increment(1),
            429 => self.rate_limited.increment(1),
            200..300 if write => self.writes.increment(1),
            409 | 412 if write => self.conflicts.increment(1),
            _ => {}
        }
        if self.recorded.fetch_add(1, Ordering::Relaxed) % UPKEEP_EVERY == UPKEEP_EVERY - 1 {
            self.handle.run_upkeep();
        }
    }

    /// The Prometheus text exposition of everything counted, plus the pool.
    pub fn render(&self, pool: crate::store::PoolStatus) -> String {
        metrics::with_local_recorder(&self.recorder, || {
            let open = self.connections.get().map_or(0, |c| c.open());
            metrics::gauge!(CONNECTIONS_OPEN).set(open as f64);
            metrics::gauge!(POOL).set(f64::from(pool.size));
            metrics::gauge!(POOL_IDLE).set(pool.idle as f64);
            // PostgreSQL keeps its own log: the series exists only on SQLite.
            if let Some(bytes) = pool.wal_bytes {
                metrics::gauge!(WAL_BYTES).set(bytes as f64);
            }
        });
        self.handle.render()
    }
}

/// The route that matched, carried out of the router for the outer layers.
#[derive(Clone)]
struct RouteLabel(Arc<str>);

/// Requests that never reached a route (unknown paths, refusals before
/// routing) share one label, so a scan cannot blow up the metrics.
const UNMATCHED: &str = "unmatched";

fn route_of<B>(response: &axum::http::Response<B>) -> &str {
    response
        .extensions()
        .get::<RouteLabel>()
        .map_or(UNMATCHED, |label| &label.0)
}

/// Inside the router, where the matched route is known: hands it outward.
pub async fn label_route(request: Request, next: Next) -> Response {
    let label = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| RouteLabel(p.as_str().into()));
    let mut response = next.run(request).await;
    if let Some(label) = label {
        response.extensions_mut().insert(label);
    }
    response
}

/// A client's X-Request-Id is kept when it is sensible (1 to 128 visible
/// ASCII characters); any other is dropped here, before
/// `SetRequestIdLayer`, which then makes a new one.
pub fn drop_unusable_request_id<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let usable = request.headers().get(&REQUEST_ID).is_none_or(|v| {
        (1..=128).contains(&v.len()) && v.as_bytes().iter().all(u8::is_ascii_graphic)
    });
    if !usable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// A new request id: 32 hex digits, unique and unguessable without a
/// system call per request: a counter put through SipHash under a key
/// drawn once from the operating system (std's `RandomState`), twice, for
/// 128 bits.
#[derive(Clone, Copy, Default)]
pub struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        static KEY: OnceLock<RandomState> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let key = KEY.get_or_init(RandomState::new);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let bits = (u128::from(key.hash_one((n, 0u8))) << 64) | u128::from(key.hash_one((n, 1u8)));
        HeaderValue::from_str(&format!("{bits:032x}"))
            .ok()
            .map(RequestId::new)
    }
}

/// The one span a request is answered in (TraceLayer makes it): method and
/// request id, so every line logged while it is answered carries them.
/// Headers are never logged, so no key leaks.
pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), request_id = id)
}

/// The request's one log line, in its span: route, status and latency as
/// the event's own fields (recording them into the span first would format
/// them twice).
pub fn answered<B>(response: &axum::http::Response<B>, latency: Duration, span: &tracing::Span) {
    let latency_ms = (latency.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    tracing::info!(
        parent: span,
        route = route_of(response),
        status = response.status().as_u16(),
        latency_ms,
        "answered"
    );
}

/// Counts the request for /metrics and makes the request id known to every problem body rendered while it
/// is answered (written once, where the problem is rendered).
pub async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default()
        .to_owned();
    state.metrics.in_flight.increment(1.0);
    let response = crate::error::with_request_id(id, next.run(request)).await;
    state.metrics.in_flight.decrement(1.0);
    let status = response.status().as_u16();
    state.metrics.record(
        route_of(&response),
        &method,
        status,
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        let metrics = Metrics::default();
        for i in 0..100 {
            let made_up = Method::from_bytes(format!("M{i:07}").as_bytes()).unwrap();
            metrics.record("/v1/agreements", &made_up, 405, 0.001);
        }
        let text = metrics.render(crate::store::PoolStatus::default());
        assert!(
            text.contains("accords_http_requests_total{route=\"/v1/agreements\",method=\"OTHER\",status=\"405\"} 100"),
            "{text}"
        );
        assert!(!text.contains("M0000001"));
        assert!(text.contains("accords_write_conflicts_total 0"), "{text}");
    }
}
