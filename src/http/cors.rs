//! CORS from ACCORDS_CORS_ORIGINS, and the origins the embeds may be framed
//! by (ACCORDS_EMBED_ORIGINS): both lists of origins, parsed with `url`.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use super::limits::{RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET};

/// Response headers a browser script may read.
fn exposed_headers() -> Vec<HeaderName> {
    vec![
        header::ETAG,
        header::LOCATION,
        header::LINK,
        header::RETRY_AFTER,
        HeaderName::from_static(RATELIMIT_LIMIT),
        HeaderName::from_static(RATELIMIT_REMAINING),
        HeaderName::from_static(RATELIMIT_RESET),
    ]
}

const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// CORS from `ACCORDS_CORS_ORIGINS`: `None` when empty. `*` allows any origin
/// for GET and HEAD only (public reads). A comma-separated list of exact
/// origins allows those origins to read and write with the API's request
/// headers. Never credentials: keys travel in the Authorization header, not
/// cookies. An origin not of the form `scheme://host[:port]` is an error.
pub fn cors_layer(origins: &str) -> Result<Option<CorsLayer>, String> {
    let origins = origins.trim();
    if origins.is_empty() {
        return Ok(None);
    }
    let common = CorsLayer::new()
        .allow_credentials(false)
        .expose_headers(exposed_headers())
        .max_age(CORS_MAX_AGE);
    if origins == "*" {
        return Ok(Some(
            common
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::HEAD]),
        ));
    }
    let allowed = origins
        .split(',')
        .map(parse_origin)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        common
            // `list` panics on "*", which parse_origin has already refused.
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                HeaderName::from_static("idempotency-key"),
            ]),
    ))
}

/// One configured origin, in the form browsers send it: lower-case, and
/// without the scheme's default port (otherwise it would never match).
/// The `frame-ancestors` sources of the embeds from ACCORDS_EMBED_ORIGINS:
/// `*` (or nothing) lets any site frame them; a comma-separated list of
/// origins lets only those; `none` lets no one.
pub fn frame_ancestors(origins: &str) -> Result<String, String> {
    let origins = origins.trim();
    match origins {
        "" | "*" => Ok("*".into()),
        "none" | "'none'" => Ok("'none'".into()),
        list => {
            let parsed = list
                .split(',')
                .map(|origin| {
                    parse_origin(origin)
                        .map_err(|e| e.replace("CORS origin", "embed origin"))
                        .and_then(|v| v.to_str().map(str::to_owned).map_err(|e| e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(parsed.join(" "))
        }
    }
}

fn parse_origin(raw: &str) -> Result<HeaderValue, String> {
    let origin = raw.trim();
    let invalid = |why: &str| format!("CORS origin {origin:?} is not valid: {why}");
    if origin.is_empty() {
        return Err("a CORS origin in the list is empty".into());
    }
    if origin == "*" {
        return Err("\"*\" cannot be combined with other CORS origins".into());
    }
    let (_, authority) = origin
        .split_once("://")
        .ok_or_else(|| invalid("expected scheme://host[:port]"))?;
    // The URL parser forgives what an origin cannot hold: a path (even a
    // lone slash), a query, a user, an empty port, non-ASCII (which it
    // would turn into punycode silently).
    if authority.contains(['/', '?', '#', '@']) || authority.ends_with(':') || !authority.is_ascii()
    {
        return Err(invalid(
            "no path, query, user or trailing slash; hosts in ASCII (punycode)",
        ));
    }
    let url = url::Url::parse(origin).map_err(|e| invalid(&e.to_string()))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("the host is empty"))?
        .to_ascii_lowercase();
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
    {
        return Err(invalid("hosts are letters, digits, - and ."));
    }
    // `port()` leaves out the scheme's default (443 for https): browsers
    // send the origin without it, so it would never match.
    let normalized = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    HeaderValue::from_str(&normalized).map_err(|_| invalid("not a valid header value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn ok() -> &'static str {
        "ok"
    }

    #[test]
    fn cors_layer_parses_and_refuses() {
        assert!(cors_layer("").unwrap().is_none());
        assert!(cors_layer("  ").unwrap().is_none());
        assert!(cors_layer("*").unwrap().is_some());
        assert!(
            cors_layer("https://desk.example.org, https://wall.example.org:8443")
                .unwrap()
                .is_some()
        );
        assert!(cors_layer("http://[::1]:3000").unwrap().is_some());
        for bad in [
            "desk.example.org",
            "https://desk.example.org/",
            "https://desk.example.org/path",
            "https://user@desk.example.org",
            "https://desk.example.org:99999",
            "https://desk.example.org:",
            "https://",
            "https://desk.example.org,",
            "https://desk.example.org,*",
            "https://dé.example.org",
            "https://desk .example.org",
            "null",
            "http://[nothost]:80",
        ] {
            let result = cors_layer(bad);
            assert!(result.is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            parse_origin("HTTPS://Desk.Example.org:443").unwrap(),
            "https://desk.example.org"
        );
        assert_eq!(
            parse_origin("http://localhost:8080").unwrap(),
            "http://localhost:8080"
        );
    }

    fn preflight(origin: &str, method: &str) -> Request {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/things")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization, content-type",
            )
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn cors_preflight_for_a_listed_origin() {
        let cors = cors_layer("https://desk.example.org,https://wall.example.org")
            .unwrap()
            .unwrap();
        let app = Router::new().route("/things", get(ok).post(ok)).layer(cors);

        let response = app
            .clone()
            .oneshot(preflight("https://desk.example.org", "POST"))
            .await
            .unwrap();
        assert!(response.status().is_success());
        let headers = response.headers();
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://desk.example.org"
        );
        let methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap();
        assert!(methods.contains("POST") && methods.contains("PATCH"));
        let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("idempotency-key"));
        assert_eq!(headers[header::ACCESS_CONTROL_MAX_AGE], "600");
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));

        let stranger = app
            .clone()
            .oneshot(preflight("https://evil.example.net", "POST"))
            .await
            .unwrap();
        assert!(
            !stranger
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );

        // A simple request gets the exposed headers.
        let request = Request::builder()
            .uri("/things")
            .header(header::ORIGIN, "https://wall.example.org")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let exposed = response.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for name in [
            "etag",
            "location",
            "link",
            "retry-after",
            "ratelimit-remaining",
        ] {
            assert!(exposed.contains(name), "{name} not exposed: {exposed}");
        }
    }

    #[tokio::test]
    async fn cors_wildcard_allows_reads_only() {
        let app = Router::new()
            .route("/things", get(ok).post(ok))
            .layer(cors_layer("*").unwrap().unwrap());
        let response = app
            .oneshot(preflight("https://anyone.example", "POST"))
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap();
        assert!(methods.contains("GET") && !methods.contains("POST"));
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
    }
}
