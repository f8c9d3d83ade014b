//! Plans, not luck: every query a dashboard sends, on a store of a few
//! thousand generated agreements with fresh statistics, reads an index or a
//! rollup — never a whole table of agreements, pledges, area links or
//! history where it is selective or paged, and never a sort of a whole table
//! for a page. SQLite: each statement the store ran (from sqlx's statement
//! log) through `EXPLAIN QUERY PLAN`. PostgreSQL: the plan each statement
//! actually ran with its values, from `auto_explain` in JSON, sent to the
//! client as a notice (with sequential reads priced out: see below).
//!
//! The queries come from the served OpenAPI document where it lists values
//! (every sort, every `group_by` alone and in pairs), so a new one is checked
//! without anyone adding it here.

use std::sync::{Mutex, OnceLock};

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::common::{Backend, TestApp, TestDatabase};

/// Tables whose size is the store's: a full read of one grows with it.
const LARGE_TABLES: &[&str] = &[
    "agreements",
    "pledges",
    "agreement_areas",
    "history",
    "sources",
];

/// Queries that still read a whole table, each with why. Matched against
/// the request's path and query.
const KNOWN_MISSES: &[(&str, &str)] = &[
    (
        "/v1/checks",
        "checks the whole dataset by definition: an export",
    ),
    (
        "q=",
        "a search: SQLite FTS5 and PostgreSQL GIN find the matches; a statistic over them reads each match",
    ),
];

/// What sqlx logged: statements (SQLite) and notices (PostgreSQL's plans).
static CAPTURED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

fn captured() -> &'static Mutex<Vec<String>> {
    CAPTURED.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let target = event.metadata().target();
        if target != "sqlx::query" && target != "sqlx::postgres::notice" {
            return;
        }
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let get = |name: &str| {
            fields
                .0
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let text = if target == "sqlx::query" {
            // The whole statement, or the summary when it is the whole.
            let statement = get("db.statement");
            if statement.is_empty() {
                get("summary")
            } else {
                statement
            }
        } else {
            get("message")
        };
        captured().lock().unwrap().push(text);
    }
}

fn install_capture() {
    let subscriber = tracing_subscriber::registry().with(Capture);
    // One process per test under nextest; elsewhere the first test's stays.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The tables a statement reads, by the names its plan gives them (the alias
/// where there is one).
fn large_tables_named(sql: &str) -> Vec<(String, String)> {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let mut named = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let upper = word.to_ascii_uppercase();
        if upper != "FROM" && upper != "JOIN" {
            continue;
        }
        let Some(table) = words.get(i + 1) else {
            continue;
        };
        if !LARGE_TABLES.contains(&table.as_str()) {
            continue;
        }
        let mut alias = words.get(i + 2).cloned().unwrap_or_default();
        if alias.eq_ignore_ascii_case("AS") {
            alias = words.get(i + 3).cloned().unwrap_or_default();
        }
        let keyword = [
            "WHERE", "JOIN", "LEFT", "INNER", "CROSS", "ON", "ORDER", "GROUP", "LIMIT", "USING",
        ]
        .contains(&alias.to_ascii_uppercase().as_str());
        if alias.is_empty() || keyword {
            alias = table.clone();
        }
        named.push((alias, table.clone()));
    }
    named
}

/// SQLite: the full reads of large tables in one statement's plan.
async fn sqlite_full_reads(database: &TestDatabase, sql: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let upper = sql.trim_start().to_ascii_uppercase();
    if !(upper.starts_with("SELECT") || upper.starts_with("WITH")) {
        return Vec::new();
    }
    let mut connection = sqlx::SqliteConnection::connect(&database.url)
        .await
        .unwrap();
    let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN {sql}: {e}"));
    let details: Vec<String> = rows.iter().map(|r| r.get::<String, _>("detail")).collect();
    let tables = large_tables_named(sql);
    // A page walks an index in its order and stops at its limit; a sort
    // for the page means every row was read first.
    let paged = upper.contains(" LIMIT ")
        && !details
            .iter()
            .any(|d| d.starts_with("USE TEMP B-TREE FOR ORDER BY"));
    let mut full = Vec::new();
    // A page sorted from its matches read them all first, unless they were
    // few: those of a large table, filtered by an index, are not.
    if upper.contains(" LIMIT ")
        && !paged
        && details.iter().any(|d| {
            d.starts_with("SEARCH ")
                && tables
                    .iter()
                    .any(|(alias, _)| d[7..].split_whitespace().next() == Some(alias.as_str()))
        })
    {
        full.push(format!(
            "a page sorted from every match: {}",
            details.join(" / ")
        ));
    }
    for detail in &details {
        let Some(rest) = detail.strip_prefix("SCAN ") else {
            continue;
        };
        let name = rest.split_whitespace().next().unwrap_or_default();
        if let Some((_, table)) = tables.iter().find(|(alias, _)| alias == name) {
            // Walking a table or index in the page's order stops at the
            // limit; anything else reads it all.
            if !paged {
                full.push(format!("{table}: {detail}"));
            }
        }
    }
    full
}

/// PostgreSQL: the full reads of large tables in one plan (auto_explain JSON).
fn postgres_full_reads(plan: &Value) -> Vec<String> {
    fn walk(node: &Value, limited: bool, full: &mut Vec<String>) {
        let kind = node["Node Type"].as_str().unwrap_or_default();
        let relation = node["Relation Name"].as_str().unwrap_or_default();
        // A Limit stops its input early, unless something between must read
        // it all first (a sort, an aggregate, a hash).
        let limited = match kind {
            "Limit" => true,
            "Sort" | "Incremental Sort" | "Aggregate" | "Hash" | "HashAggregate" | "WindowAgg" => {
                false
            }
            _ => limited,
        };
        if LARGE_TABLES.contains(&relation) {
            let whole = kind == "Seq Scan"
                || (kind.starts_with("Index") && node.get("Index Cond").is_none());
            if whole && !limited {
                full.push(format!("{relation}: {kind}"));
            }
        }
        for child in node["Plans"].as_array().into_iter().flatten() {
            walk(child, limited, full);
        }
    }
    let mut full = Vec::new();
    walk(&plan["Plan"], false, &mut full);
    full
}

/// The requests to check: every list sort (first and second page), every
/// grouping alone and in pairs, each filter alone, the other read endpoints.
async fn requests(app: &TestApp) -> Vec<String> {
    let spec = app.get_ok("/openapi.json").await;
    let values = |path: &str, name: &str| -> Vec<String> {
        spec["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == name)
            .flat_map(|p| {
                let schema = &p["schema"];
                let list = schema["enum"]
                    .as_array()
                    .or(schema["items"]["enum"].as_array())
                    .cloned()
                    .unwrap_or_default();
                list.into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
            })
            .filter(|v| !v.is_empty())
            .collect()
    };
    let mut uris = Vec::new();
    for sort in values("/v1/agreements", "sort") {
        let search = if sort.ends_with("relevance") {
            "&q=cyber"
        } else {
            ""
        };
        uris.push(format!("/v1/agreements?limit=20&sort={sort}{search}"));
        uris.push(format!(
            "/v1/agreements?limit=20&sort={sort}&partner=CY{search}"
        ));
    }
    for filter in [
        "partner=US",
        "partner=CY",
        "area=demining",
        "status=terminated",
        "kind=partnership",
        "year=2019",
        "signed_from=2019-01-01&signed_to=2019-12-31",
        "pledge_kind=financial",
        "currency=EUR&min_amount=1000000",
        "legally_binding=true",
        "count=true",
        "count=true&partner=US&status=signed",
        "count=true&area=demining",
        "format=csv&limit=20",
        "format=text&limit=20",
    ] {
        uris.push(format!("/v1/agreements?{filter}"));
    }
    for (path, name) in [
        ("/v1/stats/agreements", "group_by"),
        ("/v1/stats/pledges", "group_by"),
    ] {
        let groups = values(path, name);
        for (i, first) in groups.iter().enumerate() {
            uris.push(format!("{path}?group_by={first}"));
            uris.push(format!("{path}?group_by={first}&partner=US"));
            for second in &groups[i + 1..] {
                uris.push(format!("{path}?group_by={first},{second}"));
            }
        }
    }
    uris.extend(
        [
            "/v1/stats/agreements?group_by=year&status=signed&kind=bilateral_security",
            "/v1/stats/agreements?group_by=status&area=demining",
            "/v1/stats/pledges?group_by=year&pledge_kind=military",
            // Conditions on the pledges' agreements: the condition rollup.
            "/v1/stats/pledges?status=signed",
            "/v1/stats/pledges?group_by=year,kind&legally_binding=true",
            "/v1/stats/pledges?year=2024&kind=bilateral_security&pledge_kind=military",
            "/v1/partners?limit=50",
            "/v1/areas?limit=50",
            "/v1/partners/US",
            "/v1/areas/demining",
            "/v1/partners/US/agreements?limit=20",
            "/v1/areas/demining/agreements?limit=20&sort=-signed_on",
            "/v1/agreements/ua-jp-2024",
            "/v1/agreements/ua-jp-2024/history",
            "/v1/history?limit=20",
            "/v1/history?limit=20&entity=agreement",
            "/v1/changes?since=0&limit=20",
            "/v1/timeline?limit=20",
            // Filtered lists in an order the filter's own index does not give.
            "/v1/timeline?limit=20&partner=US",
            "/v1/timeline?limit=20&status=terminated",
            "/v1/timeline?limit=20&kind=partnership",
            "/v1/partners/US/agreements?limit=20&sort=-signed_on",
            "/v1/partners/US/agreements?limit=20&sort=title",
            "/v1/partners/US/agreements?limit=20&sort=-updated_at",
            "/v1/partners/US/agreements?limit=20&sort=partner",
        ]
        .map(str::to_owned),
    );
    // The second page of every list, by its cursor.
    let mut pages = Vec::new();
    for uri in uris.iter().filter(|u| u.contains("sort=")) {
        let first = app.get_ok(uri).await;
        if let Some(cursor) = first["next_cursor"].as_str() {
            pages.push(format!("{uri}&cursor={cursor}"));
        }
    }
    uris.extend(pages);
    uris
}

async fn plans_read_indexes_and_rollups(backend: Backend) {
    install_capture();
    let Some(mut database) = TestDatabase::new(backend).await else {
        return;
    };
    // Loaded first, by a store of its own: the plans of the load itself are
    // not the question.
    let loader = database.open().await;
    accords::seed::seed_if_empty(loader.as_ref()).await.unwrap();
    let generated = accords::generate::agreements(3, 0, 3000).unwrap();
    loader
        .bulk_insert_agreements(&generated.agreements)
        .await
        .unwrap();
    // A history as long as a store's that was edited for years (a bulk load
    // writes one entry), so its plans are those of a large table.
    database
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO history (at, actor, entity, entity_id, agreement_id, op, version, feed_seq, partner_code) \
             SELECT '2025-01-01T00:00:00Z', 'editor', CASE i % 3 WHEN 0 THEN 'agreement' WHEN 1 THEN 'pledge' ELSE 'source' END, \
             'ua-x-' || i, 'ua-x-' || (i / 3), 'update', 1, (SELECT MAX(feed_seq) FROM history) + i, 'US' FROM n",
        )
        .await;
    loader.analyze().await.unwrap();
    loader.close().await;
    if backend == Backend::Postgres {
        // Every statement's plan, as run, comes back as a notice. At a few
        // thousand rows a sequential read costs about what an index does, so
        // the planner takes either: with sequential reads priced out, one is
        // left only where no index can answer, which is the question here.
        let options = "-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 \
                       -c auto_explain.log_format=json -c auto_explain.log_level=notice -c enable_seqscan=off";
        database.url = format!(
            "{}?options={}",
            database.url,
            options.replace(' ', "%20").replace('=', "%3D")
        );
    }
    let app = TestApp::on(database).await;

    let uris = requests(&app).await;
    assert!(uris.len() > 80, "{} requests", uris.len());
    let mut misses = Vec::new();
    let mut checked = 0;
    for uri in &uris {
        captured().lock().unwrap().clear();
        let reply = app.get(uri).await;
        assert_eq!(reply.status, 200, "{uri}: {}", reply.text);
        let texts: Vec<String> = std::mem::take(&mut *captured().lock().unwrap());
        let mut full = Vec::new();
        for text in &texts {
            match backend {
                Backend::Sqlite => full.extend(sqlite_full_reads(&app.database, text).await),
                Backend::Postgres => {
                    let Some(start) = text.find('{') else {
                        continue;
                    };
                    let Ok(plan) = serde_json::from_str::<Value>(&text[start..]) else {
                        continue;
                    };
                    checked += 1;
                    full.extend(postgres_full_reads(&plan));
                }
            }
        }
        if backend == Backend::Sqlite {
            checked += texts.len();
        }
        let known = KNOWN_MISSES.iter().any(|(part, _)| uri.contains(part));
        if !full.is_empty() && !known {
            misses.push(format!("{uri}\n    {}", full.join("\n    ")));
        }
    }
    assert!(
        checked > uris.len(),
        "only {checked} plans seen for {} requests: is the statement log reaching the test?",
        uris.len()
    );
    assert!(
        misses.is_empty(),
        "{} of {} queries read a whole table:\n{}",
        misses.len(),
        uris.len(),
        misses.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_plans_read_indexes_and_rollups() {
    plans_read_indexes_and_rollups(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_plans_read_indexes_and_rollups() {
    plans_read_indexes_and_rollups(Backend::Postgres).await;
}
