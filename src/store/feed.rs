//! The history of changes, the change feed and the revision; replays of
//! a past revision.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::dialect::{Args, Column, Conn, DbRow, Dialect, JsonDoc, from_json, json};
use super::sql_store::SqlStore;
use crate::domain::Vocabulary;
use crate::domain::area::AreaCode;
use crate::domain::partner::PartnerCode;
use crate::store::{
    ChangeDetail, ChangeEntry, ChangeFilter, HistoryEntry, HistoryFilter, LatestChangeFilter, Page,
    StoreError, StoreResult,
};

/// The tables migration 0014 keeps versions of, each with its key,
/// parents before children (foreign keys hold as a replay fills).
pub(super) const VERSIONED_TABLES: [(&str, &str); 10] = [
    ("partners", "code"),
    ("areas", "code"),
    ("agreements", "id"),
    ("agreement_areas", "agreement_id, area_code"),
    ("pledges", "id"),
    ("sources", "id"),
    ("source_aliases", "alias"),
    ("partner_keys", "key, partner_code"),
    ("exchange_rates", "currency, day"),
    ("annual_rates", "currency, year"),
];

/// One entry of the audit history, written in the transaction of its change.
pub(super) struct Change<'a> {
    pub(super) entity: &'a str,
    pub(super) id: &'a str,
    pub(super) agreement_id: Option<&'a str>,
    /// The partner, when its agreement is gone by the time of recording.
    pub(super) partner: Option<&'a str>,
    pub(super) op: &'a str,
    pub(super) version: i64,
    pub(super) before: Option<serde_json::Value>,
    pub(super) after: Option<serde_json::Value>,
}

fn as_json<T: serde::Serialize>(value: &T) -> StoreResult<serde_json::Value> {
    serde_json::to_value(value)
        .map_err(|e| StoreError::Internal(format!("cannot record history: {e}")))
}

impl<'a> Change<'a> {
    pub(super) fn new(entity: &'a str, id: &'a str, op: &'a str, version: i64) -> Self {
        Self {
            entity,
            id,
            agreement_id: None,
            partner: None,
            op,
            version,
            before: None,
            after: None,
        }
    }

    pub(super) fn imported<T: serde::Serialize>(
        entity: &'a str,
        id: &'a str,
        before: Option<T>,
        after: &T,
        version: i64,
    ) -> StoreResult<Self> {
        let op = if before.is_some() { "update" } else { "create" };
        let change = Self::new(entity, id, op, version).after(after)?;
        match before {
            Some(before) => change.before(&before),
            None => Ok(change),
        }
    }

    pub(super) fn of_agreement(mut self, agreement_id: &'a str) -> Self {
        self.agreement_id = Some(agreement_id);
        self
    }

    pub(super) fn of_partner(mut self, partner: &'a str) -> Self {
        self.partner = Some(partner);
        self
    }

    pub(super) fn before<T: serde::Serialize>(mut self, value: &T) -> StoreResult<Self> {
        self.before = Some(as_json(value)?);
        Ok(self)
    }

    pub(super) fn after<T: serde::Serialize>(mut self, value: &T) -> StoreResult<Self> {
        self.after = Some(as_json(value)?);
        Ok(self)
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
    /// Fills a freshly migrated replay store (on `conn`, in its
    /// transaction) with the rows visible at `revision` in the versions
    /// tables of `source` (an attached database or a schema), the history
    /// up to it, and the revision itself. The rollups follow by their
    /// triggers; the search index is rebuilt after. The replay's own
    /// versioning triggers are dropped first: it never changes again.
    pub(super) async fn fill_replay(
        conn: &mut Conn<D>,
        source: &str,
        revision: i64,
    ) -> StoreResult<()> {
        for (table, _) in VERSIONED_TABLES {
            for statement in D::drop_versioning(table) {
                sqlx::query(&statement).execute(&mut *conn).await?;
            }
        }
        for (table, key) in VERSIONED_TABLES {
            let columns: Vec<String> = sqlx::query_scalar(D::COLUMNS_OF_TABLE)
                .bind(table)
                .fetch_all(&mut *conn)
                .await?;
            let columns = columns.join(", ");
            sqlx::query(&format!(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM {source}.{table}_versions \
                 WHERE rev_from <= $1 AND (rev_to IS NULL OR rev_to > $1) ORDER BY {key}"
            ))
            .bind(revision)
            .execute(&mut *conn)
            .await?;
        }
        let columns: Vec<String> = sqlx::query_scalar(D::COLUMNS_OF_TABLE)
            .bind("history")
            .fetch_all(&mut *conn)
            .await?;
        let columns = columns.join(", ");
        sqlx::query(&format!(
            "INSERT INTO history ({columns}) SELECT {columns} FROM {source}.history WHERE \
             feed_seq <= $1 ORDER BY seq"
        ))
        .bind(revision)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE revision SET seq = $1, rates_seq = COALESCE((SELECT MAX(feed_seq) FROM \
             history WHERE entity = 'rate' AND feed_seq <= $1), 0) WHERE id = 1",
        )
        .bind(revision)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Writes one history entry with the next number of the change feed.
    /// Taking the number locks the counter's row until commit, so feed
    /// numbers become visible in order, without gaps.
    pub(super) async fn record(
        conn: &mut Conn<D>,
        at: DateTime<Utc>,
        actor: &str,
        change: Change<'_>,
    ) -> StoreResult<()> {
        let seq: i64 =
            sqlx::query_scalar("UPDATE revision SET seq = seq + 1 WHERE id = 1 RETURNING seq")
                .fetch_one(&mut *conn)
                .await?;
        let partner = match change.entity {
            "partner" => Some(change.id),
            _ => change.partner,
        };
        sqlx::query(
            "INSERT INTO history (at, actor, entity, entity_id, agreement_id, op, version, \
             before, after, feed_seq, partner_code) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, COALESCE($11, (SELECT partner_code FROM agreements WHERE id = $5)))",
        )
        .bind(at)
        .bind(actor)
        .bind(change.entity)
        .bind(change.id)
        .bind(change.agreement_id)
        .bind(change.op)
        .bind(change.version)
        .bind(change.before.as_ref().map(json).transpose()?)
        .bind(change.after.as_ref().map(json).transpose()?)
        .bind(seq)
        .bind(partner)
        .execute(&mut *conn)
        .await?;
        // In the change's own transaction: a crash after the commit still
        // leaves a retry with the same key something to answer from.
        if let Some((caller, key)) = crate::store::current_idempotency_key() {
            sqlx::query(
                "UPDATE idempotency_keys SET committed_seq = COALESCE(committed_seq, $3) WHERE \
                 caller = $1 AND key = $2",
            )
            .bind(caller)
            .bind(key)
            .bind(seq)
            .execute(&mut *conn)
            .await?;
        }
        D::notify_change(conn, seq).await
    }

    pub(super) async fn revision(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT seq FROM revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    pub(super) async fn feed_position_at(&self, at: DateTime<Utc>) -> StoreResult<i64> {
        // Index history_at: one step to the first change at or after `at`.
        let first: Option<i64> = sqlx::query_scalar(
            "SELECT feed_seq FROM history WHERE at >= $1 AND feed_seq IS NOT NULL ORDER BY at, \
             feed_seq LIMIT 1",
        )
        .bind(at)
        .fetch_optional(&self.pool)
        .await?;
        match first {
            Some(seq) => Ok(seq - 1),
            None => self.revision().await,
        }
    }

    pub(super) async fn changes(&self, filter: &ChangeFilter) -> StoreResult<Vec<ChangeEntry>> {
        let rows = sqlx::query(
            "SELECT feed_seq, at, entity, entity_id, agreement_id, partner_code, op, version FROM \
             history WHERE feed_seq > $1 AND ($2 IS NULL OR entity = $2) AND ($3 IS NULL OR \
             partner_code = $3) ORDER BY feed_seq LIMIT $4",
        )
        .bind(filter.since)
        .bind(filter.entity.as_deref())
        .bind(filter.partner.as_ref().map(PartnerCode::as_str))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ChangeEntry {
                    seq: row.try_get("feed_seq")?,
                    at: row.try_get("at")?,
                    entity: row.try_get("entity")?,
                    id: row.try_get("entity_id")?,
                    agreement_id: row.try_get("agreement_id")?,
                    partner: row.try_get("partner_code")?,
                    op: row.try_get("op")?,
                    version: row.try_get("version")?,
                })
            })
            .collect()
    }

    pub(super) async fn latest_changes(
        &self,
        filter: &LatestChangeFilter,
    ) -> StoreResult<Vec<ChangeDetail>> {
        let rows = sqlx::query(
            "SELECT feed_seq, at, entity, entity_id, agreement_id, partner_code, op, version, \
             before, after FROM history WHERE feed_seq IS NOT NULL AND ($1 IS NULL OR entity = \
             $1) AND ($2 IS NULL OR partner_code = $2) AND ($3 IS NULL OR agreement_id IN (SELECT \
             agreement_id FROM agreement_areas WHERE area_code = $3)) AND ($4 IS NULL OR \
             agreement_id IN (SELECT id FROM agreements WHERE kind = $4)) ORDER BY feed_seq DESC \
             LIMIT $5",
        )
        .bind(filter.entity.as_deref())
        .bind(filter.partner.as_ref().map(PartnerCode::as_str))
        .bind(filter.area.as_ref().map(AreaCode::as_str))
        .bind(filter.agreement_kind.map(|k| k.as_str()))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::change_detail).collect()
    }

    /// Every change after revision `after` up to `upto`, oldest first, each
    /// with its record before and after: what kept answers a change retires
    /// is read from them. Feed numbers have no gaps, so a complete answer
    /// has `upto - after` entries.
    pub(super) async fn changes_between(
        &self,
        after: i64,
        upto: i64,
    ) -> StoreResult<Vec<ChangeDetail>> {
        // Index history_feed: a range of the unique feed numbers.
        let rows = sqlx::query(
            "SELECT feed_seq, at, entity, entity_id, agreement_id, partner_code, op, version, \
             before, after FROM history WHERE feed_seq > $1 AND feed_seq <= $2 ORDER BY feed_seq",
        )
        .bind(after)
        .bind(upto)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::change_detail).collect()
    }

    /// A history row's record before and after its change.
    fn records(
        row: &DbRow<D>,
    ) -> StoreResult<(Option<serde_json::Value>, Option<serde_json::Value>)> {
        let record = |column: &'static str| {
            row.try_get::<Option<JsonDoc>, _>(column)?
                .map(|d| from_json(column, d))
                .transpose()
        };
        Ok((record("before")?, record("after")?))
    }

    /// One history row as a change with its record before and after.
    fn change_detail(row: &DbRow<D>) -> StoreResult<ChangeDetail> {
        let (before, after) = Self::records(row)?;
        Ok(ChangeDetail {
            entry: ChangeEntry {
                seq: row.try_get("feed_seq")?,
                at: row.try_get("at")?,
                entity: row.try_get("entity")?,
                id: row.try_get("entity_id")?,
                agreement_id: row.try_get("agreement_id")?,
                partner: row.try_get("partner_code")?,
                op: row.try_get("op")?,
                version: row.try_get("version")?,
            },
            before,
            after,
        })
    }

    pub(super) async fn history(&self, filter: &HistoryFilter) -> StoreResult<Page<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, entity, entity_id, agreement_id, op, version, before, after \
             FROM history WHERE ($1 IS NULL OR seq < $1) AND ($2 IS NULL OR at >= $2) AND ($3 IS \
             NULL OR at < $3) AND ($4 IS NULL OR actor = $4) AND ($5 IS NULL OR entity = $5) AND \
             ($6 IS NULL OR entity_id = $6) AND ($7 IS NULL OR agreement_id = $7) ORDER BY seq \
             DESC LIMIT $8",
        )
        .bind(filter.before_seq)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.actor.as_deref())
        .bind(filter.entity.as_deref())
        .bind(filter.entity_id.as_deref())
        .bind(filter.agreement_id.as_deref())
        .bind(i64::from(filter.limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                let (before, after) = Self::records(row)?;
                Ok(HistoryEntry {
                    seq: row.try_get("seq")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    entity: row.try_get("entity")?,
                    entity_id: row.try_get("entity_id")?,
                    agreement_id: row.try_get("agreement_id")?,
                    op: row.try_get("op")?,
                    version: row.try_get("version")?,
                    before,
                    after,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self::page_of(items, filter.limit, |e| e.seq.to_string()))
    }

    pub(super) async fn revision_bounds(&self) -> StoreResult<crate::store::RevisionBounds> {
        let (earliest, latest): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT began FROM revision_history WHERE id = 1), (SELECT seq FROM revision \
             WHERE id = 1)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(crate::store::RevisionBounds { earliest, latest })
    }

    pub(super) async fn revision_at(&self, at: DateTime<Utc>) -> StoreResult<Option<i64>> {
        // Index history_at: one step back from `at`.
        Ok(sqlx::query_scalar(
            "SELECT feed_seq FROM history WHERE at <= $1 AND feed_seq IS NOT NULL ORDER BY at \
             DESC, feed_seq DESC LIMIT 1",
        )
        .bind(at)
        .fetch_optional(&self.pool)
        .await?)
    }
}
