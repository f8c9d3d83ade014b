//! Keeping dashboards current: the change feed (GET /v1/changes) and live
//! Server-Sent Events (GET /v1/events). Conditional GETs are in
//! conditional.rs, the rendered answers in render_cache.rs.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::json;
use tokio::sync::broadcast;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::parse_instant;
use super::partner_lookup::find_one_partner;
use serde::Deserialize;
use utoipa::IntoParams;

use super::feed::ChangeFilters;
use super::params::{And, integer, limit, read, text, value_schema};
use crate::domain::FieldError;
use crate::domain::lang::Lang;
use crate::error::{ApiError, ApiResult};
use crate::store::{ChangeEntry, ChangeFilter, ENTITIES};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(changes))
        .routes(routes!(events))
}

/// Changes fanned out to this instance's event streams. One pump task reads
/// the feed when woken — by a commit of this instance's store, by another
/// instance's NOTIFY, or every second — and broadcasts each change once.
pub struct Live {
    sender: broadcast::Sender<ChangeEntry>,
    pump: OnceLock<()>,
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
            pump: OnceLock::new(),
        }
    }
}

impl Live {
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
    let mut commits = store.commits();
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
        // A commit through this instance is delivered at once.
        let committed = async {
            if commits.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = notified => {},
            () = committed => {},
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

/// The most changes one answer of the feed holds.
const MAX_CHANGES: u32 = 1000;

/// `since` on the change feed: a change number or a time.
fn change_number_or_time() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, OneOfBuilder, SchemaFormat};
    let time = text()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build();
    utoipa::openapi::schema::Schema::OneOf(
        OneOfBuilder::new()
            .item(integer(0, i64::MAX))
            .item(time)
            .build(),
    )
}

value_schema!(ChangeNumberOrTime, change_number_or_time());
value_schema!(ChangeLimit, integer(1, i64::from(MAX_CHANGES)));

/// Where the change feed starts, and how much it answers.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChangeWindow {
    /// Changes after this change number (default 0), or made at or after this RFC 3339 time
    #[param(value_type = Option<ChangeNumberOrTime>, inline)]
    since: Option<String>,
    /// Changes per answer (default 100)
    #[param(value_type = Option<ChangeLimit>, inline)]
    limit: Option<String>,
}

/// Where the event stream starts.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventStart {
    /// Start after this change number, or at this RFC 3339 time (Last-Event-ID wins)
    #[param(value_type = Option<ChangeNumberOrTime>, inline)]
    since: Option<String>,
}

type ChangeParams = And<ChangeWindow, ChangeFilters>;
type EventParams = And<EventStart, ChangeFilters>;

struct FeedQuery {
    filter: ChangeFilter,
}

async fn feed_query(
    state: &AppState,
    ChangeWindow {
        since,
        limit: given,
    }: &ChangeWindow,
    filters: &ChangeFilters,
    default_limit: u32,
) -> ApiResult<FeedQuery> {
    let mut errors = Vec::new();
    // A change number, or a time: the changes made at or after it.
    let since = match since.as_deref() {
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
    let limit = limit(given.as_deref(), default_limit, MAX_CHANGES, &mut errors);
    let entity = filters.entity.clone();
    if let Some(entity) = &entity
        && !ENTITIES.contains(&entity.as_str())
    {
        errors.push(FieldError::new(
            "entity",
            format!("must be one of: {}", ENTITIES.join(", ")),
        ));
    }
    let partner = match filters.partner.as_deref() {
        None => None,
        Some(reference) => match find_one_partner(state.store.as_ref(), reference).await? {
            Ok(code) => Some(code),
            Err(unresolved) => {
                errors.push(
                    FieldError::new("partner", unresolved.detail).with_matches(unresolved.closest),
                );
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
#[utoipa::path(get, path = "/v1/changes", tag = "live", params(ChangeParams),
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
    let And(window, filters) = read::<ChangeParams>(uri.query())?;
    let query = feed_query(&state, &window, &filters, 100).await?;
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
    params(EventParams, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this change number")),
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
    let And(EventStart { since }, filters) = read::<EventParams>(uri.query())?;
    let window = ChangeWindow { since, limit: None };
    let query = feed_query(&state, &window, &filters, PAGE).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let since = match (resume, window.since.is_none()) {
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
