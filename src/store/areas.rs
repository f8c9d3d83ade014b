//! Cooperation areas.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::dialect::{Args, Column, Conn, DbRow, Dialect, JsonDoc, RowsAffected as _};
use super::feed::Change;
use super::sql_store::SqlStore;
use crate::domain::area::{Area, AreaCode, AreaDraft};
use crate::store::{Page, PageRequest, StoreError, StoreResult, now};

pub(super) const AREA_SELECT: &str = "SELECT ar.code, ar.name, ar.name_uk, ar.description, \
                                      ar.version, ar.created_at, ar.updated_at, COALESCE((SELECT \
                                      r.n FROM agreement_rollup r WHERE r.set_key = 'area' AND \
                                      r.area_code = ar.code AND r.partner_code = '*' AND \
                                      r.year_key = -2 AND r.status = '*' AND r.kind = '*' AND \
                                      r.binding_key = -2), 0) AS agreement_count FROM areas ar";

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
    pub(super) fn area_from_row(row: &DbRow<D>) -> StoreResult<Area> {
        Ok(Area {
            code: AreaCode::from_trusted(row.try_get("code")?),
            name: row.try_get("name")?,
            name_uk: row.try_get("name_uk")?,
            description: row.try_get("description")?,
            agreement_count: row.try_get("agreement_count")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub(super) async fn load_area(conn: &mut Conn<D>, code: &str) -> StoreResult<Option<Area>> {
        let sql = format!("{AREA_SELECT} WHERE ar.code = $1");
        let row = sqlx::query(&sql)
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(Self::area_from_row).transpose()
    }

    pub(super) async fn insert_area(
        conn: &mut Conn<D>,
        draft: &AreaDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let inserted = sqlx::query(
            "INSERT INTO areas (code, name, description, version, created_at, updated_at, \
             name_uk) VALUES ($1, $2, $3, 1, $4, $4, $5) ON CONFLICT (code) DO NOTHING",
        )
        .bind(draft.code.as_str())
        .bind(&draft.name)
        .bind(draft.description.as_deref())
        .bind(at)
        .bind(draft.name_uk.as_deref())
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "area {} already exists",
                draft.code.as_str()
            )));
        }
        Ok(())
    }

    pub(super) async fn update_area(
        conn: &mut Conn<D>,
        draft: &AreaDraft,
        expected_version: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let updated = sqlx::query(
            "UPDATE areas SET name = $2, description = $3, version = version + 1, updated_at = \
             $4, name_uk = $6 WHERE code = $1 AND ($5 IS NULL OR version = $5)",
        )
        .bind(draft.code.as_str())
        .bind(&draft.name)
        .bind(draft.description.as_deref())
        .bind(at)
        .bind(expected_version)
        .bind(draft.name_uk.as_deref())
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(Self::missing_or_moved(conn, "areas", "code", draft.code.as_str()).await);
        }
        Ok(())
    }

    pub(super) async fn list_areas(&self, page: &PageRequest) -> StoreResult<Page<Area>> {
        let sql =
            format!("{AREA_SELECT} WHERE ($1 IS NULL OR ar.code > $1) ORDER BY ar.code LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(page.after.as_deref())
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(Self::area_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self::page_of(items, page.limit, |a| {
            a.code.as_str().to_owned()
        }))
    }

    pub(super) async fn get_area(&self, code: &AreaCode) -> StoreResult<Option<Area>> {
        let mut conn = self.pool.acquire().await?;
        Self::load_area(&mut conn, code.as_str()).await
    }

    pub(super) async fn area_exists(&self, code: &AreaCode) -> StoreResult<bool> {
        let found: Option<String> = sqlx::query_scalar("SELECT code FROM areas WHERE code = $1")
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    pub(super) async fn create_area(&self, actor: &str, draft: &AreaDraft) -> StoreResult<Area> {
        let mut tx = self.begin_write().await?;
        let at = now();
        Self::insert_area(&mut tx, draft, at).await?;
        let area = Self::load_area(&mut tx, draft.code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        let change = Change::new("area", area.code.as_str(), "create", 1).after(&area.draft())?;
        Self::record(&mut tx, at, actor, change).await?;
        tx.commit().await?;
        Ok(area)
    }

    pub(super) async fn replace_area(
        &self,
        actor: &str,
        draft: &AreaDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Area> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let before = Self::load_area(&mut tx, draft.code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        Self::update_area(&mut tx, draft, expected_version, at).await?;
        let area = Self::load_area(&mut tx, draft.code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        if before.name != area.name || before.name_uk != area.name_uk {
            Self::embedding_agreements_changed(&mut tx, None, Some(area.code.as_str()), at).await?;
        }
        let change = Change::new("area", area.code.as_str(), "update", area.version)
            .before(&before.draft())?
            .after(&area.draft())?;
        Self::record(&mut tx, at, actor, change).await?;
        tx.commit().await?;
        Ok(area)
    }

    pub(super) async fn delete_area(
        &self,
        actor: &str,
        code: &AreaCode,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let used: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM agreement_areas WHERE area_code = $1")
                .bind(code.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if used > 0 {
            return Err(StoreError::Conflict(format!(
                "area {} is linked to {used} agreement(s); unlink it first",
                code.as_str()
            )));
        }
        let before = Self::load_area(&mut tx, code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        let deleted =
            sqlx::query("DELETE FROM areas WHERE code = $1 AND ($2 IS NULL OR version = $2)")
                .bind(code.as_str())
                .bind(expected_version)
                .execute(&mut *tx)
                .await?;
        if deleted.rows_affected() == 0 {
            return Err(Self::missing_or_moved(&mut tx, "areas", "code", code.as_str()).await);
        }
        let change =
            Change::new("area", code.as_str(), "delete", before.version).before(&before.draft())?;
        Self::record(&mut tx, now(), actor, change).await?;
        tx.commit().await?;
        Ok(())
    }
}
