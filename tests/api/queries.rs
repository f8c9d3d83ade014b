//! The query API, checked against answers computed by hand from the export.

use std::collections::{BTreeMap, BTreeSet};

use accords::domain::agreement::AgreementDraft;
use accords::domain::money::Amount;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use accords::http::HttpOptions;

use crate::common::{Backend, TestApp};

crate::on_both_backends!(
    every_filter_matches_the_hand_computed_set,
    search_is_ranked_and_accent_insensitive,
    equally_ranked_matches_page_in_id_order,
    a_search_index_out_of_step_is_rebuilt_when_the_store_opens,
    sorts_and_pages_return_everything_once,
    paging_is_stable_under_inserts,
    exports_stream_csv_ndjson_and_text,
    fields_select_every_member_of_an_agreement,
    stats_match_hand_computed_sums,
    partners_areas_and_timeline_carry_counts,
    bad_query_input_is_a_400_naming_the_parameter,
    include_none_lists_the_agreements_alone,
    every_read_takes_exactly_the_parameters_it_documents,
);

/// The parameters a read documents are the ones it accepts: each documented
/// one is taken (its value may still be wrong), any other is a 400 naming
/// it, with the parameter it may have meant.
async fn every_read_takes_exactly_the_parameters_it_documents(app: TestApp) {
    let spec = app.get("/openapi.json").await.json();
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let api = path.starts_with("/v1/") || path.starts_with("/embed/") || path == "/oembed";
        // The event stream never ends; webhooks need an admin key.
        let skipped =
            path.contains('{') || path == "/v1/events" || path.starts_with("/v1/webhooks");
        let Some(get) = item.get("get").filter(|_| api && !skipped) else {
            continue;
        };
        let documented: Vec<&str> = get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for name in &documented {
            let reply = app.get(&format!("{path}?{name}=x")).await;
            assert!(
                !reply.text.contains("is not a parameter here"),
                "{path}: {name} is documented but refused: {}",
                reply.text
            );
        }
        let problem = app.get(&format!("{path}?zzzz=1")).await.problem(400);
        assert_eq!(problem["errors"][0]["field"], "zzzz", "{path}");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} reads checked");
    let problem = app.get("/v1/agreements?stauts=signed").await.problem(400);
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("did you mean status?"), "{message}");
    let problem = app
        .get("/v1/timeline?year=2024&year=2025")
        .await
        .problem(400);
    assert_eq!(problem["errors"][0]["field"], "year");
    assert_eq!(problem["errors"][0]["message"], "may be given only once");
}

/// `include=none`, a value the spec lists, gives agreements without children
/// (it was refused with a 400; the query benchmark found it).
async fn include_none_lists_the_agreements_alone(app: TestApp) {
    let page = app.get_ok("/v1/agreements?include=none&limit=5").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    for item in items {
        for child in ["pledges", "areas", "sources"] {
            assert!(item.get(child).is_none(), "{child} in {item}");
        }
    }
}

async fn all_drafts(app: &TestApp) -> Vec<AgreementDraft> {
    app.store.export().await.unwrap().agreements
}

/// The ids a list answers, walking every page.
async fn ids(app: &TestApp, query: &str) -> BTreeSet<String> {
    let separator = if query.is_empty() { "" } else { "&" };
    app.all_items(&format!("/v1/agreements?limit=7{separator}{query}"))
        .await
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

fn expected(drafts: &[AgreementDraft], keep: impl Fn(&AgreementDraft) -> bool) -> BTreeSet<String> {
    drafts
        .iter()
        .filter(|d| keep(d))
        .map(|d| d.id.clone().unwrap())
        .collect()
}

fn has_area(draft: &AgreementDraft, code: &str) -> bool {
    draft
        .areas
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|a| a.code.as_str() == code)
}

fn pledges(draft: &AgreementDraft) -> &[accords::domain::pledge::PledgeDraft] {
    draft.pledges.as_deref().unwrap_or_default()
}

async fn every_filter_matches_the_hand_computed_set(app: TestApp) {
    let drafts = all_drafts(&app).await;
    let date = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
    let nordic = ["DK", "FI", "IS", "NO", "SE"];
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "partner=JP",
            expected(&drafts, |d| d.partner.as_str() == "JP"),
        ),
        (
            "partner=denmark,FI&partner=Iceland,norway,SWE",
            expected(&drafts, |d| nordic.contains(&d.partner.as_str())),
        ),
        (
            "area=demining",
            expected(&drafts, |d| has_area(d, "demining")),
        ),
        (
            "area=demining,cyber-security",
            expected(&drafts, |d| {
                has_area(d, "demining") || has_area(d, "cyber-security")
            }),
        ),
        (
            "area=demining&area=cyber-security",
            expected(&drafts, |d| {
                has_area(d, "demining") && has_area(d, "cyber-security")
            }),
        ),
        (
            "status=negotiating",
            expected(&drafts, |d| d.status.as_str_for_test() == "negotiating"),
        ),
        (
            "status=signed,in_force",
            expected(&drafts, |d| {
                ["signed", "in_force"].contains(&d.status.as_str_for_test())
            }),
        ),
        (
            "kind=partnership",
            expected(&drafts, |d| d.kind.as_str_for_test() == "partnership"),
        ),
        (
            "signed_from=2024-06-01&signed_to=2024-06-30",
            expected(&drafts, |d| {
                d.signed_on
                    .is_some_and(|s| s >= date("2024-06-01") && s <= date("2024-06-30"))
            }),
        ),
        (
            "year=2025",
            expected(&drafts, |d| {
                d.signed_on
                    .is_some_and(|s| s.format("%Y").to_string() == "2025")
            }),
        ),
        (
            "pledge_kind=military",
            expected(&drafts, |d| {
                pledges(d)
                    .iter()
                    .any(|p| p.kind.as_str_for_test() == "military")
            }),
        ),
        (
            "currency=eur",
            expected(&drafts, |d| {
                pledges(d).iter().any(|p| p.currency.as_str() == "EUR")
            }),
        ),
        (
            "currency=EUR&min_amount=1000000000&max_amount=5000000000",
            expected(&drafts, |d| {
                pledges(d).iter().any(|p| {
                    p.currency.as_str() == "EUR"
                        && p.amount >= Amount::parse("1000000000").unwrap()
                        && p.amount <= Amount::parse("5000000000").unwrap()
                })
            }),
        ),
        (
            "legally_binding=true",
            expected(&drafts, |d| d.legally_binding == Some(true)),
        ),
        (
            "legally_binding=false",
            expected(&drafts, |d| d.legally_binding == Some(false)),
        ),
        (
            "legally_binding=unknown",
            expected(&drafts, |d| d.legally_binding.is_none()),
        ),
        (
            "partner=DK,FI,IS,NO,SE&area=demining&year=2024",
            expected(&drafts, |d| {
                nordic.contains(&d.partner.as_str())
                    && has_area(d, "demining")
                    && d.signed_on
                        .is_some_and(|s| s.format("%Y").to_string() == "2024")
            }),
        ),
    ];
    for (query, want) in cases {
        assert_eq!(ids(&app, query).await, want, "{query}");
    }
    // A filter that matches nothing is an empty list, not an error.
    assert!(ids(&app, "partner=AQ").await.is_empty());
    let total = app
        .get_ok("/v1/agreements?area=demining&count=true&limit=1")
        .await;
    assert_eq!(
        total["total"].as_u64().unwrap() as usize,
        expected(&drafts, |d| has_area(d, "demining")).len()
    );
    // Nested listings take the same filters.
    let nested = app
        .all_items("/v1/areas/demining/agreements?partner=JP,GB&limit=1")
        .await;
    let nested: BTreeSet<String> = nested
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        nested,
        expected(&drafts, |d| has_area(d, "demining")
            && ["JP", "GB"].contains(&d.partner.as_str()))
    );
    let nested = app
        .get_ok("/v1/partners/japan/agreements?status=signed&include=pledges")
        .await;
    assert!(
        nested["items"][0].get("sources").is_none() && nested["items"][0]["pledges"].is_array()
    );
    app.get("/v1/partners/japan/agreements?partner=GB")
        .await
        .problem(400);
}

/// A small helper trait so the oracle can compare vocabulary values by name.
trait Named {
    fn as_str_for_test(&self) -> &'static str;
}

impl<T: accords::domain::Vocabulary> Named for T {
    fn as_str_for_test(&self) -> &'static str {
        self.as_str()
    }
}

async fn search_is_ranked_and_accent_insensitive(app: TestApp) {
    let demining = app.all_items("/v1/agreements?q=demining&limit=5").await;
    assert!(!demining.is_empty());
    for agreement in &demining {
        let text = agreement.to_string().to_lowercase();
        assert!(
            text.contains("demin") || text.contains("démin"),
            "{}",
            agreement["id"]
        );
    }
    // Accents and case do not matter; words are prefixes.
    let plain: Vec<Value> = app.get_ok("/v1/agreements?q=DEMIN&fields=id").await["items"]
        .as_array()
        .unwrap()
        .clone();
    let accented: Vec<Value> = app.get_ok("/v1/agreements?q=d%C3%A9min&fields=id").await["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(plain, accented);
    // The write path keeps the index in step: an edit is found at once, a removal gone.
    let reply = app
        .patch(
            "/v1/agreements/ua-is-2024",
            &json!({"summary": "Includes a zyxwvut programme."}),
        )
        .await;
    assert_eq!(reply.status, 200);
    let found = app.get_ok("/v1/agreements?q=zyxwvut").await;
    assert_eq!(found["items"][0]["id"], "ua-is-2024");
    let source = json!({"url": "https://example.org/q", "title": "Qwertyuiop report"});
    assert_eq!(
        app.post("/v1/agreements/ua-no-2024/sources", &source)
            .await
            .status,
        201
    );
    assert_eq!(
        app.get_ok("/v1/agreements?q=qwertyuiop&fields=id").await["items"],
        json!([{"id": "ua-no-2024"}])
    );
    assert_eq!(app.delete("/v1/agreements/ua-is-2024").await.status, 204);
    assert_eq!(
        app.get_ok("/v1/agreements?q=zyxwvut").await["items"],
        json!([])
    );
    // Ranked: an agreement that says "drone" in its title and summary outranks
    // one that mentions it once; checked as "the order is by rank", i.e. stable
    // and complete across pages.
    let ranked = app.all_items("/v1/agreements?q=drone&limit=2").await;
    let unpaged = app.get_ok("/v1/agreements?q=drone&limit=500").await;
    assert_eq!(ranked, unpaged["items"].as_array().unwrap().clone());
    // Query syntax from the client never reaches the engine.
    for hostile in ["%22", "cyber%22*%20OR", "a%26%7C!", "NEAR(a%20b)"] {
        let reply = app.get(&format!("/v1/agreements?q={hostile}")).await;
        assert!(
            reply.status == 200 || reply.status == 400,
            "{hostile}: {}",
            reply.text
        );
    }
}

/// Matches of equal rank follow their ids, and small pages of them still
/// return each exactly once, best first or (`-relevance`) worst first: the
/// matches a page can hold are cut after every tie at its end, not at an
/// arbitrary one of the tied rows. Inserted in reverse id order, so the
/// store's own row order is the wrong one.
async fn equally_ranked_matches_page_in_id_order(app: TestApp) {
    let tied: Vec<String> = (1..=7).rev().map(|n| format!("ua-nz-tie-{n}")).collect();
    for id in &tied {
        let body = json!({"id": id, "partner": "NZ", "title": "Tiebreakword accord", "kind": "other", "status": "negotiating"});
        let reply = app.post("/v1/agreements", &body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let best = json!({"id": "ua-nz-tie-9", "partner": "NZ", "title": "Tiebreakword tiebreakword", "kind": "other", "status": "negotiating"});
    assert_eq!(app.post("/v1/agreements", &best).await.status, 201);

    let mut best_first = vec!["ua-nz-tie-9".to_owned()];
    best_first.extend((1..=7).map(|n| format!("ua-nz-tie-{n}")));
    let worst_first: Vec<String> = best_first.iter().rev().cloned().collect();
    for (sort, expected) in [("relevance", &best_first), ("-relevance", &worst_first)] {
        for limit in [1, 2, 3, 500] {
            let items = app
                .all_items(&format!(
                    "/v1/agreements?q=tiebreakword&sort={sort}&fields=id&limit={limit}"
                ))
                .await;
            let ids: Vec<&str> = items.iter().map(|a| a["id"].as_str().unwrap()).collect();
            assert_eq!(&ids, expected, "{sort}, pages of {limit}");
        }
    }
}

/// The search index is checked when the store opens: a missing row, or
/// (SQLite) one under another number than its agreement's, as a VACUUM may
/// leave it, is indexed again.
async fn a_search_index_out_of_step_is_rebuilt_when_the_store_opens(mut app: TestApp) {
    let edit = json!({"summary": "A xylophonic clause."});
    assert_eq!(
        app.patch("/v1/agreements/ua-jp-2024", &edit).await.status,
        200
    );
    let search = "/v1/agreements?q=xylophonic&fields=id";
    assert_eq!(
        app.get_ok(search).await["items"],
        json!([{"id": "ua-jp-2024"}])
    );
    app.database
        .execute(match app.database.backend {
            Backend::Sqlite => {
                "UPDATE agreement_search SET rowid = rowid + 1000000 WHERE agreement_id = 'ua-jp-2024'"
            }
            Backend::Postgres => "DELETE FROM agreement_search WHERE agreement_id = 'ua-jp-2024'",
        })
        .await;
    // A store opened again over the same database, as at the next start.
    app.router = accords::app(app.database.open().await, HttpOptions::default()).unwrap();
    assert_eq!(
        app.get_ok(search).await["items"],
        json!([{"id": "ua-jp-2024"}])
    );
}

async fn sorts_and_pages_return_everything_once(app: TestApp) {
    let drafts = all_drafts(&app).await;
    let everything: BTreeSet<String> = drafts.iter().map(|d| d.id.clone().unwrap()).collect();
    for sort in [
        "signed_on",
        "-signed_on",
        "partner",
        "-partner",
        "title",
        "-title",
        "updated_at",
        "-updated_at",
        "-id",
    ] {
        let items = app
            .all_items(&format!("/v1/agreements?sort={sort}&limit=4"))
            .await;
        let ids: Vec<String> = items
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(unique.len(), ids.len(), "{sort}: an item twice");
        assert_eq!(unique, everything, "{sort}: items missing");
        let key = |a: &Value| -> (String, String) {
            let value = match sort.trim_start_matches('-') {
                "signed_on" => a["signed_on"].as_str().unwrap_or("0001-01-01").to_owned(),
                "partner" => a["partner"]["name"].as_str().unwrap().to_owned(),
                "title" => a["title"].as_str().unwrap().to_owned(),
                "updated_at" => a["updated_at"].as_str().unwrap().to_owned(),
                _ => String::new(),
            };
            (value, a["id"].as_str().unwrap().to_owned())
        };
        let keys: Vec<(String, String)> = items.iter().map(key).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        if sort.starts_with('-') {
            sorted.reverse();
        }
        assert_eq!(keys, sorted, "{sort}: out of order");
    }
    // A cursor belongs to its sort.
    let page = app.get_ok("/v1/agreements?sort=title&limit=2").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    app.get(&format!("/v1/agreements?sort=-title&cursor={cursor}"))
        .await
        .problem(400);
    let link = app.get("/v1/agreements?sort=title&limit=2").await;
    let link = link.header("link").unwrap().to_owned();
    assert!(
        link.contains(cursor) && link.ends_with("rel=\"next\"") && link.contains("sort=title"),
        "{link}"
    );
}

async fn paging_is_stable_under_inserts(app: TestApp) {
    let before: Vec<String> = app
        .all_items("/v1/agreements?sort=title&limit=50")
        .await
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let mut seen = Vec::new();
    let mut uri = "/v1/agreements?sort=title&limit=3".to_owned();
    let mut inserted = 0;
    loop {
        let page = app.get_ok(&uri).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned()),
        );
        // Someone adds agreements while the dashboard pages through.
        for title in ["AAA first", "zzz last"] {
            let body = json!({"partner": "NZ", "title": format!("{title} {inserted}"), "kind": "other", "status": "negotiating"});
            assert_eq!(app.post("/v1/agreements", &body).await.status, 201);
            inserted += 1;
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/v1/agreements?sort=title&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an item came twice");
    for id in &before {
        assert!(seen.contains(id), "{id} was skipped");
    }
}

async fn exports_stream_csv_ndjson_and_text(app: TestApp) {
    let drafts = all_drafts(&app).await;
    let reply = app
        .send_with("GET", "/v1/agreements", &[("Accept", "text/csv")], None, "")
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let rows = parse_csv(&reply.text);
    assert_eq!(rows[0][0], "id");
    assert_eq!(
        rows.len() - 1,
        drafts.len(),
        "one row per agreement, all of them without a limit"
    );
    let japan = rows.iter().find(|r| r[0] == "ua-jp-2024").unwrap();
    assert_eq!(japan[12], "USD 4500000000");
    assert!(
        rows.iter().all(|r| r.len() == rows[0].len()),
        "every row has every column"
    );

    let pledge_rows = parse_csv(&app.get("/v1/agreements?format=csv&rows=pledges").await.text);
    let pledge_count: usize = drafts.iter().map(|d| pledges(d).len()).sum();
    assert_eq!(pledge_rows.len() - 1, pledge_count);
    let header = &pledge_rows[0];
    let note = header.iter().position(|c| c == "note").unwrap();
    let jp = pledge_rows.iter().find(|r| r[0] == "ua-jp-2024").unwrap();
    assert!(
        jp[note].starts_with("US$4.5bn for 2024") && jp[note].contains(", European Pravda,"),
        "quoted fields with commas survive: {}",
        jp[note]
    );

    let ndjson = app
        .send_with(
            "GET",
            "/v1/agreements?partner=JP,GB",
            &[("Accept", "application/x-ndjson")],
            None,
            "",
        )
        .await;
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = ndjson
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);

    let text = app.get("/v1/agreements?format=text&partner=JP").await;
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(text.text.starts_with("ID "));
    assert!(
        text.text.contains("Japan")
            && text.text.contains("2024-06-13")
            && text.text.contains("USD 4,500,000,000")
    );

    let pretty = app
        .get("/v1/agreements?partner=JP&pretty=true&fields=id")
        .await;
    assert!(pretty.text.contains("\n  \"items\""), "{}", pretty.text);
    // A limit on an export gives that page only.
    let limited = parse_csv(&app.get("/v1/agreements?format=csv&limit=2").await.text);
    assert_eq!(limited.len(), 3);
}

/// `fields` can ask for every member an agreement has, markers and the
/// place included (the dashboard's table shows the markers), and gives no more.
async fn fields_select_every_member_of_an_agreement(app: TestApp) {
    let whole = app.get_ok("/v1/agreements/ua-us-2024").await;
    let page = app
        .get_ok("/v1/agreements?partner=US&fields=id,markers,signed_place")
        .await;
    let item = &page["items"][0];
    let members: BTreeSet<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(members, BTreeSet::from(["id", "markers", "signed_place"]));
    assert_eq!(item["markers"], whole["markers"]);
    assert_eq!(item["signed_place"], whole["signed_place"]);
    assert_eq!(
        item["markers"]["legally_binding"]["status"], "contested",
        "{item}"
    );
}

/// RFC 4180, as a spreadsheet reads it.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

async fn stats_match_hand_computed_sums(app: TestApp) {
    let drafts = all_drafts(&app).await;
    let mut want: BTreeMap<(String, Option<i64>, String), (Decimal, i64)> = BTreeMap::new();
    // By hand: a per-year pledge once per year of its range, a part of
    // another pledge never (its whole is counted).
    let mut years_counted: BTreeMap<(String, Option<i64>, String), i64> = BTreeMap::new();
    for draft in &drafts {
        for pledge in pledges(draft).iter().filter(|p| p.part_of.is_none()) {
            let key = (
                draft.partner.as_str().to_owned(),
                pledge.year_from,
                pledge.currency.as_str().to_owned(),
            );
            let per_year = pledge.basis == accords::domain::pledge::PledgeBasis::PerYear;
            let years = if per_year {
                pledge.year_to.unwrap() - pledge.year_from.unwrap() + 1
            } else {
                1
            };
            if per_year {
                *years_counted.entry(key.clone()).or_default() += years;
            }
            let entry = want.entry(key).or_default();
            entry.0 += pledge.amount.as_decimal() * Decimal::from(years);
            entry.1 += 1;
        }
    }
    let reply = app.get_ok("/v1/stats/pledges?group_by=partner,year").await;
    for item in reply["items"].as_array().unwrap() {
        let key = (
            item["partner"].as_str().unwrap().to_owned(),
            item["year"].as_i64(),
            item["currency"].as_str().unwrap().to_owned(),
        );
        assert_eq!(
            item["years"].as_i64(),
            years_counted.get(&key).copied(),
            "{item}"
        );
    }
    // Iceland: at least ISK 4bn a year, 2024–2028, is at least ISK 20bn.
    let iceland = reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["partner"] == "IS" && i["currency"] == "ISK")
        .unwrap();
    assert_eq!(
        (iceland["total"].as_str(), iceland["years"].as_i64()),
        (Some("20000000000"), Some(5))
    );
    let mut got: BTreeMap<(String, Option<i64>, String), (Decimal, i64)> = BTreeMap::new();
    for item in reply["items"].as_array().unwrap() {
        let total: Decimal = item["total"]
            .as_str()
            .expect("totals are strings")
            .parse()
            .unwrap();
        got.insert(
            (
                item["partner"].as_str().unwrap().to_owned(),
                item["year"].as_i64(),
                item["currency"].as_str().unwrap().to_owned(),
            ),
            (total, item["count"].as_i64().unwrap()),
        );
    }
    assert_eq!(got, want, "totals per partner, year and currency");
    // Listed in group order, the same on both backends: partner, then year
    // with an unknown year after the known ones, then currency.
    let listed: Vec<(String, Option<i64>, String)> = reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["partner"].as_str().unwrap().to_owned(),
                item["year"].as_i64(),
                item["currency"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        listed.iter().any(|(_, year, _)| year.is_none()),
        "the bundled data has pledges of unknown year"
    );
    let mut ordered = listed.clone();
    ordered.sort_by_key(|(partner, year, currency)| {
        (partner.clone(), year.is_none(), *year, currency.clone())
    });
    assert_eq!(listed, ordered, "groups out of order");
    // Never a sum across currencies; filters apply.
    let japan = app
        .get_ok("/v1/stats/pledges?group_by=kind&partner=JP")
        .await;
    assert_eq!(
        japan["items"],
        json!([{"kind": "mixed", "currency": "USD", "total": "4500000000", "count": 1}])
    );
    let by_area = app
        .get_ok("/v1/stats/pledges?group_by=area&area=demining&currency=EUR")
        .await;
    for item in by_area["items"].as_array().unwrap() {
        assert_eq!(item["currency"], "EUR");
    }
    // Exact to the cent.
    let cents = json!({"amount": "0.10", "currency": "NZD", "kind": "military"});
    let partner_agreement = json!({"partner": "NZ", "title": "Cents", "kind": "other", "status": "signed", "signed_on": "2030-01-01",
                                   "pledges": [cents, {"amount": "0.20", "currency": "NZD", "kind": "military"}]});
    assert_eq!(
        app.post("/v1/agreements", &partner_agreement).await.status,
        201
    );
    let nz = app
        .get_ok("/v1/stats/pledges?group_by=partner&partner=NZ")
        .await;
    assert_eq!(
        nz["items"],
        json!([{"partner": "NZ", "currency": "NZD", "total": "0.30", "count": 2}])
    );

    // The rollup follows an agreement that moves to another partner.
    let moved = app
        .patch("/v1/agreements/ua-nz-2030", &json!({"partner": "AU"}))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(
        app.get_ok("/v1/stats/pledges?group_by=partner&partner=NZ")
            .await["items"],
        json!([])
    );
    let au = app
        .get_ok("/v1/stats/pledges?group_by=partner&partner=AU")
        .await;
    assert_eq!(au["items"][0]["total"], "0.30");
    // Answers from the rollup equal answers from the pledges themselves
    // (naming every status forces the second path without changing the set).
    let every_status = "status=negotiating,signed,ratified,in_force,expired,terminated";
    for groups in ["partner,year", "kind,measure", "year"] {
        let rolled = app
            .get_ok(&format!("/v1/stats/pledges?group_by={groups}"))
            .await;
        let direct = app
            .get_ok(&format!(
                "/v1/stats/pledges?group_by={groups}&{every_status}"
            ))
            .await;
        assert_eq!(rolled, direct, "{groups}");
    }

    let mut by_year: BTreeMap<Option<String>, i64> = BTreeMap::new();
    for draft in all_drafts(&app).await {
        *by_year
            .entry(draft.signed_on.map(|d| d.format("%Y").to_string()))
            .or_default() += 1;
    }
    let counts = app.get_ok("/v1/stats/agreements?group_by=year").await;
    for item in counts["items"].as_array().unwrap() {
        let year = item["year"].as_i64().map(|y| y.to_string());
        assert_eq!(item["count"].as_i64().unwrap(), by_year[&year], "{year:?}");
    }
    let statuses = app
        .get_ok("/v1/stats/agreements?group_by=status,kind&partner=GB")
        .await;
    let total: i64 = statuses["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 2);
}

async fn partners_areas_and_timeline_carry_counts(app: TestApp) {
    let gb = app.get_ok("/v1/partners/GB").await;
    assert_eq!(gb["agreement_count"], 2);
    assert_eq!(gb["first_signed_on"], "2024-01-12");
    assert_eq!(gb["last_signed_on"], "2025-01-16");
    let aq = app.get_ok("/v1/partners/AQ").await;
    assert_eq!(
        (aq["agreement_count"].clone(), aq["first_signed_on"].clone()),
        (json!(0), Value::Null)
    );
    let demining = app.get_ok("/v1/areas/demining").await;
    let listed = app.all_items("/v1/areas/demining/agreements").await;
    assert_eq!(
        demining["agreement_count"].as_u64().unwrap() as usize,
        listed.len()
    );

    let events = app.get_ok("/v1/timeline?limit=3").await;
    let items = events["items"].as_array().unwrap();
    let dates: Vec<&str> = items.iter().map(|e| e["date"].as_str().unwrap()).collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted, "newest first");
    assert_eq!(items[0]["type"], "signed");
    let japan = app.get_ok("/v1/timeline?partner=JP").await;
    let types: Vec<&str> = japan["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["signed", "pledge"]);
    assert_eq!(japan["items"][1]["amount"], "4500000000");
}

async fn bad_query_input_is_a_400_naming_the_parameter(app: TestApp) {
    let cases = [
        ("/v1/agreements?partnr=JP", "partnr"),
        ("/v1/agreements?partner=Atlantis", "partner"),
        ("/v1/agreements?area=underwater", "area"),
        ("/v1/agreements?status=done", "status"),
        ("/v1/agreements?kind=treaty", "kind"),
        ("/v1/agreements?signed_from=2024-02-30", "signed_from"),
        ("/v1/agreements?year=twenty", "year"),
        ("/v1/agreements?pledge_kind=guns", "pledge_kind"),
        ("/v1/agreements?currency=XYZ", "currency"),
        ("/v1/agreements?min_amount=5", "min_amount"),
        ("/v1/agreements?currency=EUR&max_amount=-5", "max_amount"),
        ("/v1/agreements?currency=EUR&min_amount=1.234", "min_amount"),
        ("/v1/agreements?legally_binding=maybe", "legally_binding"),
        ("/v1/agreements?q=%20", "q"),
        ("/v1/agreements?sort=colour", "sort"),
        ("/v1/agreements?sort=relevance", "sort"),
        ("/v1/agreements?limit=0", "limit"),
        ("/v1/agreements?limit=501", "limit"),
        ("/v1/agreements?cursor=garbage", "cursor"),
        ("/v1/agreements?format=xml", "format"),
        ("/v1/agreements?rows=pledges", "rows"),
        ("/v1/agreements?fields=id,colour", "fields"),
        ("/v1/agreements?include=children", "include"),
        ("/v1/agreements?count=maybe", "count"),
        ("/v1/agreements?year=2024&year=2025", "year"),
        ("/v1/stats/pledges?group_by=", "group_by"),
        ("/v1/stats/pledges?group_by=colour", "group_by"),
        ("/v1/stats/pledges?group_by=partner,year,kind", "group_by"),
        ("/v1/stats/agreements?group_by=year&sort=title", "sort"),
        ("/v1/timeline?format=csv", "format"),
    ];
    for (uri, parameter) in cases {
        let problem = app.get(uri).await.problem(400);
        let named: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{uri}: {problem}"))
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(named.contains(&parameter), "{uri}: {named:?}");
    }
}
