//! Speed never at the cost of truth: once a write is acknowledged, the next
//! read through the same instance shows it — a conditional GET with the old
//! ETag included, which must be a 200 with the new body, never a 304 — and a
//! read through another instance on the same store shows it within a second.
//! Each read a write touches is checked: the agreement, its partner's and one
//! of its areas' lists, a filtered list, a search, the stats and the change
//! feed — the promises any finer invalidation of kept answers must keep.

use std::time::{Duration, Instant};

use accords::http::HttpOptions;
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::common::{Backend, TestApp, TestDatabase, create_key};

crate::on_both_backends!(
    acknowledged_writes_are_read_at_once_and_across_instances,
    repeated_reads_are_answered_from_memory,
    writes_keep_the_answers_they_did_not_touch,
    the_store_announces_each_commit_and_nothing_else,
);

/// The reads a dashboard repeats, each with what a write below changes.
const SINGLE: &str = "/v1/agreements/ua-jp-2024";
const PARTNER_LIST: &str = "/v1/partners/japan/agreements?fields=id,signed_at";
const FILTERED: &str = "/v1/agreements?partner=JP,GB&area=demining&fields=id,signed_at";
const STATS: &str = "/v1/stats/pledges?group_by=partner";
/// One of the agreement's areas, and its partner's entries in the change feed.
const AREA_LIST: &str = "/v1/areas/accountability/agreements?fields=id,signed_at&limit=100";
const FEED: &str = "/v1/changes?partner=JP&since=0&limit=1000";

/// How long another instance may take to show an acknowledged write.
const ACROSS: Duration = Duration::from_secs(1);

struct Read {
    status: u16,
    etag: String,
    body: Value,
}

/// One GET through `router`, optionally conditional.
async fn read(router: &Router, uri: &str, if_none_match: Option<&str>) -> Read {
    let mut request = Request::builder().method("GET").uri(uri);
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    let response = tower::ServiceExt::oneshot(router.clone(), request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Read { status, etag, body }
}

fn signed_at_in_list(body: &Value, id: &str) -> Value {
    body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["id"] == id))
        .map_or(Value::Null, |a| a["signed_at"].clone())
}

fn total_of(body: &Value, partner: &str, currency: &str) -> Value {
    body["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|g| g["partner"] == partner && g["currency"] == currency)
        })
        .map_or(Value::Null, |g| g["total"].clone())
}

/// What every read should show after round `round`'s writes.
fn shows_round(uri: &str, body: &Value, place: &str, round: usize) -> bool {
    match uri {
        SINGLE => body["signed_at"] == place,
        PARTNER_LIST | FILTERED | AREA_LIST => signed_at_in_list(body, "ua-jp-2024") == place,
        // The bundled data only created; each round updates the agreement once.
        FEED => {
            let updates = body["items"].as_array().map_or(0, |items| {
                items
                    .iter()
                    .filter(|e| e["entity"] == "agreement" && e["op"] == "update")
                    .count()
            });
            updates == round
        }
        STATS => total_of(body, "JP", "CHF") == Value::String((1000 * round).to_string()),
        search => {
            let found = body["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|a| a["id"] == "ua-jp-2024"));
            // Only the latest round's word matches.
            found == search.ends_with(&format!("round{round}"))
        }
    }
}

/// Reads `uri` through `router` with the tag it had before the writes until
/// the answer shows them; fails if that takes longer than `within` from the
/// acknowledgement, or if the old tag is ever answered 304 once it should not.
async fn reflects(
    router: &Router,
    uri: &str,
    old_etag: &str,
    place: &str,
    round: usize,
    acknowledged: Instant,
    within: Duration,
) -> String {
    loop {
        let reply = read(router, uri, Some(old_etag)).await;
        if reply.status == 200 && shows_round(uri, &reply.body, place, round) {
            assert_ne!(reply.etag, old_etag, "{uri}: new content under the old tag");
            return reply.etag;
        }
        assert!(
            acknowledged.elapsed() < within,
            "{uri}: round {round} not shown {:?} after the write was acknowledged: {} {}",
            acknowledged.elapsed(),
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn acknowledged_writes_are_read_at_once_and_across_instances(app: TestApp) {
    // Instance B: its own store (own pool) and router on the same database.
    let other = accords::app(app.database.open().await, HttpOptions::default()).unwrap();
    let here = app.router.clone();
    for round in 1..=3 {
        let place = format!("Tokyo, round {round}");
        let word = format!("freshnessround{round}");
        let search = format!("/v1/agreements?q={word}");
        let mut uris = vec![
            SINGLE,
            PARTNER_LIST,
            FILTERED,
            AREA_LIST,
            STATS,
            FEED,
            search.as_str(),
        ];
        // The last round's word, which this round's edit takes away.
        let previous_search = format!("/v1/agreements?q=freshnessround{}", round - 1);
        if round > 1 {
            uris.push(&previous_search);
        }

        // Both instances have answered every read, and hold its tag.
        let mut tags = Vec::new();
        for router in [&here, &other] {
            for &uri in &uris {
                let reply = read(router, uri, None).await;
                assert_eq!(reply.status, 200, "{uri}: {}", reply.body);
                assert!(!reply.etag.is_empty(), "{uri} has no ETag");
                assert!(!shows_round(uri, &reply.body, &place, round), "{uri}");
                // And would revalidate it as unchanged.
                assert_eq!(read(router, uri, Some(&reply.etag)).await.status, 304);
                tags.push(reply.etag);
            }
        }

        // Two acknowledged writes through this instance: fields and search
        // text of the agreement, and a pledge that moves the stats.
        let patched = app
            .patch(
                SINGLE,
                &json!({"signed_at": place, "summary": format!("Edited in {word}.")}),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        let pledge = app
            .post(
                "/v1/agreements/ua-jp-2024/pledges",
                &json!({"amount": "1000", "currency": "CHF", "year_from": 2025,
                        "year_to": 2025, "kind": "military"}),
            )
            .await;
        assert_eq!(pledge.status, 201, "{}", pledge.text);
        let acknowledged = Instant::now();

        // The next read through the same instance: at once, no waiting.
        let (tags_here, tags_there) = tags.split_at(uris.len());
        for (uri, old) in uris.iter().zip(tags_here) {
            let reply = read(&here, uri, Some(old)).await;
            assert_eq!(
                reply.status, 200,
                "{uri}: the old tag {old} must not be answered 304 after a write"
            );
            assert!(
                shows_round(uri, &reply.body, &place, round),
                "{uri}: round {round} not shown: {}",
                reply.body
            );
            assert_ne!(&reply.etag, old, "{uri}");
            // The new tag revalidates.
            assert_eq!(read(&here, uri, Some(&reply.etag)).await.status, 304);
        }
        // Through the other instance: within a second.
        for (uri, old) in uris.iter().zip(tags_there) {
            let fresh = reflects(&other, uri, old, &place, round, acknowledged, ACROSS).await;
            assert_eq!(read(&other, uri, Some(&fresh)).await.status, 304);
        }
    }
}

/// The answers rendered at a revision are kept: while nothing changes, the
/// same read is answered again without the query — here, while the
/// agreements table is out of reach — and a write brings the queries back.
/// An instance with ACCORDS_RENDER_CACHE_BYTES=0 keeps nothing: every read
/// runs its query.
async fn repeated_reads_are_answered_from_memory(app: TestApp) {
    let here = app.router.clone();
    let uncached = accords::app(
        app.database.open().await,
        HttpOptions {
            render_cache_bytes: 0,
            ..HttpOptions::default()
        },
    )
    .unwrap();
    assert_eq!(read(&uncached, FILTERED, None).await.status, 200);
    let reads = [
        SINGLE,
        PARTNER_LIST,
        FILTERED,
        STATS,
        "/v1/agreements?q=cyber",
    ];
    let mut first = Vec::new();
    for uri in reads {
        let reply = read(&here, uri, None).await;
        assert_eq!(reply.status, 200, "{uri}: {}", reply.body);
        first.push(reply);
    }
    app.database
        .execute("ALTER TABLE agreements RENAME TO agreements_hidden")
        .await;
    for (uri, before) in reads.iter().zip(&first) {
        let again = read(&here, uri, None).await;
        assert_eq!(again.status, 200, "{uri} was not kept: {}", again.body);
        assert_eq!(again.body, before.body, "{uri}");
        assert_eq!(again.etag, before.etag, "{uri}");
    }
    let unkept = read(&uncached, FILTERED, None).await;
    assert_ne!(
        unkept.status, 200,
        "kept with the cache off: {}",
        unkept.body
    );
    // A different representation of the same list was never rendered.
    let other = read(&here, &format!("{FILTERED}&limit=1"), None).await;
    assert_ne!(other.status, 200, "rendered without its table?");
    app.database
        .execute("ALTER TABLE agreements_hidden RENAME TO agreements")
        .await;

    let edited = app
        .patch(SINGLE, &json!({"signed_at": "Kept nowhere"}))
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let fresh = read(&here, SINGLE, None).await;
    assert_eq!(fresh.body["signed_at"], "Kept nowhere");
}

/// A write retires the kept answers that read what it changed, and keeps the
/// rest — through this instance and, once it sees the new revision, through
/// another. The agreements table is hidden after each write: an answer
/// still served with its tag is one kept across the write; an answer retired
/// runs its query (and fails, or carries the new revision's tag). Kept ones
/// keep their tag, and revalidate as 304.
async fn writes_keep_the_answers_they_did_not_touch(app: TestApp) {
    let other = accords::app(app.database.open().await, HttpOptions::default()).unwrap();
    let here = app.router.clone();
    // France's agreement: in none of the Japan or Japan-and-Britain reads.
    let french = "ua-fr-2024";
    let french_single = format!("/v1/agreements/{french}");
    let french_sources = format!("/v1/agreements/{french}/sources");
    let by_update = "/v1/agreements?sort=-updated_at&fields=id&limit=5";
    let reads = [
        SINGLE,
        PARTNER_LIST,
        FILTERED,
        AREA_LIST,
        "/v1/agreements?q=cyber",
        "/v1/pledges/ua-jp-2024-p1",
        by_update,
        STATS,
        &french_single,
        &french_sources,
    ];
    // Retired: by its agreement, or by the updated_at order. (The pledge
    // stats read pledges and agreements' fields, not sources.)
    let touched = |uri: &str, body: &Value| uri == by_update || body.to_string().contains(french);
    let source = app.get_ok(&french_sources).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let edits = [
        // Shown only: the agreement's own reads and its place by update.
        (
            format!("/v1/sources/{source}"),
            json!({"publisher": "Kept elsewhere"}),
        ),
        // Its own fields: every page of agreements may pick it now.
        (
            french_single.clone(),
            json!({"summary": "Only France's reads change."}),
        ),
    ];
    for (round, (target, edit)) in edits.iter().enumerate() {
        let mut before = Vec::new();
        for router in [&here, &other] {
            for uri in reads {
                let reply = read(router, uri, None).await;
                assert_eq!(reply.status, 200, "{uri}: {}", reply.body);
                before.push(reply);
            }
        }
        let edited = app.patch(target, edit).await;
        assert_eq!(edited.status, 200, "{}", edited.text);
        // Another instance sees the new revision within its revision TTL.
        tokio::time::sleep(Duration::from_millis(250)).await;
        app.database
            .execute("ALTER TABLE agreements RENAME TO agreements_hidden")
            .await;
        for (router, before) in [&here, &other].into_iter().zip(before.chunks(reads.len())) {
            for (uri, before) in reads.iter().zip(before) {
                let pages_move = round == 1 && uri.contains('?');
                let again = read(router, uri, None).await;
                if touched(uri, &before.body) || pages_move {
                    // Rendered again: it could not be, or (a read that needs
                    // no agreements table) it carries the new revision's tag.
                    assert!(
                        again.status != 200 || again.etag != before.etag,
                        "round {round}: {uri} was kept across the write"
                    );
                } else {
                    assert_eq!(
                        again.status, 200,
                        "round {round}: {uri} was not kept: {}",
                        again.body
                    );
                    // The same content, named at the revision it is served at.
                    let mut body = again.body.clone();
                    if let Some(revision) = body.get_mut("revision") {
                        assert!(
                            revision.as_i64() > before.body["revision"].as_i64(),
                            "{uri}"
                        );
                        *revision = before.body["revision"].clone();
                    }
                    assert_eq!(body, before.body, "round {round}: {uri}");
                    assert_eq!(again.etag, before.etag, "round {round}: {uri}");
                    let revalidated = read(router, uri, Some(&before.etag)).await;
                    assert_eq!(revalidated.status, 304, "round {round}: {uri}");
                }
            }
        }
        app.database
            .execute("ALTER TABLE agreements_hidden RENAME TO agreements")
            .await;
    }
    // The retired reads show the writes.
    let shown = app.get_ok(&french_single).await;
    assert_eq!(shown["summary"], "Only France's reads change.");
    let sources = read(&other, &french_sources, None).await;
    assert_eq!(sources.body["items"][0]["publisher"], "Kept elsewhere");
}

/// A client that hangs up while its write is beginning leaves no
/// transaction behind on the pooled connection, on either backend. (sqlx
/// 0.8's `begin` is not cancel-safe: cancelled after BEGIN was sent, it
/// hands the connection back still inside the transaction, where the next
/// `begin` fails with "non-zero transaction depth" — on SQLite every later
/// write through that connection was a 500 after a load test's clients
/// hung up — and reads see the past.) One connection, so every request
/// reuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_cancelled_while_beginning_leave_no_transaction_behind() {
    use std::future::Future;
    use std::task::Poll;

    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(database) = TestDatabase::new(backend).await else {
            continue;
        };
        let store = accords::store::open(&accords::store::StoreOptions {
            max_connections: 1,
            ..database.options()
        })
        .await
        .unwrap();
        accords::seed::seed_if_empty(store.as_ref()).await.unwrap();
        let key = create_key(store.as_ref(), "editor", accords::auth::Scope::Write, None).await;
        let router = accords::app(store.clone(), HttpOptions::default()).unwrap();
        for round in 0..120u32 {
            // Poll a write a few times, a little apart, then hang up on it.
            let draft = accords::domain::area::AreaDraft {
                code: accords::domain::area::AreaCode::parse(&format!("hung-up-{round}")).unwrap(),
                name: "Hung up".into(),
                name_uk: None,
                description: None,
            };
            let mut writing = Box::pin(store.create_area("editor", &draft));
            for _ in 0..round % 6 {
                let ready =
                    std::future::poll_fn(|cx| Poll::Ready(writing.as_mut().poll(cx).is_ready()))
                        .await;
                if ready {
                    break;
                }
                std::thread::sleep(Duration::from_micros(u64::from(40 * (round / 6 % 10))));
            }
            drop(writing);

            // The next write through the same connection begins and commits.
            let code = format!("cancelled-{round}");
            let request = Request::builder()
                .method("POST")
                .uri("/v1/areas")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"code": code, "name": "Cancelled"}).to_string(),
                ))
                .unwrap();
            let response = tower::ServiceExt::oneshot(router.clone(), request)
                .await
                .unwrap();
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(
                status,
                201,
                "{backend:?}, round {round}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

/// Kept answers and webhook dispatchers learn of writes from the store: its
/// count of commits moves once per committed write, and not for reads or
/// refused writes.
async fn the_store_announces_each_commit_and_nothing_else(app: TestApp) {
    let commits = app.store.commits();
    let count = || *commits.borrow();
    let before = count();
    for uri in [SINGLE, PARTNER_LIST, STATS, FEED] {
        assert_eq!(app.get(uri).await.status, 200, "{uri}");
    }
    assert_eq!(count(), before, "reads announced a commit");

    // A body that does not parse, and a version that moved on: no commit.
    let reply = app.patch(SINGLE, &json!({"signed_on": "not a date"})).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    let reply = app
        .send_with(
            "PATCH",
            SINGLE,
            &[("If-Match", "\"999\"")],
            Some("application/merge-patch+json"),
            r#"{"summary":"x"}"#,
        )
        .await;
    assert_eq!(reply.status, 412, "{}", reply.text);
    assert_eq!(count(), before, "a refused write announced a commit");

    let reply = app
        .patch(
            SINGLE,
            &json!({"summary": "Ten years of security cooperation."}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(count(), before + 1, "one write, one commit");
    let shown = app.get_ok(SINGLE).await;
    assert_eq!(shown["summary"], "Ten years of security cooperation.");
}
