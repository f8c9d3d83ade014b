//! Agreements: lookup, listing, and every way of writing one.

use serde_json::{Value, json};

use crate::common::TestApp;

crate::on_both_backends!(
    japan_answers_in_one_lookup,
    lists_walk_every_agreement_once,
    post_generates_ids_and_derives_expiry,
    get_edit_put_round_trips,
    patch_merges_and_leaves_the_rest,
    delete_removes_the_agreement_and_its_children,
    concurrent_patches_lose_no_edit,
    one_agreement_reads_as_text_a_reporter_can_cite,
);

async fn japan_answers_in_one_lookup(app: TestApp) {
    let reply = app.get("/v1/agreements/ua-jp-2024").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let japan = reply.json();
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{}\"", japan["version"]).as_str())
    );
    assert_eq!(japan["partner"]["code"], "JP");
    assert_eq!(japan["partner"]["name_uk"], "Японія");
    assert_eq!(japan["signed_on"], "2024-06-13");
    assert_eq!(japan["term_years"], 10);
    assert_eq!(
        japan["expires_on"], "2034-06-13",
        "derived from signed_on + term_years"
    );
    let pledge = &japan["pledges"][0];
    assert_eq!(
        pledge["amount"], "4500000000",
        "amounts are exact decimal strings"
    );
    assert_eq!(pledge["currency"], "USD");
    // Contested: most reports say dollars, one says yen; both sides named.
    assert_eq!(pledge["markers"]["amount"]["status"], "contested");
    assert!(
        !pledge["markers"]["amount"]["sources_against"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        !pledge["sources"].as_array().unwrap().is_empty(),
        "every published figure carries its source"
    );
    assert!(
        pledge["sources"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    let areas: Vec<&str> = japan["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert!(
        areas.contains(&"demining") && areas.contains(&"sanctions"),
        "{areas:?}"
    );
    assert!(japan["sources"].as_array().unwrap().len() >= 3);
    // Case does not matter in an id.
    assert_eq!(
        app.get_ok("/v1/agreements/UA-JP-2024").await["id"],
        "ua-jp-2024"
    );
}

async fn lists_walk_every_agreement_once(app: TestApp) {
    let first = app.get_ok("/v1/agreements?limit=7").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 7);
    assert!(first["next_cursor"].is_string());
    let items = app.all_items("/v1/agreements?limit=7").await;
    let ids: Vec<&str> = items.iter().map(|a| a["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "no agreement twice, in id order");
    let exported = app.store.export().await.unwrap();
    assert_eq!(ids.len(), exported.agreements.len());
    assert!(
        ids.len() >= 29,
        "the 27 states and the EU, and later agreements"
    );
    // The default page holds all of them (50) and says there is no more.
    let everything = app.get_ok("/v1/agreements").await;
    assert_eq!(everything["items"].as_array().unwrap().len(), ids.len());
    assert_eq!(everything["next_cursor"], Value::Null);
}

fn new_zealand(title: &str) -> Value {
    json!({
        "partner": "New Zealand",
        "title": title,
        "kind": "bilateral_security",
        "status": "signed",
        "signed_on": "2025-03-01",
        "term_years": 10,
        "areas": ["demining", {"code": "training", "detail": "infantry training in the UK"}],
        "pledges": [{"amount": "1000000.5", "currency": "nzd", "year_from": 2025, "year_to": 2025, "kind": "military"}],
        "sources": [{"url": "https://example.org/nz", "title": "Announcement"}]
    })
}

async fn post_generates_ids_and_derives_expiry(app: TestApp) {
    let reply = app
        .post(
            "/v1/agreements",
            &new_zealand("NZ-Ukraine security agreement"),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.header("location"), Some("/v1/agreements/ua-nz-2025"));
    let created = reply.json();
    assert_eq!(created["id"], "ua-nz-2025");
    assert_eq!(
        created["partner"]["code"], "NZ",
        "a partner name resolves to its code"
    );
    assert_eq!(created["version"], 1);
    assert_eq!(created["expires_on"], "2035-03-01");
    assert_eq!(created["pledges"][0]["id"], "ua-nz-2025-p1");
    assert_eq!(created["pledges"][0]["amount"], "1000000.50");
    assert_eq!(created["pledges"][0]["currency"], "NZD");
    assert_eq!(created["sources"][0]["id"], "ua-nz-2025-s1");
    assert_eq!(created["areas"][1]["detail"], "infantry training in the UK");
    // What the POST answered is what is stored.
    let stored = app.get_ok("/v1/agreements/ua-nz-2025").await;
    assert_eq!(stored, created);

    let second = app
        .post("/v1/agreements", &new_zealand("A second one"))
        .await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.json()["id"], "ua-nz-2025-2");

    let mut explicit = new_zealand("Explicit id");
    explicit["id"] = json!("ua-nz-2025");
    let taken = app.post("/v1/agreements", &explicit).await;
    taken.problem(409);
    assert_eq!(
        app.get_ok("/v1/agreements/ua-nz-2025").await["title"],
        "NZ-Ukraine security agreement"
    );
}

async fn get_edit_put_round_trips(app: TestApp) {
    let mut japan = app.get_ok("/v1/agreements/ua-jp-2024").await;
    let version = japan["version"].as_i64().unwrap();
    japan["title"] = json!("Accord (edited)");
    japan["term_years"] = json!(5);
    japan["pledges"][0]["amount"] = json!("4500000000.25");
    let reply = app.put("/v1/agreements/ua-jp-2024", &japan).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let saved = reply.json();
    assert_eq!(saved["version"], version + 1);
    assert_eq!(saved["title"], "Accord (edited)");
    assert_eq!(saved["pledges"][0]["amount"], "4500000000.25");
    assert_eq!(
        saved["pledges"][0]["id"], "ua-jp-2024-p1",
        "known pledge ids are kept"
    );
    assert_eq!(
        saved["expires_on"], "2029-06-13",
        "the derived end date sent back follows the new term"
    );
    assert_eq!(
        saved["sources"], japan["sources"],
        "sources sent back unchanged stay"
    );
    assert_eq!(app.get_ok("/v1/agreements/ua-jp-2024").await, saved);

    // A PUT without child lists leaves them as they are.
    let bare =
        json!({"partner": "JP", "title": "Bare", "kind": "bilateral_security", "status": "signed"});
    let reply = app.put("/v1/agreements/ua-jp-2024", &bare).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let bare_saved = reply.json();
    assert_eq!(bare_saved["pledges"].as_array().unwrap().len(), 1);
    assert_eq!(
        bare_saved["signed_on"],
        Value::Null,
        "scalars left out are cleared"
    );

    // PUT does not create, and cannot rename.
    app.put("/v1/agreements/ua-zz-2030", &bare)
        .await
        .problem(404);
    let mut renamed = bare.clone();
    renamed["id"] = json!("ua-jp-2099");
    assert_eq!(
        app.put("/v1/agreements/ua-jp-2024", &renamed)
            .await
            .error_fields(),
        ["id"]
    );
}

async fn patch_merges_and_leaves_the_rest(app: TestApp) {
    let before = app.get_ok("/v1/agreements/ua-gb-2024").await;
    let reply = app
        .patch(
            "/v1/agreements/ua-gb-2024",
            &json!({"summary": "Edited", "legally_binding": null, "signed_at": "London"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let after = reply.json();
    assert_eq!(after["summary"], "Edited");
    assert_eq!(after["signed_at"], "London");
    assert_eq!(after["legally_binding"], Value::Null);
    assert_eq!(after["version"], before["version"].as_i64().unwrap() + 1);
    for unchanged in [
        "title",
        "signed_on",
        "pledges",
        "areas",
        "signatories",
        "partner",
    ] {
        assert_eq!(
            after[unchanged], before[unchanged],
            "{unchanged} must not change"
        );
    }
    // application/json is accepted for PATCH too.
    let reply = app
        .send(
            "PATCH",
            "/v1/agreements/ua-gb-2024",
            Some("application/json"),
            r#"{"status":"in_force"}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["status"], "in_force");
    // An invalid patch changes nothing.
    let bad = app
        .patch(
            "/v1/agreements/ua-gb-2024",
            &json!({"signed_on": "2024-02-30"}),
        )
        .await;
    assert_eq!(bad.error_fields(), ["signed_on"]);
    assert_eq!(
        app.get_ok("/v1/agreements/ua-gb-2024").await["signed_on"],
        "2024-01-12"
    );
}

async fn delete_removes_the_agreement_and_its_children(app: TestApp) {
    let japan = app.get_ok("/v1/agreements/ua-jp-2024").await;
    let pledge_id = japan["pledges"][0]["id"].as_str().unwrap().to_owned();
    let source_id = japan["sources"][0]["id"].as_str().unwrap().to_owned();
    let reply = app.delete("/v1/agreements/ua-jp-2024").await;
    assert_eq!(reply.status, 204);
    assert!(reply.text.is_empty());
    app.get("/v1/agreements/ua-jp-2024").await.problem(404);
    app.get(&format!("/v1/pledges/{pledge_id}"))
        .await
        .problem(404);
    app.get(&format!("/v1/sources/{source_id}"))
        .await
        .problem(404);
    app.delete("/v1/agreements/ua-jp-2024").await.problem(404);
    let japan_list = app.get_ok("/v1/partners/JP/agreements").await;
    assert_eq!(japan_list["items"], json!([]));
}

async fn concurrent_patches_lose_no_edit(app: TestApp) {
    // Editors change different fields of one agreement at the same moment;
    // each PATCH is a read-modify-write, so without version checks the last
    // one would silently undo the others.
    let edits = [
        ("summary", json!("edited summary")),
        ("signed_at", json!("edited place")),
        ("text_url", json!("https://example.org/text")),
        ("title", json!("edited title")),
        ("legally_binding", json!(true)),
        ("status", json!("in_force")),
    ];
    let before = app.get_ok("/v1/agreements/ua-jp-2024").await;
    let app = std::sync::Arc::new(app);
    let mut editors = Vec::new();
    for (field, value) in edits.clone() {
        let app = app.clone();
        editors.push(tokio::spawn(async move {
            app.patch("/v1/agreements/ua-jp-2024", &json!({ field: value }))
                .await
        }));
    }
    for editor in editors {
        let reply = editor.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let after = app.get_ok("/v1/agreements/ua-jp-2024").await;
    for (field, value) in edits.iter() {
        assert_eq!(&after[*field], value, "the edit of {field} was lost");
    }
    assert_eq!(
        after["version"],
        before["version"].as_i64().unwrap() + edits.len() as i64
    );
}

async fn one_agreement_reads_as_text_a_reporter_can_cite(app: TestApp) {
    let reply = app.get("/v1/agreements/ua-jp-2024?format=text").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.header("etag"), Some("\"1t\""));
    let text = &reply.text;
    for expected in [
        "ua-jp-2024 · Japan (JP) · bilateral_security · signed",
        "Signed 2024-06-13 in Fasano, Italy (G7 summit), by Volodymyr Zelenskyy (President of Ukraine)",
        "Term: 10 years, to 2034-06-13",
        "1. USD 4.5 bn (4,500,000,000), 2024 · mixed [ua-jp-2024-p1]",
        "CONTESTED amount: ",
        "[1] ",
        "https://",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    // The same by Accept, a distinct tag per representation.
    let by_accept = app
        .send_with(
            "GET",
            "/v1/agreements/ua-jp-2024",
            &[("Accept", "text/plain")],
            None,
            "",
        )
        .await;
    assert_eq!(by_accept.text, reply.text);
    assert_eq!(
        by_accept.header("vary"),
        Some("Accept, accept-encoding, Accept-Language")
    );
    let json = app.get("/v1/agreements/ua-jp-2024").await;
    assert_eq!(json.header("etag"), Some("\"1\""));
    // Per year and parts read as such.
    let iceland = app.get("/v1/agreements/ua-is-2024?format=text").await.text;
    assert!(
        iceland.contains(
            "ISK 4 bn (4,000,000,000) a year, 2024–2028 (5 years: ISK 20,000,000,000 in all)"
        ),
        "{iceland}"
    );
    let us = app.get("/v1/agreements/ua-us-2024?format=text").await.text;
    assert!(us.contains("Legally binding: yes [contested]"), "{us}");
    let denmark = app.get("/v1/agreements/ua-dk-2024?format=text").await.text;
    assert!(
        denmark.contains("part of ua-dk-2024-p2: counted in that total, not again here"),
        "{denmark}"
    );
    // Indented JSON, the same data.
    let pretty = app.get("/v1/agreements/ua-jp-2024?pretty=true").await;
    assert_eq!(pretty.status, 200);
    assert!(
        pretty.text.contains("\n  \"id\": \"ua-jp-2024\""),
        "{}",
        pretty.text
    );
    assert_eq!(pretty.json(), json.json());
    app.get("/v1/agreements/ua-jp-2024?format=xml")
        .await
        .problem(400);
}
