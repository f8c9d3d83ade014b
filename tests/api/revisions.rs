//! Reading the past: every read at `?revision=N` (or `?as_of=`) gives the
//! answer given live at N, byte for byte; diffs between revisions.

use std::time::Duration;

use accords::http::HttpOptions;
use serde_json::{Value, json};

use crate::common::{Backend, Reply, TestApp};

crate::on_both_backends!(
    past_answers_are_the_live_answers_byte_for_byte,
    revisions_outside_the_history_are_refused,
    past_answers_are_immutable_and_named,
    agreement_diff_names_each_change,
    stats_diff_says_which_totals_moved,
);

/// One read of each kind, in each format, with filters and sorts.
const READS: &[&str] = &[
    "/v1/agreements/ua-jp-2024",
    "/v1/agreements/ua-jp-2024?format=text",
    "/v1/agreements/ua-jp-2024?lang=uk",
    "/v1/agreements/ua-nz-2025",
    "/v1/agreements?limit=5",
    "/v1/agreements?partner=JP,NZ&sort=-signed_on&include=pledges&count=true",
    "/v1/agreements?q=japan&limit=3",
    "/v1/agreements?format=csv",
    "/v1/agreements?format=text&limit=20",
    "/v1/agreements/ua-jp-2024/pledges",
    "/v1/agreements/ua-jp-2024/sources",
    "/v1/pledges/ua-jp-2024-p1",
    "/v1/sources/ua-jp-2024-s1",
    "/v1/partners",
    "/v1/partners/JP",
    "/v1/partners/JP/agreements",
    "/v1/areas",
    "/v1/areas/demining",
    "/v1/areas/demining/agreements?limit=4",
    "/v1/stats/pledges?group_by=partner",
    "/v1/stats/pledges?group_by=year,kind&format=csv",
    "/v1/stats/pledges?group_by=partner&format=text",
    "/v1/stats/agreements?group_by=status",
    "/v1/timeline",
    "/v1/rates",
    "/v1/rates/annual",
];

struct Seen {
    uri: String,
    revision: i64,
    at: String,
    status: u16,
    content_type: Option<String>,
    body: String,
}

fn revision_of(reply: &Reply) -> i64 {
    reply
        .header("accords-revision")
        .unwrap_or_else(|| panic!("no Accords-Revision on {}", reply.text))
        .parse()
        .expect("a revision number")
}

async fn capture(app: &TestApp, seen: &mut Vec<Seen>) {
    // The next write's time is after this one's `at`.
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for uri in READS {
        let reply = app.get(uri).await;
        assert!(
            reply.status == 200 || reply.status == 404,
            "GET {uri}: {} {}",
            reply.status,
            reply.text
        );
        seen.push(Seen {
            uri: (*uri).to_owned(),
            revision: revision_of(&reply),
            at: at.clone(),
            status: reply.status.as_u16(),
            content_type: reply.header("content-type").map(str::to_owned),
            body: reply.text.clone(),
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

fn with(uri: &str, parameter: &str) -> String {
    let joiner = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{joiner}{parameter}")
}

fn created(reply: Reply) -> Value {
    assert!(
        reply.status == 200 || reply.status == 201,
        "{} {}",
        reply.status,
        reply.text
    );
    reply.json()
}

async fn past_answers_are_the_live_answers_byte_for_byte(app: TestApp) {
    let mut seen = Vec::new();
    capture(&app, &mut seen).await;
    // A varied run of writes: every kind of record, created, changed, deleted.
    let nz = created(
        app.post(
            "/v1/agreements",
            &json!({
                "partner": "New Zealand", "title": "A second one", "kind": "bilateral_security",
                "status": "signed", "signed_on": "2025-03-01", "term_years": 10,
                "areas": ["demining", {"code": "training", "detail": "infantry training"}],
                "pledges": [{"amount": "1000000.5", "currency": "nzd", "year_from": 2025, "year_to": 2025, "kind": "military"}],
                "sources": [{"url": "https://example.org/nz", "title": "Announcement"}]
            }),
        )
        .await,
    );
    assert_eq!(nz["id"], "ua-nz-2025");
    capture(&app, &mut seen).await;
    created(
        app.patch(
            "/v1/agreements/ua-jp-2024",
            &json!({"title": "Accord (edited)"}),
        )
        .await,
    );
    capture(&app, &mut seen).await;
    let pledge = created(
        app.post(
            "/v1/agreements/ua-jp-2024/pledges",
            &json!({"amount": "37000000", "currency": "JPY", "year_from": 2025, "year_to": 2026,
                    "kind": "humanitarian", "measure": "commitment", "description": "Winter support"}),
        )
        .await,
    );
    capture(&app, &mut seen).await;
    created(
        app.patch(
            "/v1/pledges/ua-jp-2024-p1",
            &json!({"amount": "4600000000"}),
        )
        .await,
    );
    capture(&app, &mut seen).await;
    created(
        app.post(
            "/v1/agreements/ua-jp-2024/sources",
            &json!({"url": "https://example.org/report", "title": "A report", "pledge_id": "ua-jp-2024-p1"}),
        )
        .await,
    );
    capture(&app, &mut seen).await;
    created(
        app.post(
            "/v1/partners",
            &json!({"code": "nato", "kind": "organization", "name": "North Atlantic Treaty Organization"}),
        )
        .await,
    );
    created(
        app.patch("/v1/partners/JP", &json!({"name": "Japan (renamed)"}))
            .await,
    );
    capture(&app, &mut seen).await;
    created(
        app.post(
            "/v1/areas",
            &json!({"code": "revisions", "name": "Revisions"}),
        )
        .await,
    );
    created(
        app.put("/v1/rates/USD/2024-01-02", &json!({"rate": "1.0956"}))
            .await,
    );
    capture(&app, &mut seen).await;
    let id = pledge["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/v1/pledges/{id}")).await.status, 204);
    assert_eq!(app.delete("/v1/agreements/ua-nz-2025").await.status, 204);
    capture(&app, &mut seen).await;

    let revisions: std::collections::BTreeSet<i64> = seen.iter().map(|s| s.revision).collect();
    assert!(
        revisions.len() >= 8,
        "each capture at its own revision: {revisions:?}"
    );
    for past in &seen {
        let by_number = app
            .get(&with(&past.uri, &format!("revision={}", past.revision)))
            .await;
        let by_time = app
            .get(&with(&past.uri, &format!("as_of={}", past.at)))
            .await;
        for (how, reply) in [("revision", &by_number), ("as_of", &by_time)] {
            assert_eq!(
                reply.status.as_u16(),
                past.status,
                "{} at {how} {}: {}",
                past.uri,
                past.revision,
                reply.text
            );
            assert_eq!(
                reply.header("content-type"),
                past.content_type.as_deref(),
                "{} at {how}",
                past.uri
            );
            if past.status == 200 {
                assert_eq!(
                    reply.text, past.body,
                    "{} at {how} {} differs from the answer given then",
                    past.uri, past.revision
                );
            } else {
                // A problem names its own request.
                let without_id = |text: &str| {
                    let mut problem: Value = serde_json::from_str(text).unwrap();
                    problem.as_object_mut().unwrap().remove("request_id");
                    problem
                };
                assert_eq!(
                    without_id(&reply.text),
                    without_id(&past.body),
                    "{}",
                    past.uri
                );
            }
            assert_eq!(revision_of(reply), past.revision, "{}", past.uri);
        }
    }
}

async fn revisions_outside_the_history_are_refused(app: TestApp) {
    let latest = revision_of(&app.get("/v1/agreements").await);
    for query in [
        format!("revision={}", latest + 1),
        "revision=-1".to_owned(),
        "revision=yesterday".to_owned(),
        "as_of=2001-01-01T00:00:00Z".to_owned(),
    ] {
        for path in [
            "/v1/agreements",
            "/v1/agreements/ua-jp-2024",
            "/v1/stats/pledges",
        ] {
            let problem = app.get(&format!("{path}?{query}")).await.problem(400);
            let text = problem.to_string();
            assert!(
                text.contains(&format!("revision {latest}")) && text.contains("revision 0"),
                "{path}?{query} names the earliest and latest: {text}"
            );
        }
    }
    app.get("/v1/agreements?revision=1&as_of=2026-01-01T00:00:00Z")
        .await
        .problem(400);
    app.get("/v1/agreements?revision=1&revision=2")
        .await
        .problem(400);
    // The past is read, never written; and only the reads listed have one.
    let before = app.get_ok("/v1/agreements/ua-jp-2024").await;
    app.patch(
        "/v1/agreements/ua-jp-2024?revision=1",
        &json!({"title": "Not now"}),
    )
    .await
    .problem(400);
    assert_eq!(app.get_ok("/v1/agreements/ua-jp-2024").await, before);
    app.get("/v1/changes?revision=1").await.problem(400);
    app.get("/v1/history?revision=1").await.problem(400);
    // A method no route has is a 405, revision or not.
    let trace = app
        .send("TRACE", "/v1/agreements?revision=1", None, "")
        .await;
    assert_eq!(trace.status, 405, "{}", trace.text);
    let put = app.put("/v1/timeline?revision=1", &json!({})).await;
    assert_eq!(put.status, 405, "{}", put.text);
    // The timeline names its revision like every list.
    let timeline = app.get_ok("/v1/timeline?limit=1").await;
    assert!(timeline["revision"].is_i64(), "{timeline}");
    // The dashboard's address keeps the revision for its script to ask for.
    let page = app.get("/?revision=1").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert_eq!(
        revision_of(&app.get("/v1/agreements").await),
        latest,
        "nothing was written"
    );
}

async fn past_answers_are_immutable_and_named(app: TestApp) {
    let live = app.get("/v1/agreements?limit=2").await;
    let revision = revision_of(&live);
    assert_eq!(live.json()["revision"], revision, "the body names it too");
    assert_eq!(live.header("cache-control"), Some("no-cache"));
    for uri in [
        "/v1/partners",
        "/v1/areas",
        "/v1/agreements/ua-jp-2024/pledges",
    ] {
        let reply = app.get(uri).await;
        assert_eq!(reply.json()["revision"], revision_of(&reply), "{uri}");
    }
    assert_eq!(
        revision_of(&app.get("/v1/agreements/ua-jp-2024").await),
        revision
    );
    created(
        app.patch("/v1/agreements/ua-jp-2024", &json!({"title": "Later"}))
            .await,
    );
    for uri in [
        format!("/v1/agreements?limit=2&revision={revision}"),
        format!("/v1/agreements/ua-jp-2024?revision={revision}"),
    ] {
        let past = app.get(&uri).await;
        assert_eq!(past.status, 200, "{}", past.text);
        assert_eq!(
            past.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(revision_of(&past), revision);
        let etag = past.header("etag").expect("a tag").to_owned();
        assert!(!etag.starts_with("W/"), "a strong tag: {etag}");
        let again = app
            .send_with("GET", &uri, &[("if-none-match", &etag)], None, "")
            .await;
        assert_eq!(again.status, 304, "{uri}");
    }
    let past = app
        .get(&format!("/v1/agreements/ua-jp-2024?revision={revision}"))
        .await
        .json();
    assert_ne!(past["title"], "Later");
    assert_eq!(
        app.get(&format!("/v1/agreements?limit=2&revision={revision}"))
            .await
            .json()["revision"],
        revision
    );
}

async fn agreement_diff_names_each_change(app: TestApp) {
    let from = revision_of(&app.get("/v1/agreements/ua-jp-2024").await);
    created(
        app.patch(
            "/v1/pledges/ua-jp-2024-p1",
            &json!({"amount": "4600000000"}),
        )
        .await,
    );
    let added = created(
        app.post(
            "/v1/agreements/ua-jp-2024/pledges",
            &json!({"amount": "37000000", "currency": "JPY", "kind": "humanitarian"}),
        )
        .await,
    );
    assert_eq!(app.delete("/v1/sources/ua-jp-2024-s11").await.status, 204);
    let to = revision_of(&app.get("/v1/agreements/ua-jp-2024").await);

    let diff = app
        .get_ok(&format!("/v1/agreements/ua-jp-2024/diff?from={from}"))
        .await;
    assert_eq!(diff["from"], from);
    assert_eq!(diff["to"], to);
    let changes = diff["changes"].as_array().unwrap();
    let find = |path: &str| {
        changes
            .iter()
            .find(|c| c["path"] == path)
            .unwrap_or_else(|| panic!("no change at {path}: {diff}"))
            .clone()
    };
    assert_eq!(
        find("pledges[ua-jp-2024-p1].amount"),
        json!({"path": "pledges[ua-jp-2024-p1].amount", "op": "changed", "from": "4500000000", "to": "4600000000"})
    );
    let new_id = added["id"].as_str().unwrap();
    let pledge = find(&format!("pledges[{new_id}]"));
    assert_eq!(pledge["op"], "added");
    assert_eq!(pledge["value"]["amount"], "37000000");
    let source = find("sources[ua-jp-2024-s11]");
    assert_eq!(source["op"], "removed");
    assert_eq!(source["value"]["id"], "ua-jp-2024-s11");
    let version = find("version");
    assert_eq!(version["op"], "changed");

    // To a fixed revision it never changes; to "now" it may.
    let fixed = app
        .get(&format!(
            "/v1/agreements/ua-jp-2024/diff?from={from}&to={to}"
        ))
        .await;
    assert_eq!(fixed.json(), diff);
    assert_eq!(
        fixed.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(revision_of(&fixed), to);
    let text = app
        .get(&format!(
            "/v1/agreements/ua-jp-2024/diff?from={from}&to={to}&format=text"
        ))
        .await;
    assert_eq!(text.status, 200);
    assert!(
        text.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        text.text
            .contains("~ pledges[ua-jp-2024-p1].amount: \"4500000000\" -> \"4600000000\""),
        "{}",
        text.text
    );
    assert!(text.text.contains(&format!("+ pledges[{new_id}]")));
    assert!(text.text.contains("- sources[ua-jp-2024-s11]"));
    let none = app
        .get_ok(&format!("/v1/agreements/ua-jp-2024/diff?from={to}&to={to}"))
        .await;
    assert_eq!(none["changes"], json!([]));

    app.get("/v1/agreements/ua-jp-2024/diff").await.problem(400);
    app.get(&format!("/v1/agreements/ua-jp-2024/diff?from={}", to + 5))
        .await
        .problem(400);
    app.get(&format!("/v1/agreements/ua-xx-1999/diff?from={from}"))
        .await
        .problem(404);
}

async fn stats_diff_says_which_totals_moved(app: TestApp) {
    let from = revision_of(&app.get("/v1/stats/pledges").await);
    created(
        app.patch(
            "/v1/pledges/ua-jp-2024-p1",
            &json!({"amount": "4500000000.25"}),
        )
        .await,
    );
    let diff = app
        .get_ok(&format!(
            "/v1/stats/pledges/diff?from={from}&group_by=partner"
        ))
        .await;
    assert_eq!(
        diff["items"],
        json!([{"partner": "JP", "currency": "USD", "from": "4500000000.00", "to": "4500000000.25",
                "change": "0.25", "count_from": 1, "count_to": 1}]),
        "{diff}"
    );
    let text = app
        .get(&format!(
            "/v1/stats/pledges/diff?from={from}&group_by=partner&format=text"
        ))
        .await;
    assert!(
        text.text
            .contains("partner=\"JP\": USD: 4500000000.00 -> 4500000000.25 (+0.25)"),
        "{}",
        text.text
    );
    // The stats' own checks apply.
    app.get(&format!(
        "/v1/stats/pledges/diff?from={from}&group_by=colour"
    ))
    .await
    .problem(400);
}

/// A whole-store read at a past revision first copies the store as it stood
/// (the replay). A request that gives up before the copy is done (its
/// timeout, here shorter than any copy) leaves it to finish: a later read
/// answers from it. A copy dropped with each request would start again on
/// every one and, on a store whose copy outlasts the timeout, never answer.
async fn a_replay_outlives_the_request_that_started_it(backend: Backend) {
    let options = HttpOptions {
        request_timeout: Duration::from_millis(20),
        ..HttpOptions::default()
    };
    let Some(app) = TestApp::with_options(backend, options).await else {
        return;
    };
    let app = app.seeded().await;
    // From the store: a live read may itself pass 20 ms.
    let latest = app.store.revision().await.expect("the revision");
    let past = format!(
        "/v1/stats/agreements?group_by=status&revision={}",
        latest - 1
    );
    let first = app.get(&past).await;
    assert_eq!(
        first.status.as_u16(),
        408,
        "the copy takes longer than 20 ms: {}",
        first.text
    );
    // Reads from the finished copy take a few milliseconds; under load one
    // may still pass 20 ms, so a few tries are allowed.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let reply = app.get(&past).await;
        if reply.status.as_u16() == 200 {
            assert_eq!(revision_of(&reply), latest - 1);
            let items = reply.json()["items"].clone();
            assert!(
                items
                    .as_array()
                    .is_some_and(|items| items.iter().all(|i| i["count"].is_i64())),
                "{}",
                reply.text
            );
            break;
        }
        assert_eq!(reply.status.as_u16(), 408, "{}", reply.text);
        assert!(
            std::time::Instant::now() < deadline,
            "the past read never answered: the copy was dropped with the request"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_replay_outlives_the_request_that_started_it() {
    a_replay_outlives_the_request_that_started_it(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_replay_outlives_the_request_that_started_it() {
    a_replay_outlives_the_request_that_started_it(Backend::Postgres).await;
}
