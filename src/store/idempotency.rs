//! Idempotency-Key reservations and the responses kept for replay.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::dialect::corrupt;
use super::dialect::{
    Args, Column, Conn, DbRow, Dialect, JsonDoc, RowsAffected as _, from_json, json,
};
use super::sql_store::SqlStore;
use crate::store::{
    IDEMPOTENCY_ABANDONED, IDEMPOTENCY_RETENTION, Reservation, StoreResult, StoredResponse, now,
};

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
    pub(super) async fn reserve_idempotency_key(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
    ) -> StoreResult<Reservation> {
        let mut tx = self.begin_write().await?;
        let at = now();
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(at - IDEMPOTENCY_RETENTION)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (caller, key, request_hash, created_at) VALUES ($1, $2, \
             $3, $4) ON CONFLICT (caller, key) DO NOTHING",
        )
        .bind(caller)
        .bind(key)
        .bind(request_hash)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            tx.commit().await?;
            return Ok(Reservation::Reserved);
        }
        let row = sqlx::query(
            "SELECT request_hash, status, headers, body, created_at, committed_seq FROM \
             idempotency_keys WHERE caller = $1 AND key = $2",
        )
        .bind(caller)
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
        let stored_hash: String = row.try_get("request_hash")?;
        let status: Option<i64> = row.try_get("status")?;
        let created_at: DateTime<Utc> = row.try_get("created_at")?;
        let outcome = if stored_hash != request_hash {
            Reservation::Mismatch
        } else if let Some(status) = status {
            let headers: Option<JsonDoc> = row.try_get("headers")?;
            Reservation::Replay(StoredResponse {
                status: u16::try_from(status)
                    .map_err(|_| corrupt("idempotent status", status.to_string()))?,
                headers: headers
                    .map(|h| from_json("idempotent headers", h))
                    .transpose()?
                    .unwrap_or_default(),
                body: row
                    .try_get::<Option<String>, _>("body")?
                    .unwrap_or_default(),
            })
        } else if let (true, Some(seq)) = (
            created_at < at - IDEMPOTENCY_ABANDONED,
            row.try_get::<Option<i64>, _>("committed_seq")?,
        ) {
            // The first request committed, then died before keeping its
            // answer: never run it again; answer from what it wrote.
            let change =
                sqlx::query("SELECT entity, entity_id, op FROM history WHERE feed_seq = $1")
                    .bind(seq)
                    .fetch_one(&mut *tx)
                    .await?;
            Reservation::Committed(crate::store::CommittedChange {
                seq,
                entity: change.try_get("entity")?,
                entity_id: change.try_get("entity_id")?,
                op: change.try_get("op")?,
            })
        } else if created_at < at - IDEMPOTENCY_ABANDONED {
            // The first request died without an answer; this retry takes its place.
            sqlx::query(
                "UPDATE idempotency_keys SET created_at = $3 WHERE caller = $1 AND key = $2",
            )
            .bind(caller)
            .bind(key)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            Reservation::Reserved
        } else {
            Reservation::InProgress
        };
        tx.commit().await?;
        Ok(outcome)
    }

    pub(super) async fn complete_idempotency_key(
        &self,
        caller: &str,
        key: &str,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $3, headers = $4, body = $5 WHERE caller = $1 \
             AND key = $2",
        )
        .bind(caller)
        .bind(key)
        .bind(i64::from(response.status))
        .bind(json(&response.headers)?)
        .bind(&response.body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn release_idempotency_key(&self, caller: &str, key: &str) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND status IS NULL",
        )
        .bind(caller)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
