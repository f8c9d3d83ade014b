//! Each dialect's own statements, run on a real database: SQLite in a
//! temporary file, PostgreSQL in a fresh database on TEST_POSTGRES_URL
//! (skipped when it is unset, except under CI=true, as the suite does).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::Row as _;

use super::dialect::{Args, Builder, Conn, DbRow, Dialect, JsonDoc};
use super::{PageRequest, PostgresStore, SearchCut, SqlStore, SqliteStore, StoreOptions};
use crate::domain::money::Amount;
use crate::domain::query::{AgreementQuery, SearchTerms};
use crate::domain::rates::Rate;

const AMOUNTS: [&str; 5] = [
    "0.01",
    "1",
    "1234567.89",
    "4500000000",
    "9999999999999999.99",
];
const RATES: [&str; 4] = ["0.0000000001", "1", "41.2345", "123456789012.5"];

fn options(database_url: String) -> StoreOptions {
    StoreOptions {
        database_url,
        max_connections: 4,
        acquire_timeout: Duration::from_secs(5),
    }
}

fn unique_name() -> String {
    static MADE: AtomicU32 = AtomicU32::new(0);
    let made = MADE.fetch_add(1, Ordering::Relaxed);
    format!("accords_dialect_{}_{made}", std::process::id())
}

/// Writes each amount and rate into a column of the type the migrations
/// give it, and reads it back through the dialect's codec, unchanged.
async fn numbers_round_trip<D: Dialect>(store: &SqlStore<D>, amount_type: &str, rate_type: &str)
where
    for<'c> &'c mut Conn<D>: sqlx::Executor<'c, Database = D::Db>,
    for<'q> Args<'q, D>: sqlx::IntoArguments<'q, D::Db>,
    usize: sqlx::ColumnIndex<DbRow<D>>,
{
    let mut tx = D::begin_write(store.pool()).await.expect("begin");
    sqlx::query(&format!(
        "CREATE TEMPORARY TABLE numbers (amount {amount_type}, rate {rate_type})"
    ))
    .execute(&mut *tx)
    .await
    .expect("create the table");
    for text in AMOUNTS {
        let amount = Amount::parse(text).expect("an amount");
        sqlx::query("INSERT INTO numbers (amount) VALUES ($1)")
            .bind(D::amount_param(&amount))
            .execute(&mut *tx)
            .await
            .expect("write the amount");
        let stored: D::Number = sqlx::query_scalar("SELECT amount FROM numbers")
            .fetch_one(&mut *tx)
            .await
            .expect("read the amount");
        let read = D::amount_from(stored).expect("a valid amount");
        assert_eq!(read, amount, "{}: {text}", D::BACKEND);
        assert_eq!(read.to_string(), amount.to_string(), "{}", D::BACKEND);
        sqlx::query("DELETE FROM numbers")
            .execute(&mut *tx)
            .await
            .expect("empty the table");
    }
    for text in RATES {
        let rate = Rate::parse(text).expect("a rate");
        sqlx::query("INSERT INTO numbers (rate) VALUES ($1)")
            .bind(D::rate_param(&rate))
            .execute(&mut *tx)
            .await
            .expect("write the rate");
        let stored: D::Number = sqlx::query_scalar("SELECT rate FROM numbers")
            .fetch_one(&mut *tx)
            .await
            .expect("read the rate");
        assert_eq!(
            D::rate_from(stored).expect("a valid rate"),
            rate,
            "{}: {text}",
            D::BACKEND
        );
        sqlx::query("DELETE FROM numbers")
            .execute(&mut *tx)
            .await
            .expect("empty the table");
    }
    tx.rollback().await.expect("roll back");
}

/// The JSON a dialect builds (the children of an agreement are read this
/// way): an array in the order asked for, `[]` for no rows, a JSON column
/// embedded as JSON rather than as a string of it, and an amount as its
/// exact decimal text.
async fn documents_are_built<D: Dialect>(store: &SqlStore<D>, amount_type: &str, doc_type: &str)
where
    for<'c> &'c mut Conn<D>: sqlx::Executor<'c, Database = D::Db>,
    for<'q> Args<'q, D>: sqlx::IntoArguments<'q, D::Db>,
    usize: sqlx::ColumnIndex<DbRow<D>>,
    JsonDoc: for<'r> sqlx::Decode<'r, D::Db> + sqlx::Type<D::Db>,
    i64: for<'q> sqlx::Encode<'q, D::Db> + sqlx::Type<D::Db>,
    for<'q> &'q str: sqlx::Encode<'q, D::Db> + sqlx::Type<D::Db>,
{
    let mut tx = D::begin_write(store.pool()).await.expect("begin");
    sqlx::query(&format!(
        "CREATE TEMPORARY TABLE docs (position BIGINT, amount {amount_type}, doc {doc_type})"
    ))
    .execute(&mut *tx)
    .await
    .expect("create the table");
    for (position, amount, doc) in [
        (2_i64, "1234567.89", r#"{"a": [1, "x"]}"#),
        (1, "9999999999999999.99", r#"{"b": null}"#),
        (3, "0.01", "[]"),
    ] {
        sqlx::query(&format!(
            "INSERT INTO docs (position, amount, doc) VALUES ($1, $2, CAST($3 AS {doc_type}))"
        ))
        .bind(position)
        .bind(D::amount_param(&Amount::parse(amount).expect("an amount")))
        .bind(doc)
        .execute(&mut *tx)
        .await
        .expect("write a row");
    }
    let value = format!(
        "{}('position', d.position, 'amount', {}, 'doc', {})",
        D::JSON_OBJECT,
        D::amount_in_document("d.amount"),
        D::json_in_document("d.doc")
    );
    let built = async |tx: &mut Conn<D>, condition: &str| -> serde_json::Value {
        let sql = format!(
            "SELECT {} AS built FROM docs d WHERE {condition}",
            D::json_array_of(&value, "d.position")
        );
        let row = sqlx::query(&sql).fetch_one(&mut *tx).await.expect("build");
        let document: JsonDoc = row.try_get(0).expect("a JSON document");
        serde_json::from_str(document.0.get()).expect("valid JSON")
    };
    assert_eq!(
        built(&mut tx, "d.position < 3").await,
        serde_json::json!([
            {"position": 1, "amount": "9999999999999999.99", "doc": {"b": null}},
            {"position": 2, "amount": "1234567.89", "doc": {"a": [1, "x"]}},
        ]),
        "{}",
        D::BACKEND
    );
    assert_eq!(
        built(&mut tx, "d.position > 5").await,
        serde_json::json!([]),
        "{}",
        D::BACKEND
    );
    tx.rollback().await.expect("roll back");
}

/// A page read without a transaction checks each agreement's children
/// against the version the page read: they are accepted when nothing was
/// written in between, refused after a write to one of the page's
/// agreements (and `list_agreements` then reads the page again in one
/// snapshot, whole).
async fn a_page_straddling_a_write_is_noticed<D: Dialect>(store: &SqlStore<D>)
where
    SqlStore<D>: super::Store + StraddledPage,
{
    crate::seed::seed_if_empty(store).await.expect("seed");
    assert!(
        store.children_accepted(false).await.expect("a page"),
        "{}: children refused with no write in between",
        D::BACKEND
    );
    assert!(
        !store.children_accepted(true).await.expect("a page"),
        "{}: children of a newer version than the page's were accepted",
        D::BACKEND
    );
    let query = AgreementQuery::default();
    let first = PageRequest {
        after: None,
        limit: 5,
    };
    let listed = super::Store::list_agreements(store, &query, &first)
        .await
        .expect("a list");
    assert_eq!(listed.items.len(), 5);
    assert!(listed.items.iter().any(|a| !a.pledges.is_empty()));
}

/// The steps of [`a_page_straddling_a_write_is_noticed`] inside the store.
pub(super) trait StraddledPage {
    /// Reads the first page of agreements without their children, then
    /// (with `write`) gives its third agreement a new version, then reads
    /// the page's children: whether they were accepted.
    async fn children_accepted(&self, write: bool) -> super::StoreResult<bool>;
}

/// The ids of the agreements the full-text join matches, best first.
async fn matches<D: Dialect>(conn: &mut Conn<D>, words: &str, cut: Option<SearchCut>) -> Vec<String>
where
    for<'c> &'c mut Conn<D>: sqlx::Executor<'c, Database = D::Db>,
    for<'q> Args<'q, D>: sqlx::IntoArguments<'q, D::Db>,
    usize: sqlx::ColumnIndex<DbRow<D>>,
    String: for<'r> sqlx::Decode<'r, D::Db> + sqlx::Type<D::Db>,
{
    let terms = SearchTerms::parse(words).expect("search terms");
    let mut sql = Builder::<D>::new("SELECT a.id FROM agreements a");
    D::push_search_join(&mut sql, &terms, cut);
    sql.push(" ORDER BY s.rank, a.id");
    let rows = D::fetch_built(&mut sql, conn).await.expect("search");
    rows.iter()
        .map(|row| row.try_get::<String, _>(0).expect("an id"))
        .collect()
}

/// An agreement indexed with a text is found by the prefixes of its
/// words, with and without a page's cut, and no longer once unindexed.
async fn search_by_prefix<D: Dialect>(store: &SqlStore<D>)
where
    for<'c> &'c mut Conn<D>: sqlx::Executor<'c, Database = D::Db>,
    for<'q> Args<'q, D>: sqlx::IntoArguments<'q, D::Db>,
    usize: sqlx::ColumnIndex<DbRow<D>>,
    String: for<'r> sqlx::Decode<'r, D::Db> + sqlx::Type<D::Db>,
    SqlStore<D>: super::Store,
{
    crate::seed::seed_if_empty(store).await.expect("seed");
    let mut tx = D::begin_write(store.pool()).await.expect("begin");
    let id: String = sqlx::query_scalar("SELECT id FROM agreements ORDER BY id LIMIT 1")
        .fetch_one(&mut *tx)
        .await
        .expect("an agreement");
    D::index_search_text(&mut tx, &id, "zanzibarian sunflower treaty")
        .await
        .expect("index");
    assert_eq!(
        matches::<D>(&mut tx, "zanzib sunfl", None).await,
        std::slice::from_ref(&id)
    );
    let cut = SearchCut {
        limit: 1,
        descending: false,
        after: None,
    };
    assert_eq!(
        matches::<D>(&mut tx, "zanzibarian", Some(cut)).await,
        std::slice::from_ref(&id)
    );
    assert!(matches::<D>(&mut tx, "zanzibarx", None).await.is_empty());
    D::unindex_search_text(&mut tx, &id).await.expect("unindex");
    assert!(matches::<D>(&mut tx, "zanzib", None).await.is_empty());
    tx.rollback().await.expect("roll back");
}

async fn sqlite_store() -> (SqliteStore, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name()));
    let store = SqliteStore::connect(&options(format!("sqlite:{}", path.display())))
        .await
        .expect("open SQLite");
    (store, path)
}

async fn remove_sqlite(store: SqliteStore, path: std::path::PathBuf) {
    store.pool().close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Runs `test` on a store in a fresh PostgreSQL database, dropped after.
async fn on_postgres(test: impl AsyncFnOnce(&PostgresStore)) {
    use sqlx::Connection as _;
    let admin_url = match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true requires TEST_POSTGRES_URL: the dialect tests must run on PostgreSQL \
                     too"
                );
            }
            eprintln!("TEST_POSTGRES_URL is not set: skipping the PostgreSQL dialect test");
            return;
        }
    };
    let name = unique_name();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("reach PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create a database");
    let base = admin_url.split('?').next().unwrap_or(&admin_url);
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    let store = PostgresStore::connect(&options(format!("{server}/{name}")))
        .await
        .expect("open PostgreSQL");
    test(&store).await;
    store.pool().close().await;
    drop(store);
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop the database");
}

#[tokio::test]
async fn sqlite_numbers_round_trip() {
    let (store, path) = sqlite_store().await;
    numbers_round_trip(&store, "TEXT", "TEXT").await;
    remove_sqlite(store, path).await;
}

#[tokio::test]
async fn sqlite_search_by_prefix() {
    let (store, path) = sqlite_store().await;
    search_by_prefix(&store).await;
    remove_sqlite(store, path).await;
}

#[tokio::test]
async fn postgres_numbers_round_trip() {
    on_postgres(async |store| numbers_round_trip(store, "NUMERIC(20, 2)", "NUMERIC(22, 10)").await)
        .await;
}

#[tokio::test]
async fn postgres_search_by_prefix() {
    on_postgres(async |store| search_by_prefix(store).await).await;
}

#[tokio::test]
async fn sqlite_documents_are_built() {
    let (store, path) = sqlite_store().await;
    documents_are_built(&store, "TEXT", "TEXT").await;
    remove_sqlite(store, path).await;
}

#[tokio::test]
async fn postgres_documents_are_built() {
    on_postgres(async |store| documents_are_built(store, "NUMERIC(20, 2)", "JSONB").await).await;
}

#[tokio::test]
async fn sqlite_a_page_straddling_a_write_is_noticed() {
    let (store, path) = sqlite_store().await;
    a_page_straddling_a_write_is_noticed(&store).await;
    remove_sqlite(store, path).await;
}

#[tokio::test]
async fn postgres_a_page_straddling_a_write_is_noticed() {
    on_postgres(async |store| a_page_straddling_a_write_is_noticed(store).await).await;
}
