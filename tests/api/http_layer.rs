//! The HTTP layer's promises that are not about any one resource: answers
//! compressed when the client asks, and only when it pays; `pretty=true`
//! on every JSON answer.

use std::io::Read;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::common::TestApp;

crate::on_both_backends!(
    large_answers_are_compressed_and_small_ones_are_not,
    event_streams_are_never_compressed,
    every_json_answer_can_be_pretty
);

/// The answer's status, headers and raw (possibly compressed) bytes.
async fn raw(
    app: &TestApp,
    uri: &str,
    encoding: &str,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::builder().uri(uri);
    if !encoding.is_empty() {
        request = request.header(header::ACCEPT_ENCODING, encoding);
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

async fn large_answers_are_compressed_and_small_ones_are_not(app: TestApp) {
    // (answer, least gzip ratio, least brotli ratio). JSON compresses well
    // over 4× (6.7× gzip, 7.1× brotli). The CSV exports are mostly source
    // URLs, each different: the bundled data's agreement export is 3.95×
    // smaller with gzip and 3.8× with brotli, its pledge export 3.2× with
    // either (docs/performance-and-contract.md).
    for (uri, least_gzip, least_br) in [
        ("/v1/agreements?limit=50", 4.0, 4.0),
        ("/v1/agreements?format=ndjson", 4.0, 4.0),
        ("/v1/agreements?format=csv", 3.5, 3.5),
        ("/v1/agreements?format=csv&rows=pledges", 3.0, 3.0),
    ] {
        let (status, headers, plain) = raw(&app, uri, "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers.get(header::CONTENT_ENCODING).is_none());
        let (status, headers, gzipped) = raw(&app, uri, "gzip").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip", "{uri}");
        let vary: Vec<String> = headers
            .get_all(header::VARY)
            .iter()
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .collect();
        assert!(
            vary.iter().any(|v| v.contains("accept-encoding")),
            "{uri}: {vary:?}"
        );
        assert_eq!(gunzip(&gzipped), plain, "{uri}: the same bytes, compressed");
        let ratio = plain.len() as f64 / gzipped.len() as f64;
        assert!(ratio >= least_gzip, "{uri}: gzip only {ratio:.2}×");
        let (_, headers, brotli) = raw(&app, uri, "br").await;
        assert_eq!(headers[header::CONTENT_ENCODING], "br", "{uri}");
        let ratio = plain.len() as f64 / brotli.len() as f64;
        assert!(ratio >= least_br, "{uri}: brotli only {ratio:.2}×");
    }
    // Small answers go out as they are: nothing to gain.
    for uri in ["/healthz", "/v1/partners/JP", "/v1/agreements/nope"] {
        let (_, headers, _) = raw(&app, uri, "gzip, br").await;
        assert!(headers.get(header::CONTENT_ENCODING).is_none(), "{uri}");
    }
}

async fn event_streams_are_never_compressed(app: TestApp) {
    let request = Request::builder()
        .uri("/v1/events")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
}

async fn every_json_answer_can_be_pretty(app: TestApp) {
    for uri in [
        "/v1/agreements/ua-jp-2024",
        "/v1/agreements?partner=JP",
        "/v1/stats/pledges",
        "/v1/stats/agreements?group_by=year",
        "/v1/timeline?limit=2",
        "/v1/changes?limit=2",
        "/v1/partners?limit=3",
        "/v1/areas?limit=3",
        "/v1/history?limit=2",
        "/v1/agreements/ua-jp-2024/pledges",
        "/v1/checks",
        "/v1/rates/annual",
        "/v1/agreements/ua-jp-2024/history?limit=1",
        "/v1/partners/Japn",
    ] {
        let compact = app.get(uri).await;
        let separator = if uri.contains('?') { '&' } else { '?' };
        let pretty = app.get(&format!("{uri}{separator}pretty=true")).await;
        assert_eq!(pretty.status, compact.status, "{uri}: {}", pretty.text);
        assert!(
            pretty.text.starts_with("{\n  \""),
            "{uri}: {}",
            &pretty.text[..40.min(pretty.text.len())]
        );
        assert!(!compact.text.contains('\n'), "{uri}");
        if compact.status == StatusCode::OK {
            assert_eq!(
                pretty.json(),
                compact.json(),
                "{uri}: the same answer, indented"
            );
            // One kept answer and one tag for both: pretty is only layout.
            assert_eq!(pretty.header("etag"), compact.header("etag"), "{uri}");
        } else {
            assert_eq!(
                pretty.json()["closest_matches"],
                compact.json()["closest_matches"]
            );
        }
        // `pretty` alone means true.
        let bare = app.get(&format!("{uri}{separator}pretty")).await;
        assert!(bare.text.starts_with("{\n"), "{uri}");
    }
    // Other formats go out as they are.
    let csv = app
        .get("/v1/agreements?format=csv&partner=JP&pretty=true")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.text.starts_with("id,partner,"));
    for bad in ["pretty=maybe", "pretty=true&pretty=false"] {
        let problem = app
            .get(&format!("/v1/stats/pledges?{bad}"))
            .await
            .problem(400);
        assert_eq!(problem["errors"][0]["field"], "pretty", "{bad}");
    }
}
