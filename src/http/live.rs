//! Keeping dashboards current: the change feed (GET /v1/changes), live
//! Server-Sent Events (GET /v1/events), and conditional GETs that answer 304
//! without running the query, from rendered answers kept per revision.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use futures_util::stream::{self, Stream};
use serde_json::json;
use tokio::sync::{Notify, broadcast, watch};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::parse_instant;
use super::partner_lookup::{PartnerMatch, find_partner, unresolved_detail};
use super::query::QueryString;
use crate::domain::FieldError;
use crate::domain::lang::Lang;
use crate::error::{ApiError, ApiResult};
use crate::store::{ChangeEntry, ChangeFilter, ENTITIES, Store};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(changes))
        .routes(routes!(events))
}

/// Changes fanned out to this instance's event streams. One pump task reads
/// the feed when woken — by a write here, by another instance's NOTIFY, or
/// every second — and broadcasts each change once. Also what this instance
/// knows of the store's revision, and the answers it rendered at it.
pub struct Live {
    sender: broadcast::Sender<ChangeEntry>,
    wake: Notify,
    pump: OnceLock<()>,
    /// Writes answered through this instance (whatever their status): a
    /// revision read before the latest of them is never trusted again.
    writes: AtomicU64,
    revision: Mutex<Option<KnownRevision>>,
    /// Held while the revision is read: readers that need a new one wait for
    /// that read rather than all asking the store at once.
    reading_revision: tokio::sync::Mutex<()>,
    rendered: Mutex<Rendered>,
    /// Writes to SQLite take turns here; see [`WRITE_TURN_WAIT`].
    write_turn: tokio::sync::Mutex<()>,
}

/// How long a revision read from the store is trusted without reading it
/// again. Writes through this instance are seen at once (they renew it);
/// those through other instances within this, well inside the promised second.
const REVISION_TTL: Duration = Duration::from_millis(100);
/// The largest rendered answer kept (all of them: ACCORDS_RENDER_CACHE_BYTES).
const RENDERED_ENTRY_BYTES: usize = 1024 * 1024;
/// The longest a GET waits for another request rendering the same answer
/// before it renders the answer itself.
const RENDER_WAIT: Duration = Duration::from_secs(1);
/// SQLite has one writer at a time, and a writer that finds the lock taken
/// sleeps and retries (up to 100 ms a time), so concurrent writers starve
/// each other: the 99th percentile of 4 writers was 740 ms for a 1.5 ms
/// write. Writes through one instance take turns in order instead, waiting
/// at most this long; past it (an import holding the lock) they try the
/// lock as before, and answer 503 if it stays taken.
const WRITE_TURN_WAIT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
struct KnownRevision {
    value: i64,
    /// `Live::writes` when the read began.
    writes: u64,
    /// When the read began.
    at: Instant,
}

/// What a read answers from: the store's revision, and the UTC day (the data
/// checks call agreements past their expiry date expired).
type Era = (i64, NaiveDate);

/// Successful GET answers rendered in one era, by URI and Accept. The
/// revision moves with every change, so a new one empties them all.
#[derive(Default)]
struct Rendered {
    era: Option<Era>,
    /// Everything kept counts: bodies, headers, keys and a fixed overhead.
    bytes: usize,
    answers: HashMap<RenderedKey, RenderedAnswer>,
    /// Use order: the least recently used answer is the first evicted.
    uses: std::collections::BTreeMap<u64, RenderedKey>,
    tick: u64,
    /// Answers being rendered now: who asks for one of them waits for it
    /// (the sender is dropped when it is done), so that after a write the
    /// connections asking for one page render it once, not once each.
    rendering: HashMap<RenderedKey, watch::Receiver<()>>,
}

/// What a GET finds among the rendered answers.
enum Found<'a> {
    Answer(Response),
    /// Another request is rendering it: wait, then look again.
    Rendering(watch::Receiver<()>),
    /// Render it; the others wait until this is dropped.
    Render(Rendering<'a>),
}

/// A render in progress; dropping it (done, failed or cancelled) wakes the
/// requests waiting for it.
struct Rendering<'a> {
    live: &'a Live,
    era: Era,
    key: RenderedKey,
    _done: watch::Sender<()>,
}

impl Drop for Rendering<'_> {
    fn drop(&mut self) {
        let mut rendered = self
            .live
            .rendered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if rendered.era == Some(self.era)
            && rendered
                .rendering
                .get(&self.key)
                .is_some_and(|waiting| waiting.same_channel(&self._done.subscribe()))
        {
            rendered.rendering.remove(&self.key);
        }
    }
}

/// A kept answer is found by its URI and the media type negotiated from
/// Accept (one of a handful), never by the raw header a client made up.
#[derive(Clone, PartialEq, Eq, Hash)]
struct RenderedKey {
    uri: String,
    media: &'static str,
    lang: Lang,
}

struct RenderedAnswer {
    headers: HeaderMap,
    body: Bytes,
    /// Its place in `Rendered::uses`.
    used: u64,
    /// What it counts against the budget.
    cost: usize,
}

/// Bookkeeping of one kept answer (maps, allocations) counted on top of its bytes.
const RENDERED_OVERHEAD: usize = 256;

impl Rendered {
    fn cost(key: &RenderedKey, headers: &HeaderMap, body: &Bytes) -> usize {
        let headers: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum();
        RENDERED_OVERHEAD + key.uri.len() + headers + body.len()
    }

    fn remove(&mut self, key: &RenderedKey) {
        if let Some(old) = self.answers.remove(key) {
            self.uses.remove(&old.used);
            self.bytes -= old.cost;
        }
    }

    /// Marks an answer used now; returns a copy of it.
    fn touch(&mut self, key: &RenderedKey) -> Option<(HeaderMap, Bytes)> {
        self.tick += 1;
        let tick = self.tick;
        let answer = self.answers.get_mut(key)?;
        self.uses.remove(&answer.used);
        answer.used = tick;
        self.uses.insert(tick, key.clone());
        Some((answer.headers.clone(), answer.body.clone()))
    }

    /// Keeps an answer within `budget` bytes, evicting the least recently
    /// used ones to make room (never everything at once).
    fn insert(&mut self, key: RenderedKey, headers: HeaderMap, body: Bytes, budget: usize) {
        self.remove(&key);
        let cost = Self::cost(&key, &headers, &body);
        if cost > budget {
            return;
        }
        while self.bytes + cost > budget {
            let Some((_, oldest)) = self.uses.pop_first() else {
                break;
            };
            if let Some(old) = self.answers.remove(&oldest) {
                self.bytes -= old.cost;
            }
        }
        self.tick += 1;
        self.uses.insert(self.tick, key.clone());
        self.bytes += cost;
        self.answers.insert(
            key,
            RenderedAnswer {
                headers,
                body,
                used: self.tick,
                cost,
            },
        );
    }
}

/// Changes a slow client may fall behind by before its stream ends; it then
/// reconnects with Last-Event-ID and resumes from the feed.
const BUFFER: usize = 1024;
const POLL: Duration = Duration::from_secs(1);
const PAGE: u32 = 500;

impl Default for Live {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BUFFER).0,
            wake: Notify::new(),
            pump: OnceLock::new(),
            writes: AtomicU64::new(0),
            revision: Mutex::new(None),
            reading_revision: tokio::sync::Mutex::new(()),
            rendered: Mutex::new(Rendered::default()),
            write_turn: tokio::sync::Mutex::new(()),
        }
    }
}

impl Live {
    /// A write committed through this instance: deliver it now.
    pub fn written(&self) {
        self.wake.notify_one();
    }

    /// A write was answered through this instance: the next read here reads
    /// the revision again, so it sees the write.
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    /// The store's revision: read at most every [`REVISION_TTL`], again
    /// after any write through this instance, and again when a client shows
    /// a newer one (`at_least`, from its If-None-Match).
    async fn revision(&self, store: &dyn Store, at_least: i64) -> ApiResult<i64> {
        let writes = self.writes.load(Ordering::SeqCst);
        // Good for this request: begun after every write it may have heard of.
        let usable = |live: &Self| {
            let known = *live.revision.lock().unwrap_or_else(PoisonError::into_inner);
            known
                .filter(|k| {
                    k.writes >= writes && k.at.elapsed() < REVISION_TTL && k.value >= at_least
                })
                .map(|k| k.value)
        };
        if let Some(value) = usable(self) {
            return Ok(value);
        }
        match self.reading_revision.try_lock() {
            Ok(_reading) => self.read_revision(store).await,
            Err(_) => {
                // Another request is reading it: wait for that read, and use
                // it if it began late enough; else (or if it failed) read.
                drop(self.reading_revision.lock().await);
                match usable(self) {
                    Some(value) => Ok(value),
                    None => self.read_revision(store).await,
                }
            }
        }
    }

    async fn read_revision(&self, store: &dyn Store) -> ApiResult<i64> {
        let writes = self.writes.load(Ordering::SeqCst);
        let started = Instant::now();
        let value = store.revision().await?;
        let read = KnownRevision {
            value,
            writes,
            at: started,
        };
        let mut known = self.revision.lock().unwrap_or_else(PoisonError::into_inner);
        // Keep the most recent read; a slower, older one never replaces it.
        if known.is_none_or(|k| (k.writes, k.at) <= (read.writes, read.at)) {
            *known = Some(read);
        }
        Ok(value)
    }

    /// The answer rendered for `key` in `era`; else whether another request
    /// is rendering it (when `may_wait`), else the right to render it.
    fn find(&self, era: Era, key: &RenderedKey, may_wait: bool) -> Found<'_> {
        let mut rendered = self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        if rendered.era < Some(era) {
            *rendered = Rendered {
                era: Some(era),
                ..Rendered::default()
            };
        }
        if rendered.era == Some(era) {
            if let Some((headers, body)) = rendered.touch(key) {
                let mut response = Response::new(Body::from(body));
                *response.headers_mut() = headers;
                return Found::Answer(response);
            }
            if may_wait && let Some(waiting) = rendered.rendering.get(key) {
                return Found::Rendering(waiting.clone());
            }
        }
        let (done, waiting) = watch::channel(());
        if rendered.era == Some(era) {
            rendered.rendering.insert(key.clone(), waiting);
        }
        Found::Render(Rendering {
            live: self,
            era,
            key: key.clone(),
            _done: done,
        })
    }

    /// Keeps a 200 rendered in `era` (its body, complete, no larger than one
    /// entry may be: never a streamed export); returns it whole.
    async fn keep(
        &self,
        era: Era,
        key: RenderedKey,
        response: Response,
        kept_bytes: usize,
    ) -> Response {
        let size = response.body().size_hint().exact();
        let Some(size) = size.filter(|s| *s as usize <= RENDERED_ENTRY_BYTES.min(kept_bytes))
        else {
            return response;
        };
        let (parts, body) = response.into_parts();
        let Ok(body) = axum::body::to_bytes(body, size as usize).await else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let mut rendered = self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        // An answer of an older era than the one kept is only served.
        if rendered.era == Some(era) {
            rendered.insert(key, parts.headers.clone(), body.clone(), kept_bytes);
        }
        Response::from_parts(parts, Body::from(body))
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
    // A change number, or a time: the changes made at or after it.
    let since = match query.one("since", &mut errors) {
        None => 0,
        Some(text) => match (text.parse::<i64>(), parse_instant(text)) {
            (Ok(seq), _) if seq >= 0 => seq,
            (Err(_), Some(at)) => state.store.feed_position_at(at).await?,
            _ => {
                errors.push(FieldError::new(
                    "since",
                    "must be a change number (0 or more) or an RFC 3339 time (2026-12-01T10:00:00Z)",
                ));
                0
            }
        },
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
        Some(reference) => match find_partner(state.store.as_ref(), reference).await? {
            PartnerMatch::One(code) => Some(code),
            unresolved => {
                let (detail, closest) =
                    unresolved_detail(state.store.as_ref(), reference, unresolved).await;
                errors.push(FieldError::new("partner", detail).with_matches(closest));
                None
            }
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

/// GET /v1/changes?since=SEQ&limit=N: what changed after SEQ, oldest first;
/// with `Accept: application/atom+xml`, the Atom feed of /v1/changes.atom.
#[utoipa::path(get, path = "/v1/changes", tag = "live", params(crate::http::openapi::ChangeParams),
    responses((status = 200, description = "Changes after `since`, oldest first; or, asked for Atom, the latest changes as /v1/changes.atom gives them (its parameters)",
        content((crate::http::openapi::ChangePage = "application/json"), (String = "application/atom+xml")))))]
async fn changes(
    State(state): State<AppState>,
    axum::Extension(lang): axum::Extension<Lang>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    if super::listing::negotiated_media(&headers) == super::feed::ATOM {
        return super::feed::atom_answer(&state, &headers, &uri, lang).await;
    }
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

/// Counts an open event stream for /metrics, and holds its slot, while it lives.
struct Client {
    state: AppState,
    /// Given back when the stream ends.
    _slot: super::limits::Slot,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.state.metrics.stream_closed();
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
#[utoipa::path(get, path = "/v1/events", tag = "live",
    params(crate::http::openapi::EventParams, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this change number")),
    responses((status = 200, description = "Server-Sent Events: one `change` event per change, id = change number; heartbeats every 15 s", body = crate::http::openapi::ChangeEvent, content_type = "text/event-stream")))]
async fn events(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let trusted = &state.options.rate_limits.trusted_proxies;
    let client = super::limits::client_address(&request, trusted);
    // Behind a trusted proxy the client is the forwarded address; the
    // proxy itself is never counted as one client.
    let slot = state
        .event_streams
        .take(client, false)
        .map_err(|refusal| refusal.error(state.event_streams.what()))?;
    let (headers, uri) = (request.headers(), request.uri());
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
    state.metrics.stream_opened();
    let stream_state = Stream_ {
        client: Client {
            state: state.clone(),
            _slot: slot,
        },
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
                    match s.client.state.store.changes(&filter).await {
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

/// Whether If-None-Match names this tag itself (not `*`).
fn names_tag(if_none_match: &str, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    if_none_match.split(',').any(|tag| bare(tag) == bare(etag))
}

/// Whether If-None-Match names this tag or is `*`.
fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').any(|tag| tag.trim() == "*") || names_tag(if_none_match, etag)
}

/// A short fingerprint of what varies a representation besides the store's
/// revision: the Accept header, and the currency of `?convert=` (so a list
/// converted to USD never shares a tag with the same list unconverted).
fn variant(headers: &HeaderMap, uri: &Uri, lang: Lang) -> String {
    let mut fingerprint = super::listing::negotiated_media(headers)
        .as_bytes()
        .to_vec();
    // English keeps the tags it always had; another language has its own.
    if lang != Lang::En {
        fingerprint.extend_from_slice(b"\nlang=");
        fingerprint.extend_from_slice(lang.as_str().as_bytes());
    }
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

/// The newest revision named by the list tags of an If-None-Match, if any.
fn revision_named(if_none_match: &str) -> Option<i64> {
    if_none_match
        .split(',')
        .filter_map(|tag| {
            let tag = tag.trim().trim_start_matches("W/").strip_prefix("\"r")?;
            tag.split_once('-')?.0.parse::<i64>().ok()
        })
        .max()
}

/// Conditional GET on every read. Lists, stats, the timeline and exports
/// carry a weak ETag of the store-wide revision: an If-None-Match that still
/// matches is answered 304 without running the query. Single resources keep
/// their version ETag and answer 304 when it matches. A GET answered 200 is
/// kept, rendered, until the revision moves, and served again from memory.
pub async fn conditional(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = request.method().clone();
    let reads_data = matches!(method, Method::GET | Method::HEAD)
        && route.as_deref().is_some_and(|r| {
            (r.starts_with("/v1/") || r.starts_with("/embed/") || r == "/oembed")
                && r != "/v1/events"
        });
    if !reads_data {
        let writes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        let _turn = if writes && state.store.backend() == "sqlite" {
            tokio::time::timeout(WRITE_TURN_WAIT, state.live.write_turn.lock())
                .await
                .ok()
        } else {
            None
        };
        let response = next.run(request).await;
        // Before the answer leaves: whoever hears of the write reads after it.
        if writes {
            state.live.wrote();
        }
        return response;
    }
    let cache_control = HeaderValue::from_str(&state.options.cache_control)
        .unwrap_or(HeaderValue::from_static("no-cache"));
    let if_none_match = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let at_least = if_none_match
        .as_deref()
        .and_then(revision_named)
        .unwrap_or(0);
    let revision = match state.live.revision(state.store.as_ref(), at_least).await {
        Ok(revision) => revision,
        Err(error) => return error.into_response(),
    };
    let versioned = route.as_deref().is_some_and(|r| VERSIONED.contains(&r));
    let lang = request
        .extensions()
        .get::<Lang>()
        .copied()
        .unwrap_or_default();
    let list_etag = (!versioned).then(|| {
        format!(
            "W/\"r{revision}-{}\"",
            variant(request.headers(), request.uri(), lang)
        )
    });
    // Only a tag this server issued answers 304 before the query runs: `*`
    // waits for the handler, so a query that is not valid is still a 400.
    if let (Some(etag), Some(condition)) = (&list_etag, &if_none_match)
        && names_tag(condition, etag)
    {
        let mut response = not_modified(etag, &cache_control);
        response.headers_mut().insert(
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Language"),
        );
        return response;
    }
    let era = (revision, chrono::Utc::now().date_naive());
    let kept_bytes = state.options.render_cache_bytes;
    // The host (and the scheme a proxy names) too: feeds and oEmbed answers
    // carry absolute links.
    let site = [
        request.headers().get(header::HOST),
        request.headers().get("x-forwarded-proto"),
    ]
    .map(|v| v.and_then(|v| v.to_str().ok()).unwrap_or_default());
    let key = (method == Method::GET && kept_bytes > 0).then(|| RenderedKey {
        uri: format!("{} {} {}", site[0], site[1], request.uri()),
        media: super::listing::negotiated_media(request.headers()),
        lang,
    });
    let mut found = key.as_ref().map(|key| state.live.find(era, key, true));
    if let (Some(Found::Rendering(waiting)), Some(key)) = (&mut found, &key) {
        // Until the other render is done (its sender dropped), or a while.
        let _ = tokio::time::timeout(RENDER_WAIT, waiting.changed()).await;
        found = Some(state.live.find(era, key, false));
    }
    let mut response = match found {
        Some(Found::Answer(response)) => response,
        Some(Found::Render(rendering)) => {
            let response = next.run(request).await;
            let response = match key {
                Some(key) if response.status() == StatusCode::OK => {
                    state.live.keep(era, key, response, kept_bytes).await
                }
                _ => response,
            };
            drop(rendering);
            response
        }
        _ => next.run(request).await,
    };
    if response.status() != StatusCode::OK {
        return response;
    }
    if let Some(etag) = &list_etag
        && let Ok(value) = HeaderValue::from_str(etag)
    {
        response.headers_mut().insert(header::ETAG, value);
        // Lists answer in the format Accept negotiates: caches must know.
        response.headers_mut().insert(
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Language"),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> RenderedKey {
        RenderedKey {
            uri: uri.to_owned(),
            media: "application/json",
            lang: Lang::En,
        }
    }

    #[test]
    fn kept_answers_are_counted_whole_and_evicted_by_recency() {
        let mut rendered = Rendered::default();
        let body = Bytes::from(vec![b'x'; 1000]);
        let one = Rendered::cost(&key("/a"), &HeaderMap::new(), &body);
        let budget = one * 3;
        for uri in ["/a", "/b", "/c"] {
            rendered.insert(key(uri), HeaderMap::new(), body.clone(), budget);
        }
        assert_eq!(
            rendered.bytes, budget,
            "bodies, keys and overhead all count"
        );
        // Reading /a makes /b the least recently used: it goes first.
        assert!(rendered.touch(&key("/a")).is_some());
        rendered.insert(key("/d"), HeaderMap::new(), body.clone(), budget);
        assert!(rendered.answers.contains_key(&key("/a")));
        assert!(!rendered.answers.contains_key(&key("/b")));
        assert!(rendered.answers.contains_key(&key("/c")));
        assert!(rendered.answers.contains_key(&key("/d")));
        assert!(rendered.bytes <= budget);
        // An answer larger than the whole budget is not kept, and evicts nothing.
        let huge = Bytes::from(vec![b'x'; budget]);
        rendered.insert(key("/e"), HeaderMap::new(), huge, budget);
        assert_eq!(rendered.answers.len(), 3);
        // Headers count too.
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, HeaderValue::from_static("\"1\""));
        assert!(Rendered::cost(&key("/a"), &headers, &body) > one);
    }
}
