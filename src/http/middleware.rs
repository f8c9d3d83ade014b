//! The whole middleware stack, in one place and in order: what every
//! request passes through on its way to a handler, and every answer on its
//! way out. Layers run outside in: the last one added sees the request first.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::CorsLayer;

use super::{AppState, auth, idempotency, lang, limits, live, observe, pretty, revisions};
use crate::error::{ApiError, PROBLEM_JSON};

/// Answers smaller than this go out as they are: compressing them saves
/// less than the headers it adds.
const COMPRESS_ABOVE_BYTES: u64 = 1024;

pub fn stack(
    routes: Router<AppState>,
    state: AppState,
    limiter: Arc<limits::RateLimiter>,
    cors: Option<CorsLayer>,
    body_timeout: Duration,
) -> Router {
    let api = routes
        // The negotiated language, applied to what the handler answered.
        .layer(middleware::from_fn(lang::localize))
        // Answers kept or 304 by revision, before any handler runs.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            live::conditional,
        ))
        .layer(middleware::from_fn(observe::label_route))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent_post,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(state.options.body_limit))
        // A body that stops arriving is abandoned (408), not waited for.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .with_state(state.clone())
        // `revision=` / `as_of=`: the read is answered by the API as it
        // stood then (its own stack inside), after the limits, the checks
        // and the timeout out here.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            revisions::at_revision,
        ))
        .layer(middleware::from_fn_with_state(limiter, limits::rate_limit))
        .layer(middleware::from_fn(no_nul_in_target))
        .layer(middleware::map_response(problems_only))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(middleware::from_fn_with_state(
            state.options.request_timeout,
            limits::request_timeout,
        ))
        // pretty=true on any JSON answer, indented before it is compressed.
        .layer(middleware::from_fn(pretty::indent))
        // gzip or brotli when the client asks: JSON, CSV, NDJSON and text
        // (streamed exports as they stream); never event streams, which
        // must reach the client event by event. The default level: the
        // best (brotli 11) costs a second of CPU on a 400 kB page, which
        // any client could ask for.
        .layer(
            CompressionLayer::new().compress_when(
                SizeAbove::new(COMPRESS_ABOVE_BYTES)
                    .and(NotForContentType::GRPC)
                    .and(NotForContentType::IMAGES)
                    .and(NotForContentType::SSE),
            ),
        )
        .layer(middleware::from_fn(limits::security_headers));
    let api = match cors {
        Some(cors) => api.layer(cors),
        None => api,
    };
    // Which language the answer is in (lang= or Accept-Language), known to
    // every layer inside.
    let api = api.layer(middleware::from_fn(lang::negotiate));
    api.layer(middleware::from_fn_with_state(state, observe::observe))
}

/// A NUL character (`%00`) in a path or query string is never part of a
/// valid value, and PostgreSQL cannot even hold it in text: refused up front.
async fn no_nul_in_target(request: axum::extract::Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or("", |t| t.as_str())
        .to_ascii_lowercase();
    if target.contains("%00") {
        return ApiError::BadRequest("the URL contains a NUL character (%00)".into())
            .into_response();
    }
    next.run(request).await
}

/// Every error leaves as problem+json, including those axum answers itself
/// (a 405 with its Allow header, a path that is not valid UTF-8).
async fn problems_only(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::NOT_FOUND => ApiError::not_found("no such resource"),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("the request body is too large".into())
        }
        s if s.is_server_error() => ApiError::Internal(format!("unexpected {s}")),
        _ => ApiError::BadRequest("the request could not be understood".into()),
    };
    let (mut parts, _) = response.into_parts();
    let replacement = error.into_response();
    parts.status = replacement.status();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(replacement.headers().clone());
    Response::from_parts(parts, replacement.into_body())
}
