//! Keeping dashboards current: the change feed (GET /v1/changes), live
//! Server-Sent Events (GET /v1/events), and conditional GETs that answer 304
//! without running the query.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use serde_json::json;
use tokio::sync::{Notify, broadcast};

use super::AppState;
use super::partners::resolve_partner;
use super::query::QueryString;
use crate::domain::FieldError;
use crate::error::{ApiError, ApiResult};
use crate::store::{ChangeEntry, ChangeFilter};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/changes", get(changes))
        .route("/v1/events", get(events))
}

/// Changes fanned out to this instance's event streams. One pump task reads
/// the feed when woken — by a write here, by another instance's NOTIFY, or
/// every second — and broadcasts each change once.
pub struct Live {
    sender: broadcast::Sender<ChangeEntry>,
    wake: Notify,
    pump: OnceLock<()>,
}

/// Changes a slow client may fall behind by before its stream ends; it then
/// reconnects with Last-Event-ID and resumes from the feed.
const BUFFER: usize = 1024;
const POLL: Duration = Duration::from_secs(1);
const PAGE: u32 = 500;
const ENTITIES: &[&str] = &[
    "agreement",
    "pledge",
    "source",
    "partner",
    "area",
    "dataset",
    "rate",
];

impl Default for Live {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BUFFER).0,
            wake: Notify::new(),
            pump: OnceLock::new(),
        }
    }
}

impl Live {
    /// A write committed through this instance: deliver it now.
    pub fn written(&self) {
        self.wake.notify_one();
    }

    fn ensure_pump(&self, state: &AppState) {
        if self.pump.set(()).is_ok() {
            let state = state.clone();
            tokio::spawn(async move { pump(state).await });
        }
    }
}

async fn pump(state: AppState) {
    let store = state.store.clone();
    let mut notifications = store.change_notifications().await;
    let mut last = store.revision().await.unwrap_or_default();
    loop {
        let notified = async {
            match notifications.as_mut() {
                Some(receiver) => {
                    receiver.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = notified => {},
            () = state.live.wake.notified() => {},
            () = tokio::time::sleep(POLL) => {},
        }
        loop {
            let filter = ChangeFilter {
                since: last,
                limit: PAGE,
                ..ChangeFilter::default()
            };
            match store.changes(&filter).await {
                Ok(entries) => {
                    let full = entries.len() == PAGE as usize;
                    for entry in entries {
                        last = entry.seq;
                        let _ = state.live.sender.send(entry);
                    }
                    if !full {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the change feed");
                    break;
                }
            }
        }
    }
}

struct FeedQuery {
    filter: ChangeFilter,
}

async fn feed_query(
    state: &AppState,
    query: &QueryString,
    default_limit: u32,
) -> ApiResult<FeedQuery> {
    let mut errors = Vec::new();
    let since = match query.one("since", &mut errors) {
        None => 0,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|s| *s >= 0)
            .unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "since",
                    "must be a change number (0 or more)",
                ));
                0
            }),
    };
    let limit = match query.one("limit", &mut errors) {
        None => default_limit,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .unwrap_or_else(|| {
                errors.push(FieldError::new(
                    "limit",
                    "must be a whole number from 1 to 1000",
                ));
                default_limit
            }),
    };
    let entity = query.one("entity", &mut errors).map(str::to_owned);
    if let Some(entity) = &entity
        && !ENTITIES.contains(&entity.as_str())
    {
        errors.push(FieldError::new(
            "entity",
            format!("must be one of: {}", ENTITIES.join(", ")),
        ));
    }
    let partner = match query.one("partner", &mut errors) {
        None => None,
        Some(reference) => match resolve_partner(state.store.as_ref(), reference).await {
            Ok(code) => Some(code),
            Err(ApiError::NotFound { detail, .. }) => {
                errors.push(FieldError::new("partner", detail));
                None
            }
            Err(other) => return Err(other),
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    Ok(FeedQuery {
        filter: ChangeFilter {
            since,
            entity,
            partner,
            limit,
        },
    })
}

/// GET /v1/changes?since=SEQ&limit=N: what changed after SEQ, oldest first.
async fn changes(State(state): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let raw = QueryString::parse(uri.query(), &[&["since", "limit", "entity", "partner"]])?;
    let query = feed_query(&state, &raw, 100).await?;
    let items = state.store.changes(&query.filter).await?;
    let next_since = items.last().map_or(query.filter.since, |e| e.seq);
    Ok(axum::Json(json!({ "items": items, "next_since": next_since })).into_response())
}

fn event_of(entry: &ChangeEntry) -> Event {
    Event::default()
        .id(entry.seq.to_string())
        .data(serde_json::to_string(entry).unwrap_or_default())
}

fn wanted(filter: &ChangeFilter, entry: &ChangeEntry) -> bool {
    filter.entity.as_deref().is_none_or(|e| e == entry.entity)
        && filter
            .partner
            .as_ref()
            .is_none_or(|p| entry.partner.as_deref() == Some(p.as_str()))
}

/// Counts an open event stream for /metrics while it lives.
struct Client(AppState);

impl Drop for Client {
    fn drop(&mut self) {
        self.0.metrics.sse_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Phase {
    /// Catching up from the feed after `since`.
    Replay {
        since: i64,
    },
    Live,
    Done,
}

struct Stream_ {
    client: Client,
    receiver: broadcast::Receiver<ChangeEntry>,
    filter: ChangeFilter,
    phase: Phase,
    buffered: std::collections::VecDeque<ChangeEntry>,
    /// The last change sent (or skipped by the filter).
    last: i64,
}

/// GET /v1/events: the change feed as Server-Sent Events (`id:` is the
/// change number). Resumes after `Last-Event-ID` (or `since`); without
/// either, starts with the next change. Heartbeats every 15 s.
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    let raw = QueryString::parse(uri.query(), &[&["since", "entity", "partner"]])?;
    let query = feed_query(&state, &raw, PAGE).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let since = match (resume, raw.all("since").is_empty()) {
        (Some(id), _) => id,
        (None, false) => query.filter.since,
        (None, true) => state.store.revision().await?,
    };
    state.live.ensure_pump(&state);
    // Subscribe before reading the feed, so nothing falls between the two.
    let receiver = state.live.sender.subscribe();
    state.metrics.sse_clients.fetch_add(1, Ordering::Relaxed);
    let stream_state = Stream_ {
        client: Client(state.clone()),
        receiver,
        filter: ChangeFilter {
            limit: PAGE,
            ..query.filter
        },
        phase: Phase::Replay { since },
        buffered: Default::default(),
        last: since,
    };
    // Fused: a stream that ended stays ended, however often it is polled.
    let stream = futures_util::StreamExt::fuse(event_stream(stream_state));
    Ok(Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("heartbeat"),
        )
        .into_response())
}

fn event_stream(state: Stream_) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(state, |mut s| async move {
        loop {
            if let Some(entry) = s.buffered.pop_front() {
                s.last = entry.seq;
                return Some((Ok(event_of(&entry)), s));
            }
            match s.phase {
                Phase::Done => return None,
                Phase::Replay { since } => {
                    let filter = ChangeFilter {
                        since,
                        ..s.filter.clone()
                    };
                    match s.client.0.store.changes(&filter).await {
                        Ok(entries) if entries.is_empty() => s.phase = Phase::Live,
                        Ok(entries) => {
                            let next = entries.last().map_or(since, |e| e.seq);
                            s.phase = Phase::Replay { since: next };
                            s.buffered.extend(entries);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "event stream could not read the feed");
                            s.phase = Phase::Done;
                        }
                    }
                }
                Phase::Live => match s.receiver.recv().await {
                    Ok(entry) if entry.seq > s.last && wanted(&s.filter, &entry) => {
                        s.buffered.push_back(entry)
                    }
                    Ok(_) => {}
                    // Fell too far behind: end, and let the client resume from the feed.
                    Err(broadcast::error::RecvError::Lagged(_))
                    | Err(broadcast::error::RecvError::Closed) => {
                        s.phase = Phase::Done;
                    }
                },
            }
        }
    })
}

/// Routes whose answer carries the resource's own version as its ETag.
const VERSIONED: &[&str] = &[
    "/v1/agreements/{id}",
    "/v1/pledges/{id}",
    "/v1/sources/{id}",
    "/v1/partners/{reference}",
    "/v1/areas/{code}",
];

fn matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    if_none_match
        .split(',')
        .any(|tag| tag.trim() == "*" || bare(tag) == bare(etag))
}

/// A short fingerprint of what varies a representation besides the store's
/// revision: the Accept header, and the currency of `?convert=` (so a list
/// converted to USD never shares a tag with the same list unconverted).
fn variant(headers: &HeaderMap, uri: &Uri) -> String {
    let mut fingerprint = headers
        .get(header::ACCEPT)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if name == "convert" {
            fingerprint.extend_from_slice(b"\nconvert=");
            fingerprint.extend_from_slice(value.to_ascii_uppercase().as_bytes());
        }
    }
    // FNV-1a: stable across processes and instances, unlike std's hasher.
    let hash = fingerprint.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:08x}", hash as u32)
}

/// Conditional GET on every read. Lists, stats, the timeline and exports
/// carry a weak ETag of the store-wide revision: an If-None-Match that still
/// matches is answered 304 after one tiny read, without running the query.
/// Single resources keep their version ETag and answer 304 when it matches.
pub async fn conditional(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let reads_data = matches!(*request.method(), Method::GET | Method::HEAD)
        && route
            .as_deref()
            .is_some_and(|r| r.starts_with("/v1/") && r != "/v1/events");
    if !reads_data {
        return next.run(request).await;
    }
    let cache_control = HeaderValue::from_str(&state.options.cache_control)
        .unwrap_or(HeaderValue::from_static("no-cache"));
    let if_none_match = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let versioned = route.as_deref().is_some_and(|r| VERSIONED.contains(&r));
    let list_etag = if versioned {
        None
    } else {
        match state.store.revision().await {
            Ok(revision) => Some(format!(
                "W/\"r{revision}-{}\"",
                variant(request.headers(), request.uri())
            )),
            Err(error) => return ApiError::from(error).into_response(),
        }
    };
    if let (Some(etag), Some(condition)) = (&list_etag, &if_none_match)
        && matches(condition, etag)
    {
        return not_modified(etag, &cache_control);
    }
    let mut response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    if let Some(etag) = &list_etag
        && let Ok(value) = HeaderValue::from_str(etag)
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, cache_control.clone());
    let current = response
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let (Some(etag), Some(condition)) = (current, &if_none_match)
        && matches(condition, &etag)
    {
        return not_modified(&etag, &cache_control);
    }
    response
}

fn not_modified(etag: &str, cache_control: &HeaderValue) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, cache_control.clone());
    response
}
