//! The store: one trait, one implementation per backend. SQLite is the
//! embedded default; PostgreSQL is chosen by a `postgres://` URL.

mod agreements;
mod areas;
mod child;
mod children;
mod dialect;
#[cfg(test)]
mod dialect_tests;
mod documents;
mod feed;
mod idempotency;
mod import;
mod keys;
mod partners;
mod postgres;
mod rates;
mod search;
mod sql_store;
mod sqlite;
mod stats;
pub mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::FieldError;
use crate::domain::agreement::{Agreement, AgreementDraft};
use crate::domain::api_key::ApiKey;
use crate::domain::area::{Area, AreaCode, AreaDraft};
use crate::domain::dataset::Dataset;
use crate::domain::money::Currency;
use crate::domain::partner::{Partner, PartnerCode, PartnerDraft};
use crate::domain::pledge::{Pledge, PledgeDraft};
use crate::domain::query::{
    AgreementCount, AgreementGroup, AgreementQuery, PledgeGroup, PledgeTotal, PledgeYearTotal,
};
use crate::domain::rates::{AnnualRate, DailyRate};
use crate::domain::source::{Source, SourceDraft};

pub use dialect::Dialect;
pub use postgres::{Postgres, PostgresStore};
pub use sql_store::SqlStore;
pub use sqlite::{Sqlite, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The row changed since the version the writer based its change on.
    #[error("version mismatch: the current version is {current}")]
    VersionMismatch { current: i64 },
    #[error("{0}")]
    Conflict(String),
    /// The write names things that do not exist or belong elsewhere.
    #[error("invalid reference")]
    Invalid(Vec<FieldError>),
    /// The database cannot be reached or is busy; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database has no room left for the write.
    #[error("store full")]
    Full,
    #[error("store error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Where a page of a list starts: after the item with this key.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: u32,
}

/// The matches a page in relevance order can hold: `limit` of them past
/// `after` (the rank and id that ended the page before), best first unless
/// `descending`. A backend may join more than `limit` (SQLite keeps every
/// match tied at either end, its search rows not knowing their ids); the
/// caller's order by (rank, id) and keyset choose the page among them.
#[derive(Debug, Clone)]
pub struct SearchCut {
    pub limit: i64,
    pub descending: bool,
    pub after: Option<(f64, String)>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The key of the last item when more may follow.
    pub next_after: Option<String>,
}

/// What an import did (or, in a dry run, would do): records counted, and
/// every row added, changed (field by field) or removed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    pub dry_run: bool,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub changes: Vec<crate::domain::dataset::RowChange>,
}

impl ImportSummary {
    pub(crate) fn count(&mut self, created: bool) {
        if created {
            self.created += 1;
        } else {
            self.updated += 1;
        }
    }
}

/// A partner lookup key that matched, and how well (see `KeyRank`).
#[derive(Debug, Clone)]
pub struct KeyMatch {
    pub key: String,
    pub partner: PartnerCode,
    pub rank: i64,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// The count of write transactions committed through this store, which
    /// moves after each commit: whoever keeps answers, or waits for work a
    /// write may have queued, watches it.
    fn commits(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Name of the backend, for logs and health output.
    fn backend(&self) -> &'static str;
    /// The connection pool, for queries kept outside this trait (webhooks).
    fn database(&self) -> webhooks::DatabasePool;
    /// Reachable, and every migration this binary carries has been applied.
    async fn ready(&self) -> StoreResult<()>;
    fn pool_status(&self) -> PoolStatus;
    async fn close(&self);

    /// Partners by code; with `only_with_agreements`, those named by at
    /// least one agreement.
    async fn list_partners(
        &self,
        page: &PageRequest,
        only_with_agreements: bool,
    ) -> StoreResult<Page<Partner>>;
    async fn get_partner(&self, code: &PartnerCode) -> StoreResult<Option<Partner>>;
    /// Partners whose lookup keys equal `folded_key`, best rank first.
    async fn find_partner_keys(&self, folded_key: &str) -> StoreResult<Vec<KeyMatch>>;
    /// Every lookup key, for "closest match" suggestions.
    async fn all_partner_keys(&self) -> StoreResult<Vec<KeyMatch>>;
    async fn create_partner(&self, actor: &str, draft: &PartnerDraft) -> StoreResult<Partner>;
    async fn replace_partner(
        &self,
        actor: &str,
        draft: &PartnerDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Partner>;
    async fn delete_partner(
        &self,
        actor: &str,
        code: &PartnerCode,
        expected_version: Option<i64>,
    ) -> StoreResult<()>;

    async fn list_areas(&self, page: &PageRequest) -> StoreResult<Page<Area>>;
    async fn get_area(&self, code: &AreaCode) -> StoreResult<Option<Area>>;
    /// Whether the area exists, without counting its agreements.
    async fn area_exists(&self, code: &AreaCode) -> StoreResult<bool>;
    async fn create_area(&self, actor: &str, draft: &AreaDraft) -> StoreResult<Area>;
    async fn replace_area(
        &self,
        actor: &str,
        draft: &AreaDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Area>;
    async fn delete_area(
        &self,
        actor: &str,
        code: &AreaCode,
        expected_version: Option<i64>,
    ) -> StoreResult<()>;

    /// Agreements matching the query, in its order; `page.after` is a key
    /// this method gave out as `next_after`.
    async fn list_agreements(
        &self,
        query: &AgreementQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Agreement>>;
    async fn count_agreements(&self, query: &AgreementQuery) -> StoreResult<i64>;
    /// How many agreements match the query, and how many sources they cite.
    async fn count_sources(&self, query: &AgreementQuery) -> StoreResult<SourceCount>;
    /// Exact pledge totals per currency and group, over matching agreements and pledges.
    async fn pledge_totals(
        &self,
        query: &AgreementQuery,
        groups: &[PledgeGroup],
    ) -> StoreResult<Vec<PledgeTotal>>;
    async fn agreement_counts(
        &self,
        query: &AgreementQuery,
        groups: &[AgreementGroup],
    ) -> StoreResult<Vec<AgreementCount>>;
    async fn get_agreement(&self, id: &str) -> StoreResult<Option<Agreement>>;
    /// Creates an agreement; without an id one is generated from partner and year.
    async fn create_agreement(&self, actor: &str, draft: &AgreementDraft)
    -> StoreResult<Agreement>;
    async fn replace_agreement(
        &self,
        actor: &str,
        id: &str,
        draft: &AgreementDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Agreement>;
    async fn delete_agreement(
        &self,
        actor: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()>;

    async fn get_pledge(&self, id: &str) -> StoreResult<Option<Pledge>>;
    async fn create_pledge(
        &self,
        actor: &str,
        agreement_id: &str,
        draft: &PledgeDraft,
    ) -> StoreResult<Pledge>;
    async fn replace_pledge(
        &self,
        actor: &str,
        id: &str,
        draft: &PledgeDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Pledge>;
    async fn delete_pledge(
        &self,
        actor: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()>;

    async fn get_source(&self, id: &str) -> StoreResult<Option<Source>>;
    async fn create_source(
        &self,
        actor: &str,
        agreement_id: &str,
        draft: &SourceDraft,
    ) -> StoreResult<Source>;
    async fn replace_source(
        &self,
        actor: &str,
        id: &str,
        draft: &SourceDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Source>;
    async fn delete_source(
        &self,
        actor: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()>;

    /// The whole store, in the import format, in a stable order.
    async fn export(&self) -> StoreResult<Dataset>;
    /// Upserts everything by id in one transaction: all or nothing.
    /// A dry run does everything in a transaction it then rolls back.
    async fn import(
        &self,
        actor: &str,
        dataset: &Dataset,
        dry_run: bool,
    ) -> StoreResult<ImportSummary>;
    /// Inserts new agreements with their children in large batches, without
    /// history entries: for generated benchmark data only.
    async fn bulk_insert_agreements(&self, agreements: &[AgreementDraft]) -> StoreResult<()>;
    /// The store-wide revision: the number of the latest change. It moves
    /// with every committed write, so a list's ETag can be checked cheaply.
    async fn revision(&self) -> StoreResult<i64>;
    /// Where the change feed stands just before the first change made at or
    /// after `at`: the `since` that replays changes from that time on (the
    /// revision itself when nothing changed since).
    async fn feed_position_at(&self, at: chrono::DateTime<chrono::Utc>) -> StoreResult<i64>;
    /// The change feed after `filter.since`, in order.
    async fn changes(&self, filter: &ChangeFilter) -> StoreResult<Vec<ChangeEntry>>;
    /// The latest changes, newest first, each with the record before and
    /// after it (what a feed a person reads shows).
    async fn latest_changes(&self, filter: &LatestChangeFilter) -> StoreResult<Vec<ChangeDetail>>;
    /// Every change after revision `after` up to `upto`, oldest first, with
    /// the record before and after each (what a kept answer's retirement is
    /// decided from).
    async fn changes_between(&self, after: i64, upto: i64) -> StoreResult<Vec<ChangeDetail>>;
    /// A signal for every write committed by any instance, where the backend
    /// can send one (PostgreSQL LISTEN/NOTIFY); None where it cannot.
    async fn change_notifications(&self) -> Option<tokio::sync::mpsc::Receiver<()>>;
    /// Refreshes the planner's statistics after a large load, so plans walk
    /// indexes in order instead of sorting what a filter matched (and, on
    /// PostgreSQL, marks the loaded pages all-visible, so index-only scans
    /// need not visit them).
    async fn analyze(&self) -> StoreResult<()>;
    /// Imports `dataset` only into a store that holds nothing yet, in one
    /// transaction, safe against other instances seeding at the same time.
    async fn seed(&self, actor: &str, dataset: &Dataset) -> StoreResult<Option<ImportSummary>>;
    /// True when no agreement, partner or area is stored yet.
    async fn is_empty(&self) -> StoreResult<bool>;

    /// Brings back a deleted agreement, with its children, from its history.
    async fn restore_agreement(&self, actor: &str, id: &str) -> StoreResult<Agreement>;
    /// History entries, newest first.
    async fn history(&self, filter: &HistoryFilter) -> StoreResult<Page<HistoryEntry>>;

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKey>>;
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    /// Revokes the named key; false when there is no such key.
    async fn revoke_api_key(&self, name: &str) -> StoreResult<bool>;

    /// Upserts rates in one transaction (all or nothing) and recomputes the
    /// annual averages of every (currency, year) they change.
    async fn load_rates(&self, actor: &str, rates: &[DailyRate]) -> StoreResult<ImportSummary>;
    /// Daily rates by currency and date, keyset-paged after "CUR/YYYY-MM-DD".
    async fn list_rates(
        &self,
        filter: &RateFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DailyRate>>;
    async fn get_rate(
        &self,
        currency: &Currency,
        date: chrono::NaiveDate,
    ) -> StoreResult<Option<DailyRate>>;
    /// Creates or replaces one rate.
    async fn put_rate(&self, actor: &str, rate: &DailyRate) -> StoreResult<RateWrite>;
    /// Deletes one rate; NotFound when there is none.
    async fn delete_rate(
        &self,
        actor: &str,
        currency: &Currency,
        date: chrono::NaiveDate,
    ) -> StoreResult<()>;
    /// Annual averages, with the rates revision they were read at.
    async fn annual_rates(&self, filter: &AnnualFilter) -> StoreResult<AnnualRates>;
    /// Pledge sums per group, currency and conversion year (the pledge's
    /// year_from, else its agreement's signing year), under the filters of
    /// [`Store::pledge_totals`].
    async fn pledge_year_totals(
        &self,
        query: &AgreementQuery,
        groups: &[PledgeGroup],
    ) -> StoreResult<Vec<PledgeYearTotal>>;

    /// Claims an Idempotency-Key for one request, or tells what became of it.
    async fn reserve_idempotency_key(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
    ) -> StoreResult<Reservation>;
    /// Keeps the response of a finished request for replay.
    async fn complete_idempotency_key(
        &self,
        caller: &str,
        key: &str,
        response: &StoredResponse,
    ) -> StoreResult<()>;
    /// Frees a key whose request failed, so a retry runs again.
    async fn release_idempotency_key(&self, caller: &str, key: &str) -> StoreResult<()>;

    /// The revisions a past answer can be given at: from the one the
    /// store's history of rows began at (migration 0014) to the current one.
    async fn revision_bounds(&self) -> StoreResult<RevisionBounds>;
    /// The last revision committed at or before `at`; None when the first
    /// change came later.
    async fn revision_at(&self, at: chrono::DateTime<chrono::Utc>) -> StoreResult<Option<i64>>;
    /// One agreement exactly as it stood at `revision` (one indexed lookup
    /// per table, through the same row mapping as [`Store::get_agreement`]).
    async fn get_agreement_at(&self, id: &str, revision: i64) -> StoreResult<Option<Agreement>>;
    /// A new, private store of the same backend holding exactly the rows as
    /// of `revision` (derived tables rebuilt from them): whole-store answers
    /// at a past revision are the same queries run over it. Dropping it
    /// frees it. Costs a copy of the store: callers keep a few.
    async fn replay(&self, revision: i64) -> StoreResult<Arc<dyn Store>>;
}

/// The revisions a past answer can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionBounds {
    pub earliest: i64,
    pub latest: i64,
}

/// The connection pool right now, for /metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStatus {
    pub size: u32,
    pub idle: usize,
    /// SQLite: the write-ahead log's size in bytes, as last measured.
    pub wal_bytes: Option<u64>,
}

pub use crate::domain::ENTITIES;

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChangeEntry {
    pub seq: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub entity: String,
    pub id: String,
    pub agreement_id: Option<String>,
    pub partner: Option<String>,
    pub op: String,
    pub version: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub since: i64,
    pub entity: Option<String>,
    pub partner: Option<PartnerCode>,
    pub limit: u32,
}

/// Agreements matching a query and the sources they cite, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCount {
    pub agreements: i64,
    pub sources: i64,
}

/// Which of the latest changes to read: of these kinds of record, of this
/// partner, of agreements in this area or of this kind (as they are now).
#[derive(Debug, Clone, Default)]
pub struct LatestChangeFilter {
    pub entity: Option<String>,
    pub partner: Option<PartnerCode>,
    pub area: Option<AreaCode>,
    pub agreement_kind: Option<crate::domain::agreement::AgreementKind>,
    pub limit: u32,
}

/// A change with the record as it was before and after it.
#[derive(Debug, Clone)]
pub struct ChangeDetail {
    pub entry: ChangeEntry,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// One recorded change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryEntry {
    pub seq: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// The name of the key that made the change.
    #[serde(rename = "key")]
    pub actor: String,
    pub entity: String,
    #[serde(rename = "id")]
    pub entity_id: String,
    pub agreement_id: Option<String>,
    pub op: String,
    pub version: i64,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Which history entries to list; `before_seq` pages backwards.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub actor: Option<String>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    /// Entries of this agreement and of its pledges and sources.
    pub agreement_id: Option<String>,
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// Which daily rates to list: any of these currencies (all when empty), in a year.
#[derive(Debug, Clone, Default)]
pub struct RateFilter {
    pub currencies: Vec<Currency>,
    pub year: Option<i64>,
}

/// Which annual averages to read: any of these currencies (all when empty)
/// in any of these years (all when None; none when empty).
#[derive(Debug, Clone, Default)]
pub struct AnnualFilter {
    pub currencies: Vec<Currency>,
    pub years: Option<Vec<i64>>,
}

/// Annual averages as of one rates revision.
#[derive(Debug, Clone, Default)]
pub struct AnnualRates {
    /// The change number of the latest rates change (0: none yet).
    pub revision: i64,
    pub items: Vec<AnnualRate>,
}

/// What a PUT of one rate did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateWrite {
    Created,
    Updated,
    Unchanged,
}

/// A response kept for replaying an idempotent retry.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// The key is new: run the request.
    Reserved,
    /// The same request ran before: answer as it was answered.
    Replay(StoredResponse),
    /// The key was used with a different request.
    Mismatch,
    /// The first request with this key has not finished yet.
    InProgress,
    /// The first request committed its change but died before its answer
    /// was kept: this is the change (the first it recorded), to answer from.
    Committed(CommittedChange),
}

/// A change a request committed, as the history recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedChange {
    pub seq: i64,
    pub entity: String,
    pub entity_id: String,
    pub op: String,
}

tokio::task_local! {
    /// The (caller, Idempotency-Key) of the request this task is answering:
    /// every change it commits is tied to the key in the same transaction.
    static IDEMPOTENCY_KEY: (String, String);
}

/// Runs `work` with its changes tied to `(caller, key)`.
pub async fn with_idempotency_key<F: std::future::Future>(
    caller: String,
    key: String,
    work: F,
) -> F::Output {
    IDEMPOTENCY_KEY.scope((caller, key), work).await
}

/// The (caller, key) of the request being answered, if it has one.
pub(crate) fn current_idempotency_key() -> Option<(String, String)> {
    IDEMPOTENCY_KEY.try_with(Clone::clone).ok()
}

pub use crate::domain::money::MAX_TOTAL_MINOR;

/// How long an Idempotency-Key is remembered (at least the promised 24 hours).
pub const IDEMPOTENCY_RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(48);
/// A reservation older than this belongs to a request that died; it may be taken over.
pub const IDEMPOTENCY_ABANDONED: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// How to reach the database and how many connections to keep.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub database_url: String,
    pub max_connections: u32,
    pub acquire_timeout: std::time::Duration,
}

/// Opens the backend the URL names and brings its schema up to date.
pub async fn open(options: &StoreOptions) -> StoreResult<Arc<dyn Store>> {
    let url = options.database_url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(options).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(options).await?))
    } else {
        Err(StoreError::Internal(format!(
            "DATABASE_URL must start with sqlite:, postgres:// or postgresql://, not {:?}",
            url.split(':').next().unwrap_or_default()
        )))
    }
}

pub(crate) use crate::domain::clock::now;

/// Classifies driver errors: what a retry may fix is `Unavailable`, a full
/// disk is `Full`, constraint violations are left to the caller.
pub(crate) fn classify(error: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match error {
        E::RowNotFound => StoreError::NotFound,
        E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
            StoreError::Unavailable(error.to_string())
        }
        E::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // Each backend's codes mean something else ("22021" is a
            // PostgreSQL encoding error whose low byte is SQLite's BUSY), so
            // each is read only by its own rules.
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                classify_postgres(&code, db.message())
            } else {
                classify_sqlite(&code, db.message())
            }
        }
        other => StoreError::Internal(other.to_string()),
    }
}

/// SQLite's result codes (the low byte of an extended code is its primary code).
fn classify_sqlite(code: &str, message: &str) -> StoreError {
    let primary = code.parse::<i64>().map(|n| n & 0xff).unwrap_or(-1);
    match primary {
        // SQLITE_BUSY, SQLITE_LOCKED.
        5 | 6 => StoreError::Unavailable(format!("database is locked: {message}")),
        // SQLITE_FULL.
        13 => StoreError::Full,
        _ => StoreError::Internal(format!("database error {code}: {message}")),
    }
}

/// PostgreSQL's SQLSTATE classes.
fn classify_postgres(code: &str, message: &str) -> StoreError {
    match code {
        "53100" => StoreError::Full,
        // Connection exceptions, shutdown, too many connections, serialization
        // failures and deadlocks: a retry may succeed.
        c if c.starts_with("08")
            || c.starts_with("57P")
            || c == "53300"
            || c == "40001"
            || c == "40P01" =>
        {
            StoreError::Unavailable(message.to_owned())
        }
        // Data exceptions (a value the column cannot hold: a NUL in text, a
        // number out of range) come from input the parsers let through.
        c if c.starts_with("22") => StoreError::Invalid(vec![crate::domain::FieldError::new(
            "",
            format!("a value cannot be stored: {message}"),
        )]),
        _ => StoreError::Internal(format!("database error {code}: {message}")),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        classify(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(e) => classify(e),
            other => StoreError::Internal(format!("migration failed: {other}")),
        }
    }
}
