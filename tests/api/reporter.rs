//! A reporter's questions at 11 pm: typos answered with choices, names in
//! any language, search that finds what a person would look for, and
//! answers a spreadsheet or a terminal takes as they are.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;

crate::on_both_backends!(
    a_mistyped_partner_in_a_body_offers_the_closest_matches,
    a_mistyped_partner_filter_offers_clickable_choices,
    endonyms_and_ukrainian_names_find_the_partner,
    search_covers_area_names_partner_names_and_signatories,
    search_follows_a_renamed_partner,
    the_change_feed_starts_at_a_time,
    history_reads_as_field_level_changes,
    partners_with_agreements_only,
    spreadsheets_get_a_file_name_a_bom_and_numbers,
    the_text_table_never_reads_two_pledges_as_one
);

fn codes(matches: &Value) -> Vec<String> {
    matches
        .as_array()
        .expect("closest_matches is a list")
        .iter()
        .map(|m| m["code"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_mistyped_partner_in_a_body_offers_the_closest_matches(app: TestApp) {
    let reply = app
        .post(
            "/v1/agreements",
            &json!({"partner": "Germny", "title": "A test", "kind": "bilateral_security", "status": "signed"}),
        )
        .await;
    let problem = reply.problem(422);
    assert_eq!(problem["type"], "urn:accords:problem:validation");
    assert_eq!(codes(&problem["closest_matches"]), ["DE"], "{problem}");
    let field = &problem["errors"][0];
    assert_eq!(field["field"], "partner");
    assert_eq!(codes(&field["closest_matches"]), ["DE"]);
    assert_eq!(field["closest_matches"][0]["name"], "Germany");
    assert_eq!(field["closest_matches"][0]["name_uk"], "Німеччина");
    // Nothing was written.
    let count = app.get_ok("/v1/agreements?partner=DE&count=true").await;
    assert_eq!(count["total"], 1);
    // A valid body with the right partner still works, and a body without
    // a partner problem carries no suggestions.
    let reply = app
        .post(
            "/v1/agreements",
            &json!({"partner": "Germany", "title": ""}),
        )
        .await;
    let problem = reply.problem(422);
    assert!(problem.get("closest_matches").is_none(), "{problem}");
}

async fn a_mistyped_partner_filter_offers_clickable_choices(app: TestApp) {
    let problem = app.get("/v1/agreements?partner=Japn").await.problem(400);
    assert_eq!(problem["type"], "urn:accords:problem:invalid-query");
    assert_eq!(codes(&problem["closest_matches"]), ["JP"], "{problem}");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("did you mean JP (Japan)?"), "{message}");
    // The path form answers 404 with the same choices.
    let problem = app.get("/v1/partners/Japn").await.problem(404);
    assert_eq!(codes(&problem["closest_matches"]), ["JP"]);
}

async fn endonyms_and_ukrainian_names_find_the_partner(app: TestApp) {
    for reference in ["Deutschland", "deutschland", "Німеччина", "DEU", "germany"] {
        let partner = app
            .get_ok(&format!("/v1/partners/{}", urlencode(reference)))
            .await;
        assert_eq!(partner["code"], "DE", "{reference}");
    }
    for (reference, code) in [
        ("Polska", "PL"),
        ("Suomi", "FI"),
        ("Nihon", "JP"),
        ("Sverige", "SE"),
    ] {
        let partner = app.get_ok(&format!("/v1/partners/{reference}")).await;
        assert_eq!(partner["code"], code, "{reference}");
    }
    // A near miss of an endonym suggests its partner.
    let problem = app.get("/v1/partners/Deutchland").await.problem(404);
    assert_eq!(codes(&problem["closest_matches"]), ["DE"]);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn search_covers_area_names_partner_names_and_signatories(app: TestApp) {
    // Every agreement in the demining area is found by the area's name.
    let in_area = ids(&app
        .all_items("/v1/areas/demining/agreements?fields=id")
        .await);
    assert!(in_area.len() >= 10, "{in_area:?}");
    let found = ids(&app.all_items("/v1/agreements?q=demining&fields=id").await);
    assert!(
        in_area.is_subset(&found),
        "missing: {:?}",
        in_area.difference(&found)
    );
    // By the partner's name, in English and in Ukrainian.
    for q in ["japan", "%D0%AF%D0%BF%D0%BE%D0%BD%D1%96%D1%8F"] {
        let found = ids(&app
            .all_items(&format!("/v1/agreements?q={q}&fields=id"))
            .await);
        assert!(found.contains("ua-jp-2024"), "{q}: {found:?}");
    }
    // By a signatory.
    let found = ids(&app.all_items("/v1/agreements?q=kishida&fields=id").await);
    assert_eq!(found, BTreeSet::from(["ua-jp-2024".to_owned()]));
}

async fn search_follows_a_renamed_partner(app: TestApp) {
    let before = app.get_ok("/v1/partners/JP").await;
    let reply = app
        .send_with(
            "PATCH",
            "/v1/partners/JP",
            &[("authorization", &format!("Bearer {}", app.admin_key))],
            Some("application/merge-patch+json"),
            &json!({"name": "Nippon Koku"}).to_string(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_ne!(before["version"], reply.json()["version"]);
    let found = ids(&app.all_items("/v1/agreements?q=koku&fields=id").await);
    assert_eq!(found, BTreeSet::from(["ua-jp-2024".to_owned()]));
}

async fn the_change_feed_starts_at_a_time(app: TestApp) {
    let before = app.get_ok("/v1/changes?limit=1000").await;
    let last_seed_change = before["next_since"].as_i64().unwrap();
    assert!(last_seed_change > 0);
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let from = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let reply = app
        .patch(
            "/v1/pledges/ua-jp-2024-p1",
            &json!({"note": "checked again"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    let feed = app.get_ok(&format!("/v1/changes?since={from}")).await;
    let items = feed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{feed}");
    assert_eq!(items[0]["entity"], "pledge");
    assert_eq!(items[0]["id"], "ua-jp-2024-p1");
    assert_eq!(items[0]["seq"], last_seed_change + 1);
    // A date is its first instant: every change of the seed is on or after it.
    let day = &from[..10];
    let feed = app
        .get_ok(&format!("/v1/changes?since={day}&limit=1000"))
        .await;
    assert_eq!(
        feed["items"].as_array().unwrap().len() as i64,
        last_seed_change + 1
    );
    // A time after the last change: nothing yet, and the position to poll from.
    let later = app.get_ok("/v1/changes?since=2199-01-01T00:00:00Z").await;
    assert_eq!(later["items"], json!([]));
    assert_eq!(later["next_since"], last_seed_change + 1);
    // Neither a number nor a time: named.
    for bad in ["yesterday", "-3", "2026-13-01"] {
        let problem = app
            .get(&format!("/v1/changes?since={bad}"))
            .await
            .problem(400);
        assert_eq!(problem["errors"][0]["field"], "since", "{bad}: {problem}");
    }
}

async fn history_reads_as_field_level_changes(app: TestApp) {
    let reply = app
        .patch(
            "/v1/pledges/ua-jp-2024-p1",
            &json!({"amount": "4600000000"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = app
        .get("/v1/agreements/ua-jp-2024/history?format=text&limit=1")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let mut lines = reply.text.lines();
    let heading = lines.next().unwrap();
    assert!(
        heading.contains(" editor update pledge ua-jp-2024-p1 (version 2)"),
        "{heading}"
    );
    assert_eq!(
        lines.next(),
        Some("    amount: 4500000000 → 4600000000"),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("more: add &cursor="), "{}", reply.text);
    // The same through Accept, and on the store-wide history.
    let reply = app
        .send_with(
            "GET",
            "/v1/history?limit=1",
            &[("accept", "text/plain")],
            None,
            "",
        )
        .await;
    assert!(
        reply.text.contains("amount: 4500000000 → 4600000000"),
        "{}",
        reply.text
    );
    let problem = app.get("/v1/history?format=xml").await.problem(400);
    assert_eq!(problem["errors"][0]["field"], "format");
}

async fn partners_with_agreements_only(app: TestApp) {
    let all = app.all_items("/v1/partners?limit=500").await;
    assert!(all.len() > 200);
    let expected: BTreeSet<String> = all
        .iter()
        .filter(|p| p["agreement_count"].as_i64().unwrap() > 0)
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .collect();
    let named: BTreeSet<String> = app
        .all_items("/v1/agreements?fields=partner&limit=500")
        .await
        .iter()
        .map(|a| a["partner"]["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(expected, named);
    // Paged small, to walk the cursor through the filter.
    let with = app
        .all_items("/v1/partners?has_agreements=true&limit=7")
        .await;
    let codes: BTreeSet<String> = with
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, expected);
    assert_eq!(with.len(), expected.len());
    // A table to read.
    let reply = app
        .get("/v1/partners?has_agreements=true&format=text&limit=500")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let mut lines = reply.text.lines();
    assert!(lines.next().unwrap().starts_with("CODE  NAME"));
    assert_eq!(lines.count(), expected.len());
    let japan = reply.text.lines().find(|l| l.starts_with("JP ")).unwrap();
    assert!(
        japan.contains("Japan") && japan.contains("Японія") && japan.contains("2024-06-13"),
        "{japan}"
    );
    let problem = app
        .get("/v1/partners?has_agreements=yes")
        .await
        .problem(400);
    assert_eq!(problem["errors"][0]["field"], "has_agreements");
}

async fn spreadsheets_get_a_file_name_a_bom_and_numbers(app: TestApp) {
    let reply = app.get("/v1/agreements?partner=JP,IS&format=csv").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"accords-agreements.csv\"")
    );
    assert!(reply.text.starts_with("id,"), "no BOM unless asked");
    let rows: Vec<&str> = reply.text.lines().collect();
    let header: Vec<&str> = rows[0].split(',').collect();
    let at = |name: &str| header.iter().position(|c| *c == name).unwrap();
    assert_eq!(at("pledged_amount"), at("pledge_totals") + 1);
    // Japan pledged in one currency: a number a spreadsheet sums, beside the text.
    let japan = rows.iter().find(|r| r.starts_with("ua-jp-2024,")).unwrap();
    assert!(japan.contains(",USD 4500000000,4500000000,USD,"), "{japan}");
    // Iceland in two: no number that would add krónur to euros.
    let iceland = rows.iter().find(|r| r.starts_with("ua-is-2024,")).unwrap();
    assert!(
        iceland.contains(",EUR 2000000; ISK 20000000000,,,"),
        "{iceland}"
    );

    let reply = app
        .get("/v1/agreements?partner=JP&format=csv&rows=pledges&bom=true")
        .await;
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"accords-pledges.csv\"")
    );
    assert!(
        reply.text.starts_with("\u{FEFF}agreement_id,"),
        "{}",
        &reply.text[..40]
    );
    let reply = app.get("/v1/stats/pledges?format=csv&bom=true").await;
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"accords-pledge-totals.csv\"")
    );
    assert!(reply.text.starts_with("\u{FEFF}partner,"));
    for uri in [
        "/v1/agreements?bom=true",
        "/v1/stats/pledges?bom=true&format=text",
    ] {
        let problem = app.get(uri).await.problem(400);
        assert_eq!(problem["errors"][0]["field"], "bom", "{uri}");
    }
}

async fn the_text_table_never_reads_two_pledges_as_one(app: TestApp) {
    let reply = app.get("/v1/agreements?partner=IS,JP&format=text").await;
    assert_eq!(reply.status, StatusCode::OK);
    let lines: Vec<&str> = reply.text.lines().collect();
    for column in ["ID", "PARTNER", "SIGNED", "STATUS", "TITLE", "PLEDGES"] {
        assert!(lines[0].contains(column), "{}", lines[0]);
    }
    let iceland = lines.iter().find(|l| l.starts_with("ua-is-2024 ")).unwrap();
    assert!(iceland.contains(" signed "), "{iceland}");
    assert!(
        iceland
            .ends_with("EUR 2,000,000 (1 pledge, 2024); ISK 20,000,000,000 (1 pledge, 2024–2028)"),
        "{iceland}"
    );
    let japan = lines.iter().find(|l| l.starts_with("ua-jp-2024 ")).unwrap();
    assert!(
        japan.ends_with("USD 4,500,000,000 (1 pledge, 2024)"),
        "{japan}"
    );
    // An agreement still being negotiated has no stated amount.
    let reply = app
        .get("/v1/agreements?status=negotiating&format=text")
        .await;
    assert!(reply.text.contains("no stated amount"), "{}", reply.text);
}
