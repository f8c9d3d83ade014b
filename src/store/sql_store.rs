//! The store both SQL backends share: every query is written once over a
//! [`Dialect`], which supplies what differs between SQLite and PostgreSQL.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::{Mutex, MutexGuard, watch};

use super::child::{ChildDraft, ChildKind};
use super::dialect::{Args, Builder, Column, Conn, DbRow, Dialect, JsonDoc, Tx};
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
use crate::domain::rates::DailyRate;
use crate::domain::source::{Source, SourceDraft};
use crate::store::{
    AnnualFilter, AnnualRates, ChangeDetail, ChangeEntry, ChangeFilter, HistoryEntry,
    HistoryFilter, ImportSummary, KeyMatch, LatestChangeFilter, Page, PageRequest, RateFilter,
    RateWrite, Reservation, SourceCount, Store, StoreError, StoreResult, StoredResponse,
};

/// SQLite has one writer at a time, and a writer that finds the lock taken
/// sleeps and retries (up to 100 ms a time), so concurrent writers starve
/// each other: the 99th percentile of 4 writers was 740 ms for a 1.5 ms
/// write. Write transactions through one store take turns in order instead,
/// waiting at most this long; past it (an import holding the lock) they try
/// the lock as before, and answer 503 if it stays taken.
const WRITE_TURN_WAIT: Duration = Duration::from_secs(1);

/// A store on one SQL backend: the pool, and what the backend keeps beside it.
pub struct SqlStore<D: Dialect> {
    pub(super) pool: sqlx::Pool<D::Db>,
    pub(super) state: D::State,
    /// The turn of write transactions, where the backend has one writer.
    write_turn: Option<Mutex<()>>,
    /// How many write transactions this store has committed: readers that
    /// keep answers, and webhook dispatchers, watch it.
    committed: watch::Sender<u64>,
}

/// A write transaction of a [`SqlStore`]: its connection (through `Deref`),
/// the writer's turn while it lasts, and the announcement of its commit.
pub(super) struct WriteTx<'s, D: Dialect> {
    tx: Tx<D>,
    _turn: Option<MutexGuard<'s, ()>>,
    committed: &'s watch::Sender<u64>,
}

impl<D: Dialect> WriteTx<'_, D> {
    /// Commits, then tells whoever watches the store.
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        self.committed.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    pub(super) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl<D: Dialect> Deref for WriteTx<'_, D> {
    type Target = Conn<D>;

    fn deref(&self) -> &Conn<D> {
        &self.tx
    }
}

impl<D: Dialect> DerefMut for WriteTx<'_, D> {
    fn deref_mut(&mut self) -> &mut Conn<D> {
        &mut self.tx
    }
}

impl<D: Dialect> SqlStore<D> {
    pub(super) fn new(pool: sqlx::Pool<D::Db>, state: D::State) -> Self {
        Self {
            pool,
            state,
            write_turn: D::ONE_WRITER.then(|| Mutex::new(())),
            committed: watch::channel(0).0,
        }
    }

    /// Begins a write transaction, after the writers before it where the
    /// backend has one writer at a time.
    pub(super) async fn begin_write(&self) -> Result<WriteTx<'_, D>, sqlx::Error> {
        let turn = match &self.write_turn {
            Some(turn) => tokio::time::timeout(WRITE_TURN_WAIT, turn.lock())
                .await
                .ok(),
            None => None,
        };
        Ok(WriteTx {
            tx: D::begin_write(&self.pool).await?,
            _turn: turn,
            committed: &self.committed,
        })
    }

    /// The count of write transactions committed through this store.
    pub(super) fn commits(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// The pool itself, for tests that must hold or starve its connections.
    pub fn pool(&self) -> &sqlx::Pool<D::Db> {
        &self.pool
    }
}

impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut Conn<D>: sqlx::Executor<'c, Database = D::Db>,
    for<'q> Args<'q, D>: sqlx::IntoArguments<'q, D::Db>,
    for<'r> &'r str: sqlx::ColumnIndex<DbRow<D>> + sqlx::Decode<'r, D::Db> + sqlx::Type<D::Db>,
    for<'q> &'q str: sqlx::Encode<'q, D::Db>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, D::Db>,
    usize: sqlx::ColumnIndex<DbRow<D>>,
    i64: Column<D::Db>,
    f64: Column<D::Db>,
    bool: Column<D::Db>,
    String: Column<D::Db>,
    NaiveDate: Column<D::Db>,
    DateTime<Utc>: Column<D::Db>,
    JsonDoc: Column<D::Db>,
    Option<i64>: Column<D::Db>,
    Option<bool>: Column<D::Db>,
    Option<String>: Column<D::Db>,
    Option<NaiveDate>: Column<D::Db>,
    Option<DateTime<Utc>>: Column<D::Db>,
    Option<JsonDoc>: Column<D::Db>,
{
    pub(super) fn invalid(field: &str, message: &str) -> StoreError {
        StoreError::Invalid(vec![FieldError::new(field, message)])
    }

    /// After an UPDATE or DELETE guarded by id and version touched nothing:
    /// was the row missing, or had it moved on?
    pub(super) async fn missing_or_moved(
        conn: &mut Conn<D>,
        table: &str,
        key_column: &str,
        key: &str,
    ) -> StoreError {
        let sql = format!("SELECT version FROM {table} WHERE {key_column} = $1");
        match sqlx::query_scalar::<_, i64>(&sql)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
        {
            Ok(Some(current)) => StoreError::VersionMismatch { current },
            Ok(None) => StoreError::NotFound,
            Err(e) => e.into(),
        }
    }

    /// The one row a built statement returns; NotFound when there is none.
    pub(super) async fn fetch_one_built(
        sql: &mut Builder<'_, D>,
        conn: &mut Conn<D>,
    ) -> StoreResult<DbRow<D>> {
        let rows = D::fetch_built(sql, conn).await?;
        rows.into_iter().next().ok_or(StoreError::NotFound)
    }

    pub(super) fn page_of<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Page<T> {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_after = if more { items.last().map(&key) } else { None };
        Page { items, next_after }
    }
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D>
where
    for<'c> &'c mut Conn<D>: sqlx::Executor<'c, Database = D::Db>,
    for<'q> Args<'q, D>: sqlx::IntoArguments<'q, D::Db>,
    for<'r> &'r str: sqlx::ColumnIndex<DbRow<D>> + sqlx::Decode<'r, D::Db> + sqlx::Type<D::Db>,
    for<'q> &'q str: sqlx::Encode<'q, D::Db>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, D::Db>,
    usize: sqlx::ColumnIndex<DbRow<D>>,
    i64: Column<D::Db>,
    f64: Column<D::Db>,
    bool: Column<D::Db>,
    String: Column<D::Db>,
    NaiveDate: Column<D::Db>,
    DateTime<Utc>: Column<D::Db>,
    JsonDoc: Column<D::Db>,
    Option<i64>: Column<D::Db>,
    Option<bool>: Column<D::Db>,
    Option<String>: Column<D::Db>,
    Option<NaiveDate>: Column<D::Db>,
    Option<DateTime<Utc>>: Column<D::Db>,
    Option<JsonDoc>: Column<D::Db>,
{
    fn commits(&self) -> watch::Receiver<u64> {
        SqlStore::commits(self)
    }

    fn backend(&self) -> &'static str {
        D::BACKEND
    }

    fn database(&self) -> crate::store::webhooks::DatabasePool {
        D::webhook_pool(&self.pool)
    }

    async fn ready(&self) -> StoreResult<()> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        let carried = D::migrator().iter().count() as i64;
        if applied < carried {
            return Err(StoreError::Unavailable(format!(
                "{applied} of {carried} migrations applied"
            )));
        }
        Ok(())
    }

    fn pool_status(&self) -> crate::store::PoolStatus {
        crate::store::PoolStatus {
            size: self.pool.size(),
            idle: self.pool.num_idle(),
            wal_bytes: D::wal_bytes(&self.state),
        }
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn list_partners(
        &self,
        page: &PageRequest,
        only_with_agreements: bool,
    ) -> StoreResult<Page<Partner>> {
        SqlStore::list_partners(self, page, only_with_agreements).await
    }

    async fn get_partner(&self, code: &PartnerCode) -> StoreResult<Option<Partner>> {
        SqlStore::get_partner(self, code).await
    }

    async fn find_partner_keys(&self, folded_key: &str) -> StoreResult<Vec<KeyMatch>> {
        SqlStore::find_partner_keys(self, folded_key).await
    }

    async fn all_partner_keys(&self) -> StoreResult<Vec<KeyMatch>> {
        SqlStore::all_partner_keys(self).await
    }

    async fn create_partner(&self, actor: &str, draft: &PartnerDraft) -> StoreResult<Partner> {
        SqlStore::create_partner(self, actor, draft).await
    }

    async fn replace_partner(
        &self,
        actor: &str,
        draft: &PartnerDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Partner> {
        SqlStore::replace_partner(self, actor, draft, expected_version).await
    }

    async fn delete_partner(
        &self,
        actor: &str,
        code: &PartnerCode,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        SqlStore::delete_partner(self, actor, code, expected_version).await
    }

    async fn list_areas(&self, page: &PageRequest) -> StoreResult<Page<Area>> {
        SqlStore::list_areas(self, page).await
    }

    async fn get_area(&self, code: &AreaCode) -> StoreResult<Option<Area>> {
        SqlStore::get_area(self, code).await
    }

    async fn area_exists(&self, code: &AreaCode) -> StoreResult<bool> {
        SqlStore::area_exists(self, code).await
    }

    async fn create_area(&self, actor: &str, draft: &AreaDraft) -> StoreResult<Area> {
        SqlStore::create_area(self, actor, draft).await
    }

    async fn replace_area(
        &self,
        actor: &str,
        draft: &AreaDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Area> {
        SqlStore::replace_area(self, actor, draft, expected_version).await
    }

    async fn delete_area(
        &self,
        actor: &str,
        code: &AreaCode,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        SqlStore::delete_area(self, actor, code, expected_version).await
    }

    async fn list_agreements(
        &self,
        query: &AgreementQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Agreement>> {
        SqlStore::list_agreements(self, query, page).await
    }

    async fn count_agreements(&self, query: &AgreementQuery) -> StoreResult<i64> {
        SqlStore::count_agreements(self, query).await
    }

    async fn count_sources(&self, query: &AgreementQuery) -> StoreResult<SourceCount> {
        SqlStore::count_sources(self, query).await
    }

    async fn pledge_totals(
        &self,
        query: &AgreementQuery,
        groups: &[PledgeGroup],
    ) -> StoreResult<Vec<PledgeTotal>> {
        SqlStore::pledge_totals(self, query, groups).await
    }

    async fn agreement_counts(
        &self,
        query: &AgreementQuery,
        groups: &[AgreementGroup],
    ) -> StoreResult<Vec<AgreementCount>> {
        SqlStore::agreement_counts(self, query, groups).await
    }

    async fn get_agreement(&self, id: &str) -> StoreResult<Option<Agreement>> {
        SqlStore::get_agreement(self, id).await
    }

    async fn create_agreement(
        &self,
        actor: &str,
        draft: &AgreementDraft,
    ) -> StoreResult<Agreement> {
        SqlStore::create_agreement(self, actor, draft).await
    }

    async fn replace_agreement(
        &self,
        actor: &str,
        id: &str,
        draft: &AgreementDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Agreement> {
        SqlStore::replace_agreement(self, actor, id, draft, expected_version).await
    }

    async fn delete_agreement(
        &self,
        actor: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        SqlStore::delete_agreement(self, actor, id, expected_version).await
    }

    async fn restore_agreement(&self, actor: &str, id: &str) -> StoreResult<Agreement> {
        SqlStore::restore_agreement(self, actor, id).await
    }

    async fn get_pledge(&self, id: &str) -> StoreResult<Option<Pledge>> {
        SqlStore::get_pledge(self, id).await
    }

    async fn create_pledge(
        &self,
        actor: &str,
        agreement_id: &str,
        draft: &PledgeDraft,
    ) -> StoreResult<Pledge> {
        SqlStore::create_child(self, actor, agreement_id, ChildDraft::Pledge(draft))
            .await?
            .pledge()
    }

    async fn replace_pledge(
        &self,
        actor: &str,
        id: &str,
        draft: &PledgeDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Pledge> {
        SqlStore::replace_child(self, actor, id, ChildDraft::Pledge(draft), expected_version)
            .await?
            .pledge()
    }

    async fn delete_pledge(
        &self,
        actor: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        SqlStore::remove_child(self, actor, ChildKind::Pledge, id, expected_version).await
    }

    async fn get_source(&self, id: &str) -> StoreResult<Option<Source>> {
        SqlStore::get_source(self, id).await
    }

    async fn create_source(
        &self,
        actor: &str,
        agreement_id: &str,
        draft: &SourceDraft,
    ) -> StoreResult<Source> {
        SqlStore::create_child(self, actor, agreement_id, ChildDraft::Source(draft))
            .await?
            .source()
    }

    async fn replace_source(
        &self,
        actor: &str,
        id: &str,
        draft: &SourceDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Source> {
        SqlStore::replace_child(self, actor, id, ChildDraft::Source(draft), expected_version)
            .await?
            .source()
    }

    async fn delete_source(
        &self,
        actor: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        SqlStore::remove_child(self, actor, ChildKind::Source, id, expected_version).await
    }

    async fn export(&self) -> StoreResult<Dataset> {
        SqlStore::export(self).await
    }

    async fn import(
        &self,
        actor: &str,
        dataset: &Dataset,
        dry_run: bool,
    ) -> StoreResult<ImportSummary> {
        SqlStore::import(self, actor, dataset, dry_run).await
    }

    async fn seed(&self, actor: &str, dataset: &Dataset) -> StoreResult<Option<ImportSummary>> {
        SqlStore::seed(self, actor, dataset).await
    }

    async fn bulk_insert_agreements(&self, agreements: &[AgreementDraft]) -> StoreResult<()> {
        SqlStore::bulk_insert_agreements(self, agreements).await
    }

    async fn revision(&self) -> StoreResult<i64> {
        SqlStore::revision(self).await
    }

    async fn feed_position_at(&self, at: DateTime<Utc>) -> StoreResult<i64> {
        SqlStore::feed_position_at(self, at).await
    }

    async fn changes(&self, filter: &ChangeFilter) -> StoreResult<Vec<ChangeEntry>> {
        SqlStore::changes(self, filter).await
    }

    async fn latest_changes(&self, filter: &LatestChangeFilter) -> StoreResult<Vec<ChangeDetail>> {
        SqlStore::latest_changes(self, filter).await
    }

    async fn changes_between(&self, after: i64, upto: i64) -> StoreResult<Vec<ChangeDetail>> {
        SqlStore::changes_between(self, after, upto).await
    }

    async fn change_notifications(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        D::listen_for_changes(&self.pool)
    }

    async fn analyze(&self) -> StoreResult<()> {
        sqlx::query(D::AFTER_BULK_LOAD).execute(&self.pool).await?;
        Ok(())
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        SqlStore::is_empty(self).await
    }

    async fn history(&self, filter: &HistoryFilter) -> StoreResult<Page<HistoryEntry>> {
        SqlStore::history(self, filter).await
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        SqlStore::create_api_key(self, key).await
    }

    async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        SqlStore::find_api_key(self, id).await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        SqlStore::list_api_keys(self).await
    }

    async fn revoke_api_key(&self, name: &str) -> StoreResult<bool> {
        SqlStore::revoke_api_key(self, name).await
    }

    async fn load_rates(&self, actor: &str, rates: &[DailyRate]) -> StoreResult<ImportSummary> {
        SqlStore::load_rates(self, actor, rates).await
    }

    async fn list_rates(
        &self,
        filter: &RateFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DailyRate>> {
        SqlStore::list_rates(self, filter, page).await
    }

    async fn get_rate(
        &self,
        currency: &Currency,
        date: NaiveDate,
    ) -> StoreResult<Option<DailyRate>> {
        SqlStore::get_rate(self, currency, date).await
    }

    async fn put_rate(&self, actor: &str, rate: &DailyRate) -> StoreResult<RateWrite> {
        SqlStore::put_rate(self, actor, rate).await
    }

    async fn delete_rate(
        &self,
        actor: &str,
        currency: &Currency,
        date: NaiveDate,
    ) -> StoreResult<()> {
        SqlStore::delete_rate(self, actor, currency, date).await
    }

    async fn annual_rates(&self, filter: &AnnualFilter) -> StoreResult<AnnualRates> {
        SqlStore::annual_rates(self, filter).await
    }

    async fn pledge_year_totals(
        &self,
        query: &AgreementQuery,
        groups: &[PledgeGroup],
    ) -> StoreResult<Vec<PledgeYearTotal>> {
        SqlStore::pledge_year_totals(self, query, groups).await
    }

    async fn reserve_idempotency_key(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
    ) -> StoreResult<Reservation> {
        SqlStore::reserve_idempotency_key(self, caller, key, request_hash).await
    }

    async fn complete_idempotency_key(
        &self,
        caller: &str,
        key: &str,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        SqlStore::complete_idempotency_key(self, caller, key, response).await
    }

    async fn revision_bounds(&self) -> StoreResult<crate::store::RevisionBounds> {
        SqlStore::revision_bounds(self).await
    }

    async fn revision_at(&self, at: DateTime<Utc>) -> StoreResult<Option<i64>> {
        SqlStore::revision_at(self, at).await
    }

    async fn get_agreement_at(&self, id: &str, revision: i64) -> StoreResult<Option<Agreement>> {
        SqlStore::get_agreement_at(self, id, revision).await
    }

    async fn replay(&self, revision: i64) -> StoreResult<std::sync::Arc<dyn Store>> {
        let (pool, state) = D::replay(&self.pool, &self.state, revision).await?;
        Ok(std::sync::Arc::new(SqlStore::<D>::new(pool, state)))
    }

    async fn release_idempotency_key(&self, caller: &str, key: &str) -> StoreResult<()> {
        SqlStore::release_idempotency_key(self, caller, key).await
    }
}

#[cfg(test)]
impl super::dialect_tests::StraddledPage for super::SqliteStore {
    async fn children_accepted(&self, write: bool) -> StoreResult<bool> {
        self.straddled_page(write).await
    }
}

#[cfg(test)]
impl super::dialect_tests::StraddledPage for super::PostgresStore {
    async fn children_accepted(&self, write: bool) -> StoreResult<bool> {
        self.straddled_page(write).await
    }
}
