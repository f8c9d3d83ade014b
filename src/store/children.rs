//! Pledges and sources: the children of an agreement, read with it and
//! written alone or as the lists of an agreement write.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::child::{ChildDraft, ChildKind, StoredChild};
use super::dialect::{
    Args, Column, Conn, Constraint, DbRow, Dialect, JsonDoc, RowsAffected as _, from_json, json,
};
use super::documents::{self, PledgeDocument, SourceDocument};
use super::feed::Change;
use super::sql_store::SqlStore;
use crate::domain::Vocabulary;
use crate::domain::pledge::{Pledge, PledgeDraft};
use crate::domain::source::{Source, SourceDraft};
use crate::store::{StoreError, StoreResult, now};

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
    pub(super) async fn load_pledge(conn: &mut Conn<D>, id: &str) -> StoreResult<Option<Pledge>> {
        let sql = format!(
            "SELECT {} AS pledge_doc, (SELECT {} FROM sources so WHERE so.agreement_id = \
             pl.agreement_id) AS sources_doc FROM pledges pl WHERE pl.id = $1",
            documents::pledge_object::<D>("pl"),
            D::json_array_of(&documents::source_object::<D>("so"), "so.position"),
        );
        let Some(row) = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let pledge: PledgeDocument = Self::document(&row, "pledge_doc")?;
        let sources: Vec<SourceDocument> = Self::document(&row, "sources_doc")?;
        let mut pledge = pledge.into_pledge()?;
        pledge.sources = sources
            .into_iter()
            .map(Source::from)
            .filter(|s| s.pledges.contains(&pledge.id))
            .collect();
        Ok(Some(pledge))
    }

    /// The JSON document in `column`, read as `T`.
    pub(super) fn document<T: serde::de::DeserializeOwned>(
        row: &DbRow<D>,
        column: &str,
    ) -> StoreResult<T> {
        from_json(column, row.try_get(column)?)
    }

    /// A source by its id, or by an id it had before sources were stored
    /// once per agreement (so old links still lead to it).
    pub(super) async fn load_source(conn: &mut Conn<D>, id: &str) -> StoreResult<Option<Source>> {
        let sql = format!(
            "SELECT {} AS doc FROM sources so WHERE so.id = $1 OR so.id = (SELECT source_id FROM \
             source_aliases WHERE alias = $1) ORDER BY (so.id = $1) DESC LIMIT 1",
            documents::source_object::<D>("so")
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|row| Ok(Self::document::<SourceDocument>(&row, "doc")?.into()))
            .transpose()
    }

    pub(super) async fn child_ids(
        conn: &mut Conn<D>,
        table: &str,
        agreement_id: &str,
    ) -> StoreResult<Vec<String>> {
        let sql = format!("SELECT id FROM {table} WHERE agreement_id = $1");
        Ok(sqlx::query_scalar::<_, String>(&sql)
            .bind(agreement_id)
            .fetch_all(&mut *conn)
            .await?)
    }

    /// The agreement's pledges as drafts with their positions, by id.
    pub(super) async fn stored_pledges(
        conn: &mut Conn<D>,
        agreement_id: &str,
    ) -> StoreResult<HashMap<String, (PledgeDraft, i64)>> {
        let sql = format!(
            "SELECT pl.id, {} AS doc, pl.position FROM pledges pl WHERE pl.agreement_id = $1",
            documents::pledge_object::<D>("pl")
        );
        let rows = sqlx::query(&sql)
            .bind(agreement_id)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    (
                        Self::document::<PledgeDocument>(row, "doc")?
                            .into_pledge()?
                            .draft(),
                        row.try_get("position")?,
                    ),
                ))
            })
            .collect()
    }

    pub(super) async fn stored_sources(
        conn: &mut Conn<D>,
        agreement_id: &str,
    ) -> StoreResult<HashMap<String, (SourceDraft, i64)>> {
        let sql = format!(
            "SELECT so.id, {} AS doc, so.position FROM sources so WHERE so.agreement_id = $1",
            documents::source_object::<D>("so")
        );
        let rows = sqlx::query(&sql)
            .bind(agreement_id)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    (
                        Source::from(Self::document::<SourceDocument>(row, "doc")?).draft(),
                        row.try_get("position")?,
                    ),
                ))
            })
            .collect()
    }

    /// Makes the agreement's pledges exactly `drafts`: known ids are
    /// updated, new ones inserted (an id is generated when none is given),
    /// and the rest deleted.
    pub(super) async fn sync_pledges(
        conn: &mut Conn<D>,
        agreement_id: &str,
        drafts: &[PledgeDraft],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let existing = Self::stored_pledges(conn, agreement_id).await?;
        let kept: HashSet<&str> = drafts.iter().filter_map(|d| d.id.as_deref()).collect();
        for gone in existing.keys().filter(|id| !kept.contains(id.as_str())) {
            sqlx::query("DELETE FROM pledges WHERE id = $1")
                .bind(gone)
                .execute(&mut *conn)
                .await?;
        }
        for (position, draft) in drafts.iter().enumerate() {
            let field = format!("pledges[{position}].id");
            match draft
                .id
                .as_deref()
                .and_then(|id| existing.get_key_value(id))
            {
                // Unchanged pledges keep their version: only real edits count.
                Some((_, (stored, at_position)))
                    if stored == draft && *at_position == position as i64 => {}
                Some((id, _)) => {
                    Self::update_pledge_row(conn, id, draft, position as i64, None, at).await?;
                }
                _ => {
                    Self::insert_pledge_row(conn, agreement_id, draft, position as i64, at, &field)
                        .await?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn sync_sources(
        conn: &mut Conn<D>,
        agreement_id: &str,
        drafts: &[SourceDraft],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let existing = Self::stored_sources(conn, agreement_id).await?;
        let pledges: HashSet<String> = Self::child_ids(conn, "pledges", agreement_id)
            .await?
            .into_iter()
            .collect();
        for (i, draft) in drafts.iter().enumerate() {
            for (j, pledge_id) in draft.pledges.iter().enumerate() {
                if !pledges.contains(pledge_id) {
                    return Err(Self::invalid(
                        &format!("sources[{i}].pledges[{j}]"),
                        "must be the id of a pledge of this agreement",
                    ));
                }
            }
        }
        let kept: HashSet<&str> = drafts.iter().filter_map(|d| d.id.as_deref()).collect();
        for gone in existing.keys().filter(|id| !kept.contains(id.as_str())) {
            sqlx::query("DELETE FROM sources WHERE id = $1")
                .bind(gone)
                .execute(&mut *conn)
                .await?;
        }
        for (position, draft) in drafts.iter().enumerate() {
            let field = format!("sources[{position}].id");
            match draft
                .id
                .as_deref()
                .and_then(|id| existing.get_key_value(id))
            {
                Some((_, (stored, at_position)))
                    if stored == draft && *at_position == position as i64 => {}
                Some((id, _)) => {
                    Self::update_source_row(conn, id, draft, position as i64, None, at).await?;
                }
                _ => {
                    Self::insert_source_row(conn, agreement_id, draft, position as i64, at, &field)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Candidate ids for a new child: the given one, or `<agreement>-p1`, `-p2`, ...
    pub(super) fn child_id_candidates<'a>(
        agreement_id: &'a str,
        letter: char,
        given: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = String> + Send + 'a> {
        match given {
            Some(id) => Box::new(std::iter::once(id.to_owned())),
            None => Box::new((1..=1000).map(move |n| format!("{agreement_id}-{letter}{n}"))),
        }
    }

    pub(super) async fn insert_pledge_row(
        conn: &mut Conn<D>,
        agreement_id: &str,
        draft: &PledgeDraft,
        position: i64,
        at: DateTime<Utc>,
        field: &str,
    ) -> StoreResult<String> {
        for id in Self::child_id_candidates(agreement_id, 'p', draft.id.as_deref()) {
            let inserted = sqlx::query(
                "INSERT INTO pledges (id, agreement_id, position, amount, currency, year_from, \
                 year_to, kind, measure, in_agreement_text, description, note, version, \
                 created_at, updated_at, amount_minor, basis, part_of, markers, counted_minor, \
                 years_counted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, \
                 $13, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&id)
            .bind(agreement_id)
            .bind(position)
            .bind(D::amount_param(&draft.amount))
            .bind(draft.currency.as_str())
            .bind(draft.year_from)
            .bind(draft.year_to)
            .bind(draft.kind.as_str())
            .bind(draft.measure.map(Vocabulary::as_str))
            .bind(draft.in_agreement_text)
            .bind(draft.description.as_deref())
            .bind(draft.note.as_deref())
            .bind(at)
            .bind(draft.amount.minor_units())
            .bind(draft.basis.as_str())
            .bind(draft.part_of.as_deref())
            .bind(json(&draft.markers)?)
            .bind(Self::counted_minor(draft, field)?)
            .bind(Self::per_year_years(draft))
            .execute(&mut *conn)
            .await
            // The rollup's triggers add the amount to the totals.
            .map_err(Self::overflow_is_invalid)?;
            if inserted.rows_affected() == 1 {
                return Ok(id);
            }
        }
        Err(Self::invalid(field, "is already the id of another pledge"))
    }

    pub(super) async fn update_pledge_row(
        conn: &mut Conn<D>,
        id: &str,
        draft: &PledgeDraft,
        position: i64,
        expected_version: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<String> {
        let agreement_id = sqlx::query_scalar::<_, String>(
            "UPDATE pledges SET position = COALESCE($2, position), amount = $3, currency = $4, \
             year_from = $5, year_to = $6, kind = $7, measure = $8, in_agreement_text = $9, \
             description = $10, note = $11, version = version + 1, updated_at = $12, amount_minor \
             = $14, basis = $15, part_of = $16, markers = $17, counted_minor = $18, years_counted \
             = $19 WHERE id = $1 AND ($13 IS NULL OR version = $13) RETURNING agreement_id",
        )
        .bind(id)
        .bind((position >= 0).then_some(position))
        .bind(D::amount_param(&draft.amount))
        .bind(draft.currency.as_str())
        .bind(draft.year_from)
        .bind(draft.year_to)
        .bind(draft.kind.as_str())
        .bind(draft.measure.map(Vocabulary::as_str))
        .bind(draft.in_agreement_text)
        .bind(draft.description.as_deref())
        .bind(draft.note.as_deref())
        .bind(at)
        .bind(expected_version)
        .bind(draft.amount.minor_units())
        .bind(draft.basis.as_str())
        .bind(draft.part_of.as_deref())
        .bind(json(&draft.markers)?)
        .bind(Self::counted_minor(draft, "amount")?)
        .bind(Self::per_year_years(draft))
        .fetch_optional(&mut *conn)
        .await
        .map_err(Self::overflow_is_invalid)?;
        match agreement_id {
            Some(agreement_id) => Ok(agreement_id),
            None => Err(Self::missing_or_moved(conn, "pledges", "id", id).await),
        }
    }

    pub(super) async fn insert_source_row(
        conn: &mut Conn<D>,
        agreement_id: &str,
        draft: &SourceDraft,
        position: i64,
        at: DateTime<Utc>,
        field: &str,
    ) -> StoreResult<String> {
        for id in Self::child_id_candidates(agreement_id, 's', draft.id.as_deref()) {
            let inserted = sqlx::query(
                "INSERT INTO sources (id, agreement_id, pledge_ids, position, url, title, \
                 publisher, published_on, version, created_at, updated_at, fields) VALUES ($1, \
                 $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&id)
            .bind(agreement_id)
            .bind(json(&draft.pledges)?)
            .bind(position)
            .bind(&draft.url)
            .bind(&draft.title)
            .bind(draft.publisher.as_deref())
            .bind(draft.published_on)
            .bind(at)
            .bind(json(&draft.fields)?)
            .execute(&mut *conn)
            .await
            .map_err(|e| Self::same_url_twice(e, field))?;
            if inserted.rows_affected() == 1 {
                return Ok(id);
            }
        }
        Err(Self::invalid(field, "is already the id of another source"))
    }

    pub(super) async fn update_source_row(
        conn: &mut Conn<D>,
        id: &str,
        draft: &SourceDraft,
        position: i64,
        expected_version: Option<i64>,
        at: DateTime<Utc>,
    ) -> StoreResult<String> {
        let agreement_id = sqlx::query_scalar::<_, String>(
            "UPDATE sources SET position = COALESCE($2, position), pledge_ids = $3, url = $4, \
             title = $5, publisher = $6, published_on = $7, version = version + 1, updated_at = \
             $8, fields = $10 WHERE id = $1 AND ($9 IS NULL OR version = $9) RETURNING \
             agreement_id",
        )
        .bind(id)
        .bind((position >= 0).then_some(position))
        .bind(json(&draft.pledges)?)
        .bind(&draft.url)
        .bind(&draft.title)
        .bind(draft.publisher.as_deref())
        .bind(draft.published_on)
        .bind(at)
        .bind(expected_version)
        .bind(json(&draft.fields)?)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| Self::same_url_twice(e, "id"))?;
        match agreement_id {
            Some(agreement_id) => Ok(agreement_id),
            None => Err(Self::missing_or_moved(conn, "sources", "id", id).await),
        }
    }

    /// A source is stored once per agreement: a second one with the same
    /// URL (the unique index sources_agreement_url) is a 422 on its `url`.
    pub(super) fn same_url_twice(error: sqlx::Error, id_field: &str) -> StoreError {
        let url_index = D::violates(&error, Constraint::SourceUrl);
        if url_index {
            let field = match id_field.strip_suffix("id") {
                Some(prefix) => format!("{prefix}url"),
                None => "url".into(),
            };
            Self::invalid(
                &field,
                "is already a source of this agreement: list it once, naming every pledge and \
                 field it supports",
            )
        } else {
            error.into()
        }
    }

    pub(super) async fn next_position(
        conn: &mut Conn<D>,
        table: &str,
        agreement_id: &str,
    ) -> StoreResult<i64> {
        let sql =
            format!("SELECT COALESCE(MAX(position) + 1, 0) FROM {table} WHERE agreement_id = $1");
        Ok(sqlx::query_scalar::<_, i64>(&sql)
            .bind(agreement_id)
            .fetch_one(&mut *conn)
            .await?)
    }

    /// A source may only point at a pledge of its own agreement.
    pub(super) async fn check_source_pledge(
        conn: &mut Conn<D>,
        agreement_id: &str,
        draft: &SourceDraft,
    ) -> StoreResult<()> {
        for (i, pledge_id) in draft.pledges.iter().enumerate() {
            let owner =
                sqlx::query_scalar::<_, String>("SELECT agreement_id FROM pledges WHERE id = $1")
                    .bind(pledge_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            if owner.as_deref() != Some(agreement_id) {
                return Err(Self::invalid(
                    &format!("pledges[{i}]"),
                    "must be the id of a pledge of the same agreement",
                ));
            }
        }
        Ok(())
    }

    /// What totals count of a pledge, in minor units (see
    /// [`PledgeDraft::counted_minor`]); a 422 on `field` if it cannot be
    /// totalled exactly.
    pub(super) fn counted_minor(draft: &PledgeDraft, field: &str) -> StoreResult<i64> {
        draft.counted_minor().ok_or_else(|| {
            Self::invalid(
                field,
                "counted for each of its years, this amount is more than the service can total \
                 exactly",
            )
        })
    }

    /// The years a per-year pledge counts for; 0 for a total (or a part).
    pub(super) fn per_year_years(draft: &PledgeDraft) -> i64 {
        match (draft.basis, &draft.part_of) {
            (crate::domain::pledge::PledgeBasis::PerYear, None) => draft.years_counted(),
            _ => 0,
        }
    }

    /// Every `part_of` names a pledge that exists (in any agreement), and
    /// following the links never comes back: checked after a write, in
    /// its transaction, so a body may link pledges it creates.
    pub(super) async fn check_part_of(
        conn: &mut Conn<D>,
        links: &[(String, String, String)],
    ) -> StoreResult<()> {
        for (field, id, whole) in links {
            let mut current = whole.clone();
            for _ in 0..64 {
                if &current == id {
                    return Err(Self::invalid(
                        field,
                        "makes a circle: a pledge cannot be part of itself, directly or through \
                         others",
                    ));
                }
                let next: Option<Option<String>> =
                    sqlx::query_scalar("SELECT part_of FROM pledges WHERE id = $1")
                        .bind(&current)
                        .fetch_optional(&mut *conn)
                        .await?;
                match next {
                    None if &current == whole => {
                        return Err(Self::invalid(
                            field,
                            "must be the id of an existing pledge (of any agreement)",
                        ));
                    }
                    Some(Some(up)) => current = up,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// The part_of links of an agreement's pledges, to check after writing them.
    pub(super) fn part_of_links(
        agreement_id: &str,
        pledges: &[PledgeDraft],
        prefix: &str,
    ) -> Vec<(String, String, String)> {
        pledges
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let whole = p.part_of.clone()?;
                let id =
                    p.id.clone()
                        .unwrap_or_else(|| format!("{agreement_id}-p{}", i + 1));
                Some((format!("{prefix}pledges[{i}].part_of"), id, whole))
            })
            .collect()
    }

    /// One statement, so no transaction: it sees one snapshot by itself.
    pub(super) async fn get_pledge(&self, id: &str) -> StoreResult<Option<Pledge>> {
        Self::load_pledge(&mut *self.pool.acquire().await?, id).await
    }

    pub(super) async fn get_source(&self, id: &str) -> StoreResult<Option<Source>> {
        let mut conn = self.pool.acquire().await?;
        Self::load_source(&mut conn, id).await
    }

    async fn load_child(
        conn: &mut Conn<D>,
        kind: ChildKind,
        id: &str,
    ) -> StoreResult<Option<StoredChild>> {
        Ok(match kind {
            ChildKind::Pledge => Self::load_pledge(conn, id)
                .await?
                .map(|p| StoredChild::Pledge(Box::new(p))),
            ChildKind::Source => Self::load_source(conn, id).await?.map(StoredChild::Source),
        })
    }

    /// A pledge's `part_of` names a pledge and never comes back round,
    /// checked once its row is written.
    async fn check_part_of_link(
        conn: &mut Conn<D>,
        id: &str,
        draft: &PledgeDraft,
    ) -> StoreResult<()> {
        match &draft.part_of {
            Some(whole) => {
                Self::check_part_of(conn, &[("part_of".into(), id.to_owned(), whole.clone())]).await
            }
            None => Ok(()),
        }
    }

    /// The one writer of a new pledge or source: the row, its checks, the
    /// agreement's new version, the change feed and the search text.
    pub(super) async fn create_child(
        &self,
        actor: &str,
        agreement_id: &str,
        draft: ChildDraft<'_>,
    ) -> StoreResult<StoredChild> {
        let kind = draft.kind();
        let mut tx = self.begin_write().await?;
        let at = now();
        Self::touch_agreement(&mut tx, agreement_id, at).await?;
        if let ChildDraft::Source(d) = draft {
            // Before the row: a wrong pledge is the error to report, not
            // what inserting the row may find.
            Self::check_source_pledge(&mut tx, agreement_id, d).await?;
        }
        let position = Self::next_position(&mut tx, kind.table(), agreement_id).await?;
        let id = match draft {
            ChildDraft::Pledge(d) => {
                Self::insert_pledge_row(&mut tx, agreement_id, d, position, at, "id").await?
            }
            ChildDraft::Source(d) => {
                Self::insert_source_row(&mut tx, agreement_id, d, position, at, "id").await?
            }
        };
        if let ChildDraft::Pledge(d) = draft {
            Self::check_part_of_link(&mut tx, &id, d).await?;
        }
        let child = Self::load_child(&mut tx, kind, &id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let change = Change::new(kind.entity(), &id, "create", child.version())
            .of_agreement(agreement_id)
            .after(&child.draft())?;
        Self::record(&mut tx, at, actor, change).await?;
        Self::reindex(&mut tx, agreement_id, kind.moves_totals()).await?;
        tx.commit().await?;
        Ok(child)
    }

    /// The one writer of a changed pledge or source (`expected_version`:
    /// the If-Match, when the client sent one).
    pub(super) async fn replace_child(
        &self,
        actor: &str,
        id: &str,
        draft: ChildDraft<'_>,
        expected_version: Option<i64>,
    ) -> StoreResult<StoredChild> {
        let kind = draft.kind();
        let mut tx = self.begin_write().await?;
        let at = now();
        let before = Self::load_child(&mut tx, kind, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let agreement_id = match draft {
            ChildDraft::Pledge(d) => {
                Self::update_pledge_row(&mut tx, id, d, -1, expected_version, at).await?
            }
            ChildDraft::Source(d) => {
                Self::update_source_row(&mut tx, id, d, -1, expected_version, at).await?
            }
        };
        match draft {
            ChildDraft::Pledge(d) => Self::check_part_of_link(&mut tx, id, d).await?,
            ChildDraft::Source(d) => Self::check_source_pledge(&mut tx, &agreement_id, d).await?,
        }
        Self::touch_agreement(&mut tx, &agreement_id, at).await?;
        let child = Self::load_child(&mut tx, kind, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let change = Change::new(kind.entity(), id, "update", child.version())
            .of_agreement(&agreement_id)
            .before(&before.draft())?
            .after(&child.draft())?;
        Self::record(&mut tx, at, actor, change).await?;
        Self::reindex(&mut tx, &agreement_id, kind.moves_totals()).await?;
        tx.commit().await?;
        Ok(child)
    }

    /// The one remover of a pledge or source, guarded by its version: its
    /// agreement changes with it, and the deletion is recorded.
    pub(super) async fn remove_child(
        &self,
        actor: &str,
        kind: ChildKind,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let before = Self::load_child(&mut tx, kind, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let table = kind.table();
        let sql = format!(
            "DELETE FROM {table} WHERE id = $1 AND ($2 IS NULL OR version = $2) RETURNING \
             agreement_id"
        );
        let agreement_id = sqlx::query_scalar::<_, String>(&sql)
            .bind(id)
            .bind(expected_version)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(agreement_id) = agreement_id else {
            return Err(Self::missing_or_moved(&mut tx, table, "id", id).await);
        };
        let at = now();
        Self::touch_agreement(&mut tx, &agreement_id, at).await?;
        let change = Change::new(kind.entity(), id, "delete", before.version())
            .of_agreement(&agreement_id)
            .before(&before.draft())?;
        Self::record(&mut tx, at, actor, change).await?;
        Self::reindex(&mut tx, &agreement_id, kind.moves_totals()).await?;
        tx.commit().await?;
        Ok(())
    }
}
