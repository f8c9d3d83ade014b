//! The whole middleware stack, in one place and in order: what every
//! request passes through on its way to a handler, and every answer on its
//! way out. Layers run outside in: the last one added sees the request first.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures_util::TryFutureExt;
use futures_util::future::{Either, MapOk};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::cors::CorsLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
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
    // Each `Router::layer` wraps every route in one more boxed service that
    // is cloned, deeply, for every request, and axum's `from_fn` clones the
    // service inside it and boxes it again: twenty-five single layers made
    // that a quarter of /healthz's time. So the layers are grouped with
    // `ServiceBuilder` (outermost first) into a few, split only where a
    // layer changes the body type (the body timeout, the compression), and
    // the middleware that only some requests need is skipped for the
    // others (`only`, below).
    let read_auth = state.options.read_auth;
    let request_timeout = state.options.request_timeout;

    // Inside the router, where the matched route is known.
    let per_route = ServiceBuilder::new()
        .layer(DefaultBodyLimit::max(state.options.body_limit))
        .layer(only(
            move |request: &Request| auth::concerns(read_auth, request),
            middleware::from_fn_with_state(state.clone(), auth::authenticate),
        ))
        .layer(only(
            idempotency::concerns,
            middleware::from_fn_with_state(state.clone(), idempotency::idempotent_post),
        ))
        .layer(middleware::from_fn(observe::label_route))
        // Answers kept or 304 by revision, before any handler runs.
        .layer(only(
            conditional::concerns,
            middleware::from_fn_with_state(state.clone(), conditional::conditional),
        ))
        // The negotiated language, applied to what the handler answered.
        .layer(only(lang::concerns, middleware::from_fn(lang::localize)));
    let api = routes
        .layer(per_route)
        // A body that stops arriving is abandoned (408), not waited for.
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .with_state(state.clone());

    let guarded =
        ServiceBuilder::new()
            // pretty=true on any JSON answer, indented before it is compressed.
            .layer(only(pretty::concerns, middleware::from_fn(pretty::indent)))
            .layer(CatchPanicLayer::custom(|_| {
                ApiError::Internal("a handler panicked".into()).into_response()
            }))
            // Every error leaves as problem+json (the timeout's 408 included).
            .layer(middleware::map_response(problems_only))
            // A request running longer than the request timeout is answered
            // 408. A zero timeout turns it off.
            .option_layer((!request_timeout.is_zero()).then(|| {
                TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout)
            }))
            .layer(only(has_nul, middleware::from_fn(no_nul_in_target)))
            // Per-client limits, when any is set.
            .option_layer(
                limiter
                    .enabled()
                    .then(|| middleware::from_fn_with_state(limiter, limits::rate_limit)),
            )
            // `revision=` / `as_of=`: the read is answered by the API as it
            // stood then (its own stack inside), after the limits, the checks
            // and the timeout out here.
            .layer(only(
                revisions::concerns,
                middleware::from_fn_with_state(state.clone(), revisions::at_revision),
            ));
    let api = api
        .layer(guarded)
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

    let outer = ServiceBuilder::new()
        .map_request(observe::drop_unusable_request_id)
        // The request id: the client's when sensible, else a new one; in
        // the span, every problem body and the answer's X-Request-Id.
        .layer(SetRequestIdLayer::x_request_id(observe::NewRequestId))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(observe::request_span)
                .on_request(())
                .on_response(observe::answered)
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(middleware::from_fn_with_state(state, observe::count))
        // Which language the answer is in (lang= or Accept-Language), known
        // to every layer inside.
        .layer(middleware::from_fn(lang::negotiate))
        .option_layer(cors)
        // Browser hardening on every answer, never overwriting what a
        // handler chose.
        .layer(headers::hardened());
    api.layer(outer)
}

/// A NUL character (`%00`) in a path or query string is never part of a
/// valid value, and PostgreSQL cannot even hold it in text: refused up front.
fn has_nul<B>(request: &axum::http::Request<B>) -> bool {
    let target = request.uri().path_and_query().map_or("", |t| t.as_str());
    target.contains("%00")
}

async fn no_nul_in_target(request: Request, next: Next) -> Response {
    if has_nul(&request) {
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

/// A middleware only some requests need: `concerns` decides, and the
/// others go straight to the service inside, without the clone of it and
/// the two boxes that axum's `from_fn` costs on every request. The
/// middleware is put around the inner service only for a request it
/// concerns (one inner service is kept, so nesting these stays linear).
fn only<P, L>(concerns: P, layer: L) -> Only<P, L> {
    Only { concerns, layer }
}

#[derive(Clone)]
struct Only<P, L> {
    concerns: P,
    layer: L,
}

impl<P: Clone, L: Clone, S> Layer<S> for Only<P, L> {
    type Service = OnlyService<P, L, S>;

    fn layer(&self, inner: S) -> Self::Service {
        OnlyService {
            concerns: self.concerns.clone(),
            layer: self.layer.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
struct OnlyService<P, L, S> {
    concerns: P,
    layer: L,
    inner: S,
}

type Passed<S, B> = MapOk<
    <S as Service<axum::http::Request<B>>>::Future,
    fn(<S as Service<axum::http::Request<B>>>::Response) -> Response,
>;

impl<P, L, S, B> Service<axum::http::Request<B>> for OnlyService<P, L, S>
where
    P: Fn(&axum::http::Request<B>) -> bool,
    L: Layer<S>,
    L::Service: Service<axum::http::Request<B>, Response = Response, Error = Infallible>,
    S: Service<axum::http::Request<B>, Error = Infallible> + Clone,
    S::Response: IntoResponse,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Oneshot<L::Service, axum::http::Request<B>>, Passed<S, B>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        if (self.concerns)(&request) {
            Either::Left(self.layer.layer(self.inner.clone()).oneshot(request))
        } else {
            let into: fn(S::Response) -> Response = IntoResponse::into_response;
            Either::Right(self.inner.call(request).map_ok(into))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    /// `only` puts the middleware around exactly the requests its predicate
    /// names; the others reach the inner service untouched, and both get
    /// the inner service's own answer through it.
    #[tokio::test]
    async fn only_runs_the_middleware_for_the_requests_it_concerns() {
        async fn mark(request: Request, next: Next) -> Response {
            if request.uri().query() == Some("refuse") {
                return (StatusCode::FORBIDDEN, "refused by the middleware").into_response();
            }
            let mut response = next.run(request).await;
            response
                .headers_mut()
                .insert("x-middleware", axum::http::HeaderValue::from_static("ran"));
            response
        }
        let app = Router::new()
            .route("/things", get(|| async { "inner" }))
            .layer(only(
                |request: &Request| request.method() == axum::http::Method::GET,
                middleware::from_fn(mark),
            ))
            .layer(only(
                |request: &Request| request.uri().path() == "/never",
                middleware::from_fn(mark),
            ));
        let call = |method: &str, uri: &str| {
            axum::extract::Request::builder()
                .method(method)
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let concerned = app.clone().oneshot(call("GET", "/things")).await.unwrap();
        assert_eq!(concerned.status(), StatusCode::OK);
        assert_eq!(concerned.headers()["x-middleware"], "ran");
        let refused = app
            .clone()
            .oneshot(call("GET", "/things?refuse"))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let passed = app
            .clone()
            .oneshot(call("HEAD", "/things?refuse"))
            .await
            .unwrap();
        assert_eq!(passed.status(), StatusCode::OK);
        assert!(passed.headers().get("x-middleware").is_none());
        let unrouted = app.oneshot(call("POST", "/things")).await.unwrap();
        assert_eq!(unrouted.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(unrouted.headers().get("x-middleware").is_none());
    }

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
