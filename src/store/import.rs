//! Export, import, seeding and bulk loads.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::areas::AREA_SELECT;
use super::dialect::{Args, Builder, Column, Conn, DbRow, Dialect, JsonDoc, json};
use super::feed::Change;
use super::partners::PARTNER_SELECT;
use super::sql_store::SqlStore;
use crate::domain::FieldError;
use crate::domain::Vocabulary;
use crate::domain::agreement::{Agreement, AgreementDraft, AreaLinkDraft};
use crate::domain::area::Area;
use crate::domain::dataset::{Dataset, row_changes};
use crate::domain::partner::Partner;
use crate::domain::pledge::PledgeDraft;
use crate::domain::source::SourceDraft;
use crate::store::{ImportSummary, StoreError, StoreResult, now};

/// The codes of one table, each looked up once; those an import brings
/// itself count as known.
pub(super) struct KnownCodes {
    lookup: &'static str,
    seen: HashMap<String, bool>,
}

impl KnownCodes {
    fn new<'a>(lookup: &'static str, brought: impl Iterator<Item = &'a str>) -> Self {
        Self {
            lookup,
            seen: brought.map(|code| (code.to_owned(), true)).collect(),
        }
    }

    /// Whether `code` is already known, and if so, as what.
    fn known(&self, code: &str) -> Option<bool> {
        self.seen.get(code).copied()
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
    /// Whether a partner or area `code` exists, in the store or the import.
    async fn is_known(codes: &mut KnownCodes, conn: &mut Conn<D>, code: &str) -> StoreResult<bool> {
        if let Some(known) = codes.known(code) {
            return Ok(known);
        }
        let known = sqlx::query(codes.lookup)
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
        codes.seen.insert(code.to_owned(), known);
        Ok(known)
    }

    /// No partner, area or agreement yet: existence checks, not counts,
    /// so a large store answers at once.
    pub(super) async fn holds_nothing(conn: &mut Conn<D>) -> StoreResult<bool> {
        let any: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM partners) OR EXISTS (SELECT 1 FROM areas) OR EXISTS \
             (SELECT 1 FROM agreements)",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(!any)
    }

    /// Upserts a dataset inside the caller's transaction.
    pub(super) async fn import_into(
        tx: &mut Conn<D>,
        actor: &str,
        dataset: &Dataset,
    ) -> StoreResult<ImportSummary> {
        Self::check_import_references(&mut *tx, dataset).await?;
        let at = now();
        let mut summary = ImportSummary::default();
        for (i, draft) in dataset.partners.iter().enumerate() {
            let code = draft.code.as_str();
            let before = Self::load_partner(&mut *tx, code).await?;
            if before.as_ref().is_some_and(|b| b.draft() == *draft) {
                summary.unchanged += 1;
                continue;
            }
            let written = match &before {
                None => Self::insert_partner(&mut *tx, draft, at).await,
                Some(_) => Self::update_partner(&mut *tx, draft, None, at).await,
            };
            written.map_err(|e| Self::within(&format!("partners[{i}]"), e))?;
            let after = Self::load_partner(&mut *tx, code)
                .await?
                .ok_or(StoreError::NotFound)?;
            let change = Change::imported(
                "partner",
                code,
                before.as_ref().map(Partner::draft),
                &after.draft(),
                after.version,
            )?;
            summary.changes.extend(row_changes(
                "partner",
                code,
                change.before.clone(),
                change.after.clone().unwrap_or_default(),
            ));
            Self::record(&mut *tx, at, actor, change).await?;
            summary.count(before.is_none());
        }
        for (i, draft) in dataset.areas.iter().enumerate() {
            let code = draft.code.as_str();
            let before = Self::load_area(&mut *tx, code).await?;
            if before.as_ref().is_some_and(|b| b.draft() == *draft) {
                summary.unchanged += 1;
                continue;
            }
            let written = match &before {
                None => Self::insert_area(&mut *tx, draft, at).await,
                Some(_) => Self::update_area(&mut *tx, draft, None, at).await,
            };
            written.map_err(|e| Self::within(&format!("areas[{i}]"), e))?;
            let after = Self::load_area(&mut *tx, code)
                .await?
                .ok_or(StoreError::NotFound)?;
            let change = Change::imported(
                "area",
                code,
                before.as_ref().map(Area::draft),
                &after.draft(),
                after.version,
            )?;
            summary.changes.extend(row_changes(
                "area",
                code,
                change.before.clone(),
                change.after.clone().unwrap_or_default(),
            ));
            Self::record(&mut *tx, at, actor, change).await?;
            summary.count(before.is_none());
        }
        let mut agreements_written = false;
        for (i, draft) in dataset.agreements.iter().enumerate() {
            let id = draft.id.as_deref().unwrap_or_default();
            let before = Self::load_agreement(&mut *tx, id).await?;
            if before
                .as_ref()
                .is_some_and(|b| Self::same_agreement(&b.draft(), draft))
            {
                summary.unchanged += 1;
                continue;
            }
            let written = match &before {
                None => Self::insert_agreement(&mut *tx, draft, at)
                    .await
                    .map(|_| ()),
                Some(_) => Self::update_agreement(&mut *tx, id, draft, None, at).await,
            };
            written.map_err(|e| Self::within(&format!("agreements[{i}]"), e))?;
            let after = Self::load_agreement(&mut *tx, id)
                .await?
                .ok_or(StoreError::NotFound)?;
            D::index_search_text(&mut *tx, id, &after.search_text()).await?;
            Self::agreement_moved(&mut *tx, before.as_ref(), Some(&after)).await?;
            agreements_written = true;
            let change = Change::imported(
                "agreement",
                id,
                before.as_ref().map(Agreement::draft),
                &after.draft(),
                after.version,
            )?
            .of_agreement(id);
            summary.changes.extend(row_changes(
                "agreement",
                id,
                change.before.clone(),
                change.after.clone().unwrap_or_default(),
            ));
            Self::record(&mut *tx, at, actor, change).await?;
            summary.count(before.is_none());
        }
        // Links may point at agreements imported after their own.
        let links: Vec<(String, String, String)> = dataset
            .agreements
            .iter()
            .enumerate()
            .flat_map(|(i, draft)| {
                Self::part_of_links(
                    draft.id.as_deref().unwrap_or_default(),
                    draft.pledges.as_deref().unwrap_or_default(),
                    &format!("agreements[{i}]."),
                )
            })
            .collect();
        Self::check_part_of(&mut *tx, &links).await?;
        if agreements_written {
            Self::totals_fit(&mut *tx).await?;
        }
        Ok(summary)
    }

    /// Every partner and area an imported agreement names must exist in
    /// the store or in the import itself. Checked for all records before
    /// anything is written, so an editor learns of every bad reference at once.
    pub(super) async fn check_import_references(
        conn: &mut Conn<D>,
        dataset: &Dataset,
    ) -> StoreResult<()> {
        let mut partners = KnownCodes::new(
            "SELECT 1 FROM partners WHERE code = $1",
            dataset.partners.iter().map(|p| p.code.as_str()),
        );
        let mut areas = KnownCodes::new(
            "SELECT 1 FROM areas WHERE code = $1",
            dataset.areas.iter().map(|a| a.code.as_str()),
        );
        let mut errors = Vec::new();
        for (i, agreement) in dataset.agreements.iter().enumerate() {
            if !Self::is_known(&mut partners, &mut *conn, agreement.partner.as_str()).await? {
                errors.push(FieldError::new(
                    format!("agreements[{i}].partner"),
                    "is not a known partner",
                ));
            }
            for (j, link) in agreement.areas.iter().flatten().enumerate() {
                if !Self::is_known(&mut areas, &mut *conn, link.code.as_str()).await? {
                    errors.push(FieldError::new(
                        format!("agreements[{i}].areas[{j}].code"),
                        "is not a known cooperation area",
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Invalid(errors))
        }
    }

    /// Child lists an import leaves out count as unchanged.
    pub(super) fn same_agreement(current: &AgreementDraft, incoming: &AgreementDraft) -> bool {
        let mut current = current.clone();
        if incoming.areas.is_none() {
            current.areas = None;
        }
        if incoming.pledges.is_none() {
            current.pledges = None;
        }
        if incoming.sources.is_none() {
            current.sources = None;
        }
        current == *incoming
    }

    /// Addresses an import error to the record it came from.
    pub(super) fn within(prefix: &str, error: StoreError) -> StoreError {
        match error {
            StoreError::Invalid(errors) => StoreError::Invalid(
                errors
                    .into_iter()
                    .map(|e| FieldError::new(format!("{prefix}.{}", e.field), e.message))
                    .collect(),
            ),
            StoreError::Conflict(message) => {
                StoreError::Invalid(vec![FieldError::new(prefix, message)])
            }
            other => other,
        }
    }

    pub(super) async fn export(&self) -> StoreResult<Dataset> {
        let mut tx = D::begin_read(&self.pool).await?;
        let sql = format!("{PARTNER_SELECT} ORDER BY p.code");
        let partners = sqlx::query(&sql).fetch_all(&mut *tx).await?;
        let sql = format!("{AREA_SELECT} ORDER BY ar.code");
        let areas = sqlx::query(&sql).fetch_all(&mut *tx).await?;
        let agreements = Self::load_all_agreements(&mut tx).await?;
        tx.commit().await?;
        Ok(Dataset {
            partners: partners
                .iter()
                .map(|r| Self::partner_from_row(r).map(|p| p.draft()))
                .collect::<StoreResult<_>>()?,
            areas: areas
                .iter()
                .map(|r| Self::area_from_row(r).map(|a| a.draft()))
                .collect::<StoreResult<_>>()?,
            agreements: agreements.iter().map(Agreement::draft).collect(),
        })
    }

    pub(super) async fn import(
        &self,
        actor: &str,
        dataset: &Dataset,
        dry_run: bool,
    ) -> StoreResult<ImportSummary> {
        let mut tx = self.begin_write().await?;
        let mut summary = Self::import_into(&mut tx, actor, dataset).await?;
        if dry_run {
            tx.rollback().await?;
            summary.dry_run = true;
        } else {
            tx.commit().await?;
        }
        Ok(summary)
    }

    pub(super) async fn seed(
        &self,
        actor: &str,
        dataset: &Dataset,
    ) -> StoreResult<Option<ImportSummary>> {
        let mut tx = self.begin_write().await?;
        // Instances starting together on one empty database: one seeds, the others see it done.
        D::lock_for_seed(&mut tx).await?;
        if !Self::holds_nothing(&mut tx).await? {
            return Ok(None);
        }
        let summary = Self::import_into(&mut tx, actor, dataset).await?;
        tx.commit().await?;
        Ok(Some(summary))
    }

    pub(super) async fn bulk_insert_agreements(
        &self,
        agreements: &[AgreementDraft],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        D::prepare_bulk_load(&mut tx).await?;
        let at = now();
        let names = Self::search_names(&mut tx).await?;
        // Batches stay under SQLite's limit of bound parameters per statement.
        for batch in agreements.chunks(200) {
            let mut sql = Builder::<D>::new(
                "INSERT INTO agreements (id, partner_code, title, kind, status, signed_on, \
                 signed_at, signatories, term_years, expires_on, legally_binding, summary, \
                 text_url, version, created_at, updated_at, signed_place, markers) ",
            );
            let documents = batch
                .iter()
                .map(|d| {
                    Ok((
                        json(&d.signatories)?,
                        d.signed_place.as_ref().map(json).transpose()?,
                        json(&d.markers)?,
                    ))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            sql.push_values(
                batch.iter().zip(documents),
                |mut row, (d, (signatories, place, markers))| {
                    row.push_bind(d.id.clone().unwrap_or_default())
                        .push_bind(d.partner.as_str().to_owned())
                        .push_bind(d.title.clone())
                        .push_bind(d.kind.as_str())
                        .push_bind(d.status.as_str())
                        .push_bind(d.signed_on)
                        .push_bind(d.signed_at.clone())
                        .push_bind(signatories)
                        .push_bind(d.term_years)
                        .push_bind(d.expires_on)
                        .push_bind(d.legally_binding)
                        .push_bind(d.summary.clone())
                        .push_bind(d.text_url.clone())
                        .push_bind(1_i64)
                        .push_bind(at)
                        .push_bind(at)
                        .push_bind(place)
                        .push_bind(markers);
                },
            );
            D::execute_built(&mut sql, &mut *tx).await?;

            let links: Vec<(&str, &AreaLinkDraft)> = batch
                .iter()
                .flat_map(|d| {
                    d.areas
                        .iter()
                        .flatten()
                        .map(move |l| (d.id.as_deref().unwrap_or_default(), l))
                })
                .collect();
            for links in links.chunks(1000) {
                let mut sql = Builder::<D>::new(
                    "INSERT INTO agreement_areas (agreement_id, area_code, detail) ",
                );
                sql.push_values(links, |mut row, (id, link)| {
                    row.push_bind(id.to_string())
                        .push_bind(link.code.as_str().to_owned())
                        .push_bind(link.detail.clone());
                });
                D::execute_built(&mut sql, &mut *tx).await?;
            }

            let pledges: Vec<(&str, usize, &PledgeDraft)> = batch
                .iter()
                .flat_map(|d| {
                    d.pledges
                        .iter()
                        .flatten()
                        .enumerate()
                        .map(move |(i, p)| (d.id.as_deref().unwrap_or_default(), i, p))
                })
                .collect();
            for (i, (_, _, p)) in pledges.iter().enumerate() {
                Self::counted_minor(p, &format!("pledges[{i}].amount"))?;
            }
            for pledges in pledges.chunks(500) {
                let mut sql = Builder::<D>::new(
                    "INSERT INTO pledges (id, agreement_id, position, amount, currency, \
                     year_from, year_to, kind, measure, in_agreement_text, description, note, \
                     version, created_at, updated_at, amount_minor, basis, part_of, markers, \
                     counted_minor, years_counted) ",
                );
                let markers = pledges
                    .iter()
                    .map(|(_, _, p)| json(&p.markers))
                    .collect::<StoreResult<Vec<_>>>()?;
                sql.push_values(
                    pledges.iter().zip(markers),
                    |mut row, ((agreement_id, position, p), markers)| {
                        row.push_bind(p.id.clone().unwrap_or_default())
                            .push_bind(agreement_id.to_string())
                            .push_bind(*position as i64)
                            .push_bind(D::amount_param(&p.amount))
                            .push_bind(p.currency.as_str().to_owned())
                            .push_bind(p.year_from)
                            .push_bind(p.year_to)
                            .push_bind(p.kind.as_str())
                            .push_bind(p.measure.map(Vocabulary::as_str))
                            .push_bind(p.in_agreement_text)
                            .push_bind(p.description.clone())
                            .push_bind(p.note.clone())
                            .push_bind(1_i64)
                            .push_bind(at)
                            .push_bind(at)
                            .push_bind(p.amount.minor_units())
                            .push_bind(p.basis.as_str())
                            .push_bind(p.part_of.clone())
                            .push_bind(markers)
                            .push_bind(p.counted_minor().unwrap_or_default())
                            .push_bind(Self::per_year_years(p));
                    },
                );
                D::execute_built(&mut sql, &mut *tx)
                    .await
                    .map_err(Self::overflow_is_invalid)?;
            }

            let sources: Vec<(&str, usize, &SourceDraft)> = batch
                .iter()
                .flat_map(|d| {
                    d.sources
                        .iter()
                        .flatten()
                        .enumerate()
                        .map(move |(i, s)| (d.id.as_deref().unwrap_or_default(), i, s))
                })
                .collect();
            for sources in sources.chunks(500) {
                let mut sql = Builder::<D>::new(
                    "INSERT INTO sources (id, agreement_id, pledge_ids, position, url, title, \
                     publisher, published_on, version, created_at, updated_at, fields) ",
                );
                let documents = sources
                    .iter()
                    .map(|(_, _, s)| Ok((json(&s.pledges)?, json(&s.fields)?)))
                    .collect::<StoreResult<Vec<_>>>()?;
                sql.push_values(
                    sources.iter().zip(documents),
                    |mut row, ((agreement_id, position, s), (pledges, fields))| {
                        row.push_bind(s.id.clone().unwrap_or_default())
                            .push_bind(agreement_id.to_string())
                            .push_bind(pledges)
                            .push_bind(*position as i64)
                            .push_bind(s.url.clone())
                            .push_bind(s.title.clone())
                            .push_bind(s.publisher.clone())
                            .push_bind(s.published_on)
                            .push_bind(1_i64)
                            .push_bind(at)
                            .push_bind(at)
                            .push_bind(fields);
                    },
                );
                D::execute_built(&mut sql, &mut *tx).await?;
            }

            for draft in batch {
                let names = names.of(draft);
                D::index_search_text(
                    &mut tx,
                    draft.id.as_deref().unwrap_or_default(),
                    &draft.search_text(&names),
                )
                .await?;
            }
        }
        // The triggers of migration 0011 added the new rows to the rollups.
        Self::totals_fit(&mut tx).await?;
        // One entry for the batch: the feed and the revision move on.
        let count = agreements.len().to_string();
        Self::record(
            &mut tx,
            at,
            "generate",
            Change::new("dataset", &count, "bulk_insert", 1),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn is_empty(&self) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await?;
        Self::holds_nothing(&mut conn).await
    }
}
