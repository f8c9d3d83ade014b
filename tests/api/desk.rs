//! The data desk's workflow: CSV round trips, dry-run imports, rejected files
//! and the data checks, through the real binary and the HTTP API.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{TestApp, TestDatabase, run_cli, unique_name};

crate::on_both_backends!(
    csv_export_import_export_is_identical,
    csv_dry_run_reports_every_row_and_changes_nothing,
    malformed_csv_is_rejected_with_file_line_and_column,
    unknown_references_are_all_reported_at_once,
    http_dry_run_changes_nothing,
    checks_find_what_an_editor_must_fix,
    the_bundled_dataset_passes_the_checks
);

/// A directory removed after the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(unique_name());
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.0.join(name), bytes).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const FILES: [&str; 5] = [
    "agreements.csv",
    "signatories.csv",
    "areas.csv",
    "pledges.csv",
    "sources.csv",
];

/// Runs the binary and insists it succeeded; returns (stdout, stderr).
fn cli_ok(url: &str, args: &[&str]) -> (String, String) {
    let output = run_cli(url, args, None);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "accords {args:?}: {stderr}");
    (stdout, stderr)
}

fn export_csv(url: &str) -> TempDir {
    let dir = TempDir::new();
    cli_ok(url, &["export", "--format", "csv", "--out", dir.path()]);
    dir
}

fn json_export(url: &str) -> String {
    cli_ok(url, &["export"]).0
}

/// Rewrites one cell of the row whose `key` column is `key_value`.
fn edit_cell(dir: &TempDir, file: &str, key: (&str, &str), column: &str, value: &str) {
    let text = dir.read(file);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let key_at = headers.iter().position(|h| h == key.0).unwrap();
    let column_at = headers.iter().position(|h| h == column).unwrap();
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(&headers).unwrap();
    let mut found = false;
    for record in reader.records() {
        let record = record.unwrap();
        let mut cells: Vec<String> = record.iter().map(str::to_owned).collect();
        if cells[key_at] == key.1 {
            cells[column_at] = value.to_owned();
            found = true;
        }
        writer.write_record(&cells).unwrap();
    }
    assert!(found, "no row with {key:?} in {file}");
    dir.write(file, &writer.into_inner().unwrap());
}

/// Drops the line of `file` that contains `needle` (exactly one).
fn drop_line(dir: &TempDir, file: &str, needle: &str) {
    let text = dir.read(file);
    let kept: Vec<&str> = text
        .split_inclusive("\r\n")
        .filter(|line| !line.contains(needle))
        .collect();
    assert_eq!(kept.len() + 1, text.split_inclusive("\r\n").count());
    dir.write(file, kept.concat().as_bytes());
}

fn append(dir: &TempDir, file: &str, line: &str) {
    let mut text = dir.read(file);
    text.push_str(line);
    text.push_str("\r\n");
    dir.write(file, text.as_bytes());
}

/// Export as CSV, import into another store holding only the partners and
/// areas, export again: the five files are byte-identical, and so is the
/// whole JSON export. Text with commas, quotes, new lines and non-ASCII
/// letters and amounts with cents survive.
async fn csv_export_import_export_is_identical(app: TestApp) {
    let edited = app
        .patch(
            "/v1/agreements/ua-is-2024",
            &json!({"summary": "Line one, with a comma;\nline \"two\" — Ísland"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let pledge = app
        .patch(
            "/v1/pledges/ua-jp-2024-p1",
            &json!({"amount": "4500000000.05"}),
        )
        .await;
    assert_eq!(pledge.status, 200, "{}", pledge.text);
    let url = &app.database.url;
    let first = export_csv(url);
    let summary = first.read("agreements.csv");
    assert!(
        summary.starts_with("id,partner,title,title_uk,kind,status,signed_on,"),
        "{summary}"
    );
    assert!(summary.contains("\"Line one, with a comma;\nline \"\"two\"\" — Ísland\""));

    let other = TestDatabase::new(app.database.backend).await.unwrap();
    let mut vocabularies: Value = serde_json::from_str(&json_export(url)).unwrap();
    vocabularies.as_object_mut().unwrap().remove("agreements");
    let loaded = run_cli(
        &other.url,
        &["import", "-"],
        Some(vocabularies.to_string().as_bytes()),
    );
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let (report, counts) = cli_ok(&other.url, &["import", first.path()]);
    assert!(
        counts.contains("32 created, 0 updated, 0 unchanged"),
        "{counts}"
    );
    assert_eq!(
        report
            .lines()
            .filter(|l| l.starts_with("+ agreement "))
            .count(),
        32
    );

    let second = export_csv(&other.url);
    for file in FILES {
        assert!(
            first.read(file) == second.read(file),
            "{file} differs after the round trip"
        );
    }
    assert!(
        json_export(url) == json_export(&other.url),
        "the JSON exports differ"
    );
    // The same files again change nothing.
    let (report, counts) = cli_ok(&other.url, &["import", second.path()]);
    assert_eq!(report, "");
    assert!(
        counts.contains("0 created, 0 updated, 32 unchanged"),
        "{counts}"
    );
}

/// A dry run prints each row added, changed (field by field) or removed, as
/// hand-written here, and changes nothing; the real import prints the same
/// and makes it so.
async fn csv_dry_run_reports_every_row_and_changes_nothing(app: TestApp) {
    let url = &app.database.url;
    let dir = export_csv(url);
    // Read from the store, not through the app: to the command line the app
    // is another instance, which may lag by up to a second.
    let exported: Value = serde_json::from_str(&json_export(url)).unwrap();
    let old_title = exported["agreements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "ua-is-2024")
        .unwrap()["title"]
        .as_str()
        .unwrap()
        .to_owned();
    edit_cell(
        &dir,
        "agreements.csv",
        ("id", "ua-is-2024"),
        "title",
        "Agreement, \"edited\"\nin two lines",
    );
    edit_cell(
        &dir,
        "pledges.csv",
        ("id", "ua-jp-2024-p1"),
        "amount",
        "4600000000.50",
    );
    append(
        &dir,
        "pledges.csv",
        "ua-jp-2024,ua-jp-2024-p9,1000000,JPY,2025,2025,humanitarian,,total,,true,\"Demining, \"\"urgent\"\"\",,",
    );
    append(
        &dir,
        "sources.csv",
        "ua-jp-2024,ua-jp-2024-s99,https://example.org/jp,Example source,Example,2025-01-02,ua-jp-2024-p9,",
    );
    drop_line(&dir, "sources.csv", ",ua-dk-2024-s11,");
    drop_line(&dir, "areas.csv", "ua-al-2025,accountability,");
    let expected = format!(
        "- agreement_area accountability (agreement ua-al-2025)\n\
         - source ua-dk-2024-s11 (agreement ua-dk-2024)\n\
         ~ agreement ua-is-2024\n    title: {} → \"Agreement, \\\"edited\\\"\\nin two lines\"\n\
         ~ pledge ua-jp-2024-p1 (agreement ua-jp-2024)\n    amount: \"4500000000\" → \"4600000000.50\"\n\
         + pledge ua-jp-2024-p9 (agreement ua-jp-2024)\n\
         + source ua-jp-2024-s99 (agreement ua-jp-2024)\n",
        Value::String(old_title.clone())
    );

    let before = json_export(url);
    let history_before = app.get_ok("/v1/history?limit=1").await;
    let (report, counts) = cli_ok(url, &["import", "--dry-run", dir.path()]);
    assert_eq!(report, expected);
    assert!(
        counts.contains("nothing was changed: 0 to create, 4 to update, 28 unchanged"),
        "{counts}"
    );
    assert!(json_export(url) == before, "a dry run changed the store");
    assert_eq!(app.get_ok("/v1/history?limit=1").await, history_before);

    let (report, counts) = cli_ok(url, &["import", dir.path()]);
    assert_eq!(report, expected);
    assert!(
        counts.contains("0 created, 4 updated, 28 unchanged"),
        "{counts}"
    );
    let japan = app.get_ok("/v1/agreements/ua-jp-2024").await;
    let amounts: Vec<&str> = japan["pledges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["4600000000.50", "1000000"]);
    assert_eq!(japan["pledges"][1]["description"], "Demining, \"urgent\"");
    assert!(
        japan["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "ua-jp-2024-s99" && s["pledges"] == json!(["ua-jp-2024-p9"]))
    );
    let albania = app.get_ok("/v1/agreements/ua-al-2025").await;
    assert!(
        !albania["areas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "accountability")
    );
    assert_eq!(
        app.get_ok("/v1/agreements/ua-is-2024").await["title"],
        "Agreement, \"edited\"\nin two lines"
    );
    // What was imported exports and imports again unchanged.
    let again = export_csv(url);
    let (report, _) = cli_ok(url, &["import", "--dry-run", again.path()]);
    assert_eq!(report, "");
}

/// Every problem of every file at once, each with file, line and column, and
/// nothing written.
async fn malformed_csv_is_rejected_with_file_line_and_column(app: TestApp) {
    let url = &app.database.url;
    let before = json_export(url);
    let dir = TempDir::new();
    dir.write(
        "agreements.csv",
        b"id,partner,title,title_uk,kind,status,signed_on,signed_at,signed_city,signed_country,signed_venue,signed_event,term_years,expires_on,legally_binding,summary,text_url,markers\r\n\
          ua-jp-2024,JP,Edited,,bilateral_security,signed,2024-02-30,,,,,,10,,,,,\r\n\
          ua-jp-2024,JP,Twice,,bilateral_security,signed,2024-06-13,,,,,,ten,,maybe,,,\r\n\
          ua-nz-2024,NZ,Fine,,other,signed,2024-01-01,,,,,,,,,,,\r\n",
    );
    dir.write(
        "pledges.csv",
        b"agreement_id,id,amount,currency,year_from,year_to,kind,measure,basis,part_of,in_agreement_text,description,markers\r\n\
          ua-jp-2024,ua-jp-2024-p1,1,USD,2024,2024,military,,,,,,\r\n",
    );
    let mut sources =
        b"agreement_id,id,url,title,publisher,published_on,pledges,fields\r\n".to_vec();
    sources.extend_from_slice(b"ua-nz-2024,ua-nz-2024-s1,https://example.org/nz,Jap\xf3n,,,,\r\n");
    sources.extend_from_slice(
        b"ua-nz-2024,ua-nz-2024-s2,https://example.org/nz2,Fine,,2024-13-01,,\r\n",
    );
    sources.extend_from_slice(b"ua-nz-2024,ua-nz-2024-s1,https://example.org/nz3,Again,,,,\r\n");
    dir.write("sources.csv", &sources);
    dir.write(
        "areas.csv",
        b"agreement_id,code,detail\r\nua-xx-2024,demining,\r\n",
    );
    dir.write(
        "signatories.csv",
        b"agreement_id,name,role,side\r\nua-nz-2024,Someone,ukraine\r\n",
    );
    dir.write("notes.csv", b"anything\r\n");

    let output = run_cli(url, &["import", dir.path()], None);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "nothing was imported",
        "notes.csv: is not one of the import's files",
        "agreements.csv line 3, column id: \"ua-jp-2024\" is already on line 2",
        "agreements.csv line 3, column term_years: must be a whole number, not \"ten\"",
        "agreements.csv line 3, column legally_binding: must be true, false or empty, not \"maybe\"",
        "agreements.csv line 2, column signed_on:",
        "pledges.csv line 1, column note: is missing from the header",
        "sources.csv line 2, column title: is not valid UTF-8",
        "sources.csv line 3, column published_on:",
        "sources.csv line 4, column id: \"ua-nz-2024-s1\" is already on line 2",
        "areas.csv line 2, column agreement_id: \"ua-xx-2024\" is not an agreement in agreements.csv",
        "signatories.csv line 2: has 3 cells where the header has 4",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in:\n{message}"
        );
    }
    assert!(message.contains("(12 problems)"), "{message}");
    assert!(
        json_export(url) == before,
        "a rejected import changed the store"
    );

    // Without agreements.csv there is nothing to attach rows to.
    std::fs::remove_file(Path::new(dir.path()).join("agreements.csv")).unwrap();
    let output = run_cli(url, &["import", "--dry-run", dir.path()], None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("agreements.csv: is missing"));
}

/// Errors only the store can find (unknown partners and areas) are reported
/// together too, at the line that named them.
async fn unknown_references_are_all_reported_at_once(app: TestApp) {
    let url = &app.database.url;
    let before = json_export(url);
    let dir = TempDir::new();
    dir.write(
        "agreements.csv",
        b"id,partner,title,title_uk,kind,status,signed_on,signed_at,signed_city,signed_country,signed_venue,signed_event,term_years,expires_on,legally_binding,summary,text_url,markers\r\n\
          ua-zz-2024,ZZ,Nobody,,other,signed,2024-01-01,,,,,,,,,,,\r\n\
          ua-nz-2024,NZ,Somebody,,other,signed,2024-01-01,,,,,,,,,,,\r\n",
    );
    dir.write(
        "areas.csv",
        b"agreement_id,code,detail\r\nua-nz-2024,demining,\r\nua-nz-2024,space-lasers,\r\n",
    );
    let output = run_cli(url, &["import", "--dry-run", dir.path()], None);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("(2 problems)"), "{message}");
    assert!(
        message.contains("agreements.csv line 2, column partner: is not a known partner"),
        "{message}"
    );
    assert!(
        message.contains("areas.csv line 3, column code: is not a known cooperation area"),
        "{message}"
    );
    assert!(json_export(url) == before);
}

async fn admin_post(app: &TestApp, uri: &str, body: &Value) -> crate::common::Reply {
    let bearer = format!("Bearer {}", app.admin_key);
    app.send_with(
        "POST",
        uri,
        &[("authorization", &bearer)],
        Some("application/json"),
        &body.to_string(),
    )
    .await
}

/// POST /v1/import?dry_run=true answers with the report and writes nothing:
/// no change, no history, no new revision.
async fn http_dry_run_changes_nothing(app: TestApp) {
    let body = json!({"agreements": [{
        "id": "ua-jp-2024", "partner": "JP",
        "title": "Accord on Security Cooperation and Support between Ukraine and Japan (edited)",
        "kind": "bilateral_security", "status": "signed", "signed_on": "2024-06-13",
        "pledges": [{"id": "ua-jp-2024-p1", "amount": "4500000000", "currency": "USD",
                      "kind": "mixed", "year_from": 2024, "year_to": 2024}]
    }]});
    let agreement_before = app.get_ok("/v1/agreements/ua-jp-2024").await;
    let changes_before = app.get("/v1/changes").await;
    let uri = "/v1/import?dry_run=true";
    let reply = admin_post(&app, uri, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let report = reply.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(0), Some(1))
    );
    let changes = report["changes"].as_array().unwrap();
    let agreement = changes
        .iter()
        .find(|c| c["entity"] == "agreement" && c["id"] == "ua-jp-2024")
        .unwrap();
    assert_eq!(agreement["action"], "changed");
    let fields: Vec<&str> = agreement["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"title"), "{fields:?}");
    let title = agreement["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "title")
        .unwrap();
    assert_eq!(title["before"], agreement_before["title"]);
    // Children the body leaves out are left as they are; the one pledge
    // listed replaces the list, so the other pledges' rows would go.
    assert!(
        changes
            .iter()
            .any(|c| c["entity"] == "pledge" && c["action"] == "changed")
    );
    assert_eq!(
        app.get_ok("/v1/agreements/ua-jp-2024").await,
        agreement_before
    );
    let changes_after = app.get("/v1/changes").await;
    assert_eq!(
        changes_after.text, changes_before.text,
        "a dry run entered the change feed"
    );

    let bad = admin_post(&app, "/v1/import?dry_run=perhaps", &body).await;
    let problem = bad.problem(400);
    assert!(problem.to_string().contains("dry_run"), "{problem}");

    let real = admin_post(&app, "/v1/import", &body).await;
    assert_eq!(real.status, 200, "{}", real.text);
    assert_eq!(real.json()["dry_run"], false);
    assert_eq!(real.json()["changes"], report["changes"]);
    assert_eq!(
        app.get_ok("/v1/agreements/ua-jp-2024").await["title"],
        body["agreements"][0]["title"]
    );
}

/// Each check on crafted data: over HTTP (the report, the level filter, a bad
/// level) and from the command line (findings printed, exit status 1).
async fn checks_find_what_an_editor_must_fix(app: TestApp) {
    let baseline = app.get_ok("/v1/checks").await;
    assert_eq!(baseline["errors"], 0, "the bundled data passes: {baseline}");
    let bundled_warnings = baseline["warnings"].as_u64().unwrap();
    let created = app
        .post(
            "/v1/agreements",
            &json!({"id": "ua-nz-2010", "partner": "NZ", "title": "Old memorandum", "kind": "other",
                    "status": "in_force", "signed_on": "2010-01-01", "term_years": 5,
                    "sources": [{"id": "ua-nz-2010-s1", "url": "https://example.org/a", "title": "A"},
                                {"id": "ua-nz-2010-s2", "url": "https://example.org/b", "title": "A later review",
                                 "published_on": "2014-06-01"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = app
        .post(
            "/v1/agreements",
            &json!({"id": "ua-nz-2024", "partner": "NZ", "title": "Unsourced", "kind": "other", "status": "signed",
                    "signed_on": "2024-05-01",
                    "pledges": [{"id": "ua-nz-2024-p1", "amount": "1000", "currency": "NZD", "kind": "military",
                                 "year_from": 2024, "year_to": 2026,
                                 "in_agreement_text": true, "note": "figure disputed: two reports differ"},
                                {"id": "ua-nz-2024-p2", "amount": "300", "currency": "NZD", "kind": "military",
                                 "year_from": 2025, "year_to": 2025, "in_agreement_text": true}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let partner = app
        .post(
            "/v1/partners",
            &json!({"code": "XJ", "kind": "organization", "name": "Japan Foundation", "aliases": ["Japan"]}),
        )
        .await;
    assert_eq!(partner.status, 201, "{}", partner.text);

    let report = app.get_ok("/v1/checks").await;
    assert_eq!(report["passed"], false);
    assert_eq!(report["errors"], 5);
    assert_eq!(
        report["warnings"].as_u64().unwrap(),
        bundled_warnings + 3,
        "a disputed figure, an unlinked overlap and a late source: {report}"
    );
    let found: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["level"].as_str().unwrap().to_owned(),
                f["check"].as_str().unwrap().to_owned(),
                f["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected_errors = [
        ("error", "expired_still_in_force", "ua-nz-2010"),
        ("error", "agreement_without_source", "ua-nz-2024"),
        ("error", "pledge_without_source", "ua-nz-2024-p1"),
        ("error", "pledge_without_source", "ua-nz-2024-p2"),
        ("error", "colliding_partner_names", "XJ"),
    ];
    let errors: Vec<(&str, &str, &str)> = found[..5]
        .iter()
        .map(|(l, c, i)| (l.as_str(), c.as_str(), i.as_str()))
        .collect();
    assert_eq!(errors, expected_errors);
    for expected in [
        ("warning", "disputed_figure", "ua-nz-2024-p1"),
        ("warning", "unlinked_overlap", "ua-nz-2024-p2"),
        ("warning", "late_source", "ua-nz-2010-s2"),
        // The bundled contested facts: Japan's amount, the US agreement's
        // legal force.
        ("warning", "contested_fact", "ua-jp-2024-p1"),
        ("warning", "contested_fact", "ua-us-2024"),
    ] {
        assert!(
            found
                .iter()
                .any(|(l, c, i)| (l.as_str(), c.as_str(), i.as_str()) == expected),
            "{expected:?} not in {found:?}"
        );
    }
    let expired = &report["findings"][0];
    assert!(
        expired["message"].as_str().unwrap().contains("2015-01-01"),
        "{expired}"
    );
    let counts: Vec<(String, u64)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let bundled_overlaps = baseline["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "unlinked_overlap")
        .unwrap()["count"]
        .as_u64()
        .unwrap();
    assert!(
        counts.contains(&("unlinked_overlap".to_owned(), bundled_overlaps + 1)),
        "{counts:?}"
    );
    assert!(
        counts.contains(&("pledge_without_source".to_owned(), 2)),
        "{counts:?}"
    );

    let errors_only = app.get_ok("/v1/checks?level=error").await;
    assert_eq!(errors_only["findings"].as_array().unwrap().len(), 5);
    assert_eq!(
        errors_only["warnings"], report["warnings"],
        "counts cover every level"
    );
    let bad = app.get("/v1/checks?level=fatal").await;
    assert_eq!(bad.problem(400)["errors"][0]["field"], "level");
    let typo = app.get("/v1/checks?levle=error").await;
    assert_eq!(typo.status, 400);

    let output = run_cli(&app.database.url, &["check", "--level", "error"], None);
    assert_eq!(output.status.code(), Some(1), "errors fail the check");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains(
            "error: expired_still_in_force: agreement ua-nz-2010: its term ended on 2015-01-01"
        ),
        "{printed}"
    );
    assert_eq!(printed.lines().count(), 5, "{printed}");
    let summary = format!("FAILED: 5 errors, {} warnings", report["warnings"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains(&summary));

    // Linking the overlap (p2 is part of p1) clears that warning, and the
    // total counts p1 alone.
    let linked = app
        .patch(
            "/v1/pledges/ua-nz-2024-p2",
            &json!({"part_of": "ua-nz-2024-p1"}),
        )
        .await;
    assert_eq!(linked.status, 200, "{}", linked.text);
    let report = app.get_ok("/v1/checks").await;
    assert_eq!(report["warnings"].as_u64().unwrap(), bundled_warnings + 2);

    // Fixing the data makes the check pass.
    let fixed = app
        .patch("/v1/agreements/ua-nz-2010", &json!({"status": "expired"}))
        .await;
    assert_eq!(fixed.status, 200, "{}", fixed.text);
    assert_eq!(app.get_ok("/v1/checks").await["errors"], 4);
}

/// The bundled dataset holds all 28 agreements of Ukraine's Ministry of
/// Defence list (27 states and the EU), each with sources, and passes every
/// check at the error level.
async fn the_bundled_dataset_passes_the_checks(app: TestApp) {
    let report = app.get_ok("/v1/checks").await;
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["errors"], 0);
    let output = run_cli(&app.database.url, &["check", "--format", "json"], None);
    assert!(output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["passed"], true);
    assert_eq!(printed["warnings"], report["warnings"]);

    let ministry_list = [
        "AL", "BE", "CA", "CZ", "DE", "DK", "EE", "ES", "EU", "FI", "FR", "GB", "GR", "IE", "IS",
        "IT", "JP", "LT", "LU", "LV", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "US",
    ];
    for code in ministry_list {
        let agreements = app
            .all_items(&format!(
                "/v1/agreements?partner={code}&kind=bilateral_security"
            ))
            .await;
        assert!(
            agreements
                .iter()
                .any(|a| a["status"] != "negotiating"
                    && !a["sources"].as_array().unwrap().is_empty()),
            "no signed, sourced security agreement with {code}"
        );
    }
    let uk_2025 = app.get_ok("/v1/agreements/ua-gb-2025").await;
    assert_eq!(uk_2025["signed_on"], "2025-01-16");
}
