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
use tower::util::option_layer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::CorsLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::{
    AppState, auth, conditional, headers, idempotency, lang, limits, observe, pretty, revisions,
};
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
            conditional::conditional,
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
        // A request running longer than the request timeout is answered
        // 408, given its problem body by problems_only below (tower-http's
        // 408 has none). A zero timeout turns it off.
        .layer(option_layer(
            (!state.options.request_timeout.is_zero()).then(|| {
                TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    state.options.request_timeout,
                )
            }),
        ))
        .layer(middleware::map_response(problems_only))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
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
        );
    // Browser hardening on every answer (SetResponseHeaderLayer, never
    // overwriting what a handler chose).
    let api = headers::hardened(api);
    let api = match cors {
        Some(cors) => api.layer(cors),
        None => api,
    };
    // Which language the answer is in (lang= or Accept-Language), known to
    // every layer inside.
    let api = api.layer(middleware::from_fn(lang::negotiate));
    api.layer(middleware::from_fn_with_state(state, observe::count))
        // The request id: the client's when sensible, else a new one; in
        // the span, every problem body and the answer's X-Request-Id.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(observe::request_span)
                .on_request(())
                .on_response(observe::answered)
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(observe::NewRequestId))
        .layer(middleware::map_request(observe::drop_unusable_request_id))
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
        StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn slow_requests_get_408_problem() {
        async fn slow() -> &'static str {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }
        async fn ok() -> &'static str {
            "ok"
        }
        let app = Router::new()
            .route("/slow", get(slow))
            .route("/things", get(ok))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                Duration::from_millis(20),
            ))
            .layer(middleware::map_response(problems_only));
        let call = |path: &str| {
            axum::extract::Request::builder()
                .uri(path)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let response = app.clone().oneshot(call("/slow")).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let response = app.oneshot(call("/things")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
