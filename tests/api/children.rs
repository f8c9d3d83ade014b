//! Pledges and sources, on their own and under their agreement.

use serde_json::json;

use crate::common::TestApp;

crate::on_both_backends!(pledges_crud, sources_crud);

async fn pledges_crud(app: TestApp) {
    let before = app.get_ok("/v1/agreements/ua-jp-2024").await;
    let listed = app.get_ok("/v1/agreements/ua-jp-2024/pledges").await;
    assert_eq!(listed["items"], before["pledges"]);
    assert_eq!(listed["next_cursor"], serde_json::Value::Null);

    let body = json!({"amount": "37000000", "currency": "JPY", "year_from": 2025, "year_to": 2026,
                      "kind": "humanitarian", "measure": "commitment", "in_agreement_text": false,
                      "description": "Winter support"});
    let reply = app.post("/v1/agreements/ua-jp-2024/pledges", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.header("location"), Some("/v1/pledges/ua-jp-2024-p2"));
    let pledge = reply.json();
    assert_eq!(pledge["id"], "ua-jp-2024-p2");
    assert_eq!(pledge["agreement_id"], "ua-jp-2024");
    assert_eq!(pledge["amount"], "37000000");
    assert_eq!(pledge["sources"], json!([]));
    let agreement = app.get_ok("/v1/agreements/ua-jp-2024").await;
    assert_eq!(
        agreement["version"],
        before["version"].as_i64().unwrap() + 1,
        "a new pledge changes its agreement"
    );
    assert_eq!(agreement["pledges"][1], pledge);

    let mut edited = app.get_ok("/v1/pledges/ua-jp-2024-p2").await;
    edited["amount"] = json!("38000000");
    let reply = app.put("/v1/pledges/ua-jp-2024-p2", &edited).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["amount"], "38000000");
    assert_eq!(reply.json()["version"], 2);
    assert_eq!(reply.header("etag"), Some("\"2\""));

    let reply = app
        .patch(
            "/v1/pledges/ua-jp-2024-p2",
            &json!({"amount": "1000000.5", "note": "revised"}),
        )
        .await;
    // The yen has no minor unit (ISO 4217): a fraction of one is refused.
    assert_eq!(reply.error_fields(), ["amount"]);
    let reply = app
        .patch(
            "/v1/pledges/ua-jp-2024-p2",
            &json!({"amount": "1000000.5", "currency": "EUR", "note": "revised"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let patched = reply.json();
    assert_eq!(patched["amount"], "1000000.50");
    assert_eq!(patched["note"], "revised");
    assert_eq!(patched["description"], "Winter support");

    let moved = app
        .patch(
            "/v1/pledges/ua-jp-2024-p2",
            &json!({"agreement_id": "ua-gb-2024"}),
        )
        .await;
    assert_eq!(moved.error_fields(), ["agreement_id"]);

    assert_eq!(app.delete("/v1/pledges/ua-jp-2024-p2").await.status, 204);
    app.get("/v1/pledges/ua-jp-2024-p2").await.problem(404);
    app.delete("/v1/pledges/ua-jp-2024-p2").await.problem(404);
    app.post("/v1/agreements/ua-zz-2099/pledges", &body)
        .await
        .problem(404);
    assert_eq!(
        app.get_ok("/v1/agreements/ua-jp-2024").await["pledges"],
        before["pledges"]
    );
}

async fn sources_crud(app: TestApp) {
    let body = json!({"url": "https://example.org/report", "title": "A report", "publisher": "Example",
                      "published_on": "2024-06-14", "pledge_id": "ua-jp-2024-p1"});
    let reply = app.post("/v1/agreements/ua-jp-2024/sources", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let source = reply.json();
    let id = source["id"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.header("location"),
        Some(format!("/v1/sources/{id}").as_str())
    );
    // The older single `pledge_id` is read as the list `pledges`.
    assert_eq!(source["pledges"], json!(["ua-jp-2024-p1"]));
    let pledge = app.get_ok("/v1/pledges/ua-jp-2024-p1").await;
    assert!(
        pledge["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str())
    );
    let listed = app.get_ok("/v1/agreements/ua-jp-2024/sources").await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str())
    );

    // A source may only support pledges of its own agreement.
    let foreign = app
        .patch(
            &format!("/v1/sources/{id}"),
            &json!({"pledges": ["ua-gb-2024-p1"]}),
        )
        .await;
    assert_eq!(foreign.error_fields(), ["pledges[0]"]);
    let mut foreign_new = body.clone();
    foreign_new["pledge_id"] = json!("ua-gb-2024-p1");
    assert_eq!(
        app.post("/v1/agreements/ua-jp-2024/sources", &foreign_new)
            .await
            .error_fields(),
        ["pledges[0]"]
    );
    // Fields it supports are named from the agreement's own.
    let unknown_field = app
        .patch(&format!("/v1/sources/{id}"), &json!({"fields": ["colour"]}))
        .await;
    assert_eq!(unknown_field.error_fields(), ["fields[0]"]);

    let mut edited = source.clone();
    edited["title"] = json!("A better title");
    edited["pledges"] = json!([]);
    edited["fields"] = json!(["signed_on", "legally_binding"]);
    let reply = app.put(&format!("/v1/sources/{id}"), &edited).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["title"], "A better title");
    assert_eq!(reply.json()["pledges"], json!([]));
    assert_eq!(
        reply.json()["fields"],
        json!(["signed_on", "legally_binding"])
    );
    // The same URL twice on one agreement: listed once, linked to both facts.
    let twice = app
        .post(
            "/v1/agreements/ua-jp-2024/sources",
            &json!({"url": "https://example.org/report", "title": "Again"}),
        )
        .await;
    assert_eq!(twice.error_fields(), ["url"]);
    // Removing a member a source never has is naming an unknown one.
    let unknown = app
        .patch(&format!("/v1/sources/{id}"), &json!({"colour": null}))
        .await;
    assert_eq!(unknown.error_fields(), ["colour"]);
    let known = app
        .patch(&format!("/v1/sources/{id}"), &json!({"publisher": null}))
        .await;
    assert_eq!(known.status, 200, "{}", known.text);

    assert_eq!(app.delete(&format!("/v1/sources/{id}")).await.status, 204);
    app.get(&format!("/v1/sources/{id}")).await.problem(404);
}
