//! Per-client rate limits, and slots for long-lived things (connections,
//! event streams) counted in total and per client.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Requests per second allowed per client for reads (GET/HEAD/OPTIONS) and
/// writes (everything else); 0 = off.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub read_per_second: u32,
    pub write_per_second: u32,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies, load balancers).
    pub trusted_proxies: Vec<IpAddr>,
}

/// What a client has left after an allowed request, for the RateLimit headers.
/// A `limit` of 0 means the class is not limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitState {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_seconds: u64,
}

/// The IETF draft names (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT_LIMIT: &str = "ratelimit-limit";
pub const RATELIMIT_REMAINING: &str = "ratelimit-remaining";
pub const RATELIMIT_RESET: &str = "ratelimit-reset";

/// Probes and scrapes must never be turned away by a busy client's limit.
const UNLIMITED_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// How often idle buckets are swept, so a request rarely pays for a sweep.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// A bucket idle this long is dropped. It refilled completely long ago
/// (a whole burst comes back within one second), so forgetting it is lossless.
const IDLE_EVICTION: Duration = Duration::from_secs(60);
/// Upper bound on remembered buckets, so memory stays bounded under a flood.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BucketKey {
    client: IpAddr,
    write: bool,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// The tokens the bucket holds at `now`, refilled at `rate` per second up to `burst`.
    fn tokens_at(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * rate).min(burst)
    }
}

struct Buckets {
    by_key: HashMap<BucketKey, Bucket>,
    last_sweep: Instant,
}

/// In-memory token buckets keyed by (client address, read|write). The burst
/// equals the per-second rate: a client may spend one second's allowance at once.
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<Buckets>,
    max_buckets: usize,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(Buckets {
                by_key: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            max_buckets: MAX_BUCKETS,
        }
    }

    /// Whether any limit is set (the middleware is left out when none is).
    pub fn enabled(&self) -> bool {
        self.limits.read_per_second > 0 || self.limits.write_per_second > 0
    }

    /// The per-second rate (and burst) of reads or writes; 0 = not limited.
    pub fn limit(&self, write: bool) -> u32 {
        if write {
            self.limits.write_per_second
        } else {
            self.limits.read_per_second
        }
    }

    /// Ok(remaining) when allowed, Err(seconds until one token is back, at least 1) when not.
    pub fn check(&self, client: IpAddr, write: bool) -> Result<RateLimitState, u64> {
        self.check_at(client, write, Instant::now())
    }

    /// [`Self::check`] with the clock passed in, so tests can move time.
    fn check_at(&self, client: IpAddr, write: bool, now: Instant) -> Result<RateLimitState, u64> {
        let limit = self.limit(write);
        if limit == 0 {
            return Ok(RateLimitState {
                limit: 0,
                remaining: 0,
                reset_seconds: 0,
            });
        }
        let rate = f64::from(limit);
        let burst = rate;
        let key = BucketKey {
            client: rate_limit_key(client),
            write,
        };

        // Nothing below can panic, so a poisoned lock still holds sound buckets.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(buckets.last_sweep) >= SWEEP_INTERVAL {
            buckets
                .by_key
                .retain(|_, bucket| now.saturating_duration_since(bucket.updated) <= IDLE_EVICTION);
            buckets.last_sweep = now;
        }
        if !buckets.by_key.contains_key(&key) && buckets.by_key.len() >= self.max_buckets {
            // A full bucket behaves exactly like a missing one, so dropping
            // those loses nothing.
            buckets
                .by_key
                .retain(|_, bucket| bucket.tokens_at(now, rate, burst) < burst);
        }
        let tokens = match buckets.by_key.get(&key) {
            Some(bucket) => bucket.tokens_at(now, rate, burst),
            None => burst,
        };
        if tokens < 1.0 {
            // Not stored: a refused request must not push the refill further out.
            let wait = ((1.0 - tokens) / rate).ceil() as u64;
            return Err(wait.max(1));
        }
        let tokens = tokens - 1.0;
        if buckets.by_key.contains_key(&key) || buckets.by_key.len() < self.max_buckets {
            // Instants can arrive slightly out of order from concurrent callers.
            let updated = buckets
                .by_key
                .get(&key)
                .map_or(now, |bucket| bucket.updated.max(now));
            buckets.by_key.insert(key, Bucket { tokens, updated });
        } else {
            // Over the cap with every bucket still in use: more distinct clients
            // within a second than we remember. Letting the newcomer through
            // untracked beats refusing every new client for everyone's flood.
            tracing::warn!(
                max = self.max_buckets,
                "rate limiter is full; not tracking a new client"
            );
        }
        Ok(RateLimitState {
            limit,
            remaining: tokens.floor() as u32,
            reset_seconds: ((burst - tokens) / rate).ceil() as u64,
        })
    }

    #[cfg(test)]
    fn bucket_count(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key
            .len()
    }
}

/// IPv4-mapped IPv6 peers count as their IPv4 address; an IPv6 client counts
/// as its /64, since a single host usually holds a whole /64 and could
/// otherwise get a fresh bucket per address.
fn rate_limit_key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// The client's address for rate limiting: the TCP peer, unless the peer is
/// one of `trusted_proxies`, in which case the right-most address in
/// `X-Forwarded-For` that is not itself a trusted proxy. A forwarded header
/// from an untrusted peer is ignored, so it cannot be spoofed. Without
/// `ConnectInfo` (in-process tests) the address is `::`.
pub fn client_address(request: &Request, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |ConnectInfo(addr)| {
            addr.ip().to_canonical()
        });
    let is_trusted = |address: IpAddr| {
        trusted_proxies
            .iter()
            .any(|proxy| proxy.to_canonical() == address)
    };
    if !is_trusted(peer) {
        return peer;
    }

    // Hops are appended left to right, so walk from the right: each trusted
    // proxy vouches for the hop just before it, and nothing further left.
    let forwarded: Vec<&[u8]> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let mut nearest_known = peer;
    for entry in forwarded
        .iter()
        .rev()
        .flat_map(|value| value.rsplit(|&byte| byte == b','))
    {
        let Some(address) = parse_forwarded_address(entry) else {
            // Garbage from here leftwards: the last hop we trust is our best answer.
            return nearest_known;
        };
        if !is_trusted(address) {
            return address;
        }
        nearest_known = address;
    }
    nearest_known
}

/// One `X-Forwarded-For` entry: an address, as some proxies write it with a port.
fn parse_forwarded_address(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()
        .map(|address| address.to_canonical())
}

fn is_write(method: &Method) -> bool {
    !method.is_safe()
}

fn insert_rate_limit_headers(response: &mut Response, limit: u32, remaining: u32, reset: u64) {
    let headers = response.headers_mut();
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(remaining));
    headers.insert(RATELIMIT_RESET, HeaderValue::from(reset));
}

/// axum middleware (state `Arc<RateLimiter>`): refuses a client over its read
/// or write rate with 429 problem+json and Retry-After; every limited answer
/// carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
/// `/healthz`, `/readyz` and `/metrics` are never limited.
pub async fn rate_limit(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let write = is_write(request.method());
    let limit = limiter.limit(write);
    if limit == 0 || UNLIMITED_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let client = client_address(&request, &limiter.limits.trusted_proxies);
    match limiter.check(client, write) {
        Ok(state) => {
            let mut response = next.run(request).await;
            insert_rate_limit_headers(
                &mut response,
                state.limit,
                state.remaining,
                state.reset_seconds,
            );
            response
        }
        Err(retry_after) => {
            tracing::debug!(%client, write, retry_after, "rate limit reached");
            let mut response = ApiError::TooManyRequests { retry_after }.into_response();
            insert_rate_limit_headers(&mut response, limit, 0, retry_after);
            response
        }
    }
}

/// Places for long-lived things (connections, event streams) counted in
/// total and per client, so that neither one client nor all of them
/// together can hold more than their share of file descriptors and memory.
#[derive(Debug)]
pub struct Slots {
    what: &'static str,
    total: usize,
    per_client: usize,
    taken: Mutex<HashMap<IpAddr, usize>>,
    open: std::sync::atomic::AtomicUsize,
}

/// Why a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken: 503, come back later.
    Full,
    /// This client holds its share: 429.
    ClientFull,
}

impl Refusal {
    /// The problem a refused request is answered with (Retry-After: 1).
    pub fn error(self, what: &str) -> ApiError {
        match self {
            Refusal::Full => ApiError::Overloaded(format!("too many open {what}; retry shortly")),
            Refusal::ClientFull => ApiError::TooManyRequests { retry_after: 1 },
        }
    }
}

/// A taken slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    client: IpAddr,
    counted_for_client: bool,
}

impl Slots {
    /// `total` and `per_client` of 0 mean unlimited.
    pub fn new(what: &'static str, total: usize, per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            what,
            total,
            per_client,
            taken: Mutex::new(HashMap::new()),
            open: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    pub fn what(&self) -> &'static str {
        self.what
    }

    /// How many are open now.
    pub fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes a slot for `client`; `shared` clients (trusted proxies, which
    /// carry many readers) count only against the total.
    pub fn take(self: &Arc<Self>, client: IpAddr, shared: bool) -> Result<Slot, Refusal> {
        let client = rate_limit_key(client);
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let open = self.open.load(std::sync::atomic::Ordering::Relaxed);
        if self.total > 0 && open >= self.total {
            return Err(Refusal::Full);
        }
        let counted_for_client = !shared && self.per_client > 0;
        if counted_for_client {
            let held = taken.entry(client).or_insert(0);
            if *held >= self.per_client {
                return Err(Refusal::ClientFull);
            }
            *held += 1;
        }
        self.open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Slot {
            slots: self.clone(),
            client,
            counted_for_client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self
            .slots
            .taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.counted_for_client
            && let Some(held) = taken.get_mut(&self.client)
        {
            *held -= 1;
            if *held == 0 {
                taken.remove(&self.client);
            }
        }
        self.slots
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::{StatusCode, header};
    use axum::middleware;
    use axum::routing::get;
    use tower::ServiceExt;

    use crate::error::PROBLEM_JSON;

    fn limits(read: u32, write: u32, trusted: &[&str]) -> RateLimits {
        RateLimits {
            read_per_second: read,
            write_per_second: write,
            trusted_proxies: trusted.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn request_from(peer: Option<&str>, forwarded: &[&str]) -> Request {
        let mut builder = Request::builder().uri("/things");
        for value in forwarded {
            builder = builder.header("x-forwarded-for", *value);
        }
        let mut request = builder.body(Body::empty()).unwrap();
        if let Some(peer) = peer {
            let socket: SocketAddr = peer.parse().unwrap();
            request.extensions_mut().insert(ConnectInfo(socket));
        }
        request
    }

    #[test]
    fn bucket_refuses_after_the_burst_and_refills_with_time() {
        let limiter = RateLimiter::new(limits(3, 0, &[]));
        let client = ip("192.0.2.1");
        let start = Instant::now();
        let remaining: Vec<u32> = (0..3)
            .map(|_| limiter.check_at(client, false, start).unwrap().remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        assert_eq!(limiter.check_at(client, false, start), Err(1));

        // One token comes back every third of a second.
        let later = start + Duration::from_millis(200);
        assert_eq!(limiter.check_at(client, false, later), Err(1));
        let later = start + Duration::from_millis(340);
        let state = limiter.check_at(client, false, later).unwrap();
        assert_eq!((state.limit, state.remaining), (3, 0));
        assert_eq!(state.reset_seconds, 1);
        assert!(limiter.check_at(client, false, later).is_err());

        // Long idle refills to the burst, never beyond it.
        let much_later = start + Duration::from_secs(30);
        let state = limiter.check_at(client, false, much_later).unwrap();
        assert_eq!(state.remaining, 2);
    }

    #[test]
    fn clients_and_classes_have_separate_buckets() {
        let limiter = RateLimiter::new(limits(1, 1, &[]));
        let now = Instant::now();
        assert!(limiter.check_at(ip("192.0.2.1"), false, now).is_ok());
        assert!(limiter.check_at(ip("192.0.2.1"), false, now).is_err());
        assert!(limiter.check_at(ip("192.0.2.1"), true, now).is_ok());
        assert!(limiter.check_at(ip("192.0.2.2"), false, now).is_ok());
        // The same /64 is one client; another /64 is not.
        assert!(limiter.check_at(ip("2001:db8::1"), false, now).is_ok());
        assert!(limiter.check_at(ip("2001:db8::ffff"), false, now).is_err());
        assert!(limiter.check_at(ip("2001:db8:0:1::1"), false, now).is_ok());
    }

    #[test]
    fn unlimited_class_always_passes() {
        let limiter = RateLimiter::new(limits(0, 1, &[]));
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                limiter
                    .check_at(ip("192.0.2.1"), false, now)
                    .map(|s| s.limit),
                Ok(0)
            );
        }
        assert_eq!(limiter.bucket_count(), 0);
    }

    #[test]
    fn idle_buckets_are_evicted_and_the_map_is_capped() {
        let mut limiter = RateLimiter::new(limits(5, 5, &[]));
        let start = Instant::now();
        for n in 0..50u8 {
            let _ = limiter.check_at(IpAddr::from([10, 0, 0, n]), false, start);
        }
        assert_eq!(limiter.bucket_count(), 50);
        let _ = limiter.check_at(ip("10.0.1.1"), false, start + Duration::from_secs(61));
        assert_eq!(limiter.bucket_count(), 1);

        limiter.max_buckets = 10;
        let now = start + Duration::from_secs(100);
        for n in 0..20u8 {
            assert!(
                limiter
                    .check_at(IpAddr::from([10, 0, 2, n]), false, now)
                    .is_ok()
            );
        }
        assert!(limiter.bucket_count() <= 10);
        // Once the buckets have refilled they can be dropped to make room.
        let later = now + Duration::from_secs(2);
        assert!(limiter.check_at(ip("10.0.3.1"), false, later).is_ok());
        assert!(limiter.bucket_count() <= 2);
    }

    #[test]
    fn client_address_is_the_peer_without_trusted_proxies() {
        let request = request_from(Some("198.51.100.7:5000"), &["203.0.113.9"]);
        assert_eq!(client_address(&request, &[]), ip("198.51.100.7"));
        // A peer not in the list cannot choose its address.
        assert_eq!(
            client_address(&request, &[ip("10.0.0.1")]),
            ip("198.51.100.7")
        );
        let request = request_from(None, &["203.0.113.9"]);
        assert_eq!(
            client_address(&request, &[]),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        );
        let request = request_from(Some("[::ffff:198.51.100.7]:5000"), &[]);
        assert_eq!(client_address(&request, &[]), ip("198.51.100.7"));
    }

    #[test]
    fn client_address_behind_trusted_proxies() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        // The client's own claim (left) is ignored; the proxy's entry wins.
        let request = request_from(Some("10.0.0.1:443"), &["6.6.6.6, 203.0.113.9"]);
        assert_eq!(client_address(&request, &trusted), ip("203.0.113.9"));
        // Chained proxies, across repeated header lines, some with ports.
        let request = request_from(
            Some("10.0.0.1:443"),
            &["6.6.6.6, 203.0.113.9:1234", "10.0.0.2"],
        );
        assert_eq!(client_address(&request, &trusted), ip("203.0.113.9"));
        let request = request_from(Some("10.0.0.1:443"), &["[2001:db8::5]:80"]);
        assert_eq!(client_address(&request, &trusted), ip("2001:db8::5"));
        // No header, or garbage: the nearest hop we can vouch for.
        let request = request_from(Some("10.0.0.1:443"), &[]);
        assert_eq!(client_address(&request, &trusted), ip("10.0.0.1"));
        let request = request_from(Some("10.0.0.1:443"), &["203.0.113.9, nonsense, 10.0.0.2"]);
        assert_eq!(client_address(&request, &trusted), ip("10.0.0.2"));
    }

    async fn ok() -> &'static str {
        "ok"
    }

    fn limited_app(limiter: Arc<RateLimiter>) -> Router {
        let app = Router::new()
            .route("/things", get(ok).post(ok))
            .route("/healthz", get(ok))
            .layer(middleware::from_fn_with_state(limiter, rate_limit));
        app.layer(crate::http::headers::hardened())
    }

    fn call(method: Method, path: &str, peer: &str) -> Request {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        request
    }

    #[tokio::test]
    async fn a_burst_beyond_the_limit_gets_429_problem() {
        let app = limited_app(Arc::new(RateLimiter::new(limits(2, 1, &[]))));
        let peer = "192.0.2.10:40000";
        for expected_remaining in ["1", "0"] {
            let response = app
                .clone()
                .oneshot(call(Method::GET, "/things", peer))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["ratelimit-limit"], "2");
            assert_eq!(
                response.headers()["ratelimit-remaining"],
                expected_remaining
            );
            assert!(response.headers().contains_key("ratelimit-reset"));
        }
        let refused = app
            .clone()
            .oneshot(call(Method::GET, "/things", peer))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        assert_eq!(refused.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(refused.headers()["ratelimit-limit"], "2");
        assert_eq!(refused.headers()["ratelimit-remaining"], "0");
        assert_eq!(refused.headers()["ratelimit-reset"], "1");
        assert_eq!(refused.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let body = to_bytes(refused.into_body(), 64 * 1024).await.unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["status"], 429);

        // Writes have their own allowance; other clients and probes are untouched.
        let write = app
            .clone()
            .oneshot(call(Method::POST, "/things", peer))
            .await
            .unwrap();
        assert_eq!(write.status(), StatusCode::OK);
        assert_eq!(write.headers()["ratelimit-limit"], "1");
        let other = app
            .clone()
            .oneshot(call(Method::GET, "/things", "192.0.2.11:40000"))
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::OK);
        for _ in 0..5 {
            let probe = app
                .clone()
                .oneshot(call(Method::GET, "/healthz", peer))
                .await
                .unwrap();
            assert_eq!(probe.status(), StatusCode::OK);
            assert!(!probe.headers().contains_key("ratelimit-limit"));
        }
    }

    #[test]
    fn slots_count_per_client_and_in_total() {
        let slots = Slots::new("streams", 3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.take(a, false).unwrap();
        let _second = slots.take(a, false).unwrap();
        assert_eq!(slots.take(a, false).unwrap_err(), Refusal::ClientFull);
        let _third = slots.take(b, false).unwrap();
        assert_eq!(slots.take(b, false).unwrap_err(), Refusal::Full);
        assert_eq!(slots.open(), 3);
        drop(first);
        assert_eq!(slots.open(), 2);
        let _again = slots.take(a, false).unwrap();
        // A shared client (a trusted proxy) counts only in the total.
        let proxy = Slots::new("connections", 0, 1);
        let p: IpAddr = "10.0.0.9".parse().unwrap();
        let _one = proxy.take(p, true).unwrap();
        let _two = proxy.take(p, true).unwrap();
        assert_eq!(proxy.open(), 2);
    }
}
