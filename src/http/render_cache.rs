//! GET answers kept rendered, on `moka`: bounded by bytes (a weigher counts
//! body, headers and key), evicting the least recently used, and rendering
//! each answer once however many requests ask for it at the same moment
//! (`try_get_with` runs one render; the others wait for it). An answer is
//! kept across writes that did not touch what it read (invalidation.rs):
//! its ETag keeps the revision it was rendered at (its content still holds
//! there), while the revision its body names is the one it is served at.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use moka::future::Cache;
use moka::policy::EvictionPolicy;

use super::invalidation::{Ledger, MAX_CHANGES, Reads};
use crate::domain::lang::Lang;
use crate::store::Store;

/// The largest rendered answer kept (all of them: ACCORDS_RENDER_CACHE_BYTES).
const ENTRY_BYTES: usize = 1024 * 1024;
/// The longest a GET waits for another request rendering the same answer
/// before it renders the answer itself.
const RENDER_WAIT: Duration = Duration::from_secs(1);
/// Bookkeeping of one kept answer (maps, allocations) counted on top of its bytes.
const OVERHEAD: usize = 256;

/// A kept answer is found by the UTC day (the data checks call agreements
/// past their expiry date expired), its URI and the media type negotiated
/// from Accept (one of a handful) and language, never by the raw header a
/// client made up.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub day: NaiveDate,
    pub uri: String,
    pub media: &'static str,
    pub lang: Lang,
}

struct Kept {
    headers: HeaderMap,
    body: Bytes,
    /// The revision it was rendered at, and what it read.
    rendered_at: i64,
    reads: Option<Reads>,
    /// Where the body names the revision it answers at (a list's
    /// `"revision": N`), to name a later one when served at it.
    revision_named_at: Option<usize>,
}

/// Where `body` names `revision` as its own (the last `"revision":N`):
/// the offset of N's digits.
fn revision_named_at(body: &[u8], revision: i64) -> Option<usize> {
    let needle = format!("\"revision\":{revision}");
    let at = body
        .windows(needle.len())
        .rposition(|window| window == needle.as_bytes())?;
    let digits = at + needle.len() - revision.to_string().len();
    // Not the start of a longer number.
    (!body.get(at + needle.len()).is_some_and(u8::is_ascii_digit)).then_some(digits)
}

fn cost(key: &Key, kept: &Kept) -> u32 {
    let headers: usize = kept
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum();
    let bytes = OVERHEAD + key.uri.len() + headers + kept.body.len();
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Why an answer was not kept (it is still served to the one who rendered it).
#[derive(Debug)]
struct NotKept;

pub struct RenderCache {
    answers: Cache<Key, Arc<Kept>>,
    budget: usize,
    /// The newest day seen: its arrival empties the cache (every answer of
    /// an older one is stale), and answers of older days are only served.
    newest: Mutex<Option<NaiveDate>>,
    /// What changed when, as far as the change feed has been read.
    ledger: Mutex<Ledger>,
    /// Held while the change feed is read: one read for all who need it.
    reading_changes: tokio::sync::Mutex<()>,
}

impl RenderCache {
    /// `budget` bytes in all; 0 keeps nothing.
    pub fn new(budget: usize) -> Self {
        Self {
            answers: Cache::builder()
                .max_capacity(budget as u64)
                .weigher(|key: &Key, kept: &Arc<Kept>| cost(key, kept))
                .eviction_policy(EvictionPolicy::lru())
                .build(),
            budget,
            newest: Mutex::new(None),
            ledger: Mutex::new(Ledger::default()),
            reading_changes: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether answers of `day` may be kept; a newer day empties the cache.
    fn current(&self, day: NaiveDate) -> bool {
        let mut newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        match *newest {
            Some(seen) if seen > day => false,
            Some(seen) if seen == day => true,
            _ => {
                *newest = Some(day);
                self.answers.invalidate_all();
                true
            }
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the changes up to `revision` from the store's change feed, once
    /// for all requests that need them, and enters what they touched.
    async fn catch_up(&self, revision: i64, store: &dyn Store) {
        let behind = |cache: &Self| cache.ledger().applied().is_none_or(|a| a < revision);
        if !behind(self) {
            return;
        }
        let _reading = self.reading_changes.lock().await;
        let applied = self.ledger().applied();
        let from = match applied {
            Some(applied) if applied >= revision => return,
            Some(applied) => applied,
            None => {
                // Nothing is kept yet: nothing to retire.
                self.ledger().start(revision);
                return;
            }
        };
        let changes = if revision - from > MAX_CHANGES {
            None
        } else {
            // Feed numbers have no gaps: fewer entries mean some were not
            // read (a store restored to another history), so retire all.
            match store.changes_between(from, revision).await {
                Ok(changes) if changes.len() as i64 == revision - from => Some(changes),
                _ => None,
            }
        };
        let everything = changes.is_none();
        self.ledger().enter(revision, changes.as_deref());
        if everything {
            // Not one of them is good any more: free their memory now.
            self.answers.invalidate_all();
        }
    }

    /// A kept answer, unless a change since its render retired it.
    fn still_good(&self, kept: &Kept) -> bool {
        self.ledger()
            .still_good(kept.reads.as_ref(), kept.rendered_at)
    }

    /// The answer to a GET at `revision`, and the revision it was rendered
    /// at: kept (if nothing it read changed since), or rendered by `next`
    /// (once for all who ask at the same moment) and kept when it is a
    /// complete 200 no larger than one entry may be (never a streamed export).
    pub async fn answer(
        &self,
        key: Key,
        revision: i64,
        store: &dyn Store,
        request: Request,
        next: Next,
    ) -> (Response, i64) {
        if self.budget == 0 || !self.current(key.day) {
            return (next.run(request).await, revision);
        }
        self.catch_up(revision, store).await;
        if let Some(kept) = self.answers.get(&key).await {
            if self.still_good(&kept) {
                return (served(&kept, revision), kept.rendered_at);
            }
            self.answers.invalidate(&key).await;
        }
        // Taken by the render, if this request is the one to render; a
        // request that waited for another's render that was not kept
        // renders with it itself.
        let pending = Mutex::new(Some((request, next)));
        let mine: Mutex<Option<Response>> = Mutex::new(None);
        let limit = ENTRY_BYTES.min(self.budget);
        let render = async {
            let taken = pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let Some((request, next)) = taken else {
                return Err(NotKept);
            };
            let response = next.run(request).await;
            let size = response.body().size_hint().exact();
            let keepable =
                response.status() == StatusCode::OK && size.is_some_and(|s| s as usize <= limit);
            if !keepable {
                *mine.lock().unwrap_or_else(PoisonError::into_inner) = Some(response);
                return Err(NotKept);
            }
            let (parts, body) = response.into_parts();
            let Ok(body) = axum::body::to_bytes(body, limit).await else {
                *mine.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(StatusCode::INTERNAL_SERVER_ERROR.into_response());
                return Err(NotKept);
            };
            let reads = parts.extensions.get::<Reads>().cloned();
            Ok(Arc::new(Kept {
                headers: parts.headers,
                // Only an answer that says what it read outlives a revision.
                revision_named_at: reads
                    .as_ref()
                    .and_then(|_| revision_named_at(&body, revision)),
                body,
                rendered_at: revision,
                reads,
            }))
        };
        let fetch = self.answers.try_get_with(key, render);
        tokio::pin!(fetch);
        let result = tokio::select! {
            result = &mut fetch => Some(result),
            () = tokio::time::sleep(RENDER_WAIT) => None,
        };
        let rendering_here = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none();
        let result = match result {
            Some(result) => Some(result),
            // This request is rendering: it finishes, however long it takes.
            None if rendering_here => Some(fetch.await),
            // Waited long enough for another request's render.
            None => None,
        };
        // Another request's render, begun before a change that retired it,
        // is not this request's answer; this request's own render is.
        if let Some(Ok(kept)) = result
            && (rendering_here || self.still_good(&kept))
        {
            return (served(&kept, revision), kept.rendered_at);
        }
        if let Some(response) = mine.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return (response, revision);
        }
        let taken = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let response = match taken {
            Some((request, next)) => next.run(request).await,
            None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
        (response, revision)
    }
}

/// A kept answer as the answer at `revision`: a body that names the
/// revision it answers at names this one.
fn served(kept: &Kept, revision: i64) -> Response {
    let body = match kept.revision_named_at {
        Some(at) if revision != kept.rendered_at => {
            let old = kept.rendered_at.to_string().len();
            let mut body = Vec::with_capacity(kept.body.len() + 4);
            body.extend_from_slice(&kept.body[..at]);
            body.extend_from_slice(revision.to_string().as_bytes());
            body.extend_from_slice(&kept.body[at + old..]);
            Bytes::from(body)
        }
        _ => kept.body.clone(),
    };
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = kept.headers.clone();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> Key {
        Key {
            day: NaiveDate::MIN,
            uri: uri.to_owned(),
            media: "application/json",
            lang: Lang::En,
        }
    }

    #[tokio::test]
    async fn a_kept_body_names_the_revision_it_is_served_at() {
        let body =
            br#"{"items":[{"id":"a","revision":99}],"next_cursor":null,"revision":99,"total":2}"#;
        let at = revision_named_at(body, 99).unwrap();
        assert_eq!(&body[at..at + 2], b"99");
        assert_eq!(revision_named_at(body, 9), None, "9 is not 99");
        let kept = Kept {
            headers: HeaderMap::new(),
            body: Bytes::from_static(body),
            rendered_at: 99,
            reads: None,
            revision_named_at: Some(at),
        };
        let kept = &kept;
        let restamped = |revision| async move {
            let body = served(kept, revision).into_body();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        assert_eq!(
            restamped(1000).await,
            r#"{"items":[{"id":"a","revision":99}],"next_cursor":null,"revision":1000,"total":2}"#
        );
        assert_eq!(restamped(99).await, std::str::from_utf8(body).unwrap());
    }

    #[tokio::test]
    async fn kept_answers_are_counted_whole_and_evicted_by_recency() {
        let body = Bytes::from(vec![b'x'; 1000]);
        let kept = || {
            Arc::new(Kept {
                headers: HeaderMap::new(),
                body: body.clone(),
                rendered_at: 1,
                reads: None,
                revision_named_at: None,
            })
        };
        let one = cost(&key("/a"), &kept()) as usize;
        assert!(one > 1000 + OVERHEAD, "bodies, keys and overhead all count");
        let cache = RenderCache::new(one * 3);
        for uri in ["/a", "/b", "/c"] {
            cache.answers.insert(key(uri), kept()).await;
        }
        cache.answers.run_pending_tasks().await;
        // Reading /a makes /b the least recently used: it goes first.
        assert!(cache.answers.get(&key("/a")).await.is_some());
        cache.answers.run_pending_tasks().await;
        cache.answers.insert(key("/d"), kept()).await;
        cache.answers.run_pending_tasks().await;
        assert!(cache.answers.contains_key(&key("/a")));
        assert!(!cache.answers.contains_key(&key("/b")));
        assert!(cache.answers.contains_key(&key("/c")));
        assert!(cache.answers.contains_key(&key("/d")));
        assert!(cache.answers.weighted_size() as usize <= one * 3);
        // Headers count too.
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::ETAG,
            axum::http::HeaderValue::from_static("\"1\""),
        );
        let tagged = Kept {
            headers,
            body: body.clone(),
            rendered_at: 1,
            reads: None,
            revision_named_at: None,
        };
        assert!(cost(&key("/a"), &tagged) as usize > one);
    }
}
