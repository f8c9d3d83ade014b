//! Pledge accounting on both backends: per-year pledges count once per year,
//! parts are never counted with their wholes (across agreements and
//! currencies), contested and unverified facts carry markers, amounts respect
//! their currency's minor unit, and a source is one record per URL.

use serde_json::{Value, json};

use crate::common::TestApp;

crate::on_both_backends!(
    per_year_pledges_count_once_per_year,
    parts_are_never_counted_with_their_wholes,
    markers_sit_next_to_the_values_they_qualify,
    amounts_respect_the_currency_minor_unit,
    sources_are_one_record_per_url,
    stats_come_as_chart_ready_csv_and_readable_text,
);

fn agreement(id: &str, partner: &str, pledges: Value) -> Value {
    json!({
        "id": id, "partner": partner, "title": format!("Accounting test {id}"),
        "kind": "bilateral_security", "status": "signed", "signed_on": "2025-03-01", "areas": ["demining"],
        "pledges": pledges,
        "sources": [{"id": format!("{id}-s1"), "url": format!("https://example.org/{id}"), "title": "Announcement",
                     "pledges": pledges.as_array().unwrap().iter().map(|p| p["id"].clone()).collect::<Vec<_>>()}]
    })
}

/// The stats items of `query`, keyed by partner and currency.
async fn totals(app: &TestApp, query: &str) -> Vec<(String, String, String, Option<i64>)> {
    let reply = app.get_ok(&format!("/v1/stats/pledges?{query}")).await;
    reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["partner"].as_str().unwrap_or_default().to_owned(),
                i["currency"].as_str().unwrap().to_owned(),
                i["total"].as_str().unwrap().to_owned(),
                i["years"].as_i64(),
            )
        })
        .collect()
}

async fn per_year_pledges_count_once_per_year(app: TestApp) {
    let body = agreement(
        "ua-nz-2025",
        "NZ",
        json!([
            {"id": "ua-nz-2025-p1", "amount": "100.50", "currency": "NZD", "year_from": 2025, "year_to": 2027,
             "basis": "per_year", "kind": "military"},
            {"id": "ua-nz-2025-p2", "amount": "40", "currency": "NZD", "year_from": 2025, "year_to": 2025, "kind": "humanitarian"}
        ]),
    );
    let created = app.post("/v1/agreements", &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["pledges"][0]["basis"], "per_year");
    assert_eq!(
        created.json()["pledges"][1]["basis"],
        "total",
        "the default"
    );
    // 100.50 × 3 years + 40.
    assert_eq!(
        totals(&app, "group_by=partner&partner=NZ").await,
        [("NZ".into(), "NZD".into(), "341.50".into(), Some(3))]
    );
    // Grouped by kind, each total says whether it counted per-year pledges.
    let by_kind = app
        .get_ok("/v1/stats/pledges?group_by=kind&partner=NZ")
        .await;
    let items = by_kind["items"].as_array().unwrap();
    let military = items.iter().find(|i| i["kind"] == "military").unwrap();
    assert_eq!(
        (military["total"].as_str(), military["years"].as_i64()),
        (Some("301.50"), Some(3))
    );
    let humanitarian = items.iter().find(|i| i["kind"] == "humanitarian").unwrap();
    assert_eq!(humanitarian["total"], "40");
    assert!(humanitarian.get("years").is_none());
    // The same through the filtered path (an area filter bypasses the rollup).
    assert_eq!(
        totals(&app, "group_by=partner&partner=NZ&signed_from=2025-01-01").await,
        [("NZ".into(), "NZD".into(), "341.50".into(), Some(3))]
    );
    // A list's pledge totals count the same way.
    let csv = app
        .get("/v1/agreements?partner=NZ&format=csv&fields=id")
        .await
        .text;
    assert!(csv.contains("NZD 341.50"), "{csv}");
    // Per year without its years is refused.
    let reply = app
        .patch(
            "/v1/pledges/ua-nz-2025-p2",
            &json!({"basis": "per_year", "year_to": null}),
        )
        .await;
    assert_eq!(reply.error_fields(), ["basis"]);
    let reply = app
        .patch("/v1/pledges/ua-nz-2025-p2", &json!({"basis": "yearly"}))
        .await;
    assert_eq!(reply.error_fields(), ["basis"]);
    // Iceland's bundled pledge: at least ISK 4bn a year for five years.
    assert_eq!(
        totals(&app, "group_by=partner&partner=IS&currency=ISK").await,
        [("IS".into(), "ISK".into(), "20000000000".into(), Some(5))]
    );
}

async fn parts_are_never_counted_with_their_wholes(app: TestApp) {
    let whole = agreement(
        "ua-nz-2025",
        "NZ",
        json!([{"id": "ua-nz-2025-p1", "amount": "1000", "currency": "NZD", "year_from": 2025, "year_to": 2027, "kind": "mixed"},
               {"id": "ua-nz-2025-p2", "amount": "200", "currency": "NZD", "year_from": 2025, "year_to": 2025,
                "kind": "military", "part_of": "ua-nz-2025-p1"}]),
    );
    assert_eq!(app.post("/v1/agreements", &whole).await.status, 201);
    // A part in another agreement, partner and currency, of the part above.
    let other = agreement(
        "ua-au-2025",
        "AU",
        json!([{"id": "ua-au-2025-p1", "amount": "50", "currency": "USD", "year_from": 2025, "kind": "military",
                "part_of": "ua-nz-2025-p2"},
               {"id": "ua-au-2025-p2", "amount": "7", "currency": "AUD", "year_from": 2025, "kind": "military"}]),
    );
    let reply = app.post("/v1/agreements", &other).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    // Only the whole counts: NZD 1000; the USD part appears nowhere.
    let all = totals(&app, "group_by=partner").await;
    assert!(
        all.contains(&("NZ".into(), "NZD".into(), "1000".into(), None)),
        "{all:?}"
    );
    assert!(
        all.contains(&("AU".into(), "AUD".into(), "7".into(), None)),
        "{all:?}"
    );
    assert!(
        !all.iter().any(|(p, c, _, _)| p == "AU" && c == "USD"),
        "{all:?}"
    );
    for query in [
        "group_by=year&partner=NZ",
        "group_by=kind&partner=NZ",
        "group_by=area&partner=NZ,AU",
    ] {
        let reply = app.get_ok(&format!("/v1/stats/pledges?{query}")).await;
        let nzd: Vec<&str> = reply["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["currency"] == "NZD")
            .map(|i| i["total"].as_str().unwrap())
            .collect();
        assert_eq!(nzd, ["1000"], "{query}: {reply}");
    }
    // The relation both ways.
    let p1 = app.get_ok("/v1/pledges/ua-nz-2025-p1").await;
    assert_eq!(p1["parts"], json!(["ua-nz-2025-p2"]));
    let p2 = app.get_ok("/v1/pledges/ua-nz-2025-p2").await;
    assert_eq!(
        (p2["part_of"].as_str(), &p2["parts"]),
        (Some("ua-nz-2025-p1"), &json!(["ua-au-2025-p1"]))
    );
    let agreement = app.get_ok("/v1/agreements/ua-nz-2025").await;
    assert_eq!(agreement["pledges"][1]["parts"], json!(["ua-au-2025-p1"]));
    // No circles, no links to nothing; nothing changes.
    let before = app.store.export().await.unwrap();
    let reply = app
        .patch(
            "/v1/pledges/ua-nz-2025-p1",
            &json!({"part_of": "ua-au-2025-p1"}),
        )
        .await;
    assert_eq!(reply.error_fields(), ["part_of"]);
    let reply = app
        .patch(
            "/v1/pledges/ua-nz-2025-p1",
            &json!({"part_of": "ua-zz-2025-p9"}),
        )
        .await;
    assert_eq!(reply.error_fields(), ["part_of"]);
    assert_eq!(app.store.export().await.unwrap(), before);
    // Unlinking the part counts it again.
    let reply = app
        .patch("/v1/pledges/ua-nz-2025-p2", &json!({"part_of": null}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let all = totals(&app, "group_by=partner&partner=NZ").await;
    assert_eq!(all, [("NZ".into(), "NZD".into(), "1200".into(), None)]);
    // Denmark's bundled €1.8bn for 2024 is inside its €8.5bn fund.
    let dk = totals(&app, "group_by=partner&partner=DK&currency=EUR").await;
    assert_eq!(dk, [("DK".into(), "EUR".into(), "8500000000".into(), None)]);
}

async fn markers_sit_next_to_the_values_they_qualify(app: TestApp) {
    let mut body = agreement(
        "ua-nz-2025",
        "NZ",
        json!([{"id": "ua-nz-2025-p1", "amount": "1000", "currency": "NZD", "year_from": 2025, "kind": "mixed",
                "markers": {"amount": {"status": "contested", "note": "one outlet reads 100",
                                       "sources_for": ["ua-nz-2025-s1"], "sources_against": ["ua-nz-2025-s2"]}}}]),
    );
    body["sources"].as_array_mut().unwrap().push(
        json!({"id": "ua-nz-2025-s2", "url": "https://example.org/other", "title": "Other outlet"}),
    );
    body["markers"] = json!({"title": {"status": "unverified", "note": "an English rendering, not the official title"}});
    body["signed_place"] =
        json!({"city": "Wellington", "country": "nz", "venue": null, "event": null});
    let reply = app.post("/v1/agreements", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let stored = app.get_ok("/v1/agreements/ua-nz-2025").await;
    assert_eq!(stored["markers"]["title"]["status"], "unverified");
    assert_eq!(stored["markers"]["title"]["sources_for"], json!([]));
    assert_eq!(
        stored["pledges"][0]["markers"]["amount"]["sources_against"],
        json!(["ua-nz-2025-s2"])
    );
    assert_eq!(
        stored["signed_place"],
        json!({"city": "Wellington", "country": "NZ", "venue": null, "event": null})
    );
    let report = app.get_ok("/v1/checks").await;
    let findings = report["findings"].as_array().unwrap();
    for (check, id) in [
        ("contested_fact", "ua-nz-2025-p1"),
        ("unverified_fact", "ua-nz-2025"),
    ] {
        assert!(
            findings
                .iter()
                .any(|f| f["check"] == check && f["id"] == id),
            "{check} {id}"
        );
    }
    // The US agreement's legal force is contested in the bundled data, with
    // sources on both sides.
    let us = app.get_ok("/v1/agreements/ua-us-2024").await;
    let marker = &us["markers"]["legally_binding"];
    assert_eq!(marker["status"], "contested");
    assert!(!marker["sources_for"].as_array().unwrap().is_empty());
    assert!(!marker["sources_against"].as_array().unwrap().is_empty());
    // A marker must name a field, a status, a note and the agreement's sources.
    let before = app.store.export().await.unwrap();
    for (markers, field) in [
        (
            json!({"colour": {"status": "contested", "note": "x"}}),
            "markers.colour",
        ),
        (
            json!({"title": {"status": "doubtful", "note": "x"}}),
            "markers.title.status",
        ),
        (
            json!({"title": {"status": "contested"}}),
            "markers.title.note",
        ),
        (
            json!({"title": {"status": "contested", "note": "x", "sources_for": ["ua-nz-2025-s9"]}}),
            "markers.title.sources_for[0]",
        ),
    ] {
        let mut edited = stored.clone();
        edited["markers"] = markers;
        let reply = app.put("/v1/agreements/ua-nz-2025", &edited).await;
        assert_eq!(reply.error_fields(), [field]);
    }
    let reply = app
        .patch(
            "/v1/agreements/ua-nz-2025",
            &json!({"signed_place": {"country": "New Zealand"}}),
        )
        .await;
    assert_eq!(reply.error_fields(), ["signed_place.country"]);
    assert_eq!(app.store.export().await.unwrap(), before);
}

async fn amounts_respect_the_currency_minor_unit(app: TestApp) {
    let before = app.store.export().await.unwrap();
    for (amount, currency) in [("1.50", "JPY"), ("4000000000.5", "ISK"), ("10.01", "KRW")] {
        let body = agreement(
            "ua-nz-2025",
            "NZ",
            json!([{"id": "ua-nz-2025-p1", "amount": amount, "currency": currency, "kind": "mixed"}]),
        );
        assert_eq!(
            app.post("/v1/agreements", &body).await.error_fields(),
            ["pledges[0].amount"],
            "{amount} {currency}"
        );
    }
    assert_eq!(app.store.export().await.unwrap(), before);
    let body = agreement(
        "ua-nz-2025",
        "NZ",
        json!([{"id": "ua-nz-2025-p1", "amount": "150", "currency": "JPY", "kind": "mixed"},
               {"id": "ua-nz-2025-p2", "amount": "1.50", "currency": "NZD", "kind": "mixed"}]),
    );
    assert_eq!(app.post("/v1/agreements", &body).await.status, 201);
}

async fn sources_are_one_record_per_url(app: TestApp) {
    // One URL, one record, linked to every fact it supports.
    let mut body = agreement(
        "ua-nz-2025",
        "NZ",
        json!([{"id": "ua-nz-2025-p1", "amount": "10", "currency": "NZD", "kind": "mixed"},
               {"id": "ua-nz-2025-p2", "amount": "20", "currency": "NZD", "kind": "mixed"}]),
    );
    body["sources"][0]["fields"] = json!(["signed_on", "legally_binding"]);
    let reply = app.post("/v1/agreements", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let stored = reply.json();
    assert_eq!(stored["sources"].as_array().unwrap().len(), 1);
    for pledge in stored["pledges"].as_array().unwrap() {
        assert_eq!(pledge["sources"][0]["id"], "ua-nz-2025-s1");
    }
    // A correction of its title shows on every fact at once.
    let reply = app
        .patch(
            "/v1/sources/ua-nz-2025-s1",
            &json!({"title": "Corrected title"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let stored = app.get_ok("/v1/agreements/ua-nz-2025").await;
    for pledge in stored["pledges"].as_array().unwrap() {
        assert_eq!(pledge["sources"][0]["title"], "Corrected title");
    }
    // The same URL twice in one body is refused, naming the second.
    body["id"] = json!("ua-nz-2026");
    body["pledges"] = json!([]);
    body["sources"] = json!([
        {"url": "https://example.org/same", "title": "A"},
        {"url": "https://example.org/same", "title": "A again"}
    ]);
    assert_eq!(
        app.post("/v1/agreements", &body).await.error_fields(),
        ["sources[1].url"]
    );
    // The ids of sources merged into one by URL still lead to it.
    app.database
        .execute("INSERT INTO source_aliases (alias, source_id) VALUES ('ua-nz-2025-s7', 'ua-nz-2025-s1')")
        .await;
    let merged = app.get_ok("/v1/sources/ua-nz-2025-s7").await;
    assert_eq!(merged["id"], "ua-nz-2025-s1");
    app.get("/v1/sources/ua-nz-2025-s8").await.problem(404);
}

async fn stats_come_as_chart_ready_csv_and_readable_text(app: TestApp) {
    // Grouped by partner unless told otherwise.
    let default = app.get_ok("/v1/stats/pledges").await;
    let explicit = app.get_ok("/v1/stats/pledges?group_by=partner").await;
    assert_eq!(default, explicit);
    assert!(default["items"][0]["partner"].is_string());
    let counts = app.get_ok("/v1/stats/agreements").await;
    assert!(counts["items"][0]["partner"].is_string());
    app.get("/v1/stats/pledges?group_by=").await.problem(400);
    app.get("/v1/stats/pledges?format=ndjson")
        .await
        .problem(400);

    // One row per group, one column per currency; a group without pledges
    // in a currency has an empty cell, never a 0 that reads like a figure.
    let reply = app.get("/v1/stats/pledges?format=csv&partner=IS,JP").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = reply.text.lines().collect();
    assert_eq!(
        lines,
        [
            "partner,EUR,ISK,USD",
            "IS,2000000,20000000000,",
            "JP,,,4500000000"
        ]
    );

    // A table a reporter reads: grouped digits, the years counted said.
    let reply = app.get("/v1/stats/pledges?format=text&partner=IS").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(reply.text.contains("20,000,000,000"), "{}", reply.text);
    assert!(reply.text.contains("(5 years counted)"), "{}", reply.text);
}
