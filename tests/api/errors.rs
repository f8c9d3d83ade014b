//! Bad input: a clear 4xx problem document, and nothing changed.

use serde_json::{Value, json};

use crate::common::TestApp;

crate::on_both_backends!(
    invalid_bodies_are_422_and_change_nothing,
    protocol_errors_are_problems,
    nul_characters_are_refused_not_500
);

fn valid() -> Value {
    json!({
        "partner": "NZ", "title": "Valid", "kind": "bilateral_security", "status": "signed",
        "signed_on": "2025-03-01", "term_years": 10,
        "pledges": [{"amount": "100", "currency": "NZD", "kind": "military", "year_from": 2025, "year_to": 2026}],
        "areas": ["demining"]
    })
}

fn with(path: &[&str], value: Value) -> Value {
    let mut body = valid();
    let mut target = &mut body;
    for (i, key) in path.iter().enumerate() {
        if i + 1 == path.len() {
            target[*key] = value.clone();
        } else {
            target = match key.parse::<usize>() {
                Ok(index) => &mut target[index],
                Err(_) => &mut target[*key],
            };
        }
    }
    body
}

async fn invalid_bodies_are_422_and_change_nothing(app: TestApp) {
    let before = app.store.export().await.unwrap();
    let cases: Vec<(Value, &str)> = vec![
        (with(&["signed_on"], json!("2024-02-30")), "signed_on"),
        (with(&["signed_on"], json!("yesterday")), "signed_on"),
        (
            with(&["pledges", "0", "currency"], json!("XYZ")),
            "pledges[0].currency",
        ),
        (
            with(&["pledges", "0", "amount"], json!("-5")),
            "pledges[0].amount",
        ),
        (
            with(&["pledges", "0", "amount"], json!(-5)),
            "pledges[0].amount",
        ),
        (
            with(&["pledges", "0", "amount"], json!("1.234")),
            "pledges[0].amount",
        ),
        (
            with(&["pledges", "0", "amount"], json!(1.5)),
            "pledges[0].amount",
        ),
        (
            with(&["pledges", "0", "year_to"], json!(2024)),
            "pledges[0].year_to",
        ),
        (
            with(&["pledges", "0", "kind"], json!("weapons")),
            "pledges[0].kind",
        ),
        (with(&["partner"], json!("Atlantis")), "partner"),
        (
            with(&["areas"], json!(["underwater-basket-weaving"])),
            "areas[0].code",
        ),
        (with(&["title"], json!("x".repeat(501))), "title"),
        (with(&["title"], json!("   ")), "title"),
        (with(&["status"], json!("done")), "status"),
        (with(&["term_years"], json!(0)), "term_years"),
        (with(&["text_url"], json!("not a url")), "text_url"),
        (with(&["colour"], json!("blue")), "colour"),
        (with(&["term_years"], json!("ten")), "term_years"),
        (
            with(&["signatories"], json!([{"name": "X", "side": "both"}])),
            "signatories[0].side",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post("/v1/agreements", &body).await;
        let fields = reply.error_fields();
        assert!(
            fields.iter().any(|f| f == field),
            "expected an error on {field:?}, got {fields:?} for {body}"
        );
    }
    // Everything missing is reported at once.
    let reply = app.post("/v1/agreements", &json!({})).await;
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(fields, ["kind", "partner", "status", "title"]);
    // A rejected PUT changes nothing either.
    let reply = app
        .put(
            "/v1/agreements/ua-jp-2024",
            &with(&["pledges", "0", "currency"], json!("XYZ")),
        )
        .await;
    assert_eq!(reply.error_fields(), ["pledges[0].currency"]);
    assert_eq!(
        app.store.export().await.unwrap(),
        before,
        "no rejected write changed the store"
    );
}

async fn protocol_errors_are_problems(app: TestApp) {
    let malformed = app
        .send(
            "POST",
            "/v1/agreements",
            Some("application/json"),
            "{\"title\": ",
        )
        .await;
    malformed.problem(400);
    let wrong_type = app
        .send(
            "POST",
            "/v1/agreements",
            Some("text/plain"),
            &valid().to_string(),
        )
        .await;
    wrong_type.problem(415);
    let no_type = app
        .send("POST", "/v1/agreements", None, &valid().to_string())
        .await;
    no_type.problem(415);
    let array = app
        .send("POST", "/v1/agreements", Some("application/json"), "[1, 2]")
        .await;
    array.problem(422);
    app.get("/v1/nothing-here").await.problem(404);
    app.get("/v1/agreements/not%20an%20id").await.problem(404);
    let wrong_method = app
        .send("PATCH", "/v1/agreements", Some("application/json"), "{}")
        .await;
    wrong_method.problem(405);
    assert!(wrong_method.header("allow").unwrap().contains("POST"));
    let typo = app.get("/v1/agreements?limt=5").await.problem(400);
    assert!(typo["detail"].as_str().unwrap().contains("limt"));
    app.get("/v1/agreements?limit=0").await.problem(400);
    app.get("/v1/agreements?limit=501").await.problem(400);
    app.get("/v1/agreements?cursor=forged").await.problem(400);
}

/// PostgreSQL cannot hold a NUL character in text: input carrying one is
/// refused before it reaches the store, never answered with a 5xx. (Found by
/// the contract tests.)
async fn nul_characters_are_refused_not_500(app: TestApp) {
    for uri in [
        "/v1/agreements?partner=J%00P",
        "/v1/partners/J%00P",
        "/v1/history?key=a%00b",
        "/v1/stats/pledges?group_by=partner&q=a%00",
    ] {
        let reply = app.get(uri).await;
        assert_eq!(reply.problem(400)["status"], 400, "{uri}");
    }
    let mut body = valid();
    body["partner"] = json!("J\u{0}P");
    let refused = app.post("/v1/agreements", &body).await;
    assert_eq!(refused.problem(422)["errors"][0]["field"], "partner");
    body["partner"] = json!({"code": "J\u{0}P"});
    let refused = app.post("/v1/agreements", &body).await;
    assert_eq!(refused.problem(422)["errors"][0]["field"], "partner");
    let source = app
        .post(
            "/v1/agreements/ua-jp-2024/sources",
            &json!({"url": "https://example.org/a\u{0}b", "title": "NUL"}),
        )
        .await;
    assert_eq!(source.problem(422)["errors"][0]["field"], "url");
}
