//! API keys.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::dialect::vocabulary;
use super::dialect::{Args, Column, Conn, DbRow, Dialect, JsonDoc, RowsAffected as _};
use super::sql_store::SqlStore;
use crate::domain::Vocabulary;
use crate::domain::api_key::ApiKey;
use crate::store::{StoreError, StoreResult, now};

pub(super) const API_KEY_COLUMNS: &str =
    "id, name, scope, secret_hash, created_at, expires_at, revoked_at";

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
    pub(super) fn api_key_from_row(row: &DbRow<D>) -> StoreResult<ApiKey> {
        Ok(ApiKey {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            scope: vocabulary(row.try_get::<&str, _>("scope")?)?,
            secret_hash: row.try_get("secret_hash")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }

    pub(super) async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, name, scope, secret_hash, created_at, expires_at) VALUES \
             ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(key.scope.as_str())
        .bind(&key.secret_hash)
        .bind(key.created_at)
        .bind(key.expires_at)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "a key named {:?} exists already",
                key.name
            )));
        }
        Ok(())
    }

    pub(super) async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::api_key_from_row).transpose()
    }

    pub(super) async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::api_key_from_row).collect()
    }

    pub(super) async fn revoke_api_key(&self, name: &str) -> StoreResult<bool> {
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1",
        )
        .bind(name)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(revoked.rows_affected() > 0)
    }
}
