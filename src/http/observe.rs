//! Observability: a request id on every request and answer, one log span per
//! request, and the counters behind GET /metrics (Prometheus text format).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

/// What the process counts about itself; read by GET /metrics.
#[derive(Default)]
pub struct Metrics {
    /// (route, method, status) -> requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// route -> latency.
    latency: Mutex<BTreeMap<String, Histogram>>,
    in_flight: AtomicI64,
    /// Open Server-Sent Event streams.
    pub sse_clients: AtomicI64,
    /// Set when the process has been asked to stop: /readyz turns 503.
    pub shutting_down: AtomicBool,
    /// The server's open connections, once it runs.
    connections: std::sync::OnceLock<std::sync::Arc<super::limits::Slots>>,
    /// Connections refused at a cap.
    connections_refused: std::sync::atomic::AtomicU64,
}

/// The method as a label: the methods HTTP defines, every other token as
/// one `OTHER` label, so made-up methods cannot add series.
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

/// Upper bound on (route, method, status) series. Routes are the router's
/// own patterns and methods and statuses are bounded sets, so this is a
/// backstop: past it, new combinations are counted under one overflow label.
pub const MAX_SERIES: usize = 2_000;
const OVERFLOW_ROUTE: &str = "overflow";

impl Metrics {
    /// Reports the server's open connections in /metrics.
    pub fn watch_connections(&self, connections: std::sync::Arc<super::limits::Slots>) {
        let _ = self.connections.set(connections);
    }

    /// A connection was refused at a cap.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let method = method_label(method);
        let mut route = route;
        if let Ok(mut requests) = self.requests.lock() {
            let mut key = (route.to_owned(), method.to_owned(), status);
            if !requests.contains_key(&key) && requests.len() >= MAX_SERIES {
                route = OVERFLOW_ROUTE;
                key = (OVERFLOW_ROUTE.to_owned(), "OTHER".to_owned(), 0);
            }
            *requests.entry(key).or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            if !latency.contains_key(route) && latency.len() >= MAX_SERIES {
                route = OVERFLOW_ROUTE;
            }
            let histogram = latency.entry(route.to_owned()).or_default();
            for (count, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *count += 1;
                }
            }
            histogram.sum += seconds;
            histogram.total += 1;
        }
    }

    /// Requests answered with one of these statuses, over all routes.
    fn count_status(&self, wanted: impl Fn(u16) -> bool, writes_only: bool) -> u64 {
        self.requests
            .lock()
            .map(|requests| {
                requests
                    .iter()
                    .filter(|((_, method, status), _)| {
                        wanted(*status) && (!writes_only || !is_read(method))
                    })
                    .map(|(_, n)| *n)
                    .sum()
            })
            .unwrap_or_default()
    }

    /// The Prometheus text exposition of everything counted, plus the pool.
    pub fn render(&self, pool: crate::store::PoolStatus) -> String {
        let mut out = String::new();
        out.push_str("# HELP accords_http_requests_total HTTP requests answered, by matched route, method and status.\n");
        out.push_str("# TYPE accords_http_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((route, method, status), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "accords_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP accords_http_request_duration_seconds Time to answer, by matched route.\n",
        );
        out.push_str("# TYPE accords_http_request_duration_seconds histogram\n");
        if let Ok(latency) = self.latency.lock() {
            for (route, histogram) in latency.iter() {
                for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                    let _ = writeln!(
                        out,
                        "accords_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "accords_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    histogram.total
                );
                let _ = writeln!(
                    out,
                    "accords_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    histogram.sum
                );
                let _ = writeln!(
                    out,
                    "accords_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    histogram.total
                );
            }
        }
        let gauges = [
            (
                "accords_http_requests_in_flight",
                "Requests being answered now.",
                "gauge",
                self.in_flight.load(Ordering::Relaxed) as u64,
            ),
            (
                "accords_sse_clients",
                "Open event streams (GET /v1/events).",
                "gauge",
                self.sse_clients.load(Ordering::Relaxed).max(0) as u64,
            ),
            (
                "accords_connections_open",
                "Open client connections.",
                "gauge",
                self.connections.get().map_or(0, |c| c.open() as u64),
            ),
            (
                "accords_connections_refused_total",
                "Connections refused because every place, or the client's share, was taken.",
                "counter",
                self.connections_refused.load(Ordering::Relaxed),
            ),
            (
                "accords_db_pool_connections",
                "Open database connections.",
                "gauge",
                u64::from(pool.size),
            ),
            (
                "accords_db_pool_idle_connections",
                "Open database connections not in use.",
                "gauge",
                pool.idle as u64,
            ),
            (
                "accords_db_unavailable_total",
                "Requests answered 503 because no database connection or lock came in time.",
                "counter",
                self.count_status(|s| s == 503, false),
            ),
            (
                "accords_rate_limited_total",
                "Requests refused with 429 by the per-client rate limits.",
                "counter",
                self.count_status(|s| s == 429, false),
            ),
            (
                "accords_write_transactions_total",
                "Writes that committed (2xx answers to POST, PUT, PATCH and DELETE).",
                "counter",
                self.count_status(|s| (200..300).contains(&s), true),
            ),
            (
                "accords_write_conflicts_total",
                "Writes refused for a conflict or a stale If-Match (409, 412).",
                "counter",
                self.count_status(|s| s == 409 || s == 412, true),
            ),
        ];
        for (name, help, kind, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        if let Some(bytes) = pool.wal_bytes {
            let _ = writeln!(
                out,
                "# HELP accords_db_wal_bytes SQLite's write-ahead log, in bytes, as last measured (checkpointed past 16 MiB).\n\
                 # TYPE accords_db_wal_bytes gauge\naccords_db_wal_bytes {bytes}"
            );
        }
        out
    }
}

fn is_read(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// The route that matched, carried out of the router for the outer layer.
#[derive(Clone)]
struct RouteLabel(String);

/// Inside the router, where the matched route is known: hands it outward.
pub async fn label_route(request: Request, next: Next) -> Response {
    let label = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| RouteLabel(p.as_str().to_owned()));
    let mut response = next.run(request).await;
    if let Some(label) = label {
        response.extensions_mut().insert(label);
    }
    response
}

/// The client's X-Request-Id when it is sensible, else a new random one.
fn request_id(request: &Request) -> String {
    let given = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()));
    match given {
        Some(id) => id.to_owned(),
        None => {
            let mut bytes = [0u8; 16];
            let _ = getrandom::fill(&mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    }
}

/// Gives the request an id, logs it in one span with its method, matched
/// route, status and latency, counts it, and echoes the id in the answer
/// (and in a problem body). Headers are never logged, so no key leaks.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        %method,
        request_id = %id,
        route = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty
    );
    state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let mut response = crate::error::with_request_id(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    state.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    // Requests that never reached a route (unknown paths, refusals before
    // routing) share one label, so a scan cannot blow up the metrics.
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or("unmatched".to_owned(), |label| label.0.clone());
    state.metrics.record(&route, &method, status, seconds);
    if !is_read(method.as_str()) && (200..300).contains(&status) {
        state.live.written();
    }
    span.record("route", route.as_str());
    span.record("status", status);
    span.record("latency_ms", (seconds * 1000.0 * 100.0).round() / 100.0);
    span.in_scope(|| tracing::info!("answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_bounded_by_methods_and_a_cap() {
        let metrics = Metrics::default();
        for i in 0..100 {
            let made_up = Method::from_bytes(format!("M{i:07}").as_bytes()).unwrap();
            metrics.record("/v1/agreements", &made_up, 405, 0.001);
        }
        let text = metrics.render(crate::store::PoolStatus::default());
        assert!(
            text.contains("method=\"OTHER\",status=\"405\"} 100"),
            "{text}"
        );
        assert!(!text.contains("M0000001"));
        for i in 0..MAX_SERIES + 50 {
            metrics.record(&format!("/route/{i}"), &Method::GET, 200, 0.001);
        }
        let series = metrics.requests.lock().unwrap().len();
        assert!(series <= MAX_SERIES + 1, "{series}");
        assert!(
            metrics
                .render(crate::store::PoolStatus::default())
                .contains("route=\"overflow\"")
        );
    }
}
