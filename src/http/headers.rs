//! The browser hardening headers every answer carries (set in
//! middleware.rs by tower-http's `SetResponseHeaderLayer`, each only when
//! the handler has not chosen its own).

use axum::http::{HeaderMap, HeaderValue, Response, header};
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::set_header::{MakeHeaderValue, SetResponseHeaderLayer};

/// The four layers of [`hardened`], as ServiceBuilder nests them.
type Hardened = Stack<
    SetResponseHeaderLayer<FrameOptions>,
    Stack<
        SetResponseHeaderLayer<HeaderValue>,
        Stack<
            SetResponseHeaderLayer<HeaderValue>,
            Stack<SetResponseHeaderLayer<HeaderValue>, Identity>,
        >,
    >,
>;

/// The four headers, each set only when the handler has not chosen its own.
pub fn hardened() -> ServiceBuilder<Hardened> {
    ServiceBuilder::new()
        // Outside X-Frame-Options: that one sees only a policy the
        // handler set, never this default.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            FrameOptions,
        ))
}

/// What a JSON API needs of a browser: nothing, and no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// `DENY`, unless the answer's own policy lets some sites frame it (the
/// embeds): X-Frame-Options cannot name sites, so it is left out there.
#[derive(Clone, Copy)]
pub struct FrameOptions;

impl<B> MakeHeaderValue<Response<B>> for FrameOptions {
    fn make_header_value(&mut self, response: &Response<B>) -> Option<HeaderValue> {
        frame_options(response.headers())
    }
}

fn frame_options(headers: &HeaderMap) -> Option<HeaderValue> {
    let framable = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|csp| {
            csp.split(';').any(|directive| {
                let directive = directive.trim();
                directive.starts_with("frame-ancestors") && directive != "frame-ancestors 'none'"
            })
        });
    (!framable).then_some(HeaderValue::from_static("DENY"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::IntoResponse;
    use axum::response::Response;
    use tower::ServiceExt;

    async fn ok() -> &'static str {
        "ok"
    }

    fn get(path: &str) -> Request {
        Request::builder().uri(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn security_headers_are_added_but_never_overwritten() {
        async fn page() -> Response {
            let mut response = "<p>hi</p>".into_response();
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'self'"),
            );
            response
        }
        let app = Router::new()
            .route("/things", axum::routing::get(ok))
            .route("/page", axum::routing::get(page));
        let app = app.layer(hardened());
        let response = app.clone().oneshot(get("/things")).await.unwrap();
        let headers = response.headers();
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; frame-ancestors 'none'"
        );
        let response = app.oneshot(get("/page")).await.unwrap();
        let csp: Vec<_> = response
            .headers()
            .get_all(header::CONTENT_SECURITY_POLICY)
            .iter()
            .collect();
        assert_eq!(csp, ["default-src 'self'"]);
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
    }
}
