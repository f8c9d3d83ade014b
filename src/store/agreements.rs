//! Agreements: reading one or a filtered, keyset-paged list, and writing
//! one with its area links (its pledges and sources are in `children`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::dialect::{
    Args, Builder, Column, Conn, Constraint, DbRow, Dialect, JsonDoc, RowsAffected as _, from_json,
    json,
};
use super::dialect::{corrupt, vocabulary};
use super::documents::{self, ChildDocuments};
use super::feed::Change;
use super::sql_store::SqlStore;
use crate::domain::FieldError;
use crate::domain::Vocabulary;
use crate::domain::agreement::{
    Agreement, AgreementDraft, AreaLinkDraft, Signatory, derived_expiry, generated_agreement_id,
};
use crate::domain::marker::Markers;
use crate::domain::partner::{PartnerCode, PartnerSummary};
use crate::domain::query::{AgreementQuery, Include, Sort, SortKey};
use crate::store::{Page, PageRequest, SearchCut, StoreError, StoreResult, now};

/// An agreement's own columns and its partner's, from `agreements a`
/// joined with `partners p`.
const AGREEMENT_COLUMNS: &str = "a.id, a.partner_code, a.title, a.title_uk, a.kind, a.status, \
                                 a.signed_on, a.signed_at, a.signed_place, a.signatories, \
                                 a.term_years, a.expires_on, a.legally_binding, a.summary, \
                                 a.text_url, a.markers, a.version, a.created_at, a.updated_at, \
                                 p.iso3 AS partner_iso3, p.kind AS partner_kind, p.name AS \
                                 partner_name, p.name_uk AS partner_name_uk";

const AGREEMENTS_WITH_PARTNERS: &str =
    "FROM agreements a JOIN partners p ON p.code = a.partner_code";

/// The tables an agreement is read from (see [`AGREEMENT_COLUMNS`] and
/// [`documents::children_columns`]).
pub(super) const AGREEMENT_TABLES: [&str; 6] = [
    "agreements",
    "partners",
    "agreement_areas",
    "areas",
    "pledges",
    "sources",
];

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
    /// One statement reading agreements with the children `include` asks
    /// for, to be completed by a WHERE clause.
    fn agreement_select(include: Include) -> &'static str {
        documents::statement::<D>("agreement", include, || {
            format!(
                "SELECT {AGREEMENT_COLUMNS}, {} {AGREEMENTS_WITH_PARTNERS}",
                documents::children_columns::<D>("a.id", include)
            )
        })
    }

    /// An agreement without its children, from a row of
    /// [`Self::agreement_select`] or of the page query (the children are
    /// read by [`Self::read_children`]).
    pub(super) fn agreement_from_row(row: &DbRow<D>) -> StoreResult<Agreement> {
        let signatories: Vec<Signatory> = from_json("signatories", row.try_get("signatories")?)?;
        let signed_on: Option<NaiveDate> = row.try_get("signed_on")?;
        let term_years: Option<i64> = row.try_get("term_years")?;
        let expires_on_given: Option<NaiveDate> = row.try_get("expires_on")?;
        Ok(Agreement {
            id: row.try_get("id")?,
            partner: PartnerSummary {
                code: PartnerCode::from_trusted(row.try_get("partner_code")?),
                iso3: row.try_get("partner_iso3")?,
                kind: vocabulary(row.try_get::<&str, _>("partner_kind")?)?,
                name: row.try_get("partner_name")?,
                name_uk: row.try_get("partner_name_uk")?,
            },
            title: row.try_get("title")?,
            title_uk: row.try_get("title_uk")?,
            kind: vocabulary(row.try_get::<&str, _>("kind")?)?,
            status: vocabulary(row.try_get::<&str, _>("status")?)?,
            signed_on,
            signed_at: row.try_get("signed_at")?,
            signed_place: row
                .try_get::<Option<JsonDoc>, _>("signed_place")?
                .map(|place| from_json("signed_place", place))
                .transpose()?,
            signatories,
            term_years,
            expires_on: expires_on_given.or_else(|| derived_expiry(signed_on, term_years)),
            expires_on_given,
            legally_binding: row.try_get("legally_binding")?,
            summary: row.try_get("summary")?,
            text_url: row.try_get("text_url")?,
            markers: from_json::<Markers>("markers", row.try_get("markers")?)?,
            areas: Vec::new(),
            pledges: Vec::new(),
            sources: Vec::new(),
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    pub(super) async fn load_agreement(
        conn: &mut Conn<D>,
        id: &str,
    ) -> StoreResult<Option<Agreement>> {
        Self::load_agreement_with(conn, id, "").await
    }

    /// The agreement as the statements prefixed by `with` see the
    /// tables: as they are (""), or as of a revision ([`as_of`]).
    pub(super) async fn load_agreement_with(
        conn: &mut Conn<D>,
        id: &str,
        with: &str,
    ) -> StoreResult<Option<Agreement>> {
        let by_id = documents::statement::<D>("agreement by id", Include::ALL, || {
            format!("{} WHERE a.id = $1", Self::agreement_select(Include::ALL))
        });
        let past;
        let sql = if with.is_empty() {
            by_id
        } else {
            past = format!("{with}{by_id}");
            &past
        };
        let Some(row) = sqlx::query(sql).bind(id).fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        let mut agreement = Self::agreement_from_row(&row)?;
        Self::read_children(&row, &mut agreement, Include::ALL)?;
        Ok(Some(agreement))
    }

    /// A WITH clause naming each table of an agreement after its rows as
    /// of `revision` (migration 0014): a CTE shadows the table of its
    /// name, so the very statements that read an agreement now read it
    /// then. Each CTE is used once and inlined, so the outer query's
    /// conditions reach the versions' indexes. The revision is an
    /// integer, written into the text rather than bound, so the
    /// statements keep their own parameters.
    pub(super) fn as_of(revision: i64) -> String {
        let tables: Vec<String> = AGREEMENT_TABLES
            .iter()
            .map(|t| {
                format!(
                    "{t} AS (SELECT * FROM {t}_versions WHERE rev_from <= {revision} AND (rev_to \
                     IS NULL OR rev_to > {revision}))"
                )
            })
            .collect();
        format!("WITH {} ", tables.join(", "))
    }

    /// Every agreement with its children, in id order: an export.
    pub(super) async fn load_all_agreements(conn: &mut Conn<D>) -> StoreResult<Vec<Agreement>> {
        let sql = format!("{} ORDER BY a.id", Self::agreement_select(Include::ALL));
        let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                let mut agreement = Self::agreement_from_row(row)?;
                Self::read_children(row, &mut agreement, Include::ALL)?;
                Ok(agreement)
            })
            .collect()
    }

    /// `AND column IN (values…)`, each bound as text.
    fn push_list<T: ToString>(sql: &mut Builder<'_, D>, column: &str, values: &[T]) {
        sql.push(format!(" AND {column} IN ("));
        let mut list = sql.separated(", ");
        for value in values {
            list.push_bind(value.to_string());
        }
        list.push_unseparated(")");
    }

    /// The filters of an agreement query, as `AND ...` conditions on `a`
    /// (agreements) joined with `p` (partners). Values are always bound.
    ///
    /// A page (`page`) not in signing order compares the date as
    /// [`D::SIGNED_ON_IN_PAGE`] says: SQLite read a broad range of dates
    /// through its index and sorted it (60,000 agreements for `year=2024`
    /// at 100,000), where walking the page's own order stops at its limit.
    /// A page in signing order compares the sort's own expression (an
    /// unknown date as the earliest, and excluded by a date range as
    /// before), so a filter's index that also holds that order (the
    /// partner's, the status's, the kind's: migration 0017) serves the
    /// range, the filter and the order at once.
    pub(super) fn push_filters(
        sql: &mut Builder<'_, D>,
        query: &AgreementQuery,
        pledge_alias: Option<&str>,
        page: bool,
    ) {
        let in_signing_order = page && query.sort.key == SortKey::SignedOn;
        let signed_on = match (page, in_signing_order) {
            (true, true) => Self::sort_expression(SortKey::SignedOn),
            (true, false) => D::SIGNED_ON_IN_PAGE,
            (false, _) => "a.signed_on",
        };
        if in_signing_order && (query.signed_from.is_some() || query.signed_to.is_some()) {
            sql.push(format!(" AND {} IS NOT NULL", D::SIGNED_ON_IN_PAGE));
        }
        if !query.partners.is_empty() {
            let codes: Vec<&str> = query.partners.iter().map(PartnerCode::as_str).collect();
            Self::push_list(sql, "a.partner_code", &codes);
        }
        for any_of in &query.areas {
            sql.push(
                " AND EXISTS (SELECT 1 FROM agreement_areas fa WHERE fa.agreement_id = a.id AND \
                 fa.area_code IN (",
            );
            let mut list = sql.separated(", ");
            for code in any_of {
                list.push_bind(code.as_str().to_owned());
            }
            list.push_unseparated("))");
        }
        if !query.statuses.is_empty() {
            let names: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
            Self::push_list(sql, "a.status", &names);
        }
        if !query.kinds.is_empty() {
            let names: Vec<&str> = query.kinds.iter().map(|k| k.as_str()).collect();
            Self::push_list(sql, "a.kind", &names);
        }
        if let Some(from) = query.signed_from {
            sql.push(format!(" AND {signed_on} >= ")).push_bind(from);
        }
        if let Some(to) = query.signed_to {
            sql.push(format!(" AND {signed_on} <= ")).push_bind(to);
        }
        match query.legally_binding {
            Some(Some(binding)) => {
                sql.push(" AND a.legally_binding = ").push_bind(binding);
            }
            Some(None) => {
                sql.push(" AND a.legally_binding IS NULL");
            }
            None => {}
        }
        if !query.pledge.is_empty() {
            // In a statistic the pledges themselves are filtered; in a
            // list, an agreement needs one pledge that meets them all.
            let alias = match pledge_alias {
                Some(alias) => alias,
                None => {
                    sql.push(" AND EXISTS (SELECT 1 FROM pledges fp WHERE fp.agreement_id = a.id");
                    "fp"
                }
            };
            if !query.pledge.kinds.is_empty() {
                let names: Vec<&str> = query.pledge.kinds.iter().map(|k| k.as_str()).collect();
                Self::push_list(sql, &format!("{alias}.kind"), &names);
            }
            if let Some(currency) = &query.pledge.currency {
                sql.push(format!(" AND {alias}.currency = "))
                    .push_bind(currency.as_str().to_owned());
            }
            if let Some(min) = query.pledge.min_minor {
                sql.push(format!(" AND {alias}.amount_minor >= "))
                    .push_bind(min);
            }
            if let Some(max) = query.pledge.max_minor {
                sql.push(format!(" AND {alias}.amount_minor <= "))
                    .push_bind(max);
            }
            if pledge_alias.is_none() {
                sql.push(")");
            }
        }
    }

    /// The expression an order sorts on; NULL dates sort as the earliest.
    pub(super) fn sort_expression(key: SortKey) -> &'static str {
        match key {
            SortKey::Id => "a.id",
            SortKey::SignedOn => "COALESCE(a.signed_on, '0001-01-01')",
            // The partner's name kept beside the agreement (migration 0011).
            SortKey::Partner => "a.partner_name",
            SortKey::Title => "a.title",
            SortKey::UpdatedAt => "a.updated_at",
            SortKey::Relevance => "s.rank",
        }
    }

    /// The key a page ends on: the sort value and the id, as JSON.
    pub(super) fn page_key(agreement: &Agreement, key: SortKey, rank: Option<f64>) -> String {
        let value = match key {
            SortKey::Id => serde_json::Value::Null,
            SortKey::SignedOn => serde_json::json!(
                agreement
                    .signed_on
                    .map_or("0001-01-01".to_owned(), |d| d.to_string())
            ),
            SortKey::Partner => serde_json::json!(agreement.partner.name),
            SortKey::Title => serde_json::json!(agreement.title),
            SortKey::UpdatedAt => serde_json::json!(agreement.updated_at),
            SortKey::Relevance => serde_json::json!(rank.unwrap_or_default()),
        };
        serde_json::json!([value, agreement.id]).to_string()
    }

    pub(super) fn bad_cursor() -> StoreError {
        StoreError::Invalid(vec![FieldError::new(
            "cursor",
            "is not one this service gave out for this sort",
        )])
    }

    /// The rank and id of a relevance page key.
    pub(super) fn relevance_key(after: &str) -> StoreResult<(f64, String)> {
        match serde_json::from_str(after).map_err(|_| Self::bad_cursor())? {
            (serde_json::Value::Number(rank), id) => {
                Ok((rank.as_f64().ok_or_else(Self::bad_cursor)?, id))
            }
            _ => Err(Self::bad_cursor()),
        }
    }

    /// Continues after a page key: `(sort value, id)` beyond the last seen.
    pub(super) fn push_keyset(
        sql: &mut Builder<'_, D>,
        sort: Sort,
        after: &str,
    ) -> StoreResult<()> {
        let (value, id): (serde_json::Value, String) =
            serde_json::from_str(after).map_err(|_| Self::bad_cursor())?;
        let op = if sort.descending { "<" } else { ">" };
        let expression = Self::sort_expression(sort.key);
        if sort.key == SortKey::Id {
            sql.push(format!(" AND a.id {op} ")).push_bind(id);
            return Ok(());
        }
        sql.push(format!(" AND ({expression}, a.id) {op} ("));
        match (sort.key, value) {
            (SortKey::SignedOn, serde_json::Value::String(text)) => {
                let date: NaiveDate = text.parse().map_err(|_| Self::bad_cursor())?;
                sql.push_bind(date);
            }
            (SortKey::UpdatedAt, serde_json::Value::String(text)) => {
                let at: DateTime<Utc> = text.parse().map_err(|_| Self::bad_cursor())?;
                sql.push_bind(at);
            }
            (SortKey::Partner | SortKey::Title, serde_json::Value::String(text)) => {
                sql.push_bind(text);
            }
            (SortKey::Relevance, serde_json::Value::Number(n)) => {
                sql.push_bind(n.as_f64().ok_or_else(Self::bad_cursor)?);
            }
            _ => return Err(Self::bad_cursor()),
        }
        sql.push(", ").push_bind(id).push(")");
        Ok(())
    }

    /// A page of agreements with their children, or None when a write
    /// changed one of them between the page and its children (never
    /// inside a read transaction).
    pub(super) async fn load_agreements(
        conn: &mut Conn<D>,
        query: &AgreementQuery,
        page: &PageRequest,
    ) -> StoreResult<Option<Page<Agreement>>> {
        let relevance = query.search.is_some();
        let rank = if relevance { ", s.rank AS rank" } else { "" };
        let mut sql = Builder::<D>::new(format!(
            "SELECT {AGREEMENT_COLUMNS}{rank} {AGREEMENTS_WITH_PARTNERS}"
        ));
        if let Some(terms) = &query.search {
            // A plain search in relevance order ranks inside the index and
            // joins only the matches its page can hold, not every one.
            let search_only = query.sort.key == SortKey::Relevance
                && AgreementQuery {
                    search: None,
                    sort: query.sort,
                    include: query.include,
                    ..AgreementQuery::default()
                }
                .filters_equal(query);
            let cut = if search_only {
                Some(SearchCut {
                    limit: i64::from(page.limit) + 1,
                    descending: query.sort.descending,
                    after: page.after.as_deref().map(Self::relevance_key).transpose()?,
                })
            } else {
                None
            };
            D::push_search_join(&mut sql, terms, cut);
        }
        sql.push(" WHERE 1 = 1");
        Self::push_filters(&mut sql, query, None, true);
        if let Some(after) = &page.after {
            Self::push_keyset(&mut sql, query.sort, after)?;
        }
        let direction = if query.sort.descending { "DESC" } else { "ASC" };
        sql.push(format!(
            " ORDER BY {} {direction}, a.id {direction} LIMIT ",
            Self::sort_expression(query.sort.key)
        ));
        sql.push_bind(i64::from(page.limit) + 1);
        let rows = D::fetch_built(&mut sql, &mut *conn).await?;
        let mut agreements = Vec::with_capacity(rows.len());
        let mut ranks = Vec::with_capacity(rows.len());
        for row in &rows {
            agreements.push(Self::agreement_from_row(row)?);
            ranks.push(if relevance {
                Some(row.try_get::<f64, _>("rank")?)
            } else {
                None
            });
        }
        let more = agreements.len() > page.limit as usize;
        agreements.truncate(page.limit as usize);
        let next_after = if more {
            agreements
                .last()
                .map(|a| Self::page_key(a, query.sort.key, ranks[agreements.len() - 1]))
        } else {
            None
        };
        if !Self::attach_children(conn, &mut agreements, query.include).await? {
            return Ok(None);
        }
        Ok(Some(Page {
            items: agreements,
            next_after,
        }))
    }

    /// See [`super::dialect_tests::StraddledPage`].
    #[cfg(test)]
    pub(super) async fn straddled_page(&self, write: bool) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await?;
        let first = PageRequest {
            after: None,
            limit: 5,
        };
        let query = AgreementQuery {
            include: Include {
                areas: false,
                pledges: false,
                sources: false,
            },
            ..AgreementQuery::default()
        };
        let mut page = Self::load_agreements(&mut conn, &query, &first)
            .await?
            .ok_or(StoreError::NotFound)?
            .items;
        if write {
            let mut tx = self.begin_write().await?;
            Self::touch_agreement(&mut tx, &page[2].id, now()).await?;
            tx.commit().await?;
        }
        Self::attach_children(&mut conn, &mut page, Include::ALL).await
    }

    /// The children of a row that has the document columns of
    /// [`documents::children_columns`].
    fn read_children(
        row: &DbRow<D>,
        agreement: &mut Agreement,
        include: Include,
    ) -> StoreResult<()> {
        let column = |name: &str| -> StoreResult<Option<JsonDoc>> { Ok(row.try_get(name)?) };
        let (areas, sources, pledges) = (
            column("areas_doc")?,
            column("sources_doc")?,
            column("pledges_doc")?,
        );
        let children = ChildDocuments::read(
            areas.as_ref().map(|d| d.0.get()),
            sources.as_ref().map(|d| d.0.get()),
            pledges.as_ref().map(|d| d.0.get()),
            include,
        )?;
        agreement.areas = children.areas;
        agreement.sources = children.sources;
        agreement.pledges = children.pledges;
        Ok(())
    }

    /// Fills in the children `include` asks for: one statement for the
    /// whole page, each agreement's children built as JSON beside its id.
    /// (Not in the page's own statement: where its order is not an
    /// index's, the database builds its result columns for every row it
    /// sorts, not only for the page.) Answers false when an agreement's
    /// version is not the one the page read (or it is gone): a write
    /// committed in between, and the children may not be that version's.
    async fn attach_children(
        conn: &mut Conn<D>,
        agreements: &mut [Agreement],
        include: Include,
    ) -> StoreResult<bool> {
        if agreements.is_empty() || !(include.areas || include.pledges || include.sources) {
            return Ok(true);
        }
        let ids: Vec<String> = agreements.iter().map(|a| a.id.clone()).collect();
        let mut sql = Builder::<D>::new(documents::statement::<D>("children", include, || {
            format!(
                "SELECT a.id, a.version, {} FROM agreements a WHERE a.id",
                documents::children_columns::<D>("a.id", include)
            )
        }));
        D::push_in_ids(&mut sql, &ids);
        let index: HashMap<String, usize> =
            ids.into_iter().enumerate().map(|(i, id)| (id, i)).collect();
        let rows = D::fetch_built(&mut sql, &mut *conn).await?;
        if rows.len() != agreements.len() {
            return Ok(false);
        }
        for row in rows {
            let id: &str = row.try_get("id")?;
            let Some(&i) = index.get(id) else {
                return Ok(false);
            };
            if row.try_get::<i64, _>("version")? != agreements[i].version {
                return Ok(false);
            }
            Self::read_children(&row, &mut agreements[i], include)?;
        }
        Ok(true)
    }

    /// Marks an agreement changed (its embedded children count as part of
    /// it); answers NotFound when it does not exist.
    pub(super) async fn touch_agreement(
        conn: &mut Conn<D>,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let touched = sqlx::query(
            "UPDATE agreements SET version = version + 1, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub(super) fn map_agreement_write_error(error: sqlx::Error) -> StoreError {
        if D::violates(&error, Constraint::AgreementPartner) {
            Self::invalid("partner", "is not a known partner")
        } else {
            error.into()
        }
    }

    /// Inserts the agreement row; without an id, tries `ua-jp-2024`,
    /// `ua-jp-2024-2`, ... until one is free.
    pub(super) async fn insert_agreement(
        conn: &mut Conn<D>,
        draft: &AgreementDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<String> {
        let base = draft
            .id
            .clone()
            .unwrap_or_else(|| generated_agreement_id(&draft.partner, draft.signed_on));
        for attempt in 1..=100 {
            let id = if attempt == 1 {
                base.clone()
            } else {
                format!("{base}-{attempt}")
            };
            let inserted = sqlx::query(
                "INSERT INTO agreements (id, partner_code, title, kind, status, signed_on, \
                 signed_at, signatories, term_years, expires_on, legally_binding, summary, \
                 text_url, version, created_at, updated_at, signed_place, markers, title_uk) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $14, \
                 $15, $16, $17) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&id)
            .bind(draft.partner.as_str())
            .bind(&draft.title)
            .bind(draft.kind.as_str())
            .bind(draft.status.as_str())
            .bind(draft.signed_on)
            .bind(draft.signed_at.as_deref())
            .bind(json(&draft.signatories)?)
            .bind(draft.term_years)
            .bind(draft.expires_on)
            .bind(draft.legally_binding)
            .bind(draft.summary.as_deref())
            .bind(draft.text_url.as_deref())
            .bind(at)
            .bind(draft.signed_place.as_ref().map(json).transpose()?)
            .bind(json(&draft.markers)?)
            .bind(draft.title_uk.as_deref())
            .execute(&mut *conn)
            .await
            .map_err(Self::map_agreement_write_error)?;
            if inserted.rows_affected() == 1 {
                Self::write_children(conn, &id, draft, at).await?;
                return Ok(id);
            }
            if draft.id.is_some() {
                return Err(StoreError::Conflict(format!(
                    "agreement {id} already exists"
                )));
            }
        }
        Err(StoreError::Conflict(format!(
            "no free id left after {base}-100"
        )))
    }

    pub(super) async fn update_agreement(
        conn: &mut Conn<D>,
        id: &str,
        draft: &AgreementDraft,
        expected_version: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let updated = sqlx::query(
            "UPDATE agreements SET partner_code = $2, title = $3, kind = $4, status = $5, \
             signed_on = $6, signed_at = $7, signatories = $8, term_years = $9, expires_on = $10, \
             legally_binding = $11, summary = $12, text_url = $13, version = version + 1, \
             updated_at = $14, signed_place = $16, markers = $17, title_uk = $18 WHERE id = $1 \
             AND ($15 IS NULL OR version = $15)",
        )
        .bind(id)
        .bind(draft.partner.as_str())
        .bind(&draft.title)
        .bind(draft.kind.as_str())
        .bind(draft.status.as_str())
        .bind(draft.signed_on)
        .bind(draft.signed_at.as_deref())
        .bind(json(&draft.signatories)?)
        .bind(draft.term_years)
        .bind(draft.expires_on)
        .bind(draft.legally_binding)
        .bind(draft.summary.as_deref())
        .bind(draft.text_url.as_deref())
        .bind(at)
        .bind(expected_version)
        .bind(draft.signed_place.as_ref().map(json).transpose()?)
        .bind(json(&draft.markers)?)
        .bind(draft.title_uk.as_deref())
        .execute(&mut *conn)
        .await
        .map_err(Self::map_agreement_write_error)?;
        if updated.rows_affected() == 0 {
            return Err(Self::missing_or_moved(conn, "agreements", "id", id).await);
        }
        Self::write_children(conn, id, draft, at).await
    }

    /// Replaces each child list the draft carries; lists it leaves out stay.
    pub(super) async fn write_children(
        conn: &mut Conn<D>,
        id: &str,
        draft: &AgreementDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        if let Some(areas) = &draft.areas {
            Self::write_area_links(conn, id, areas).await?;
        }
        if let Some(pledges) = &draft.pledges {
            Self::sync_pledges(conn, id, pledges, at).await?;
        }
        if let Some(sources) = &draft.sources {
            Self::sync_sources(conn, id, sources, at).await?;
        }
        Ok(())
    }

    pub(super) async fn write_area_links(
        conn: &mut Conn<D>,
        id: &str,
        links: &[AreaLinkDraft],
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM agreement_areas WHERE agreement_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        for (i, link) in links.iter().enumerate() {
            sqlx::query(
                "INSERT INTO agreement_areas (agreement_id, area_code, detail) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(link.code.as_str())
            .bind(link.detail.as_deref())
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                if D::violates(&e, Constraint::LinkArea) {
                    Self::invalid(
                        &format!("areas[{i}].code"),
                        "is not a known cooperation area",
                    )
                } else {
                    e.into()
                }
            })?;
        }
        Ok(())
    }

    /// A partner or area embeds figures drawn from its agreements (counts,
    /// first and last signing dates), and an agreement embeds its partner's
    /// and areas' names: when one side changes, the other's version moves
    /// too, so its ETag never lets a client keep a stale copy.
    pub(super) async fn agreement_moved(
        conn: &mut Conn<D>,
        before: Option<&Agreement>,
        after: Option<&Agreement>,
    ) -> StoreResult<()> {
        let partner_of =
            |a: Option<&Agreement>| a.map(|a| (a.partner.code.as_str().to_owned(), a.signed_on));
        let mut partners: Vec<String> = Vec::new();
        if partner_of(before) != partner_of(after) {
            partners.extend(
                before
                    .iter()
                    .chain(after.iter())
                    .map(|a| a.partner.code.as_str().to_owned()),
            );
        }
        partners.sort();
        partners.dedup();
        for code in partners {
            sqlx::query("UPDATE partners SET version = version + 1 WHERE code = $1")
                .bind(code)
                .execute(&mut *conn)
                .await?;
        }
        let areas_of = |a: Option<&Agreement>| -> HashSet<String> {
            a.map(|a| a.areas.iter().map(|l| l.code.as_str().to_owned()).collect())
                .unwrap_or_default()
        };
        let (old, new) = (areas_of(before), areas_of(after));
        for code in old.symmetric_difference(&new) {
            sqlx::query("UPDATE areas SET version = version + 1 WHERE code = $1")
                .bind(code)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// A partner's or area's name changed: the agreements that embed it
    /// get a new version and are found by the new name.
    pub(super) async fn embedding_agreements_changed(
        conn: &mut Conn<D>,
        partner: Option<&str>,
        area: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        if let Some(code) = partner {
            sqlx::query(
                "UPDATE agreements SET version = version + 1, updated_at = $2 WHERE partner_code \
                 = $1",
            )
            .bind(code)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        if let Some(code) = area {
            sqlx::query(
                "UPDATE agreements SET version = version + 1, updated_at = $2 WHERE id IN (SELECT \
                 agreement_id FROM agreement_areas WHERE area_code = $1)",
            )
            .bind(code)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM agreements WHERE partner_code = $1 OR id IN (SELECT agreement_id FROM \
             agreement_areas WHERE area_code = $2)",
        )
        .bind(partner)
        .bind(area)
        .fetch_all(&mut *conn)
        .await?;
        for id in ids {
            if let Some(agreement) = Self::load_agreement(conn, &id).await? {
                D::index_search_text(conn, &id, &agreement.search_text()).await?;
            }
        }
        Ok(())
    }

    /// The draft a deletion kept, ready to be inserted again.
    pub(super) fn restorable(before: serde_json::Value) -> Result<AgreementDraft, String> {
        let body: crate::wire::agreement::AgreementBody =
            serde_json::from_value(before).map_err(|e| e.to_string())?;
        let partner = body
            .partner_ref()
            .and_then(|r| r.map(|r| PartnerCode::parse(&r)).transpose());
        body.parse(partner).map_err(|errors| format!("{errors:?}"))
    }

    pub(super) async fn list_agreements(
        &self,
        query: &AgreementQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Agreement>> {
        // Two statements without a transaction (BEGIN and COMMIT were two
        // more round trips, and on PostgreSQL a task of their own): each
        // agreement is whole at the version the page read, which its
        // children are checked against. If a write came in between, the
        // page is read again in one snapshot.
        let read = Self::load_agreements(&mut *self.pool.acquire().await?, query, page).await?;
        if let Some(read) = read {
            return Ok(read);
        }
        let mut tx = D::begin_read(&self.pool).await?;
        let read = Self::load_agreements(&mut tx, query, page).await?;
        tx.commit().await?;
        read.ok_or_else(|| {
            StoreError::Internal("a page changed inside its own read transaction".into())
        })
    }

    /// One statement, so no transaction: it sees one snapshot by itself.
    pub(super) async fn get_agreement(&self, id: &str) -> StoreResult<Option<Agreement>> {
        Self::load_agreement(&mut *self.pool.acquire().await?, id).await
    }

    pub(super) async fn create_agreement(
        &self,
        actor: &str,
        draft: &AgreementDraft,
    ) -> StoreResult<Agreement> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let id = Self::insert_agreement(&mut tx, draft, at).await?;
        Self::check_part_of(
            &mut tx,
            &Self::part_of_links(&id, draft.pledges.as_deref().unwrap_or_default(), ""),
        )
        .await?;
        let agreement = Self::load_agreement(&mut tx, &id)
            .await?
            .ok_or(StoreError::NotFound)?;
        D::index_search_text(&mut tx, &agreement.id, &agreement.search_text()).await?;
        Self::totals_fit(&mut tx).await?;
        Self::agreement_moved(&mut tx, None, Some(&agreement)).await?;
        let change = Change::new("agreement", &id, "create", agreement.version)
            .of_agreement(&id)
            .after(&agreement.draft())?;
        Self::record(&mut tx, at, actor, change).await?;
        tx.commit().await?;
        Ok(agreement)
    }

    pub(super) async fn replace_agreement(
        &self,
        actor: &str,
        id: &str,
        draft: &AgreementDraft,
        expected_version: Option<i64>,
    ) -> StoreResult<Agreement> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let before = Self::load_agreement(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Self::update_agreement(&mut tx, id, draft, expected_version, at).await?;
        Self::check_part_of(
            &mut tx,
            &Self::part_of_links(id, draft.pledges.as_deref().unwrap_or_default(), ""),
        )
        .await?;
        let agreement = Self::load_agreement(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        D::index_search_text(&mut tx, &agreement.id, &agreement.search_text()).await?;
        Self::totals_fit(&mut tx).await?;
        Self::agreement_moved(&mut tx, Some(&before), Some(&agreement)).await?;
        let change = Change::new("agreement", id, "update", agreement.version)
            .of_agreement(id)
            .before(&before.draft())?
            .after(&agreement.draft())?;
        Self::record(&mut tx, at, actor, change).await?;
        tx.commit().await?;
        Ok(agreement)
    }

    pub(super) async fn delete_agreement(
        &self,
        actor: &str,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let before = Self::load_agreement(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        // Before the row goes: SQLite finds the search row by the agreement's rowid.
        D::unindex_search_text(&mut tx, id).await?;
        let deleted =
            sqlx::query("DELETE FROM agreements WHERE id = $1 AND ($2 IS NULL OR version = $2)")
                .bind(id)
                .bind(expected_version)
                .execute(&mut *tx)
                .await?;
        if deleted.rows_affected() == 0 {
            return Err(Self::missing_or_moved(&mut tx, "agreements", "id", id).await);
        }
        Self::agreement_moved(&mut tx, Some(&before), None).await?;
        // The whole agreement, children included, so it can be restored.
        let change = Change::new("agreement", id, "delete", before.version)
            .of_agreement(id)
            .of_partner(before.partner.code.as_str())
            .before(&before.draft())?;
        Self::record(&mut tx, now(), actor, change).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn restore_agreement(&self, actor: &str, id: &str) -> StoreResult<Agreement> {
        let mut tx = self.begin_write().await?;
        let at = now();
        if Self::load_agreement(&mut tx, id).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "agreement {id} exists; only a deleted agreement can be restored"
            )));
        }
        let deleted = sqlx::query(
            "SELECT version, before FROM history WHERE entity = 'agreement' AND entity_id = $1 \
             AND op = 'delete' ORDER BY seq DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let last_version: i64 = deleted.try_get("version")?;
        let Some(before): Option<JsonDoc> = deleted.try_get("before")? else {
            return Err(corrupt(
                "history",
                format!("the deletion of {id} kept no copy"),
            ));
        };
        let draft =
            Self::restorable(from_json("history", before)?).map_err(|e| corrupt("history", e))?;
        Self::insert_agreement(&mut tx, &draft, at).await?;
        // Versions go on from the deleted one, so an old ETag never matches the restored agreement.
        sqlx::query("UPDATE agreements SET version = $2 WHERE id = $1")
            .bind(id)
            .bind(last_version + 1)
            .execute(&mut *tx)
            .await?;
        let agreement = Self::load_agreement(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        D::index_search_text(&mut tx, &agreement.id, &agreement.search_text()).await?;
        Self::totals_fit(&mut tx).await?;
        Self::agreement_moved(&mut tx, None, Some(&agreement)).await?;
        let change = Change::new("agreement", id, "restore", agreement.version)
            .of_agreement(id)
            .after(&agreement.draft())?;
        Self::record(&mut tx, at, actor, change).await?;
        tx.commit().await?;
        Ok(agreement)
    }

    pub(super) async fn get_agreement_at(
        &self,
        id: &str,
        revision: i64,
    ) -> StoreResult<Option<Agreement>> {
        let mut tx = D::begin_read(&self.pool).await?;
        let agreement = Self::load_agreement_with(&mut tx, id, &Self::as_of(revision)).await?;
        tx.commit().await?;
        Ok(agreement)
    }
}
