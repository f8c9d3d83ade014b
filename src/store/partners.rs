//! Partners and their lookup keys.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::dialect::vocabulary;
use super::dialect::{
    Args, Builder, Column, Conn, Constraint, DbRow, Dialect, JsonDoc, RowsAffected as _, from_json,
    json,
};
use super::feed::Change;
use super::sql_store::SqlStore;
use crate::domain::Vocabulary;
use crate::domain::partner::{Partner, PartnerCode, PartnerDraft};
use crate::store::{KeyMatch, Page, PageRequest, StoreError, StoreResult, now};

/// Partners with how many agreements name them (a row of the
/// agreement rollup) and their first and last signing dates (the ends
/// of the partner's run of index agreements_partner_signed).
pub(super) const PARTNER_SELECT: &str = "SELECT p.code, p.iso3, p.kind, p.name, p.name_uk, \
                                         p.aliases, p.version, p.created_at, p.updated_at, \
                                         COALESCE((SELECT r.n FROM agreement_rollup r WHERE \
                                         r.set_key = 'partner' AND r.area_code = '*' AND \
                                         r.partner_code = p.code AND r.year_key = -2 AND r.status \
                                         = '*' AND r.kind = '*' AND r.binding_key = -2), 0) AS \
                                         agreement_count, (SELECT MIN(x.signed_on) FROM \
                                         agreements x WHERE x.partner_code = p.code) AS \
                                         first_signed_on, (SELECT MAX(x.signed_on) FROM \
                                         agreements x WHERE x.partner_code = p.code) AS \
                                         last_signed_on FROM partners p";

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
    pub(super) fn partner_from_row(row: &DbRow<D>) -> StoreResult<Partner> {
        let aliases: Vec<String> = from_json("aliases", row.try_get("aliases")?)?;
        Ok(Partner {
            code: PartnerCode::from_trusted(row.try_get("code")?),
            iso3: row.try_get("iso3")?,
            kind: vocabulary(row.try_get::<&str, _>("kind")?)?,
            name: row.try_get("name")?,
            name_uk: row.try_get("name_uk")?,
            aliases,
            agreement_count: row.try_get("agreement_count")?,
            first_signed_on: row.try_get("first_signed_on")?,
            last_signed_on: row.try_get("last_signed_on")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub(super) async fn load_partner(
        conn: &mut Conn<D>,
        code: &str,
    ) -> StoreResult<Option<Partner>> {
        let sql = format!("{PARTNER_SELECT} WHERE p.code = $1");
        let row = sqlx::query(&sql)
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(Self::partner_from_row).transpose()
    }

    pub(super) async fn write_partner_keys(
        conn: &mut Conn<D>,
        draft: &PartnerDraft,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM partner_keys WHERE partner_code = $1")
            .bind(draft.code.as_str())
            .execute(&mut *conn)
            .await?;
        let keys = draft.lookup_keys();
        let mut insert = Builder::<D>::new("INSERT INTO partner_keys (key, partner_code, rank) ");
        insert.push_values(keys, |mut row, (key, rank)| {
            row.push_bind(key)
                .push_bind(draft.code.as_str().to_owned())
                .push_bind(rank as i64);
        });
        D::execute_built(&mut insert, &mut *conn).await?;
        Ok(())
    }

    pub(super) fn map_partner_write_error(error: sqlx::Error) -> StoreError {
        if D::violates(&error, Constraint::PartnerIso3) {
            Self::invalid("iso3", "is already the alpha-3 code of another partner")
        } else {
            error.into()
        }
    }

    pub(super) async fn insert_partner(
        conn: &mut Conn<D>,
        draft: &PartnerDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let inserted = sqlx::query(
            "INSERT INTO partners (code, iso3, kind, name, name_uk, aliases, version, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) ON CONFLICT (code) DO NOTHING",
        )
        .bind(draft.code.as_str())
        .bind(draft.iso3.as_deref())
        .bind(draft.kind.as_str())
        .bind(&draft.name)
        .bind(draft.name_uk.as_deref())
        .bind(json(&draft.aliases)?)
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(Self::map_partner_write_error)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "partner {} already exists",
                draft.code.as_str()
            )));
        }
        Self::write_partner_keys(conn, draft).await
    }

    pub(super) async fn update_partner(
        conn: &mut Conn<D>,
        draft: &PartnerDraft,
        expected_version: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let updated = sqlx::query(
            "UPDATE partners SET iso3 = $2, kind = $3, name = $4, name_uk = $5, aliases = $6, \
             version = version + 1, updated_at = $7 WHERE code = $1 AND ($8 IS NULL OR version = \
             $8)",
        )
        .bind(draft.code.as_str())
        .bind(draft.iso3.as_deref())
        .bind(draft.kind.as_str())
        .bind(&draft.name)
        .bind(draft.name_uk.as_deref())
        .bind(json(&draft.aliases)?)
        .bind(at)
        .bind(expected_version)
        .execute(&mut *conn)
        .await
        .map_err(Self::map_partner_write_error)?;
        if updated.rows_affected() == 0 {
            return Err(
                Self::missing_or_moved(conn, "partners", "code", draft.code.as_str()).await,
            );
        }
        Self::write_partner_keys(conn, draft).await
    }

    pub(super) fn key_match_from_row(row: &DbRow<D>) -> StoreResult<KeyMatch> {
        Ok(KeyMatch {
            key: row.try_get("key")?,
            partner: PartnerCode::from_trusted(row.try_get("partner_code")?),
            rank: row.try_get("rank")?,
        })
    }

    pub(super) async fn list_partners(
        &self,
        page: &PageRequest,
        only_with_agreements: bool,
    ) -> StoreResult<Page<Partner>> {
        let sql = format!(
            "{PARTNER_SELECT} WHERE ($1 IS NULL OR p.code > $1) AND (NOT $3 OR EXISTS (SELECT 1 \
             FROM agreements x WHERE x.partner_code = p.code)) ORDER BY p.code LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(page.after.as_deref())
            .bind(i64::from(page.limit) + 1)
            .bind(only_with_agreements)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(Self::partner_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self::page_of(items, page.limit, |p| {
            p.code.as_str().to_owned()
        }))
    }

    pub(super) async fn get_partner(&self, code: &PartnerCode) -> StoreResult<Option<Partner>> {
        let mut conn = self.pool.acquire().await?;
        Self::load_partner(&mut conn, code.as_str()).await
    }

    pub(super) async fn find_partner_keys(&self, folded_key: &str) -> StoreResult<Vec<KeyMatch>> {
        let rows = sqlx::query(
            "SELECT key, partner_code, rank FROM partner_keys WHERE key = $1 ORDER BY rank, \
             partner_code",
        )
        .bind(folded_key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::key_match_from_row).collect()
    }

    pub(super) async fn all_partner_keys(&self) -> StoreResult<Vec<KeyMatch>> {
        let rows = sqlx::query(
            "SELECT key, partner_code, rank FROM partner_keys ORDER BY partner_code, rank",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::key_match_from_row).collect()
    }

    pub(super) async fn create_partner(
        &self,
        actor: &str,
        draft: &PartnerDraft,
    ) -> StoreResult<Partner> {
        let mut tx = self.begin_write().await?;
        let at = now();
        Self::insert_partner(&mut tx, draft, at).await?;
        let partner = Self::load_partner(&mut tx, draft.code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        let change =
            Change::new("partner", partner.code.as_str(), "create", 1).after(&partner.draft())?;
        Self::record(&mut tx, at, actor, change).await?;
        tx.commit().await?;
        Ok(partner)
    }

    pub(super) async fn replace_partner(
        &self,
        actor: &str,
        draft: &PartnerDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Partner> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let before = Self::load_partner(&mut tx, draft.code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        Self::update_partner(&mut tx, draft, expected_version, at).await?;
        let partner = Self::load_partner(&mut tx, draft.code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        let shown = |p: &Partner| (p.iso3.clone(), p.kind, p.name.clone(), p.name_uk.clone());
        if shown(&before) != shown(&partner) {
            Self::embedding_agreements_changed(&mut tx, Some(partner.code.as_str()), None, at)
                .await?;
        }
        let change = Change::new("partner", partner.code.as_str(), "update", partner.version)
            .before(&before.draft())?
            .after(&partner.draft())?;
        Self::record(&mut tx, at, actor, change).await?;
        tx.commit().await?;
        Ok(partner)
    }

    pub(super) async fn delete_partner(
        &self,
        actor: &str,
        code: &PartnerCode,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let used: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM agreements WHERE partner_code = $1")
                .bind(code.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if used > 0 {
            return Err(StoreError::Conflict(format!(
                "partner {} is named by {used} agreement(s); delete or move them first",
                code.as_str()
            )));
        }
        let before = Self::load_partner(&mut tx, code.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        let deleted =
            sqlx::query("DELETE FROM partners WHERE code = $1 AND ($2 IS NULL OR version = $2)")
                .bind(code.as_str())
                .bind(expected_version)
                .execute(&mut *tx)
                .await?;
        if deleted.rows_affected() == 0 {
            return Err(Self::missing_or_moved(&mut tx, "partners", "code", code.as_str()).await);
        }
        let change = Change::new("partner", code.as_str(), "delete", before.version)
            .before(&before.draft())?;
        Self::record(&mut tx, now(), actor, change).await?;
        tx.commit().await?;
        Ok(())
    }
}
