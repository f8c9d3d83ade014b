//! GET answers kept rendered, on `moka`: bounded by bytes (a weigher counts
//! body, headers and key), evicting the least recently used, and rendering
//! each answer once however many requests ask for it at the same moment
//! (`try_get_with` runs one render; the others wait for it).

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

use crate::domain::lang::Lang;

/// What a read answers from: the store's revision, and the UTC day (the data
/// checks call agreements past their expiry date expired).
pub type Era = (i64, NaiveDate);

/// The largest rendered answer kept (all of them: ACCORDS_RENDER_CACHE_BYTES).
const ENTRY_BYTES: usize = 1024 * 1024;
/// The longest a GET waits for another request rendering the same answer
/// before it renders the answer itself.
const RENDER_WAIT: Duration = Duration::from_secs(1);
/// Bookkeeping of one kept answer (maps, allocations) counted on top of its bytes.
const OVERHEAD: usize = 256;

/// A kept answer is found by its era, its URI and the media type negotiated
/// from Accept (one of a handful) and language, never by the raw header a
/// client made up.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub era: Era,
    pub uri: String,
    pub media: &'static str,
    pub lang: Lang,
}

struct Kept {
    headers: HeaderMap,
    body: Bytes,
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
    /// The newest era seen: its arrival empties the cache (every answer of
    /// an older one is stale), and answers of older eras are only served.
    newest: Mutex<Option<Era>>,
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
        }
    }

    /// Whether answers of `era` may be kept; a newer era empties the cache.
    fn current(&self, era: Era) -> bool {
        let mut newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        match *newest {
            Some(seen) if seen > era => false,
            Some(seen) if seen == era => true,
            _ => {
                *newest = Some(era);
                self.answers.invalidate_all();
                true
            }
        }
    }

    /// The answer to a GET: kept, or rendered by `next` (once for all who
    /// ask at the same moment) and kept when it is a complete 200 no
    /// larger than one entry may be (never a streamed export).
    pub async fn answer(&self, key: Key, request: Request, next: Next) -> Response {
        if self.budget == 0 || !self.current(key.era) {
            return next.run(request).await;
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
            Ok(Arc::new(Kept {
                headers: parts.headers,
                body,
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
        if let Some(Ok(kept)) = result {
            let mut response = Response::new(Body::from(kept.body.clone()));
            *response.headers_mut() = kept.headers.clone();
            return response;
        }
        if let Some(response) = mine.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return response;
        }
        let taken = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match taken {
            Some((request, next)) => next.run(request).await,
            None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> Key {
        Key {
            era: (1, NaiveDate::MIN),
            uri: uri.to_owned(),
            media: "application/json",
            lang: Lang::En,
        }
    }

    #[tokio::test]
    async fn kept_answers_are_counted_whole_and_evicted_by_recency() {
        let body = Bytes::from(vec![b'x'; 1000]);
        let kept = || {
            Arc::new(Kept {
                headers: HeaderMap::new(),
                body: body.clone(),
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
        };
        assert!(cost(&key("/a"), &tagged) as usize > one);
    }
}
