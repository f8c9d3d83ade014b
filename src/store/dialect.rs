//! What differs between the SQL backends. Every query is written once, in
//! the resource files beside this one, over a [`Dialect`]; SQLite and
//! PostgreSQL each implement it (in `sqlite.rs` and `postgres.rs`) with
//! the few statements and codecs that really differ: how a transaction
//! begins, how amounts are stored, full-text search, notifications, locks,
//! and what a replay of a past revision is made of.

use std::future::Future;

use sqlx::types::Json;
use sqlx::types::JsonRawValue;

use super::webhooks::DatabasePool;
use super::{SearchCut, StoreError, StoreResult};
use crate::domain::money::Amount;
use crate::domain::query::SearchTerms;
use crate::domain::rates::Rate;

/// A connection of the dialect's database.
pub type Conn<D> = <<D as Dialect>::Db as sqlx::Database>::Connection;
/// A row of the dialect's database.
pub type DbRow<D> = <<D as Dialect>::Db as sqlx::Database>::Row;
/// The bound parameters of one statement.
pub type Args<'q, D> = <<D as Dialect>::Db as sqlx::Database>::Arguments<'q>;
/// A statement being built.
pub type Builder<'a, D> = sqlx::QueryBuilder<'a, <D as Dialect>::Db>;
/// A transaction of the dialect's database.
pub type Tx<D> = sqlx::Transaction<'static, <D as Dialect>::Db>;

/// A JSON document in a column (TEXT on SQLite, JSONB on PostgreSQL), kept
/// as its text: written as serialized, read back into any type.
pub type JsonDoc = Json<Box<JsonRawValue>>;

/// How many rows a statement changed.
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::postgres::PgQueryResult::rows_affected(self)
    }
}

/// A value written to and read from columns of `DB` as itself.
pub trait Column<DB: sqlx::Database>:
    for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB> + Send + Sync
{
}

impl<DB: sqlx::Database, T> Column<DB> for T where
    T: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB> + Send + Sync
{
}

/// `value` as a JSON column value.
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> StoreResult<JsonDoc> {
    serde_json::value::to_raw_value(value)
        .map(Json)
        .map_err(|e| StoreError::Internal(format!("cannot write a JSON column: {e}")))
}

/// A JSON column value read as `T`.
pub fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    Json(document): JsonDoc,
) -> StoreResult<T> {
    from_json_text(what, document.get())
}

/// JSON text the database wrote, read as `T`.
pub fn from_json_text<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

/// A stored value that does not read back as what was written: a fault.
pub fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("stored {what} is invalid: {detail}"))
}

/// A stored vocabulary value, which is a fault when it is not one.
pub fn vocabulary<V: crate::domain::Vocabulary>(text: &str) -> StoreResult<V> {
    V::parse(text).map_err(|e| corrupt("vocabulary value", format!("{text:?} {e}")))
}

/// The constraints a write may break that are the client's to fix (any
/// other violation is a fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    /// Two partners with one alpha-3 code.
    PartnerIso3,
    /// One URL twice among an agreement's sources.
    SourceUrl,
    /// An agreement naming a partner that does not exist.
    AgreementPartner,
    /// An area link naming an area that does not exist.
    LinkArea,
}

/// The differences between the SQL backends. A store is a `SqlStore` of
/// one dialect; the queries it runs are the same for both.
pub trait Dialect: Send + Sync + Sized + 'static {
    type Db: sqlx::Database<QueryResult: RowsAffected>;
    /// How an amount or a rate is stored: exact decimal TEXT on SQLite,
    /// NUMERIC on PostgreSQL.
    type Number: Column<Self::Db> + Unpin + 'static;
    /// What a store of this backend keeps beside its pool.
    type State: Send + Sync + 'static;

    /// Name of the backend, for logs and health output.
    const BACKEND: &'static str;
    /// Serialises the rollup refreshes of one partner ($1), where writers
    /// may overlap; None where one transaction writes at a time.
    const LOCK_PARTNER_ROLLUP: Option<&'static str>;
    /// Run once a large load is done: fresh statistics for the planner.
    const AFTER_BULK_LOAD: &'static str;
    /// The signing date in a page's filter (see `push_filters`).
    const SIGNED_ON_IN_PAGE: &'static str;
    /// The signing year of `a`, as a BIGINT.
    const SIGNED_YEAR: &'static str;
    /// How a search row `s` is found from its agreement `a`.
    const SEARCH_ROW_OF_AGREEMENT: &'static str;
    /// The columns of the table named $1, in order.
    const COLUMNS_OF_TABLE: &'static str;

    /// The migrations compiled into the binary.
    fn migrator() -> &'static sqlx::migrate::Migrator;

    /// Whether the backend has one writer at a time: its write transactions
    /// then take turns in the store rather than contend for the lock.
    const ONE_WRITER: bool;

    /// A transaction that writes.
    fn begin_write(
        pool: &sqlx::Pool<Self::Db>,
    ) -> impl Future<Output = Result<Tx<Self>, sqlx::Error>> + Send;

    /// One consistent snapshot for a read of several statements.
    fn begin_read(
        pool: &sqlx::Pool<Self::Db>,
    ) -> impl Future<Output = Result<Tx<Self>, sqlx::Error>> + Send;

    /// Joins the full-text matches of `terms` as `s` (columns `rank`, lower
    /// is better), all of them or, with a `cut`, those a page can hold.
    fn push_search_join(sql: &mut Builder<'_, Self>, terms: &SearchTerms, cut: Option<SearchCut>);

    /// The rows of a statement built with a [`Builder`]. (Only a backend
    /// can run one: its arguments borrow from the builder, which generic
    /// code cannot shorten.)
    fn fetch_built(
        sql: &mut Builder<'_, Self>,
        conn: &mut Conn<Self>,
    ) -> impl Future<Output = Result<Vec<DbRow<Self>>, sqlx::Error>> + Send;

    /// Runs a statement built with a [`Builder`].
    fn execute_built(
        sql: &mut Builder<'_, Self>,
        conn: &mut Conn<Self>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// ` IN` the list of `ids`, bound as one value.
    fn push_in_ids(query: &mut Builder<'_, Self>, ids: &[String]);

    /// Makes `text` the searchable text of the agreement.
    fn index_search_text(
        conn: &mut Conn<Self>,
        agreement_id: &str,
        text: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Removes the agreement's searchable text.
    fn unindex_search_text(
        conn: &mut Conn<Self>,
        agreement_id: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Settings for the transaction of a bulk load.
    fn prepare_bulk_load(conn: &mut Conn<Self>) -> impl Future<Output = StoreResult<()>> + Send;

    /// One seeding instance at a time, until the transaction ends.
    fn lock_for_seed(conn: &mut Conn<Self>) -> impl Future<Output = StoreResult<()>> + Send;

    /// One rates writer at a time, until the transaction ends.
    fn lock_for_rates(conn: &mut Conn<Self>) -> impl Future<Output = StoreResult<()>> + Send;

    /// Tells other instances, at commit, that change `seq` was written.
    fn notify_change(
        conn: &mut Conn<Self>,
        seq: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// A signal for every write any instance commits, where the backend
    /// can send one.
    fn listen_for_changes(pool: &sqlx::Pool<Self::Db>) -> Option<tokio::sync::mpsc::Receiver<()>>;

    /// Whether `error` is a violation of `constraint`, by the name the
    /// backend reports it under.
    fn violates(error: &sqlx::Error, constraint: Constraint) -> bool;

    /// What keeps a table's versions (migration 0014), undone in a replay.
    fn drop_versioning(table: &str) -> Vec<String>;

    /// The function building a JSON object of alternating keys and values.
    const JSON_OBJECT: &'static str;
    /// The aggregate of `value` over a subquery's rows as a JSON array in
    /// `order`, `[]` when there are none.
    fn json_array_of(value: &str, order: &str) -> String;
    /// A JSON document column as a value inside a built document (its
    /// JSON, not a string of it).
    fn json_in_document(column: &str) -> String;
    /// An amount column inside a built document, as its decimal text.
    fn amount_in_document(column: &str) -> String;

    fn amount_param(amount: &Amount) -> Self::Number;
    fn amount_from(value: Self::Number) -> Result<Amount, String>;
    fn rate_param(rate: &Rate) -> Self::Number;
    fn rate_from(value: Self::Number) -> Result<Rate, String>;

    /// The write-ahead log's size, where the store keeps one of its own.
    fn wal_bytes(state: &Self::State) -> Option<u64>;

    /// The pool, for the webhook queries.
    fn webhook_pool(pool: &sqlx::Pool<Self::Db>) -> DatabasePool;

    /// The pool and state of a new, private store holding exactly the rows
    /// of the store on `pool` as of `revision`.
    fn replay(
        pool: &sqlx::Pool<Self::Db>,
        state: &Self::State,
        revision: i64,
    ) -> impl Future<Output = StoreResult<(sqlx::Pool<Self::Db>, Self::State)>> + Send;
}

/// Begins a transaction in a task of its own. sqlx 0.8's `begin` is not
/// cancel-safe on either backend: a request cancelled (its client gone, at
/// the end of any load test) after BEGIN was sent hands its connection back
/// to the pool still inside the transaction. There the next borrower's
/// `begin` fails ("non-zero transaction depth": every later write on
/// SQLite's connections a 500) and its reads see an old snapshot. Spawned,
/// the begin always finishes; a transaction no one waits for any more is
/// dropped, which rolls it back.
pub(super) async fn begin<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    statement: &'static str,
) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.begin_with(statement).await })
        .await
        .map_err(|_| sqlx::Error::WorkerCrashed)?
}
