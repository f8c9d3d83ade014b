//! The full-text search index and its upkeep (the statements that differ
//! per backend are the dialect's).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::dialect::{Args, Column, Conn, DbRow, Dialect, JsonDoc};
use super::sql_store::SqlStore;
use crate::domain::agreement::AgreementDraft;
use crate::store::StoreResult;

/// A renamed partner or area changes every agreement that shows it.
/// The partner and area names an imported draft is searched by, read
/// once per import rather than once per agreement.
pub(super) struct SearchNames {
    partners: HashMap<String, Vec<String>>,
    areas: HashMap<String, Vec<String>>,
}

impl SearchNames {
    pub(super) fn of<'a>(&'a self, draft: &AgreementDraft) -> Vec<&'a str> {
        let mut names: Vec<&str> = self
            .partners
            .get(draft.partner.as_str())
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        for link in draft.areas.iter().flatten() {
            names.extend(
                self.areas
                    .get(link.code.as_str())
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            );
        }
        names
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
    /// The names agreements are searched by, of every partner and area.
    pub(super) async fn search_names(conn: &mut Conn<D>) -> StoreResult<SearchNames> {
        let mut partners: HashMap<String, Vec<String>> = HashMap::new();
        for (code, name, name_uk) in sqlx::query_as::<_, (String, String, Option<String>)>(
            "SELECT code, name, name_uk FROM partners",
        )
        .fetch_all(&mut *conn)
        .await?
        {
            partners.insert(code, std::iter::once(name).chain(name_uk).collect());
        }
        let mut areas: HashMap<String, Vec<String>> = HashMap::new();
        for (code, name, name_uk) in sqlx::query_as::<_, (String, String, Option<String>)>(
            "SELECT code, name, name_uk FROM areas",
        )
        .fetch_all(&mut *conn)
        .await?
        {
            areas.insert(code, std::iter::once(name).chain(name_uk).collect());
        }
        Ok(SearchNames { partners, areas })
    }

    /// Rewrites the search text and the partner's pledge totals after one
    /// agreement or its children changed.
    pub(super) async fn reindex(
        conn: &mut Conn<D>,
        agreement_id: &str,
        pledges_changed: bool,
    ) -> StoreResult<()> {
        if let Some(agreement) = Self::load_agreement(conn, agreement_id).await? {
            D::index_search_text(conn, agreement_id, &agreement.search_text()).await?;
            // Sources carry no amounts: only pledge changes move the totals
            // (the triggers of migration 0011 moved them; the bound is checked here).
            if pledges_changed {
                Self::totals_fit(conn).await?;
            }
        }
        Ok(())
    }

    /// Rebuilds the search index and the pledge rollup when they do not
    /// cover the data (a store from before they existed, a restored backup).
    pub(super) async fn rebuild_search_index_if_stale(pool: &sqlx::Pool<D::Db>) -> StoreResult<()> {
        let mut tx = D::begin_write(pool).await?;
        // Every agreement indexed once, under its own row (on SQLite,
        // a rowid a VACUUM may have renumbered).
        let (indexed, agreements, aligned): (i64, i64, i64) = sqlx::query_as(&format!(
            "SELECT (SELECT COUNT(*) FROM agreement_search), (SELECT COUNT(*) FROM agreements), \
             (SELECT COUNT(*) FROM agreement_search s JOIN agreements a ON {})",
            D::SEARCH_ROW_OF_AGREEMENT
        ))
        .fetch_one(&mut *tx)
        .await?;
        if indexed != agreements || aligned != agreements {
            sqlx::query("DELETE FROM agreement_search")
                .execute(&mut *tx)
                .await?;
            for agreement in Self::load_all_agreements(&mut tx).await? {
                D::index_search_text(&mut tx, &agreement.id, &agreement.search_text()).await?;
            }
        }
        let missing: bool = sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM pledge_rollup) AND EXISTS (SELECT 1 FROM pledges)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if missing {
            let partners: Vec<String> =
                sqlx::query_scalar("SELECT DISTINCT partner_code FROM agreements")
                    .fetch_all(&mut *tx)
                    .await?;
            for partner in partners {
                Self::refresh_rollup(&mut tx, &partner).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
