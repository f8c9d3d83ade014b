//! Publishing: the embeds (card, chart, oEmbed), the chart-ready CSV's
//! provenance, the Atom feed of changes, and Ukrainian answers.

use std::collections::BTreeMap;

use accords::http::HttpOptions;
use serde_json::{Value, json};

use crate::common::{Backend, TestApp, TestDatabase};

crate::on_both_backends!(
    the_chart_shows_the_exact_totals_of_the_stats,
    a_converted_chart_names_its_rates,
    the_card_shows_an_agreement_with_its_sources,
    embeds_are_framed_only_as_configured,
    oembed_turns_a_pasted_url_into_an_iframe,
    the_chart_ready_csv_names_its_sources_and_time,
    the_atom_feed_follows_writes,
    ukrainian_answers_fall_back_to_english_and_say_so,
    search_finds_ukrainian_titles_and_area_names,
);

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

/// Nothing in a document may load from elsewhere: no script, no element
/// with a source, no style pointing at a URL.
fn assert_self_contained(text: &str) {
    let lower = text.to_ascii_lowercase();
    for forbidden in [
        "<script",
        " src=",
        "<link",
        "url(",
        "@import",
        "<img",
        "<iframe",
        "xlink:href",
    ] {
        assert!(!lower.contains(forbidden), "{forbidden} in {text}");
    }
}

/// The bars of a chart: group key -> exact total, read with an XML parser.
fn bars(svg: &str) -> BTreeMap<String, String> {
    let document = roxmltree::Document::parse(svg).expect("the chart is well-formed XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.tag_name().namespace(), Some(SVG_NS));
    let children: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(children[0].tag_name().name(), "title", "title first");
    assert_eq!(children[1].tag_name().name(), "desc", "then desc");
    assert!(!children[0].text().unwrap_or_default().is_empty());
    assert!(!children[1].text().unwrap_or_default().is_empty());
    assert_eq!(
        root.attribute("aria-labelledby"),
        Some("chart-title chart-desc")
    );
    root.descendants()
        .filter(|n| n.has_tag_name((SVG_NS, "g")) && n.attribute("class") == Some("bar"))
        .map(|g| {
            (
                g.attribute("data-group").unwrap().to_owned(),
                g.attribute("data-total").unwrap().to_owned(),
            )
        })
        .collect()
}

async fn the_chart_shows_the_exact_totals_of_the_stats(app: TestApp) {
    let query = "group_by=partner&currency=EUR";
    let stats = app.get_ok(&format!("/v1/stats/pledges?{query}")).await;
    let expected: BTreeMap<String, String> = stats["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["partner"].as_str().unwrap().to_owned(),
                i["total"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(expected.len() > 3, "{stats}");
    let svg = app.get(&format!("/embed/charts/pledges.svg?{query}")).await;
    assert_eq!(svg.status, 200, "{}", svg.text);
    assert_eq!(
        svg.header("content-type"),
        Some("image/svg+xml; charset=utf-8")
    );
    assert_eq!(bars(&svg.text), expected);
    assert_self_contained(&svg.text);
    // The readable label beside the exact one, the title and the source line.
    assert!(svg.text.contains("Pledges by partner, EUR"), "{}", svg.text);
    assert!(svg.text.contains("Germany"), "partners by name");
    assert!(svg.text.contains("Source: accords"));
    assert!(svg.text.contains(" bn<") || svg.text.contains(" m<"));
    // The same data draws the same bytes, however the query is written.
    let again = app
        .get("/embed/charts/pledges.svg?currency=EUR&group_by=partner")
        .await;
    assert_eq!(again.text, svg.text);
    // The page for iframes carries the very same chart.
    let page = app.get(&format!("/embed/charts/pledges?{query}")).await;
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text.contains(&svg.text));
    assert_self_contained(&page.text);
    // By year, with a filter: still the stats' totals.
    let query = "group_by=year&currency=EUR&kind=bilateral_security";
    let stats = app.get_ok(&format!("/v1/stats/pledges?{query}")).await;
    let chart = app.get(&format!("/embed/charts/pledges.svg?{query}")).await;
    let by_year = bars(&chart.text);
    assert_eq!(by_year.len(), stats["items"].as_array().unwrap().len());
    for item in stats["items"].as_array().unwrap() {
        let year = match &item["year"] {
            Value::Null => String::new(),
            year => year.to_string(),
        };
        assert_eq!(
            by_year.get(&year),
            item["total"].as_str().map(str::to_owned).as_ref()
        );
    }
    assert!(
        chart.text.contains("kind=bilateral_security"),
        "filters are named"
    );
    // Never summed across currencies: several of them need a choice.
    let problem = app
        .get("/embed/charts/pledges.svg?group_by=partner")
        .await
        .problem(400);
    assert_eq!(problem["errors"][0]["field"], "currency");
    let problem = app
        .get("/embed/charts/pledges.svg?group_by=partner,year&currency=EUR")
        .await
        .problem(400);
    assert_eq!(problem["errors"][0]["field"], "group_by");
    app.get("/embed/charts/pledges.svg?colour=red")
        .await
        .problem(400);
}

async fn a_converted_chart_names_its_rates(app: TestApp) {
    // USD against EUR, 2024: (1.08 + 1.10) / 2 = 1.09.
    let reply = app
        .send(
            "POST",
            "/v1/rates",
            Some("text/csv"),
            "Date,USD,\n2024-01-02,1.08,\n2024-12-30,1.10,\n",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let query = "group_by=partner&convert=USD&year=2024";
    let stats = app.get_ok(&format!("/v1/stats/pledges?{query}")).await;
    let expected: BTreeMap<String, String> = stats["converted"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["total"].is_string())
        .map(|i| {
            (
                i["partner"].as_str().unwrap().to_owned(),
                i["total"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(expected.len() > 2, "{stats}");
    let svg = app.get(&format!("/embed/charts/pledges.svg?{query}")).await;
    assert_eq!(svg.status, 200, "{}", svg.text);
    assert_eq!(bars(&svg.text), expected);
    assert!(svg.text.contains("Pledges by partner, converted to USD"));
    assert!(
        svg.text.contains(
            "Rates: annual average of 2 daily USD rates against EUR, 2024-01-02..2024-12-30"
        ),
        "{}",
        svg.text
    );
    // Pledges in currencies without a rate are left out, and the chart says so.
    assert!(
        svg.text
            .contains("pledges without a usable rate are left out")
    );
}

async fn the_card_shows_an_agreement_with_its_sources(app: TestApp) {
    let agreement = app.get_ok("/v1/agreements/ua-jp-2024").await;
    let card = app.get("/embed/agreements/ua-jp-2024").await;
    assert_eq!(card.status, 200, "{}", card.text);
    assert_eq!(
        card.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_self_contained(&card.text);
    assert!(card.text.starts_with("<!doctype html>"));
    assert!(card.text.contains("Japan"));
    assert!(card.text.contains("2024-06-13"), "the date of signing");
    assert!(card.text.contains("$4.5 bn"), "the pledge for reading");
    assert!(card.text.contains("USD 4,500,000,000"), "and exact");
    assert!(card.text.contains(" in total"), "with its basis");
    for source in agreement["sources"].as_array().unwrap() {
        let url = source["url"].as_str().unwrap().replace('&', "&amp;");
        assert!(card.text.contains(&format!("href=\"{url}\"")), "{url}");
    }
    let updated = agreement["updated_at"].as_str().unwrap();
    let as_of = chrono::DateTime::parse_from_rfc3339(updated)
        .unwrap()
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(
        card.text
            .contains(&format!("Data as of <time datetime=\"{as_of}\">"))
    );
    assert!(card.text.contains("href=\"/?open=ua-jp-2024\""));
    // Print-friendly and narrow-friendly styles are inline.
    assert!(card.text.contains("@media print"));
    assert!(card.text.contains("name=\"viewport\""));
    // A per-year pledge says so; a contested fact is marked.
    let ua_is = app.get("/embed/agreements/ua-is-2024").await;
    assert!(ua_is.text.contains(" a year"), "{}", ua_is.text);
    let marked = app.get_ok("/v1/agreements?limit=100").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["markers"].as_object().is_some_and(|m| !m.is_empty()))
        .cloned()
        .expect("the bundled data marks some facts");
    let card = app
        .get(&format!(
            "/embed/agreements/{}",
            marked["id"].as_str().unwrap()
        ))
        .await;
    assert!(card.text.contains("<mark class=\""), "{}", card.text);
    app.get("/embed/agreements/ua-xx-1999").await.problem(404);
    app.get("/embed/agreements/ua-jp-2024?x=1")
        .await
        .problem(400);
}

async fn embeds_are_framed_only_as_configured(app: TestApp) {
    // By default any site may frame an embed; nothing else may be framed.
    for path in [
        "/embed/agreements/ua-jp-2024",
        "/embed/charts/pledges?currency=EUR",
        "/embed/charts/pledges.svg?currency=EUR",
    ] {
        let reply = app.get(path).await;
        let csp = reply.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors *"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
        assert_eq!(reply.header("x-frame-options"), None);
    }
    let api = app.get("/v1/agreements/ua-jp-2024").await;
    assert_eq!(
        api.header("content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'")
    );
    assert_eq!(api.header("x-frame-options"), Some("DENY"));
    let dashboard = app.get("/").await;
    assert!(
        dashboard
            .header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // A newsroom's own origins only.
    let options = HttpOptions {
        embed_frame_ancestors: accords::http::cors::frame_ancestors(
            "https://news.example.org, https://cms.example.org:8443",
        )
        .unwrap(),
        ..HttpOptions::default()
    };
    let backend = if app.database.url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    let listed = TestApp::with_options(backend, options)
        .await
        .unwrap()
        .seeded()
        .await;
    let csp = listed.get("/embed/agreements/ua-jp-2024").await;
    assert!(
        csp.header("content-security-policy")
            .unwrap()
            .ends_with("frame-ancestors https://news.example.org https://cms.example.org:8443"),
        "{:?}",
        csp.header("content-security-policy")
    );
    assert!(accords::http::cors::frame_ancestors("news.example.org").is_err());
    assert_eq!(
        accords::http::cors::frame_ancestors("none").unwrap(),
        "'none'"
    );
}

async fn oembed_turns_a_pasted_url_into_an_iframe(app: TestApp) {
    let app = &app;
    let ask = |url: &str| {
        let uri = format!(
            "/oembed?format=json&url={}",
            form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>()
        );
        async move {
            app.send_with("GET", &uri, &[("host", "accords.example.org")], None, "")
                .await
        }
    };
    let card = ask("https://accords.example.org/v1/agreements/ua-jp-2024").await;
    assert_eq!(card.status, 200, "{}", card.text);
    let card = card.json();
    assert_eq!(card["version"], "1.0");
    assert_eq!(card["type"], "rich");
    assert_eq!(card["width"], 400);
    assert!(card["height"].as_i64().unwrap() > 0);
    assert_eq!(
        card["html"].as_str().unwrap(),
        format!(
            "<iframe src=\"https://accords.example.org/embed/agreements/ua-jp-2024\" width=\"400\" height=\"{}\" \
             title=\"Japan — {}\" style=\"border:0;max-width:100%\" loading=\"lazy\"></iframe>",
            card["height"],
            app.get_ok("/v1/agreements/ua-jp-2024").await["title"]
                .as_str()
                .unwrap()
        )
    );
    // The dashboard's link and a chart's link work too.
    let dashboard = ask("https://accords.example.org/?open=ua-de-2024")
        .await
        .json();
    assert!(
        dashboard["html"]
            .as_str()
            .unwrap()
            .contains("/embed/agreements/ua-de-2024")
    );
    let chart =
        ask("https://accords.example.org/v1/stats/pledges?group_by=year&currency=EUR&format=csv")
            .await;
    assert_eq!(chart.status, 200, "{}", chart.text);
    let chart = chart.json();
    assert!(
        chart["html"]
            .as_str()
            .unwrap()
            .contains("src=\"https://accords.example.org/embed/charts/pledges?group_by=year&amp;currency=EUR\""),
        "{chart}"
    );
    assert_eq!(chart["width"], 640);
    // maxwidth is honoured.
    let narrow = app
        .send_with(
            "GET",
            "/oembed?url=http%3A%2F%2Faccords.example.org%2Fembed%2Fagreements%2Fua-jp-2024&maxwidth=300",
            &[("host", "accords.example.org")],
            None,
            "",
        )
        .await
        .json();
    assert_eq!(narrow["width"], 300);
    // Not ours, not embeddable, not a format we offer.
    ask("https://elsewhere.example/v1/agreements/ua-jp-2024")
        .await
        .problem(404);
    ask("https://accords.example.org/v1/agreements/ua-xx-1999")
        .await
        .problem(404);
    ask("https://accords.example.org/v1/partners")
        .await
        .problem(404);
    app.send_with(
        "GET",
        "/oembed?url=https%3A%2F%2Faccords.example.org%2Fv1%2Fagreements%2Fua-jp-2024&format=xml",
        &[("host", "accords.example.org")],
        None,
        "",
    )
    .await
    .problem(400);
    app.get("/oembed").await.problem(400);
}

async fn the_chart_ready_csv_names_its_sources_and_time(app: TestApp) {
    let csv = app
        .get("/v1/stats/pledges?format=csv&group_by=partner")
        .await;
    assert_eq!(csv.status, 200);
    let agreements = app.all_items("/v1/agreements").await;
    let sources: usize = agreements
        .iter()
        .map(|a| a["sources"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        csv.header("accords-agreements"),
        Some(agreements.len().to_string().as_str())
    );
    assert_eq!(
        csv.header("accords-sources"),
        Some(sources.to_string().as_str())
    );
    let as_of = csv.header("accords-data-as-of").expect("the data's time");
    let as_of = chrono::DateTime::parse_from_rfc3339(as_of).unwrap();
    // A write moves the time, and is counted.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let reply = app
        .post(
            "/v1/agreements/ua-jp-2024/sources",
            &json!({"url": "https://example.org/new-source", "title": "A new source"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let after = app
        .get("/v1/stats/pledges?format=csv&group_by=partner")
        .await;
    assert_eq!(
        after.header("accords-sources"),
        Some((sources + 1).to_string().as_str())
    );
    let later =
        chrono::DateTime::parse_from_rfc3339(after.header("accords-data-as-of").unwrap()).unwrap();
    assert!(later > as_of, "{later} > {as_of}");
    // Filters count only what they match.
    let jp = app.get("/v1/stats/pledges?format=csv&partner=JP").await;
    assert_eq!(jp.header("accords-agreements"), Some("1"));
}

fn child<'a, 'input>(node: roxmltree::Node<'a, 'input>, name: &str) -> roxmltree::Node<'a, 'input> {
    node.children()
        .find(|c| c.has_tag_name((ATOM_NS, name)))
        .unwrap_or_else(|| panic!("<{name}> is required (RFC 4287)"))
}

fn atom_entries(text: &str) -> Vec<(String, String, String)> {
    let document = roxmltree::Document::parse(text).expect("the feed is well-formed XML");
    let feed = document.root_element();
    assert!(feed.has_tag_name((ATOM_NS, "feed")), "an Atom feed");
    // RFC 4287 §4.1.1: id, title, updated; an author (here the feed's).
    assert!(child(feed, "id").text().unwrap().starts_with("tag:"));
    assert!(!child(feed, "title").text().unwrap().is_empty());
    chrono::DateTime::parse_from_rfc3339(child(feed, "updated").text().unwrap()).unwrap();
    assert!(child(child(feed, "author"), "name").text().is_some());
    assert!(
        feed.children()
            .any(|c| c.has_tag_name((ATOM_NS, "link")) && c.attribute("rel") == Some("self"))
    );
    let entries: Vec<(String, String, String)> = feed
        .children()
        .filter(|c| c.has_tag_name((ATOM_NS, "entry")))
        .map(|entry| {
            // §4.1.2: id, title, updated; content or an alternate link.
            let id = child(entry, "id").text().unwrap().to_owned();
            assert!(id.starts_with("tag:"), "{id}");
            let title = child(entry, "title").text().unwrap().to_owned();
            let updated = child(entry, "updated").text().unwrap().to_owned();
            chrono::DateTime::parse_from_rfc3339(&updated).unwrap();
            assert!(
                entry
                    .children()
                    .any(|c| c.has_tag_name((ATOM_NS, "content")))
            );
            assert!(entry.children().any(
                |c| c.has_tag_name((ATOM_NS, "link")) && c.attribute("rel") == Some("related")
            ));
            (id, title, updated)
        })
        .collect();
    let mut ids: Vec<&String> = entries.iter().map(|e| &e.0).collect();
    ids.dedup();
    assert_eq!(ids.len(), entries.len(), "ids are unique");
    assert!(entries.windows(2).all(|w| w[0].2 >= w[1].2), "newest first");
    entries
}

async fn the_atom_feed_follows_writes(app: TestApp) {
    let feed = app.get("/v1/changes.atom?partner=JP").await;
    assert_eq!(feed.status, 200, "{}", feed.text);
    assert_eq!(
        feed.header("content-type"),
        Some("application/atom+xml; charset=utf-8")
    );
    let before = atom_entries(&feed.text);
    assert!(!before.is_empty(), "the seed is a change");
    let etag = feed.header("etag").unwrap().to_owned();
    let unchanged = app
        .send_with(
            "GET",
            "/v1/changes.atom?partner=JP",
            &[("if-none-match", etag.as_str())],
            None,
            "",
        )
        .await;
    assert_eq!(unchanged.status, 304);
    // A write shows in the very next request, first.
    let reply = app
        .patch(
            "/v1/pledges/ua-jp-2024-p1",
            &json!({"amount": "4600000000"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let changed = app
        .send_with(
            "GET",
            "/v1/changes.atom?partner=JP",
            &[("if-none-match", etag.as_str())],
            None,
            "",
        )
        .await;
    assert_eq!(changed.status, 200);
    let after = atom_entries(&changed.text);
    assert_eq!(
        after[0].1,
        "Japan — pledge ua-jp-2024-p1: amount 4500000000 → 4600000000 USD"
    );
    assert!(changed.text.contains("/v1/pledges/ua-jp-2024-p1\""));
    assert!(changed.text.contains("/?open=ua-jp-2024\""));
    // The id of an entry never changes.
    let again = atom_entries(&app.get("/v1/changes.atom?partner=JP").await.text);
    assert_eq!(again[0].0, after[0].0);
    assert_eq!(again[1..], after[1..]);
    // Also by Accept on /v1/changes, and in Ukrainian.
    let negotiated = app
        .send_with(
            "GET",
            "/v1/changes?partner=JP",
            &[("accept", "application/atom+xml")],
            None,
            "",
        )
        .await;
    assert_eq!(negotiated.text, changed.text);
    let json = app.get("/v1/changes?partner=JP").await;
    assert_ne!(json.header("etag"), negotiated.header("etag"));
    let uk = app.get("/v1/changes.atom?partner=JP&lang=uk").await;
    assert_eq!(
        atom_entries(&uk.text)[0].1,
        "Японія — зобов’язання ua-jp-2024-p1: amount 4500000000 → 4600000000 USD"
    );
    // Filters: another partner, an area, a kind of agreement.
    let de = atom_entries(&app.get("/v1/changes.atom?partner=DE").await.text);
    assert!(de.iter().all(|e| !e.1.contains("ua-jp-2024-p1")));
    let demining = atom_entries(
        &app.get("/v1/changes.atom?area=demining&limit=200")
            .await
            .text,
    );
    assert!(demining.iter().any(|e| e.1.contains("ua-jp-2024-p1")));
    let declarations = atom_entries(
        &app.get("/v1/changes.atom?kind=declaration&limit=200")
            .await
            .text,
    );
    assert!(declarations.iter().all(|e| !e.1.contains("ua-jp-2024")));
    let limited = atom_entries(&app.get("/v1/changes.atom?limit=1").await.text);
    assert_eq!(limited.len(), 1);
    for bad in [
        "kind=treaty",
        "area=No%20Such",
        "limit=0",
        "since=3",
        "entity=x",
    ] {
        app.get(&format!("/v1/changes.atom?{bad}"))
            .await
            .problem(400);
    }
}

async fn ukrainian_answers_fall_back_to_english_and_say_so(app: TestApp) {
    let english = app.get("/v1/partners/JP").await;
    assert_eq!(english.header("content-language"), Some("en"));
    assert_eq!(english.json()["name"], "Japan");
    let uk = app.get("/v1/partners/JP?lang=uk").await;
    assert_eq!(uk.header("content-language"), Some("uk"));
    assert!(uk.header("vary").unwrap().contains("Accept-Language"));
    assert_eq!(uk.json()["name"], "Японія");
    // Accept-Language does the same.
    let area = app
        .send_with(
            "GET",
            "/v1/areas/demining",
            &[("accept-language", "uk-UA,uk;q=0.9,en;q=0.5")],
            None,
            "",
        )
        .await;
    assert_eq!(area.header("content-language"), Some("uk"));
    assert_eq!(area.json()["name"], "Розмінування");
    let areas = app.all_items("/v1/areas?lang=uk").await;
    assert!(
        areas.iter().all(|a| a["name"] == a["name_uk"]),
        "every bundled area has its Ukrainian name"
    );
    // No official Ukrainian title: the English one, and the answer says so.
    let agreement = app.get("/v1/agreements/ua-jp-2024?lang=uk").await;
    let body = agreement.json();
    assert_eq!(body["title_uk"], Value::Null);
    assert_eq!(body["untranslated"], json!(["title"]));
    assert!(body["title"].as_str().unwrap().starts_with("Accord"));
    assert_eq!(body["partner"]["name"], "Японія");
    assert_eq!(body["areas"][0]["name"], "Притягнення до відповідальності");
    let etag = agreement.header("etag").unwrap().to_owned();
    assert!(etag.ends_with("-uk\""), "{etag}");
    let revalidated = app
        .send_with(
            "GET",
            "/v1/agreements/ua-jp-2024?lang=uk",
            &[("if-none-match", etag.as_str())],
            None,
            "",
        )
        .await;
    assert_eq!(revalidated.status, 304);
    // The English answer is not the Ukrainian one, for caches too.
    let english = app.get("/v1/agreements/ua-jp-2024").await;
    assert_eq!(english.json()["partner"]["name"], "Japan");
    assert!(english.json().get("untranslated").is_none());
    // An area without a Ukrainian name falls back the same way.
    let reply = app
        .post("/v1/areas", &json!({"code": "space", "name": "Space"}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let space = app.get_ok("/v1/areas/space?lang=uk").await;
    assert_eq!(space["name"], "Space");
    assert_eq!(space["untranslated"], json!(["name"]));
    // A Ukrainian title given with its source is shown; a Ukrainian ETag
    // still names the version for a write.
    let title_uk = "Угода про підтримку України та співробітництво між Урядом Японії та Україною";
    let reply = app
        .send_with(
            "PATCH",
            "/v1/agreements/ua-jp-2024",
            &[("if-match", etag.as_str())],
            Some("application/merge-patch+json"),
            &json!({"title_uk": title_uk}).to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let shown = app.get_ok("/v1/agreements/ua-jp-2024?lang=uk").await;
    assert_eq!(shown["title"], title_uk);
    assert!(shown.get("untranslated").is_none());
    let text = app
        .get("/v1/agreements/ua-jp-2024?format=text&lang=uk")
        .await;
    assert!(text.text.starts_with(title_uk), "{}", text.text);
    for words in [
        "ua-jp-2024 · Японія (JP) · двостороння безпекова угода",
        "\nЗобов’язання\n",
        "\nДжерела\n",
        "Розмінування",
    ] {
        assert!(text.text.contains(words), "{words} in {}", text.text);
    }
    assert!(text.header("etag").unwrap().ends_with("t-uk\""));
    let listed = app.get_ok("/v1/partners/JP/agreements?lang=uk").await;
    assert_eq!(listed["items"][0]["title"], title_uk);
    let timeline = app.get_ok("/v1/timeline?partner=JP&lang=uk").await;
    assert_eq!(timeline["items"][0]["title"], title_uk);
    assert_eq!(timeline["items"][0]["partner"]["name"], "Японія");
    // Problems: titles, and the common details, in Ukrainian.
    let missing = app
        .get("/v1/agreements/ua-xx-1999?lang=uk")
        .await
        .problem(404);
    assert_eq!(missing["title"], "Не знайдено");
    assert_eq!(missing["detail"], "немає угоди \"ua-xx-1999\"");
    assert!(missing.get("untranslated").is_none());
    let bad = app
        .get("/v1/agreements?colour=red&lang=uk")
        .await
        .problem(400);
    assert_eq!(bad["title"], "Некоректний запит");
    assert!(
        bad["detail"]
            .as_str()
            .unwrap()
            .starts_with("недійсні параметри запиту: colour")
    );
    assert_eq!(bad["untranslated"], json!(["errors"]));
    let english = app.get("/v1/agreements/ua-xx-1999").await.problem(404);
    assert_eq!(english["title"], "Not Found");
    app.get("/v1/partners?lang=de").await.problem(400);
    app.get("/v1/partners?lang=uk&lang=en").await.problem(400);
    // The text table, the card and the chart.
    let table = app.get("/v1/stats/pledges?format=text&lang=uk").await;
    assert!(table.text.contains("ВАЛЮТА"), "{}", table.text);
    let list = app
        .get("/v1/agreements?format=text&partner=JP&lang=uk")
        .await;
    assert!(list.text.starts_with("ID  "), "{}", list.text);
    assert!(
        list.text.lines().next().unwrap().contains("ПАРТНЕР"),
        "{}",
        list.text
    );
    assert!(
        list.text.contains("(1 зобов’язання, 2024)"),
        "{}",
        list.text
    );
    assert!(list.text.contains("Японія"), "{}", list.text);
    assert!(
        list.text
            .contains(title_uk.chars().take(39).collect::<String>().as_str())
    );
    let card = app.get("/embed/agreements/ua-de-2024?lang=uk").await;
    assert!(card.text.contains("<html lang=\"uk\">"));
    assert!(card.text.contains("Німеччина"));
    assert!(
        card.text
            .contains("Офіційна українська назва поки невідома")
    );
    assert!(card.text.contains("Дані станом на"));
    let chart = app
        .get("/embed/charts/pledges.svg?currency=EUR&lang=uk")
        .await;
    assert!(chart.text.contains("Зобов’язання за партнерами, EUR"));
    assert!(chart.text.contains("Німеччина"));
    assert_eq!(
        bars(&chart.text),
        bars(&app.get("/embed/charts/pledges.svg?currency=EUR").await.text),
        "the same totals in either language"
    );
}

async fn search_finds_ukrainian_titles_and_area_names(app: TestApp) {
    let ids = |items: Vec<Value>| -> Vec<String> {
        items
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Area names in Ukrainian: every agreement in demining is found.
    let demining = ids(app.all_items("/v1/agreements?area=demining").await);
    let found = ids(app.all_items("/v1/agreements?q=розмінування").await);
    for id in &demining {
        assert!(found.contains(id), "{id} in {found:?}");
    }
    let reply = app
        .patch(
            "/v1/agreements/ua-pt-2024",
            &json!({"title_uk": "Угода про співробітництво у сфері безпеки між Україною та Португалією"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        ids(app.all_items("/v1/agreements?q=Португалією").await),
        ["ua-pt-2024"]
    );
    let too_long = "я".repeat(501);
    let reply = app
        .patch("/v1/agreements/ua-pt-2024", &json!({"title_uk": too_long}))
        .await;
    assert_eq!(reply.error_fields(), ["title_uk"]);
}

/// Renders a card and a chart in headless Chromium (Debian's `chromium`):
/// both load, show their content, and a 300-pixel-wide screenshot is drawn.
/// Skipped only where Chromium is missing and CI is unset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_and_a_chart_render_in_headless_chromium() {
    let chromium = ["chromium", "chromium-browser"].into_iter().find(|name| {
        std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(chromium) = chromium else {
        assert!(
            std::env::var("CI").is_err(),
            "CI needs Chromium: apt-get install -y chromium"
        );
        eprintln!("skipped: no chromium on this machine");
        return;
    };
    let database = TestDatabase::new(Backend::Sqlite).await.unwrap();
    let store = database.open().await;
    accords::seed::seed_if_empty(store.as_ref()).await.unwrap();
    let server = accords::Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        store,
        HttpOptions::default(),
    )
    .await
    .unwrap();
    let address = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(
        async {
            let _ = stopped.await;
        },
        std::time::Duration::from_secs(5),
    ));
    let profile =
        std::env::temp_dir().join(format!("accords-chromium-{}", crate::common::unique_name()));
    let run = |args: Vec<String>| {
        let chromium = chromium.to_owned();
        let profile = profile.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = std::process::Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--hide-scrollbars",
                    &format!("--user-data-dir={}", profile.display()),
                ])
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start chromium");
            let started = std::time::Instant::now();
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if started.elapsed() > std::time::Duration::from_secs(90) {
                    let _ = child.kill();
                    panic!("chromium took longer than 90 s");
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let output = child.wait_with_output().unwrap();
            String::from_utf8_lossy(&output.stdout).into_owned()
        })
    };
    let card_url = format!("http://{address}/embed/agreements/ua-jp-2024");
    let dom = run(vec!["--dump-dom".into(), card_url.clone()])
        .await
        .unwrap();
    assert!(dom.contains("<article class=\"card\">"), "{dom}");
    assert!(dom.contains("Japan") && dom.contains("$4.5 bn"), "{dom}");
    assert!(!dom.to_ascii_lowercase().contains("<script"));
    let chart_url = format!("http://{address}/embed/charts/pledges?group_by=partner&currency=EUR");
    let dom = run(vec!["--dump-dom".into(), chart_url.clone()])
        .await
        .unwrap();
    assert!(dom.contains("<svg"), "{dom}");
    assert!(dom.matches("class=\"bar\"").count() > 3, "{dom}");
    for (name, url) in [("card", card_url), ("chart", chart_url)] {
        let shot = profile.with_extension(format!("{name}.png"));
        run(vec![
            format!("--screenshot={}", shot.display()),
            "--window-size=300,900".into(),
            url,
        ])
        .await
        .unwrap();
        let png = std::fs::read(&shot).expect("a screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 2_000,
            "{name}: {} bytes",
            png.len()
        );
        // A 300-pixel-wide page: the width is in the PNG header (bytes 16..20).
        assert_eq!(
            u32::from_be_bytes([png[16], png[17], png[18], png[19]]),
            300
        );
        let _ = std::fs::remove_file(&shot);
    }
    let _ = std::fs::remove_dir_all(&profile);
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
