//! The built-in dashboard at /: one page, a script and a style sheet, all
//! compiled into the binary (no CDN; it works offline). It uses only the
//! public API, so it doubles as an example for dashboard builders.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

const PAGE: &str = include_str!("dashboard/index.html");
/// The words (English and Ukrainian) first, then the script that uses them:
/// one file for the browser, two to edit.
const SCRIPT: &str = concat!(
    include_str!("dashboard/i18n.js"),
    include_str!("dashboard/app.js")
);
const STYLE: &str = include_str!("dashboard/style.css");

/// Everything from this origin, nothing inline, no framing.
const POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; \
                      script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page))
        .routes(routes!(script))
        .routes(routes!(style))
}

/// The dashboard: a page of agreements, charts and live refresh.
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "The dashboard", body = String, content_type = "text/html")))]
async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

#[utoipa::path(get, path = "/dashboard/app.js", tag = "operations",
    responses((status = 200, description = "The dashboard's script", body = String, content_type = "text/javascript")))]
async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

#[utoipa::path(get, path = "/dashboard/style.css", tag = "operations",
    responses((status = 200, description = "The dashboard's styles", body = String, content_type = "text/css")))]
async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    // The assets change only with the binary; revalidate rather than trust a stale copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    response
}
