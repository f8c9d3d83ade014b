//! Conditional GETs: lists, stats and exports tagged with the store's
//! revision answer 304 without running the query; single resources by their
//! version. A GET answered 200 is kept rendered (render_cache.rs) until a
//! change touches what it read (invalidation.rs).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::render_cache::{self, RenderCache};
use crate::domain::lang::Lang;
use crate::error::ApiResult;
use crate::store::Store;

/// How long a revision read from the store is trusted without reading it
/// again. Writes through this instance are seen at once (they renew it);
/// those through other instances within this, well inside the promised second.
const REVISION_TTL: Duration = Duration::from_millis(100);
#[derive(Clone, Copy)]
struct KnownRevision {
    value: i64,
    /// The store's count of commits when the read began.
    writes: u64,
    /// When the read began.
    at: Instant,
}

/// What this instance knows of the store's revision, and the answers it
/// rendered at it.
pub struct Freshness {
    /// A revision read before the store's latest commit through this
    /// instance (`Store::commits`) is never trusted again.
    revision: Mutex<Option<KnownRevision>>,
    /// Held while the revision is read: readers that need a new one wait for
    /// that read rather than all asking the store at once.
    reading_revision: tokio::sync::Mutex<()>,
    rendered: RenderCache,
}

impl Freshness {
    /// Keeps up to `render_cache_bytes` of rendered answers (0: none).
    pub fn new(render_cache_bytes: usize) -> Self {
        Self {
            revision: Mutex::new(None),
            reading_revision: tokio::sync::Mutex::new(()),
            rendered: RenderCache::new(render_cache_bytes),
        }
    }

    /// The store's revision: read at most every [`REVISION_TTL`], again
    /// after any commit through this instance (so the next read here sees
    /// an acknowledged write), and again when a client shows a newer one
    /// (`at_least`, from its If-None-Match).
    async fn revision(&self, store: &dyn Store, at_least: i64) -> ApiResult<i64> {
        let writes = *store.commits().borrow();
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
        let writes = *store.commits().borrow();
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

/// Whether [`conditional`] has anything to do: a read of the store's data,
/// answered from what is kept, or tagged. (Writes need nothing here: the
/// store announces its commits, which the next read through this instance
/// sees.)
pub fn concerns<B>(request: &axum::http::Request<B>) -> bool {
    matches!(*request.method(), Method::GET | Method::HEAD)
        && request.extensions().get::<MatchedPath>().is_some_and(|r| {
            let r = r.as_str();
            (r.starts_with("/v1/") || r.starts_with("/embed/") || r == "/oembed")
                && r != "/v1/events"
                // Webhooks are not store data (no revision moves with them),
                // and only admins may read them: never kept or shared.
                && !r.starts_with("/v1/webhooks")
        })
}

/// Conditional GET on every read. Lists, stats, the timeline and exports
/// carry a weak ETag of the store-wide revision: an If-None-Match that still
/// matches is answered 304 without running the query. Single resources keep
/// their version ETag and answer 304 when it matches. A GET answered 200 is
/// kept, rendered, until a change touches what it read, and served again
/// from memory with the tag of the revision it was rendered at.
pub async fn conditional(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    if !concerns(&request) {
        return next.run(request).await;
    }
    let cache_control = HeaderValue::from_str(&state.options.cache_control)
        .unwrap_or(HeaderValue::from_static("no-cache"));
    let mut response = conditional_read(&state, request, next, route, cache_control).await;
    // Which revision the answer reflects, unless it says so itself (a diff).
    if let Some(revision) = response.extensions().get::<AnsweredAt>().map(|a| a.0)
        && let Ok(value) = HeaderValue::from_str(&revision.to_string())
    {
        response
            .headers_mut()
            .entry(super::revisions::REVISION_HEADER)
            .or_insert(value);
    }
    response
}

/// The revision a read was answered at, passed out to [`conditional`].
#[derive(Clone, Copy)]
struct AnsweredAt(i64);

async fn conditional_read(
    state: &AppState,
    request: Request,
    next: Next,
    route: Option<String>,
    cache_control: HeaderValue,
) -> Response {
    let if_none_match = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let at_least = if_none_match
        .as_deref()
        .and_then(revision_named)
        .unwrap_or(0);
    let revision = match state
        .freshness
        .revision(state.store.as_ref(), at_least)
        .await
    {
        Ok(revision) => revision,
        Err(error) => return error.into_response(),
    };
    let mut response = super::extract::answering_at(
        revision,
        conditional_at(
            state,
            request,
            next,
            route,
            cache_control,
            if_none_match,
            revision,
        ),
    )
    .await;
    response.extensions_mut().insert(AnsweredAt(revision));
    response
}

async fn conditional_at(
    state: &AppState,
    request: Request,
    next: Next,
    route: Option<String>,
    cache_control: HeaderValue,
    if_none_match: Option<String>,
    revision: i64,
) -> Response {
    let method = request.method().clone();
    let versioned = route.as_deref().is_some_and(|r| VERSIONED.contains(&r));
    let lang = request
        .extensions()
        .get::<Lang>()
        .copied()
        .unwrap_or_default();
    let variant = variant(request.headers(), request.uri(), lang);
    // The tag of a list answer rendered at `revision`.
    let list_etag = |revision: i64| (!versioned).then(|| format!("W/\"r{revision}-{variant}\""));
    // Only a tag this server issued answers 304 before the query runs: `*`
    // waits for the handler, so a query that is not valid is still a 400.
    if let (Some(etag), Some(condition)) = (&list_etag(revision), &if_none_match)
        && names_tag(condition, etag)
    {
        let mut response = not_modified(etag, &cache_control);
        response.headers_mut().insert(
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Language"),
        );
        return response;
    }
    // The host (and the scheme a proxy names) too: feeds and oEmbed answers
    // carry absolute links.
    let site = [
        request.headers().get(header::HOST),
        request.headers().get("x-forwarded-proto"),
    ]
    .map(|v| v.and_then(|v| v.to_str().ok()).unwrap_or_default());
    let (mut response, answered_at) = if method == Method::GET {
        let key = render_cache::Key {
            day: chrono::Utc::now().date_naive(),
            uri: format!("{} {} {}", site[0], site[1], request.uri()),
            media: super::listing::negotiated_media(request.headers()),
            lang,
        };
        let store = state.store.as_ref();
        state
            .freshness
            .rendered
            .answer(key, revision, store, request, next)
            .await
    } else {
        (next.run(request).await, revision)
    };
    if response.status() != StatusCode::OK {
        return response;
    }
    // A kept answer's tag is the revision it was rendered at, whose content
    // still holds: a client that has it revalidates with a 304 across
    // writes that did not change it.
    if let Some(etag) = &list_etag(answered_at)
        && let Ok(value) = HeaderValue::from_str(etag)
    {
        response.headers_mut().insert(header::ETAG, value);
        // Lists answer in the format Accept negotiates: caches must know.
        response.headers_mut().insert(
            header::VARY,
            HeaderValue::from_static("Accept, Accept-Language"),
        );
    }
    // A diff to a fixed revision has said it is cached for good.
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(cache_control.clone());
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
