//! Dashboards: conditional GETs, the change feed, and live events across instances.

use std::time::{Duration, Instant};

use accords::http::HttpOptions;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::common::{Backend, TestApp};

crate::on_both_backends!(
    revalidation_is_a_304_without_the_query,
    the_change_feed_has_no_gaps,
    events_arrive_live_resume_and_filter,
    events_cross_instances_within_a_second,
    a_client_far_behind_is_cut_off_and_misses_nothing,
);

async fn revalidation_is_a_304_without_the_query(app: TestApp) {
    let first = app.get("/v1/agreements?area=demining").await;
    let etag = first.header("etag").unwrap().to_owned();
    assert!(etag.starts_with("W/\"r"), "{etag}");
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    // While the agreements table is out of reach, only a 304 can still answer:
    // the revalidation reads the revision and nothing else.
    let hide = |sql: &'static str| {
        let url = app.database.url.clone();
        async move {
            use sqlx::Connection;
            match app_backend(&url) {
                Backend::Sqlite => {
                    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                    sqlx::query(sql).execute(&mut c).await.unwrap();
                }
                Backend::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    sqlx::query(sql).execute(&mut c).await.unwrap();
                }
            }
        }
    };
    hide("ALTER TABLE agreements RENAME TO agreements_hidden").await;
    let again = app
        .send_with(
            "GET",
            "/v1/agreements?area=demining",
            &[("If-None-Match", &etag)],
            None,
            "",
        )
        .await;
    hide("ALTER TABLE agreements_hidden RENAME TO agreements").await;
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    // Each format is its own representation.
    let csv = app
        .send_with(
            "GET",
            "/v1/agreements?area=demining",
            &[("Accept", "text/csv")],
            None,
            "",
        )
        .await;
    assert_ne!(csv.header("etag").unwrap(), etag);
    for uri in [
        "/v1/stats/pledges?group_by=partner",
        "/v1/timeline",
        "/v1/partners?limit=5",
        "/v1/changes",
    ] {
        let reply = app.get(uri).await;
        let tag = reply
            .header("etag")
            .unwrap_or_else(|| panic!("{uri} has no ETag"))
            .to_owned();
        let revalidated = app
            .send_with("GET", uri, &[("If-None-Match", &tag)], None, "")
            .await;
        assert_eq!(revalidated.status, 304, "{uri}");
    }
    // A single agreement revalidates on its version.
    let japan = app.get("/v1/agreements/ua-jp-2024").await;
    let version_tag = japan.header("etag").unwrap().to_owned();
    let same = app
        .send_with(
            "GET",
            "/v1/agreements/ua-jp-2024",
            &[("If-None-Match", &version_tag)],
            None,
            "",
        )
        .await;
    assert_eq!(same.status, 304);

    // A write changes the tags: the next revalidation gets the new data.
    assert_eq!(
        app.patch("/v1/agreements/ua-jp-2024", &json!({"summary": "changed"}))
            .await
            .status,
        200
    );
    let after = app
        .send_with(
            "GET",
            "/v1/agreements?area=demining",
            &[("If-None-Match", &etag)],
            None,
            "",
        )
        .await;
    assert_eq!(after.status, 200);
    assert_ne!(after.header("etag").unwrap(), etag);
    let japan = app
        .send_with(
            "GET",
            "/v1/agreements/ua-jp-2024",
            &[("If-None-Match", &version_tag)],
            None,
            "",
        )
        .await;
    assert_eq!(japan.status, 200);
    assert_eq!(japan.json()["summary"], "changed");
}

fn app_backend(url: &str) -> Backend {
    if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

async fn the_change_feed_has_no_gaps(app: TestApp) {
    let start = app.get_ok("/v1/changes?limit=1").await;
    let first_seq = start["items"][0]["seq"].as_i64().unwrap();
    assert_eq!(first_seq, 1, "the feed starts at 1 (the seed)");
    let tip = app.store.revision().await.unwrap();
    let app = std::sync::Arc::new(app);
    let mut writers = Vec::new();
    for n in 0..8 {
        let app = app.clone();
        writers.push(tokio::spawn(async move {
            app.post(
                "/v1/areas",
                &json!({"code": format!("feed-{n}"), "name": "Feed"}),
            )
            .await
            .status
        }));
    }
    for writer in writers {
        assert_eq!(writer.await.unwrap(), 201);
    }
    let page = app
        .get_ok(&format!("/v1/changes?since={tip}&limit=5"))
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let seqs: Vec<i64> = items.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (tip + 1..=tip + 5).collect::<Vec<_>>(),
        "strictly increasing, no gaps"
    );
    assert_eq!(page["next_since"], tip + 5);
    assert_eq!(items[0]["entity"], "area");
    assert_eq!(items[0]["op"], "create");
    assert_eq!(items[0]["version"], 1);
    let rest = app.get_ok(&format!("/v1/changes?since={}", tip + 5)).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
    let empty = app.get_ok(&format!("/v1/changes?since={}", tip + 8)).await;
    assert_eq!(empty, json!({"items": [], "next_since": tip + 8}));
    // Filters: a partner's changes, by entity.
    assert_eq!(
        app.patch("/v1/pledges/ua-jp-2024-p1", &json!({"note": "checked"}))
            .await
            .status,
        200
    );
    let japan = app
        .get_ok(&format!("/v1/changes?since={tip}&partner=japan"))
        .await;
    assert_eq!(japan["items"].as_array().unwrap().len(), 1);
    assert_eq!(japan["items"][0]["entity"], "pledge");
    assert_eq!(japan["items"][0]["agreement_id"], "ua-jp-2024");
    app.get("/v1/changes?since=-1").await.problem(400);
    app.get("/v1/changes?entity=treaty").await.problem(400);
}

/// Opens GET /v1/events on a router; answers a reader of its events.
async fn subscribe(router: &axum::Router, uri: &str, last_event_id: Option<i64>) -> Events {
    let mut request = Request::get(uri);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = tower::ServiceExt::oneshot(router.clone(), request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    Events {
        body: response.into_body(),
        pending: String::new(),
    }
}

struct Events {
    body: Body,
    pending: String,
}

impl Events {
    /// The next change event (heartbeats skipped), or None after `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(i64, Value)> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let frame: String = self.pending.drain(..end + 2).collect();
                let id = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("id: "))
                    .and_then(|v| v.parse().ok());
                let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
                if let (Some(id), Some(data)) = (id, data) {
                    return Some((id, serde_json::from_str(data).unwrap()));
                }
                continue;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                _ => return None,
            }
        }
    }
}

async fn events_arrive_live_resume_and_filter(app: TestApp) {
    let mut live = subscribe(&app.router, "/v1/events", None).await;
    let mut partners_only = subscribe(&app.router, "/v1/events?entity=partner", None).await;
    assert_eq!(
        app.post("/v1/areas", &json!({"code": "live-1", "name": "Live"}))
            .await
            .status,
        201
    );
    let (id, event) = live
        .next(Duration::from_secs(2))
        .await
        .expect("an event within 2 s");
    assert_eq!(event["entity"], "area");
    assert_eq!(event["id"], "live-1");
    assert_eq!(event["seq"], id);
    assert_eq!(
        app.patch("/v1/partners/NZ", &json!({"aliases": ["Aotearoa"]}))
            .await
            .status,
        200
    );
    let (_, partner_event) = partners_only
        .next(Duration::from_secs(2))
        .await
        .expect("the partner event");
    assert_eq!(
        partner_event["entity"], "partner",
        "the area event was filtered out"
    );
    let (next_id, _) = live.next(Duration::from_secs(2)).await.unwrap();
    assert_eq!(next_id, id + 1);
    // A write through this instance wakes a waiting stream at its commit,
    // not at the next poll of the feed (every second): three in a row each
    // arrive well inside one. (Reading with nothing new first leaves the
    // stream waiting for the broadcast, past its catch-up read.)
    for i in 0..3 {
        assert!(live.next(Duration::from_millis(50)).await.is_none());
        let code = format!("live-quick-{i}");
        let reply = app
            .post("/v1/areas", &json!({"code": code, "name": "Quick"}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let acknowledged = Instant::now();
        let (_, event) = live
            .next(Duration::from_millis(400))
            .await
            .unwrap_or_else(|| panic!("{code}: no event within 400 ms of the write"));
        assert_eq!(event["id"], code.as_str());
        assert!(acknowledged.elapsed() < Duration::from_millis(400));
    }

    // A client that reconnects with Last-Event-ID gets what it missed, in order.
    let mut resumed = subscribe(&app.router, "/v1/events", Some(id - 1)).await;
    let replayed: Vec<i64> = [
        resumed.next(Duration::from_secs(2)).await.unwrap().0,
        resumed.next(Duration::from_secs(2)).await.unwrap().0,
    ]
    .to_vec();
    assert_eq!(replayed, [id, id + 1]);
    let metrics = app.get("/metrics").await.text;
    assert!(metrics.contains("accords_sse_clients 3"), "{metrics}");
}

async fn events_cross_instances_within_a_second(app: TestApp) {
    // Instance B: its own store and router on the same database.
    let other = accords::app(app.database.open().await, HttpOptions::default()).unwrap();
    let mut on_b = subscribe(&other, "/v1/events", None).await;
    // Let B's reader start listening before the write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written = Instant::now();
    assert_eq!(
        app.post("/v1/areas", &json!({"code": "across", "name": "Across"}))
            .await
            .status,
        201
    );
    let limit = match app.database.backend {
        // LISTEN/NOTIFY: at once. SQLite has no notifications; B polls each second.
        Backend::Postgres => Duration::from_secs(1),
        Backend::Sqlite => Duration::from_millis(2500),
    };
    let (_, event) = on_b
        .next(limit)
        .await
        .expect("the write reached the other instance");
    assert_eq!(event["id"], "across");
    assert!(written.elapsed() <= limit, "{:?}", written.elapsed());
}

/// The dashboard is served from the binary: no CDN, its own strict policy.
#[tokio::test]
async fn the_dashboard_is_built_in_and_offline() {
    let app = TestApp::new(Backend::Sqlite).await.unwrap();
    let page = app.get("/").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let policy = page.header("content-security-policy").unwrap();
    assert!(
        policy.contains("default-src 'self'") && policy.contains("script-src 'self'"),
        "{policy}"
    );
    assert!(page.text.contains("<script src=\"/dashboard/app.js\""));
    assert!(page.text.contains("/dashboard/style.css"));
    // Nothing inline: the policy would block it (and the browser tests fail on the console error).
    assert_eq!(
        page.text.matches("<script").count(),
        1,
        "one script, by src"
    );
    let handler = page.text.match_indices(" on").any(|(i, _)| {
        let rest = &page.text[i + 3..];
        let name = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_lowercase())
                .len();
        name > 0 && rest[name..].starts_with('=')
    });
    assert!(
        !page.text.contains("<style") && !page.text.contains(" style=") && !handler,
        "inline style or handler in the page"
    );
    for (path, kind) in [
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
    ] {
        let asset = app.get(path).await;
        assert_eq!(asset.status, 200, "{path}");
        assert!(asset.header("content-type").unwrap().starts_with(kind));
        // Offline: nothing is fetched from elsewhere (the SVG namespace is a name, not a fetch).
        let external: Vec<&str> = asset
            .text
            .match_indices("://")
            .map(|(i, _)| &asset.text[i.saturating_sub(5)..(i + 30).min(asset.text.len())])
            .filter(|u| !u.contains("//www.w3.org/2000/svg"))
            .collect();
        assert!(external.is_empty(), "{path} reaches out: {external:?}");
    }
    // It uses the public API only: the endpoints it calls exist.
    let script = app.get("/dashboard/app.js").await.text;
    for endpoint in [
        "/v1/agreements",
        "/v1/stats/pledges",
        "/v1/events",
        "/v1/areas",
        "/v1/changes",
        "/v1/partners/",
    ] {
        assert!(script.contains(endpoint), "{endpoint}");
    }
    // Both languages' words are in the one script, and the API is asked in the chosen one.
    assert!(script.contains("'Accept-Language': state.lang"));
    assert!(script.contains("Двосторонні безпекові угоди України"));
}

/// More changes than the buffer holds arrive before the client reads: it
/// gets every one, in order, from the feed, and then its stream ends (the
/// buffer never grows) — a reconnect with Last-Event-ID carries on.
async fn a_client_far_behind_is_cut_off_and_misses_nothing(app: TestApp) {
    let mut slow = subscribe(&app.router, "/v1/events", None).await;
    let start = app.store.revision().await.unwrap();
    let areas: Vec<Value> = (0..1100)
        .map(|n| json!({"code": format!("bulk-{n}"), "name": "Bulk"}))
        .collect();
    let admin = format!("Bearer {}", app.admin_key);
    let reply = app
        .send_with(
            "POST",
            "/v1/import",
            &[("Authorization", &admin)],
            Some("application/json"),
            &json!({"areas": areas}).to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut seen = Vec::new();
    while let Some((id, _)) = slow.next(Duration::from_secs(3)).await {
        seen.push(id);
    }
    assert_eq!(
        seen,
        (start + 1..=start + 1100).collect::<Vec<_>>(),
        "every change once, in order"
    );
    let frame = tokio::time::timeout(Duration::from_secs(1), slow.body.frame()).await;
    assert!(matches!(frame, Ok(None)), "the lagging stream was closed");
    assert_eq!(
        app.post("/v1/areas", &json!({"code": "after-lag", "name": "After"}))
            .await
            .status,
        201
    );
    let mut resumed = subscribe(&app.router, "/v1/events", Some(start + 1100)).await;
    let (id, event) = resumed
        .next(Duration::from_secs(3))
        .await
        .expect("resumed after the last seen");
    assert_eq!(
        (id, event["id"].clone()),
        (start + 1101, json!("after-lag"))
    );
}

/// Idle streams get a heartbeat comment, so proxies keep them open.
#[tokio::test]
async fn idle_event_streams_get_heartbeats() {
    let app = TestApp::new(Backend::Sqlite).await.unwrap();
    let mut idle = subscribe(&app.router, "/v1/events", None).await;
    let frame = tokio::time::timeout(Duration::from_secs(17), idle.body.frame())
        .await
        .expect("a heartbeat within 15 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert_eq!(text.trim(), ": heartbeat");
}
