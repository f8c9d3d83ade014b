//! Safe writes: keys, preconditions, idempotent retries, and the history.

use std::sync::Arc;

use accords::auth::Scope;
use accords::http::HttpOptions;
use serde_json::{Value, json};

use crate::common::{TestApp, create_key};

crate::on_both_backends!(
    writes_need_a_valid_key,
    bulk_import_needs_admin,
    stale_if_match_changes_nothing,
    racing_editors_on_one_version_one_wins,
    idempotent_retries_create_once,
    history_tells_who_changed_what_and_restores,
    limits_answer_413_429_and_cors,
);

fn nz() -> Value {
    json!({"partner": "NZ", "title": "NZ agreement", "kind": "bilateral_security", "status": "signed", "signed_on": "2025-03-01"})
}

async fn writes_need_a_valid_key(app: TestApp) {
    let body = nz().to_string();
    let count = |app: &TestApp| {
        let store = app.store.clone();
        async move { store.export().await.unwrap().agreements.len() }
    };
    let before = count(&app).await;
    let anonymous = app
        .send_with(
            "POST",
            "/v1/agreements",
            &[("Authorization", "")],
            Some("application/json"),
            &body,
        )
        .await;
    anonymous.problem(401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Bearer realm=\"accords\"")
    );
    let forged = format!("Bearer acc_{}_{}", "0".repeat(12), "0".repeat(64));
    for authorization in ["Bearer nonsense", "Basic dXNlcjpwYXNz", forged.as_str()] {
        let reply = app
            .send_with(
                "POST",
                "/v1/agreements",
                &[("Authorization", authorization)],
                Some("application/json"),
                &body,
            )
            .await;
        reply.problem(401);
    }
    // A key in the query string is never looked at.
    let in_query = app
        .send_with(
            "DELETE",
            &format!("/v1/agreements/ua-jp-2024?access_token={}", app.write_key),
            &[("Authorization", "")],
            None,
            "",
        )
        .await;
    assert!(
        in_query.status == 401 || in_query.status == 400,
        "{}",
        in_query.text
    );
    // Revoked and expired keys stop working.
    let revoked = create_key(app.store.as_ref(), "leaver", Scope::Write, None).await;
    assert!(app.store.revoke_api_key("leaver").await.unwrap());
    let expired = create_key(
        app.store.as_ref(),
        "temp",
        Scope::Write,
        Some(chrono::Utc::now() - chrono::TimeDelta::minutes(1)),
    )
    .await;
    for key in [revoked, expired] {
        let reply = app
            .send_with(
                "POST",
                "/v1/agreements",
                &[("Authorization", &format!("Bearer {key}"))],
                Some("application/json"),
                &body,
            )
            .await;
        reply.problem(401);
    }
    assert_eq!(
        count(&app).await,
        before,
        "no refused write changed anything"
    );
    // Reads are public; a valid key works.
    let read = app
        .send_with(
            "GET",
            "/v1/agreements/ua-jp-2024",
            &[("Authorization", "")],
            None,
            "",
        )
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(app.post("/v1/agreements", &nz()).await.status, 201);
}

async fn bulk_import_needs_admin(app: TestApp) {
    let dataset = json!({"areas": [{"code": "space", "name": "Space"}]}).to_string();
    let as_writer = app
        .send("POST", "/v1/import", Some("application/json"), &dataset)
        .await;
    as_writer.problem(403);
    app.get("/v1/areas/space").await.problem(404);
    let admin = format!("Bearer {}", app.admin_key);
    let reply = app
        .send_with(
            "POST",
            "/v1/import",
            &[("Authorization", &admin)],
            Some("application/json"),
            &dataset,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["created"], 1);
    assert_eq!(app.get_ok("/v1/areas/space").await["name"], "Space");
    // All or nothing over HTTP too.
    let bad = json!({"areas": [{"code": "sea", "name": "Sea"}],
                     "agreements": [{"id": "ua-jp-2024", "partner": "JP", "title": "x", "kind": "other", "status": "signed", "areas": ["nope"]}]})
    .to_string();
    let reply = app
        .send_with(
            "POST",
            "/v1/import",
            &[("Authorization", &admin)],
            Some("application/json"),
            &bad,
        )
        .await;
    assert_eq!(reply.error_fields(), ["agreements[0].areas[0].code"]);
    app.get("/v1/areas/sea").await.problem(404);
}

async fn stale_if_match_changes_nothing(app: TestApp) {
    let reply = app.get("/v1/agreements/ua-gb-2024").await;
    let etag = reply.header("etag").unwrap().to_owned();
    let edit = json!({"summary": "first edit"}).to_string();
    let ok = app
        .send_with(
            "PATCH",
            "/v1/agreements/ua-gb-2024",
            &[("If-Match", &etag)],
            Some("application/json"),
            &edit,
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let new_etag = ok.header("etag").unwrap().to_owned();
    assert_ne!(new_etag, etag);
    for (method, body) in [
        ("PATCH", json!({"summary": "stale"})),
        ("PUT", reply.json()),
        ("DELETE", Value::Null),
    ] {
        let stale = app
            .send_with(
                method,
                "/v1/agreements/ua-gb-2024",
                &[("If-Match", &etag)],
                Some("application/json"),
                &body.to_string(),
            )
            .await;
        let problem = stale.problem(412);
        assert_eq!(problem["current_version"], ok.json()["version"]);
    }
    let after = app.get_ok("/v1/agreements/ua-gb-2024").await;
    assert_eq!(after["summary"], "first edit");
    // A weak tag never matches; * matches any version.
    let weak = format!("W/{new_etag}");
    let reply = app
        .send_with(
            "PATCH",
            "/v1/agreements/ua-gb-2024",
            &[("If-Match", &weak)],
            Some("application/json"),
            &edit,
        )
        .await;
    reply.problem(412);
    let reply = app
        .send_with(
            "DELETE",
            "/v1/pledges/ua-gb-2024-p1",
            &[("If-Match", "\"999\"")],
            None,
            "",
        )
        .await;
    reply.problem(412);
    let reply = app
        .send_with(
            "DELETE",
            "/v1/pledges/ua-gb-2024-p1",
            &[("If-Match", "*")],
            None,
            "",
        )
        .await;
    assert_eq!(reply.status, 204);

    // With ACCORDS_REQUIRE_IF_MATCH a change without If-Match is a 428.
    let strict = TestApp::with_options(
        app.database.backend,
        HttpOptions {
            require_if_match: true,
            ..HttpOptions::default()
        },
    )
    .await
    .unwrap()
    .seeded()
    .await;
    strict
        .patch("/v1/agreements/ua-gb-2024", &json!({"summary": "x"}))
        .await
        .problem(428);
    assert_eq!(
        strict.post("/v1/agreements", &nz()).await.status,
        201,
        "creating needs no If-Match"
    );
}

async fn racing_editors_on_one_version_one_wins(app: TestApp) {
    let etag = app
        .get("/v1/agreements/ua-fr-2024")
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let app = Arc::new(app);
    let mut editors = Vec::new();
    for n in 0..8 {
        let (app, etag) = (app.clone(), etag.clone());
        editors.push(tokio::spawn(async move {
            let body = json!({"summary": format!("editor {n}")}).to_string();
            let method = if n % 2 == 0 { "PATCH" } else { "PUT" };
            let body = if method == "PUT" {
                let mut full = app.get_ok("/v1/agreements/ua-fr-2024").await;
                full["summary"] = json!(format!("editor {n}"));
                full.to_string()
            } else {
                body
            };
            app.send_with(
                method,
                "/v1/agreements/ua-fr-2024",
                &[("If-Match", &etag)],
                Some("application/json"),
                &body,
            )
            .await
            .status
            .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for editor in editors {
        statuses.push(editor.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 412),
        "{statuses:?}"
    );
    let after = app.get_ok("/v1/agreements/ua-fr-2024").await;
    assert_eq!(
        after["version"],
        etag.trim_matches('"').parse::<i64>().unwrap() + 1
    );
}

async fn idempotent_retries_create_once(app: TestApp) {
    let body = nz().to_string();
    let headers = [("Idempotency-Key", "nz-1")];
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
    let retry = app
        .send_with(
            "POST",
            "/v1/agreements",
            &headers,
            Some("application/json"),
            &body,
        )
        .await;
    assert_eq!(retry.status, 201);
    assert_eq!(retry.json()["id"], first.json()["id"]);
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    let other = app
        .send_with(
            "POST",
            "/v1/agreements",
            &headers,
            Some("application/json"),
            &json!({"partner": "NZ"}).to_string(),
        )
        .await;
    assert_eq!(other.error_fields(), ["Idempotency-Key"]);
    let nz_items = app.get_ok("/v1/partners/NZ/agreements").await;
    assert_eq!(
        nz_items["items"].as_array().unwrap().len(),
        1,
        "one agreement for two requests"
    );

    // A burst of new POSTs, each sent twice at once with its own key.
    let app = Arc::new(app);
    let mut requests = Vec::new();
    for n in 0..6 {
        for _ in 0..2 {
            let app = app.clone();
            requests.push(tokio::spawn(async move {
                let key = format!("burst-{n}");
                let body =
                    json!({"code": format!("burst-{n}"), "name": format!("Burst {n}")}).to_string();
                app.send_with(
                    "POST",
                    "/v1/areas",
                    &[("Idempotency-Key", &key)],
                    Some("application/json"),
                    &body,
                )
                .await
                .status
                .as_u16()
            }));
        }
    }
    for request in requests {
        let status = request.await.unwrap();
        assert!(
            status == 201 || status == 409,
            "a duplicate is replayed or told to wait: {status}"
        );
    }
    let areas = app.all_items("/v1/areas?limit=500").await;
    for n in 0..6 {
        let code = format!("burst-{n}");
        assert_eq!(
            areas.iter().filter(|a| a["code"] == code.as_str()).count(),
            1,
            "{code}"
        );
    }
}

async fn history_tells_who_changed_what_and_restores(app: TestApp) {
    let created = app.post("/v1/agreements", &nz()).await;
    assert_eq!(created.status, 201);
    assert_eq!(
        app.post(
            "/v1/agreements/ua-nz-2025/pledges",
            &json!({"amount": "5", "currency": "NZD", "kind": "military"})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        app.patch("/v1/agreements/ua-nz-2025", &json!({"signed_at": "Kyiv"}))
            .await
            .status,
        200
    );
    assert_eq!(app.delete("/v1/agreements/ua-nz-2025").await.status, 204);
    let history = app.get_ok("/v1/agreements/ua-nz-2025/history").await;
    let ops: Vec<(&str, &str)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["entity"].as_str().unwrap(), e["op"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ops,
        [
            ("agreement", "delete"),
            ("agreement", "update"),
            ("pledge", "create"),
            ("agreement", "create")
        ],
        "newest first, children included"
    );
    let update = &history["items"][1];
    assert_eq!(update["key"], "editor");
    assert_eq!(update["before"]["signed_at"], Value::Null);
    assert_eq!(update["after"]["signed_at"], "Kyiv");
    assert_eq!(update["version"], 3);
    assert!(update["at"].as_str().unwrap().ends_with('Z'));

    let restored = app
        .send("POST", "/v1/agreements/ua-nz-2025/restore", None, "")
        .await;
    assert_eq!(restored.status, 201, "{}", restored.text);
    let agreement = restored.json();
    assert_eq!(agreement["signed_at"], "Kyiv");
    assert_eq!(agreement["pledges"][0]["amount"], "5");
    assert_eq!(agreement["version"], 4, "versions go on after a restore");
    app.send("POST", "/v1/agreements/ua-nz-2025/restore", None, "")
        .await
        .problem(409);
    app.send("POST", "/v1/agreements/ua-zz-2000/restore", None, "")
        .await
        .problem(404);
    let latest = app
        .get_ok("/v1/agreements/ua-nz-2025/history?limit=1")
        .await;
    assert_eq!(latest["items"][0]["op"], "restore");
    assert!(latest["next_cursor"].is_string());
    // A filter that matches none of a known agreement's entries is an empty
    // page; an agreement that never was is a 404.
    let sources = app
        .get_ok("/v1/agreements/ua-nz-2025/history?entity=source")
        .await;
    assert_eq!(sources["items"], json!([]));
    app.get("/v1/agreements/ua-zz-2000/history?entity=source")
        .await
        .problem(404);

    // The global history filters by key and entity, and pages.
    let by_editor = app.all_items("/v1/history?key=editor&limit=2").await;
    assert_eq!(
        by_editor.len(),
        5,
        "create, pledge, update, delete, restore by the editor"
    );
    assert!(by_editor.iter().all(|e| e["key"] == "editor"));
    let seqs: Vec<i64> = by_editor
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {seqs:?}"
    );
    let pledges = app.all_items("/v1/history?entity=pledge&key=editor").await;
    assert_eq!(pledges.len(), 1);
    let seeded = app
        .get_ok("/v1/history?key=seed&entity=partner&limit=5")
        .await;
    assert_eq!(
        seeded["items"].as_array().unwrap().len(),
        5,
        "the seed is in the history too"
    );
    let future = app.get_ok("/v1/history?since=2999-01-01").await;
    assert_eq!(future["items"], json!([]));
    app.get("/v1/history?entity=treaty").await.problem(400);
    app.get("/v1/history?since=yesterday").await.problem(400);
}

async fn limits_answer_413_429_and_cors(app: TestApp) {
    // 413: a body over the limit is refused before it is read whole.
    let huge = json!({"partner": "NZ", "title": "x", "kind": "other", "status": "signed", "summary": "a".repeat(1_100_000)});
    let reply = app.post("/v1/agreements", &huge).await;
    reply.problem(413);
    assert!(
        app.get_ok("/v1/partners/NZ/agreements").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Security headers on every answer, errors included.
    for reply in [
        app.get("/v1/agreements/ua-jp-2024").await,
        app.get("/v1/nope").await,
    ] {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert!(reply.header("content-security-policy").is_some());
    }

    // 429: two writes a second, then a refusal that says when to return.
    let limited = TestApp::with_options(
        app.database.backend,
        HttpOptions {
            rate_limits: accords::http::limits::RateLimits {
                read_per_second: 3,
                write_per_second: 2,
                trusted_proxies: Vec::new(),
            },
            cors_origins: "https://desk.example.org".into(),
            ..HttpOptions::default()
        },
    )
    .await
    .unwrap()
    .seeded()
    .await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        let reply = limited
            .post(
                "/v1/areas",
                &json!({"code": format!("rate-{n}"), "name": "Rate"}),
            )
            .await;
        statuses.push(reply.status.as_u16());
        if reply.status == 429 {
            let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
            assert!(retry_after >= 1);
            assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
            reply.problem(429);
        } else {
            assert!(reply.header("ratelimit-limit").is_some());
        }
    }
    assert_eq!(statuses, [201, 201, 429]);
    limited.get("/v1/areas/rate-2").await.problem(404);
    let reads: Vec<u16> = {
        let mut reads = Vec::new();
        for _ in 0..4 {
            reads.push(limited.get("/v1/areas/rate-0").await.status.as_u16());
        }
        reads
    };
    // Reads have their own budget of 3: the 404 check above spent one.
    assert_eq!(reads, [200, 200, 429, 429]);

    // CORS for a listed origin, none for others.
    let preflight = limited
        .send_with(
            "OPTIONS",
            "/v1/agreements",
            &[
                ("Origin", "https://desk.example.org"),
                ("Access-Control-Request-Method", "PATCH"),
                (
                    "Access-Control-Request-Headers",
                    "authorization,if-match,content-type",
                ),
                ("Authorization", ""),
            ],
            None,
            "",
        )
        .await;
    assert!(preflight.status.is_success(), "{}", preflight.status);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://desk.example.org")
    );
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap()
            .contains("PATCH")
    );
    assert!(
        preflight
            .header("access-control-allow-credentials")
            .is_none()
    );
    let stranger = limited
        .send_with(
            "GET",
            "/healthz",
            &[("Origin", "https://evil.example"), ("Authorization", "")],
            None,
            "",
        )
        .await;
    assert!(stranger.header("access-control-allow-origin").is_none());
}
