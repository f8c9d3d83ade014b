//! Exchange rates and converted amounts: loading both CSV layouts and JSON,
//! single-rate writes, malformed files refused whole with their line
//! numbers, conversion arithmetic and converted stats against hand-computed
//! exact values, and ETags that never serve a stale conversion.

use serde_json::{Value, json};

use crate::common::{Reply, TestApp};

crate::on_both_backends!(
    both_layouts_load_and_read_back,
    single_rates_are_written_with_a_key,
    concurrent_rate_writes_keep_the_average_exact,
    malformed_files_are_refused_whole_with_their_lines,
    conversions_are_exact_and_round_half_to_even,
    stats_total_across_currencies_only_in_converted_form,
    etags_never_serve_a_stale_conversion,
    the_command_line_loads_a_file_or_lists_every_error,
);

async fn post_csv(app: &TestApp, body: &[u8]) -> Reply {
    app.send(
        "POST",
        "/v1/rates",
        Some("text/csv"),
        std::str::from_utf8(body).unwrap_or_default(),
    )
    .await
}

/// A body that is not UTF-8 cannot go through `send`; build the request by hand.
async fn post_bytes(app: &TestApp, content_type: &str, body: Vec<u8>) -> Reply {
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/rates")
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {}", app.write_key))
        .body(axum::body::Body::from(body))
        .unwrap();
    app.request(request).await
}

fn summary(reply: &Reply) -> (i64, i64, i64) {
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    (
        body["created"].as_i64().unwrap(),
        body["updated"].as_i64().unwrap(),
        body["unchanged"].as_i64().unwrap(),
    )
}

/// Every stored rate and annual average, for "nothing changed" checks.
async fn table(app: &TestApp) -> (Vec<Value>, Value) {
    (
        app.all_items("/v1/rates?limit=500").await,
        app.get_ok("/v1/rates/annual").await,
    )
}

async fn both_layouts_load_and_read_back(app: TestApp) {
    // The long layout: any column order, any case, a BOM.
    let long = "\u{feff}Currency,DATE,rate\nUSD,2024-01-02,1.0956\nusd,2024-01-03,1.0919\nJPY,2024-01-02,155.80\n";
    assert_eq!(summary(&post_csv(&app, long.as_bytes()).await), (3, 0, 0));
    // The ECB's wide layout, with N/A, empty cells and the trailing empty column.
    let wide = "Date,USD,JPY,GBP,\n2024-01-04,1.0953,158.17,N/A,\n2024-01-03,1.0919,155.91,0.86450,\n2024-01-05,,N/A,0.8613,\n";
    let reply = post_csv(&app, wide.as_bytes()).await;
    // USD 2024-01-03 is already 1.0919: unchanged; JPY 2024-01-03 is new.
    assert_eq!(summary(&reply), (5, 0, 1));
    let body = reply.json();
    assert_eq!(body["rates"], 6);
    assert_eq!(body["currencies"], json!(["GBP", "JPY", "USD"]));
    assert_eq!(
        (&body["first_date"], &body["last_date"]),
        (&json!("2024-01-03"), &json!("2024-01-05"))
    );

    let usd = app.get_ok("/v1/rates?currency=USD&year=2024").await;
    assert_eq!(
        usd["items"],
        json!([
            {"currency": "USD", "date": "2024-01-02", "rate": "1.0956"},
            {"currency": "USD", "date": "2024-01-03", "rate": "1.0919"},
            {"currency": "USD", "date": "2024-01-04", "rate": "1.0953"},
        ])
    );
    // Keyset pages walk every rate once.
    let all = app.all_items("/v1/rates?limit=2").await;
    assert_eq!(all.len(), 8);
    assert_eq!(app.get_ok("/v1/rates?year=2023").await["items"], json!([]));
    assert_eq!(
        app.get_ok("/v1/rates/JPY/2024-01-02").await,
        json!({"currency": "JPY", "date": "2024-01-02", "rate": "155.8"})
    );
    app.get("/v1/rates/JPY/2024-01-09").await.problem(404);

    // (1.0956 + 1.0919 + 1.0953) / 3 = 3.2828 / 3 = 1.094266666..., to 28 digits.
    for empty in ["currency=,", "currency=USD,"] {
        let problem = app
            .get(&format!("/v1/rates/annual?{empty}"))
            .await
            .problem(400);
        assert_eq!(problem["errors"][0]["field"], "currency");
    }
    let annual = app.get_ok("/v1/rates/annual?currency=USD,JPY").await;
    assert_eq!(
        annual["items"],
        json!([
            {"currency": "JPY", "year": 2024, "average": "156.6266666666666666666666667", "days": 3,
             "first_day": "2024-01-02", "last_day": "2024-01-04"},
            {"currency": "USD", "year": 2024, "average": "1.094266666666666666666666667", "days": 3,
             "first_day": "2024-01-02", "last_day": "2024-01-04"},
        ])
    );

    // JSON items; loading the same again changes nothing.
    let items = json!({"items": [
        {"date": "2024-01-02", "currency": "CHF", "rate": "0.9321"},
        {"date": "2024-01-02", "currency": "USD", "rate": "1.0957"},
    ]});
    assert_eq!(summary(&app.post("/v1/rates", &items).await), (1, 1, 0));
    assert_eq!(summary(&app.post("/v1/rates", &items).await), (0, 0, 2));
    assert_eq!(
        app.get_ok("/v1/rates/annual?currency=USD&year=2024").await["items"][0]["average"],
        "1.0943"
    );
    // Rate changes are in the history.
    let history = app.get_ok("/v1/history?entity=rate").await;
    assert_eq!(history["items"][0]["op"], "load");
    assert_eq!(history["items"][0]["after"]["updated"], 1);

    // Bad parameters are named.
    let reply = app.get("/v1/rates?currency=EUR&year=99&limt=5").await;
    let problem = reply.problem(400);
    assert_eq!(problem["errors"][0]["field"], "limt");
    let reply = app.get("/v1/rates?currency=EUR&year=99").await;
    refused(&reply, &["currency", "year"]);
    app.send("POST", "/v1/rates", Some("text/plain"), "x")
        .await
        .problem(415);
}

async fn single_rates_are_written_with_a_key(app: TestApp) {
    let body = json!({"rate": "1.0823"}).to_string();
    let no_key = app
        .send_with(
            "PUT",
            "/v1/rates/USD/2024-06-13",
            &[("Authorization", "")],
            Some("application/json"),
            &body,
        )
        .await;
    no_key.problem(401);
    let created = app
        .put("/v1/rates/usd/2024-06-13", &json!({"rate": "1.0823"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("location"), Some("/v1/rates/USD/2024-06-13"));
    assert_eq!(
        created.json(),
        json!({"currency": "USD", "date": "2024-06-13", "rate": "1.0823"})
    );
    // A body from GET can be sent back, edited.
    let replaced = app
        .put(
            "/v1/rates/USD/2024-06-13",
            &json!({"currency": "USD", "date": "2024-06-13", "rate": "1.0830"}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(replaced.json()["rate"], "1.083");
    assert_eq!(
        app.get_ok("/v1/rates/annual?currency=USD").await["items"][0]["average"],
        "1.083"
    );

    // Every problem of a PUT at once.
    let bad = app
        .put(
            "/v1/rates/EUR/2024-02-30",
            &json!({"rate": 1.08, "currency": "GBP"}),
        )
        .await;
    let fields = bad.error_fields();
    assert_eq!(fields, ["currency", "date", "rate"], "{}", bad.text);
    for (rate, says) in [
        ("0", "greater than zero"),
        ("-1.2", "negative"),
        ("1.00000000001", "10 decimal places"),
        ("1e3", "positive decimal"),
    ] {
        let reply = app
            .put("/v1/rates/USD/2024-06-14", &json!({"rate": rate}))
            .await;
        let problem = reply.problem(422);
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(says),
            "{rate}: {}",
            reply.text
        );
    }

    let no_key = app
        .send_with(
            "DELETE",
            "/v1/rates/USD/2024-06-13",
            &[("Authorization", "")],
            None,
            "",
        )
        .await;
    no_key.problem(401);
    assert_eq!(app.delete("/v1/rates/USD/2024-06-13").await.status, 204);
    app.delete("/v1/rates/USD/2024-06-13").await.problem(404);
    app.delete("/v1/rates/EUR/2024-06-13").await.problem(404);
    // The year has no rate left: no average either.
    assert_eq!(
        app.get_ok("/v1/rates/annual?currency=USD").await["items"],
        json!([])
    );
}

async fn concurrent_rate_writes_keep_the_average_exact(app: TestApp) {
    let writes = (1..=20).map(|day| {
        let app = &app;
        async move {
            app.put(
                &format!("/v1/rates/USD/2024-02-{day:02}"),
                &json!({"rate": format!("1.{day:02}")}),
            )
            .await
        }
    });
    for reply in futures_util::future::join_all(writes).await {
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    // (1.01 + 1.02 + ... + 1.20) / 20 = 22.1 / 20 = 1.105: every write counted.
    let annual = app.get_ok("/v1/rates/annual?currency=USD&year=2024").await;
    assert_eq!(
        (&annual["items"][0]["days"], &annual["items"][0]["average"]),
        (&json!(20), &json!("1.105"))
    );
}

/// Asserts a 400 whose errors name these fields (in order), and returns the messages.
fn refused(reply: &Reply, fields: &[&str]) -> Vec<String> {
    let problem = reply.problem(400);
    let errors = problem["errors"].as_array().expect("errors are listed");
    let named: Vec<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(named, fields, "{}", reply.text);
    errors
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect()
}

async fn malformed_files_are_refused_whole_with_their_lines(app: TestApp) {
    let good = "date,currency,rate\n2024-01-02,USD,1.0956\n";
    assert_eq!(summary(&post_csv(&app, good.as_bytes()).await), (1, 0, 0));
    let before = table(&app).await;
    let revision = app.get("/v1/rates").await.header("etag").map(str::to_owned);

    // Bad bytes: the line and column of each.
    let mut bytes = b"Date,USD,JPY\n2024-01-03,1.0919,155.9\n2024-01-04,1.09".to_vec();
    bytes.extend_from_slice(b"\xff\xfe,158.1\n2024-01-05,1.1,15\xe98\n");
    let reply = post_bytes(&app, "text/csv", bytes).await;
    let messages = refused(&reply, &["line 3, column USD", "line 4, column JPY"]);
    assert!(messages[0].contains("UTF-8"), "{messages:?}");

    // A missing column; an unknown one.
    let reply = post_csv(&app, b"date,rate\n2024-01-03,1.1\n").await;
    let messages = refused(&reply, &["line 1"]);
    assert!(messages[0].contains("no column currency"), "{messages:?}");
    let reply = post_csv(&app, b"date,currency,rate,source\n2024-01-03,USD,1.1,ECB\n").await;
    refused(&reply, &["line 1, column source"]);

    // Bad dates, a duplicate, a zero rate, EUR, an unknown currency — every
    // one at once, and a good row among them is not written either.
    let file = "date,currency,rate\n\
                2024-02-30,USD,1.1\n\
                2024-01-09,USD,1.1\n\
                09/01/2024,JPY,160\n\
                2024-01-10,JPY,161\n\
                2024-01-10,jpy,161\n\
                2024-01-11,GBP,0\n\
                2024-01-11,EUR,1\n\
                2024-01-11,XYZ,1.2\n";
    let reply = post_csv(&app, file.as_bytes()).await;
    let messages = refused(
        &reply,
        &[
            "line 2, column date",
            "line 4, column date",
            "line 6",
            "line 7, column rate",
            "line 8, column currency",
            "line 9, column currency",
        ],
    );
    assert!(
        messages[2].contains("given twice: first on line 5"),
        "{messages:?}"
    );
    assert!(messages[4].contains("EUR is the base"), "{messages:?}");

    // The ECB layout: a bad header cell, a bad value.
    let reply = post_csv(&app, b"Date,USD,EUR,\n2024-01-03,abc,1,\n").await;
    refused(&reply, &["line 1, column EUR"]);
    let reply = post_csv(
        &app,
        b"Date,USD,\n2024-01-03,-1.1,\n2024-01-04,1.1,\n2024-01-04,1.2,\n",
    )
    .await;
    refused(&reply, &["line 2, column USD", "line 4, column USD"]);
    // Rows of the wrong width, an empty file.
    let reply = post_csv(&app, b"date,currency,rate\n2024-01-03,USD\n").await;
    refused(&reply, &["line 2"]);
    refused(&post_csv(&app, b"").await, &[""]);

    // JSON lists: every item's problems, addressed by index.
    let reply = app
        .post(
            "/v1/rates",
            &json!({"items": [
                {"date": "2024-01-03", "currency": "USD", "rate": 1.1},
                {"date": "2024-01-03", "currency": "USD", "rate": "1.1"},
                {"date": "2024-01-03", "currency": "USD", "rate": "1.2"},
                {"currency": "EUR", "rate": "1"},
            ]}),
        )
        .await;
    refused(
        &reply,
        &[
            "items[0].rate",
            "items[2]",
            "items[3].date",
            "items[3].currency",
        ],
    );

    assert_eq!(table(&app).await, before, "nothing was written");
    assert_eq!(
        app.get("/v1/rates").await.header("etag").map(str::to_owned),
        revision,
        "not even the revision moved"
    );
}

/// New Zealand has no agreement in the bundled data: these are all its pledges.
async fn agreements_of_new_zealand(app: &TestApp) {
    let signed = json!({
        "id": "ua-nz-2024", "partner": "NZ", "title": "Accord", "kind": "bilateral_security",
        "status": "signed", "signed_on": "2024-05-01",
        "pledges": [
            {"amount": "1000000.50", "currency": "EUR", "year_from": 2024, "kind": "military"},
            {"amount": "1000001.50", "currency": "EUR", "year_from": 2024, "kind": "military"},
            {"amount": "1000000", "currency": "JPY", "year_from": 2024, "kind": "financial"},
            {"amount": "500", "currency": "GBP", "year_from": 2024, "kind": "financial"},
            {"amount": "100", "currency": "USD", "kind": "humanitarian"},
        ]
    });
    let reply = app.post("/v1/agreements", &signed).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let talks = json!({
        "id": "ua-nz-talks", "partner": "NZ", "title": "Talks", "kind": "bilateral_security",
        "status": "negotiating",
        "pledges": [{"amount": "100", "currency": "EUR", "kind": "military"}]
    });
    let reply = app.post("/v1/agreements", &talks).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    // USD 2024: (1.08 + 1.09 + 1.10) / 3 = 1.09; JPY 2024: (160 + 170) / 2 = 165.
    let rates = "Date,USD,JPY,\n2024-01-02,1.08,160,\n2024-06-03,1.09,N/A,\n2024-12-30,1.10,170,\n";
    let reply = post_csv(app, rates.as_bytes()).await;
    assert_eq!(summary(&reply), (5, 0, 0));
}

fn pledge<'a>(agreement: &'a Value, amount: &str, currency: &str) -> &'a Value {
    agreement["pledges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["amount"] == amount && p["currency"] == currency)
        .unwrap_or_else(|| panic!("no pledge of {amount} {currency}"))
}

async fn conversions_are_exact_and_round_half_to_even(app: TestApp) {
    agreements_of_new_zealand(&app).await;
    let plain = app.get("/v1/agreements/ua-nz-2024").await;
    assert!(!plain.text.contains("converted"), "no convert, no change");
    assert_eq!(plain.header("etag"), Some("\"1\""));

    let reply = app.get("/v1/agreements/ua-nz-2024?convert=usd").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let agreement = reply.json();
    // 1000000.50 × 1.09 = 1090000.545: a tie, to the even cent .54 (half-up would say .55).
    assert_eq!(
        pledge(&agreement, "1000000.50", "EUR")["converted"],
        json!({"currency": "USD", "amount": "1090000.54", "rate": "1.09", "year": 2024,
               "rate_basis": "annual average of 3 daily USD rates against EUR, 2024-01-02..2024-12-30",
               "reason": null})
    );
    // 1000001.50 × 1.09 = 1090001.635: a tie, to the even cent .64.
    assert_eq!(
        pledge(&agreement, "1000001.50", "EUR")["converted"]["amount"],
        "1090001.64"
    );
    // JPY → USD: 1.09 / 165 = 0.00660606060606... → 0.0066060606; × 1000000 = 6606.0606 → 6606.06.
    let jpy = &pledge(&agreement, "1000000", "JPY")["converted"];
    assert_eq!(
        (&jpy["rate"], &jpy["amount"]),
        (&json!("0.0066060606"), &json!("6606.06"))
    );
    assert_eq!(
        jpy["rate_basis"],
        "(annual average of 3 daily USD rates against EUR, 2024-01-02..2024-12-30) / \
         (annual average of 2 daily JPY rates against EUR, 2024-01-02..2024-12-30)"
    );
    // No GBP rate: null, with the reason, never a guess.
    assert_eq!(
        pledge(&agreement, "500", "GBP")["converted"],
        json!({"currency": "USD", "amount": null, "rate": null, "year": 2024,
               "rate_basis": null, "reason": "no GBP rate loaded for 2024"})
    );
    // Same currency, the year from the signing date.
    let usd = &pledge(&agreement, "100", "USD")["converted"];
    assert_eq!(
        (&usd["amount"], &usd["rate"], &usd["year"]),
        (&json!("100"), &json!("1"), &json!(2024))
    );

    // To EUR: 1 / 1.09 = 0.917431192660... → 0.9174311927; × 100 = 91.74311927 → 91.74.
    let agreement = app.get_ok("/v1/agreements/ua-nz-2024?convert=EUR").await;
    let usd = &pledge(&agreement, "100", "USD")["converted"];
    assert_eq!(
        (&usd["amount"], &usd["rate"]),
        (&json!("91.74"), &json!("0.9174311927"))
    );
    assert_eq!(
        usd["rate_basis"],
        "1 / annual average of 3 daily USD rates against EUR, 2024-01-02..2024-12-30"
    );
    // No rates for 2023 at all.
    let agreement = app.get_ok("/v1/agreements/ua-nz-talks?convert=USD").await;
    assert_eq!(
        agreement["pledges"][0]["converted"]["reason"],
        "the pledge has no year: neither year_from nor a signing date"
    );

    // The pledge routes and the lists convert alike.
    let id = pledge(&app.get_ok("/v1/agreements/ua-nz-2024").await, "100", "USD")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = app.get_ok(&format!("/v1/pledges/{id}?convert=EUR")).await;
    assert_eq!(one["converted"]["amount"], "91.74");
    assert!(
        !app.get(&format!("/v1/pledges/{id}"))
            .await
            .text
            .contains("converted")
    );
    let listed = app
        .get_ok("/v1/agreements/ua-nz-2024/pledges?convert=USD")
        .await;
    assert_eq!(listed["items"][0]["converted"]["amount"], "1090000.54");
    let page = app
        .get_ok("/v1/agreements?partner=NZ&convert=USD&fields=id,pledges")
        .await;
    assert_eq!(
        page["items"][0]["pledges"][0]["converted"]["amount"],
        "1090000.54"
    );
    assert_eq!(
        page["items"][1]["pledges"][0]["converted"]["reason"],
        "the pledge has no year: neither year_from nor a signing date"
    );
    let nested = app.get_ok("/v1/partners/NZ/agreements?convert=JPY").await;
    // EUR → JPY: 165; 1000000.50 × 165 = 165000082.5 exactly.
    assert_eq!(
        pledge(&nested["items"][0], "1000000.50", "EUR")["converted"]["amount"],
        "165000082.50"
    );

    // A bad or misplaced convert is a 400 naming it.
    for uri in [
        "/v1/agreements/ua-nz-2024?convert=XYZ",
        "/v1/agreements?convert=dollars",
        "/v1/agreements?convert=USD&format=csv",
        "/v1/stats/pledges?group_by=partner&convert=X",
    ] {
        let problem = app.get(uri).await.problem(400);
        assert_eq!(problem["errors"][0]["field"], "convert", "{uri}");
    }
    app.get("/v1/agreements/ua-nz-2024?converts=USD")
        .await
        .problem(400);
    app.get("/v1/agreements/ua-nz-2024/sources?convert=USD")
        .await
        .problem(400);
}

async fn stats_total_across_currencies_only_in_converted_form(app: TestApp) {
    agreements_of_new_zealand(&app).await;
    let plain = app
        .get_ok("/v1/stats/pledges?group_by=partner&partner=NZ")
        .await;
    assert!(plain.get("converted").is_none());
    let stats = app
        .get_ok("/v1/stats/pledges?group_by=partner&partner=NZ&convert=USD")
        .await;
    // The per-currency items stay exactly as they are.
    assert_eq!(stats["items"], plain["items"]);
    let converted = &stats["converted"];
    assert_eq!(converted["currency"], "USD");
    assert!(
        converted["rounding"]
            .as_str()
            .unwrap()
            .contains("half to even")
    );
    // 2000002.00 EUR × 1.09 = 2180002.18; 1000000 JPY × 0.0066060606 = 6606.0606;
    // 100 USD × 1 = 100: 2186708.2406 → 2186708.24. GBP (no rate) and the
    // unsigned agreement's EUR (no year) are counted apart.
    assert_eq!(
        converted["items"],
        json!([{
            "partner": "NZ", "total": "2186708.24", "count": 4, "unconverted_count": 2,
            "unconverted_total_by_currency": {"EUR": "100", "GBP": "500"},
            "unconverted_reasons": [
                "no GBP rate loaded for 2024",
                "the pledge has no year: neither year_from nor a signing date"
            ]
        }])
    );
    assert_eq!(
        converted["rates"],
        json!([
            {"from": "EUR", "year": 2024, "rate": "1.09",
             "rate_basis": "annual average of 3 daily USD rates against EUR, 2024-01-02..2024-12-30"},
            {"from": "JPY", "year": 2024, "rate": "0.0066060606",
             "rate_basis": "(annual average of 3 daily USD rates against EUR, 2024-01-02..2024-12-30) / \
                            (annual average of 2 daily JPY rates against EUR, 2024-01-02..2024-12-30)"},
        ])
    );

    // No CHF rate at all: nothing converts, and there is no total, not a 0.
    let chf = app
        .get_ok("/v1/stats/pledges?group_by=partner&partner=NZ&convert=CHF")
        .await;
    assert_eq!(
        chf["converted"]["items"],
        json!([{
            "partner": "NZ", "total": null, "count": 0, "unconverted_count": 6,
            "unconverted_total_by_currency": {"EUR": "2000102", "GBP": "500", "JPY": "1000000", "USD": "100"},
            "unconverted_reasons": [
                "no CHF rate loaded for 2024",
                "no GBP or CHF rate loaded for 2024",
                "the pledge has no year: neither year_from nor a signing date"
            ]
        }])
    );
    assert_eq!(chf["converted"]["rates"], json!([]));

    // Grouped by kind, with a filter: military = the two EUR pledges of 2024
    // (2180002.18) and the unsigned agreement's EUR pledge (no year).
    let by_kind = app
        .get_ok("/v1/stats/pledges?group_by=kind&partner=NZ&convert=USD")
        .await;
    let items = by_kind["converted"]["items"].as_array().unwrap();
    let military = items.iter().find(|i| i["kind"] == "military").unwrap();
    assert_eq!(
        (
            &military["total"],
            &military["count"],
            &military["unconverted_count"]
        ),
        (&json!("2180002.18"), &json!(2), &json!(1))
    );
    let humanitarian = items.iter().find(|i| i["kind"] == "humanitarian").unwrap();
    assert_eq!(humanitarian["total"], "100");
    // The signed agreement alone, to JPY: 2000002 × 165 = 330000330;
    // 100 USD × (165 / 1.09 = 151.376146789 → 151.3761467890) = 15137.6146789 → 15137.61.
    let to_jpy = app
        .get_ok("/v1/stats/pledges?group_by=year&partner=NZ&status=signed&convert=JPY")
        .await;
    assert_eq!(
        to_jpy["converted"]["items"],
        json!([
            {"year": 2024, "total": "331000330", "count": 3, "unconverted_count": 1,
             "unconverted_total_by_currency": {"GBP": "500"},
             "unconverted_reasons": ["no GBP rate loaded for 2024"]},
            {"year": null, "total": "15137.61", "count": 1, "unconverted_count": 0,
             "unconverted_total_by_currency": {}, "unconverted_reasons": []},
        ])
    );
}

async fn etags_never_serve_a_stale_conversion(app: TestApp) {
    agreements_of_new_zealand(&app).await;
    let conditional = |uri: &str, etag: &str| {
        let (uri, etag) = (uri.to_owned(), etag.to_owned());
        let app = &app;
        async move {
            app.send_with("GET", &uri, &[("If-None-Match", etag.as_str())], None, "")
                .await
        }
    };
    for (uri, day) in [
        ("/v1/agreements/ua-nz-2024?convert=USD", "2024-03-01"),
        ("/v1/agreements?partner=NZ&convert=USD", "2024-03-04"),
        (
            "/v1/stats/pledges?group_by=partner&partner=NZ&convert=USD",
            "2024-03-05",
        ),
    ] {
        let first = app.get(uri).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let etag = first.header("etag").unwrap().to_owned();
        let plain = app
            .get(&uri.replace("&convert=USD", "").replace("?convert=USD", ""))
            .await;
        assert_ne!(plain.header("etag"), Some(etag.as_str()), "{uri}");
        let other = app.get(&uri.replace("USD", "JPY")).await;
        assert_ne!(other.header("etag"), Some(etag.as_str()), "{uri}");
        assert_eq!(conditional(uri, &etag).await.status, 304, "{uri}");

        // A new USD rate moves the average (1.09 → 1.0925) and so the answer.
        let reply = app
            .put(&format!("/v1/rates/USD/{day}"), &json!({"rate": "1.1"}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let after = conditional(uri, &etag).await;
        assert_eq!(
            after.status, 200,
            "{uri}: a stale conversion was answered 304"
        );
        assert_ne!(after.header("etag"), Some(etag.as_str()));
        assert_ne!(after.text, first.text);
    }
    // The agreement's own version ETag still works for writes.
    let plain = app.get("/v1/agreements/ua-nz-2024").await;
    assert_eq!(plain.header("etag"), Some("\"1\""));
}

async fn the_command_line_loads_a_file_or_lists_every_error(app: TestApp) {
    let dir = std::env::temp_dir();
    let unique = app
        .database
        .url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .replace('.', "_");
    let name = format!("accords-rates-{unique}.csv");
    let good = dir.join(format!("good-{name}"));
    let bad = dir.join(format!("bad-{name}"));
    std::fs::write(
        &good,
        "Date,USD,JPY,\n2024-01-02,1.0956,155.8,\n2024-01-03,1.0919,N/A,\n",
    )
    .unwrap();
    std::fs::write(
        &bad,
        "date,currency,rate\n2024-01-04,USD,1.1\n2024-01-05,USD,zero\n2024-13-01,JPY,150\n",
    )
    .unwrap();
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_accords"))
            .args(["rates", "import"])
            .arg(file)
            .env("DATABASE_URL", &app.database.url)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    };
    let output = tokio::task::block_in_place(|| run(&good));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("3 rates of 2 currencies (JPY, USD)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 created, 0 updated, 0 unchanged"),
        "{stderr}"
    );

    let output = tokio::task::block_in_place(|| run(&bad));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let path = bad.display().to_string();
    assert!(
        stderr.contains(&format!("{path}:3: column rate: ")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{path}:4: column date: ")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was loaded"), "{stderr}");
    let _ = (std::fs::remove_file(good), std::fs::remove_file(bad));
    assert_eq!(
        app.get_ok("/v1/rates").await["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}
