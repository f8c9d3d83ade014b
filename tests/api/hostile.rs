//! Hostile input, in-process: each finding of the hardening review as a
//! request the router answers with a clear 4xx (or survives), on both
//! backends, with the store unchanged where a request was refused. The same
//! findings against the release binary, with load, RSS and /healthz
//! latency, are in tests/hostile/ (scripts/hostile).

use accords::http::{ConnectionLimits, HttpOptions};
use serde_json::{Value, json};

use crate::common::{Backend, TestApp, TestDatabase};

crate::on_both_backends!(
    made_up_methods_share_one_metrics_label,
    oversized_references_and_lists_are_refused_without_suggestions,
    many_query_parameters_get_a_short_problem,
    lists_vary_by_negotiated_format_only,
    a_committed_write_whose_answer_was_lost_is_never_written_twice,
    totals_that_would_overflow_are_refused,
    a_stale_body_version_is_a_failed_precondition,
    trailing_bytes_after_the_json_value_are_refused,
    a_cursor_holding_a_nul_is_refused,
    a_rates_file_of_bad_rows_reports_a_bounded_list,
    csv_cells_never_run_as_formulas,
    deceptive_text_and_links_are_refused,
    small_findings_are_answered_clearly,
);

fn agreement(title: &str) -> Value {
    json!({
        "partner": "NZ", "title": title, "kind": "bilateral_security", "status": "signed",
        "signed_on": "2025-03-01", "term_years": 10,
        "areas": ["demining"]
    })
}

async fn made_up_methods_share_one_metrics_label(app: TestApp) {
    for i in 0..40 {
        let reply = app
            .send(&format!("M{i:07}"), "/v1/agreements", None, "")
            .await;
        assert!(reply.status.is_client_error(), "{}", reply.status);
    }
    // Metrics are counted by the outer layer of the real server; in-process
    // the router still renders them: no series names a made-up method.
    let metrics = app.get("/metrics").await.text;
    assert!(!metrics.contains("M0000001"), "{metrics}");
    assert!(
        metrics.lines().count() < 200,
        "{} lines",
        metrics.lines().count()
    );
}

async fn oversized_references_and_lists_are_refused_without_suggestions(app: TestApp) {
    let long = "x".repeat(60_000);
    for uri in [
        format!("/v1/partners/{long}"),
        format!("/v1/agreements?partner={}", "y".repeat(900)),
        format!(
            "/v1/stats/pledges?group_by=partner&partner={}",
            "z".repeat(900)
        ),
        format!("/v1/changes?partner={}", "w".repeat(900)),
    ] {
        let reply = app.get(&uri).await;
        let problem = reply.problem(400);
        assert!(problem.get("closest_matches").is_none(), "{}", reply.text);
        assert!(
            reply.text.len() < 4_000,
            "a short answer: {}",
            reply.text.len()
        );
    }
    // A value longer than any parameter may hold.
    let reply = app
        .get(&format!("/v1/agreements?q={}", "a".repeat(5_000)))
        .await;
    reply.problem(400);
    // 8,000 comma-separated references: refused for their length, and
    // 60 short ones for their number.
    let refs = vec!["jp"; 8_000].join(",");
    let reply = app.get(&format!("/v1/agreements?partner={refs}")).await;
    let problem = reply.problem(400);
    assert!(problem["detail"].as_str().unwrap().contains("partner"));
    let refs = vec!["jp"; 60].join(",");
    let reply = app.get(&format!("/v1/agreements?partner={refs}")).await;
    let problem = reply.problem(400);
    assert!(problem["detail"].as_str().unwrap().contains("at most 50"));
    // Within the bounds a typo still gets its suggestions.
    let reply = app.get("/v1/partners/japn").await;
    let problem = reply.problem(404);
    assert_eq!(problem["closest_matches"][0]["code"], "JP");
}

async fn many_query_parameters_get_a_short_problem(app: TestApp) {
    // (30,000 go over real TCP in tests/hostile; a URI here holds 64 KiB.)
    let query: Vec<String> = (0..6_000).map(|i| format!("p{i}=1")).collect();
    let reply = app
        .get(&format!("/v1/agreements?{}", query.join("&")))
        .await;
    let problem = reply.problem(400);
    assert!(problem["detail"].as_str().unwrap().contains("more than 64"));
    assert!(reply.text.len() < 2_000);
    // Unknown parameters within the bound: each named.
    let reply = app.get("/v1/agreements?limt=5&sortt=id").await;
    let problem = reply.problem(400);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("limt") && detail.contains("sortt"),
        "{detail}"
    );
}

async fn lists_vary_by_negotiated_format_only(app: TestApp) {
    let plain = app.get("/v1/agreements?limit=2").await;
    // The negotiated format and language, and the encoding (compression).
    assert_eq!(
        plain.header("vary"),
        Some("Accept, Accept-Language, accept-encoding")
    );
    let junk = format!("application/json, {}", "x/y;q=0.1, ".repeat(2_000));
    let reply = app
        .send_with(
            "GET",
            "/v1/agreements?limit=2",
            &[("Accept", junk.as_str())],
            None,
            "",
        )
        .await;
    assert_eq!(reply.status, 200);
    // The same representation, so the same tag, whatever else Accept says.
    assert_eq!(reply.header("etag"), plain.header("etag"));
    assert_eq!(reply.text, plain.text);
    let csv = app
        .send_with(
            "GET",
            "/v1/agreements?limit=2",
            &[("Accept", "text/csv")],
            None,
            "",
        )
        .await;
    assert_ne!(csv.header("etag"), plain.header("etag"));
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
}

async fn a_committed_write_whose_answer_was_lost_is_never_written_twice(app: TestApp) {
    let body = agreement("Crash-safe accord").to_string();
    let headers = [("Idempotency-Key", "crash-1")];
    let first = app
        .send_with(
            "POST",
            "/v1/agreements",
            &headers,
            Some("application/json"),
            &body,
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let id = first.json()["id"].as_str().unwrap().to_owned();
    // As if the process died after the commit and before the answer was
    // kept: no stored answer, and the reservation old enough to take over.
    let abandoned = (chrono::Utc::now() - chrono::TimeDelta::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    app.database
        .execute(&format!(
            "UPDATE idempotency_keys SET status = NULL, headers = NULL, body = NULL, created_at = '{abandoned}' WHERE key = 'crash-1'"
        ))
        .await;
    let count = |items: &Vec<Value>| {
        items
            .iter()
            .filter(|a| a["title"] == "Crash-safe accord")
            .count()
    };
    let retry = app
        .send_with(
            "POST",
            "/v1/agreements",
            &headers,
            Some("application/json"),
            &body,
        )
        .await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json()["id"], id.as_str());
    assert_eq!(
        retry.header("location"),
        Some(format!("/v1/agreements/{id}").as_str())
    );
    let all = app.all_items("/v1/agreements?partner=NZ").await;
    assert_eq!(count(&all), 1, "written once");
}

async fn totals_that_would_overflow_are_refused(app: TestApp) {
    let huge = |title: &str| {
        let mut body = agreement(title);
        body["pledges"] = json!(
            (0..9)
                .map(|_| json!({"amount": "9999999999999999.99", "currency": "CHF", "kind": "military", "year_from": 2025}))
                .collect::<Vec<_>>()
        );
        body
    };
    let first = app.post("/v1/agreements", &huge("Huge one")).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = app.store.export().await.unwrap();
    let second = app.post("/v1/agreements", &huge("Huge two")).await;
    assert_eq!(second.error_fields(), ["pledges"]);
    assert_eq!(app.store.export().await.unwrap(), before, "nothing written");
    for uri in [
        "/v1/stats/pledges?group_by=partner",
        "/v1/stats/pledges?group_by=year&currency=CHF",
        "/v1/stats/pledges?group_by=area",
    ] {
        let reply = app.get(uri).await;
        assert_eq!(reply.status, 200, "{uri}: {}", reply.text);
    }
}

async fn a_stale_body_version_is_a_failed_precondition(app: TestApp) {
    let fetched = app.get_ok("/v1/agreements/ua-jp-2024").await;
    assert_eq!(
        app.patch(
            "/v1/agreements/ua-jp-2024",
            &json!({"summary": "first edit"})
        )
        .await
        .status,
        200
    );
    let before = app.store.export().await.unwrap();
    let mut stale = fetched.clone();
    stale["summary"] = json!("an edit of an old copy");
    let reply = app.put("/v1/agreements/ua-jp-2024", &stale).await;
    let problem = reply.problem(412);
    assert_eq!(
        problem["current_version"],
        fetched["version"].as_i64().unwrap() + 1
    );
    let reply = app
        .patch(
            "/v1/agreements/ua-jp-2024",
            &json!({"summary": "x", "version": fetched["version"]}),
        )
        .await;
    reply.problem(412);
    let mut wrong = fetched.clone();
    wrong["version"] = json!("x");
    let reply = app.put("/v1/agreements/ua-jp-2024", &wrong).await;
    assert_eq!(reply.error_fields(), ["version"]);
    let reply = app
        .patch("/v1/agreements/ua-jp-2024", &json!({"version": "x"}))
        .await;
    assert_eq!(reply.error_fields(), ["version"]);
    assert_eq!(app.store.export().await.unwrap(), before);
    // The current version goes through.
    let mut current = app.get_ok("/v1/agreements/ua-jp-2024").await;
    current["summary"] = json!("an edit of the current copy");
    assert_eq!(
        app.put("/v1/agreements/ua-jp-2024", &current).await.status,
        200
    );
    // Children and partners too.
    let pledge = app.get_ok("/v1/pledges/ua-jp-2024-p1").await;
    let reply = app
        .patch(
            "/v1/pledges/ua-jp-2024-p1",
            &json!({"note": "x", "version": pledge["version"].as_i64().unwrap() - 1}),
        )
        .await;
    reply.problem(412);
    let partner = app.get_ok("/v1/partners/JP").await;
    let reply = app
        .patch(
            "/v1/partners/JP",
            &json!({"version": partner["version"].as_i64().unwrap() + 5}),
        )
        .await;
    reply.problem(412);
}

async fn trailing_bytes_after_the_json_value_are_refused(app: TestApp) {
    let before = app.store.export().await.unwrap();
    for tail in ["}}", " {\"a\": 1}", "x"] {
        let body = format!("{}{tail}", agreement("Trailing"));
        let reply = app
            .send("POST", "/v1/agreements", Some("application/json"), &body)
            .await;
        reply.problem(400);
    }
    assert_eq!(app.store.export().await.unwrap(), before);
    let spaced = format!("{}\n  \n", agreement("Trailing spaces are fine"));
    let reply = app
        .send("POST", "/v1/agreements", Some("application/json"), &spaced)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

async fn a_cursor_holding_a_nul_is_refused(app: TestApp) {
    // "c1" + hex of "ua-jp\0x".
    for uri in [
        "/v1/agreements?cursor=c175612d6a7000",
        "/v1/partners?cursor=c1750078",
        "/v1/areas?cursor=c100",
    ] {
        app.get(uri).await.problem(400);
    }
}

async fn a_rates_file_of_bad_rows_reports_a_bounded_list(app: TestApp) {
    let mut csv = String::from("date,currency,rate\n");
    for i in 0..20_000 {
        csv.push_str(&format!("2024-13-{:02},EUR,x{i}\n", i % 28 + 1));
    }
    let reply = app.send("POST", "/v1/rates", Some("text/csv"), &csv).await;
    let problem = reply.problem(400);
    let errors = problem["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1_001, "a thousand errors and a count");
    assert!(
        errors[1_000]["message"]
            .as_str()
            .unwrap()
            .contains("more error"),
        "{}",
        errors[1_000]
    );
    assert_eq!(app.get_ok("/v1/rates").await["items"], json!([]));
}

async fn csv_cells_never_run_as_formulas(app: TestApp) {
    let mut body = agreement("=HYPERLINK(\"https://evil.example\",\"click\")");
    body["signed_at"] = json!("@SUM(A1:A9)");
    let reply = app.post("/v1/agreements", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let csv = app.get("/v1/agreements?partner=NZ&format=csv").await.text;
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    for line in csv.lines() {
        for cell in line.split(',') {
            assert!(
                !cell.trim_start_matches('"').starts_with(['=', '+', '@']),
                "{cell}"
            );
        }
    }
    // The JSON keeps the text exactly as written.
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get_ok(&format!("/v1/agreements/{id}")).await["title"],
        "=HYPERLINK(\"https://evil.example\",\"click\")"
    );
}

async fn deceptive_text_and_links_are_refused(app: TestApp) {
    let before = app.store.export().await.unwrap();
    let cases = [
        (agreement("Japan\u{202E}gnp.exe"), "title"),
        (agreement("Ja\u{200B}pan"), "title"),
        (agreement("\u{FEFF}Japan"), "title"),
    ];
    for (body, field) in cases {
        assert_eq!(
            app.post("/v1/agreements", &body).await.error_fields(),
            [field]
        );
    }
    let mut body = agreement("Links");
    body["sources"] = json!([{"url": "https://www.gov.uk@evil.example/x", "title": "A source"}]);
    assert_eq!(
        app.post("/v1/agreements", &body).await.error_fields(),
        ["sources[0].url"]
    );
    let reply = app
        .patch("/v1/partners/JP", &json!({"name": "Jap\u{2066}an"}))
        .await;
    assert_eq!(reply.error_fields(), ["name"]);
    assert_eq!(app.store.export().await.unwrap(), before);
}

async fn small_findings_are_answered_clearly(app: TestApp) {
    // Every search word counts, or the search is refused.
    let words: Vec<String> = (0..17).map(|i| format!("w{i}")).collect();
    let reply = app
        .get(&format!("/v1/agreements?q={}", words.join("+")))
        .await;
    reply.problem(400);
    // A signing date whose end date would fall outside the dates accepted.
    let mut body = agreement("Far future");
    body["signed_on"] = json!("9999-12-31");
    assert_eq!(
        app.post("/v1/agreements", &body).await.error_fields(),
        ["signed_on"]
    );
    body["signed_on"] = json!("2150-01-01");
    assert_eq!(
        app.post("/v1/agreements", &body).await.error_fields(),
        ["signed_on"]
    );
    // The latest signing date accepted gives an end date that can be PUT back.
    body["signed_on"] = json!("2100-12-31");
    body["term_years"] = json!(100);
    let created = app.post("/v1/agreements", &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let fetched = app.get_ok(&format!("/v1/agreements/{id}")).await;
    assert_eq!(fetched["expires_on"], "2200-12-31");
    assert_eq!(
        app.put(&format!("/v1/agreements/{id}"), &fetched)
            .await
            .status,
        200
    );
    // The body limit of an import is the same with an Idempotency-Key.
    let export = serde_json::to_value(app.store.export().await.unwrap()).unwrap();
    let text = export.to_string();
    assert!(text.len() < 1_300_000);
    let padded = format!("{text}{}", " ".repeat(1_300_000 - text.len()));
    let admin = format!("Bearer {}", app.admin_key);
    for key in ["", "dry-run-1"] {
        let reply = app
            .send_with(
                "POST",
                "/v1/import?dry_run=true",
                &[("Authorization", admin.as_str()), ("Idempotency-Key", key)],
                Some("application/json"),
                &padded,
            )
            .await;
        assert_eq!(reply.status, 200, "key {key:?}: {}", reply.text);
    }
}

/// Event streams are capped per client and in total: over a cap, 429 or
/// 503 problem+json with Retry-After.
async fn event_streams_are_capped(backend: Backend) {
    let options = HttpOptions {
        connections: ConnectionLimits {
            event_streams_total: 3,
            event_streams_per_client: 2,
            ..ConnectionLimits::default()
        },
        ..HttpOptions::default()
    };
    let Some(app) = TestApp::with_options(backend, options).await else {
        return;
    };
    let open = || async {
        use tower::ServiceExt;
        app.router
            .clone()
            .oneshot(
                axum::http::Request::get("/v1/events")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
    };
    // In-process every request is the same client (`::`).
    let first = open().await;
    let second = open().await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = open().await;
    assert_eq!(third.status(), 429);
    assert_eq!(third.headers()["retry-after"], "1");
    assert_eq!(third.headers()["content-type"], "application/problem+json");
    drop(first);
    // A stream that ended gives its place back.
    let again = open().await;
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn sqlite_event_streams_are_capped() {
    event_streams_are_capped(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_event_streams_are_capped() {
    event_streams_are_capped(Backend::Postgres).await;
}

/// Over real TCP: a client past its share of connections is answered 429
/// and closed; one that never finishes its headers is closed after the
/// header timeout; past the total, 503. /healthz keeps answering.
async fn connections_are_capped_and_timed_out(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(database) = TestDatabase::new(backend).await else {
        return;
    };
    let store = database.open().await;
    let key =
        crate::common::create_key(store.as_ref(), "editor", accords::auth::Scope::Write, None)
            .await;
    let options = HttpOptions {
        connections: ConnectionLimits {
            total: 6,
            per_client: 3,
            header_timeout: std::time::Duration::from_secs(2),
            body_timeout: std::time::Duration::from_millis(500),
            ..ConnectionLimits::default()
        },
        ..HttpOptions::default()
    };
    let server = accords::Server::bind("127.0.0.1:0".parse().unwrap(), store, options)
        .await
        .unwrap();
    let address = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(
        async {
            let _ = stopped.await;
        },
        std::time::Duration::from_secs(2),
    ));
    let connect_from = |source: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(address).await.unwrap()
    };
    let answer = |mut stream: tokio::net::TcpStream| async move {
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut raw),
        )
        .await
        .expect("the server closes the connection");
        String::from_utf8_lossy(&raw).into_owned()
    };
    // Three half-sent requests from one client hold its share.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from("127.0.0.2").await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: ")
            .await
            .unwrap();
        held.push(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let refused = answer(connect_from("127.0.0.2").await).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("retry-after: 1"), "{refused}");
    assert!(refused.contains("application/problem+json"), "{refused}");
    // Another client still gets through, within the total.
    let mut probe = connect_from("127.0.0.1").await;
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(answer(probe).await.starts_with("HTTP/1.1 200"));
    // Three more clients fill the total: the next is answered 503.
    let mut more = Vec::new();
    for source in ["127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        more.push(connect_from(source).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let full = answer(connect_from("127.0.0.6").await).await;
    assert!(full.starts_with("HTTP/1.1 503"), "{full}");
    // The half-sent requests are closed by the header timeout.
    for stream in held {
        let text = answer(stream).await;
        assert!(!text.contains("200 OK"), "{text}");
    }
    drop(more);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut probe = connect_from("127.0.0.2").await;
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(answer(probe).await.starts_with("HTTP/1.1 200"));
    // A body that stops arriving is answered 408 once the body timeout passes.
    let mut slow = connect_from("127.0.0.7").await;
    slow.write_all(
        format!(
            "POST /v1/areas HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"code\":"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let timed_out = answer(slow).await;
    assert!(timed_out.starts_with("HTTP/1.1 408"), "{timed_out}");
    assert!(
        timed_out.contains("application/problem+json"),
        "{timed_out}"
    );
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn sqlite_connections_are_capped_and_timed_out() {
    connections_are_capped_and_timed_out(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_connections_are_capped_and_timed_out() {
    connections_are_capped_and_timed_out(Backend::Postgres).await;
}
