//! The SQL both backends share. SQLite and PostgreSQL agree on everything
//! here (`$n` parameters, `RETURNING`, `ON CONFLICT`), so it is written once
//! and expanded in each backend's module, which supplies what differs:
//! `Db`, `begin_read`, `begin_write` and the `amount_param`/`amount_from`
//! codec for the amount column (TEXT on SQLite, NUMERIC on PostgreSQL).

macro_rules! shared_sql_store {
    ($store:ident) => {
        use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

        use async_trait::async_trait;
        use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
        use sqlx::Row as _;
        use sqlx::types::Json;

        use crate::domain::FieldError;
        use crate::domain::Vocabulary;
        use crate::domain::marker::Markers;
        use crate::domain::agreement::{
            Agreement, AgreementDraft, AreaLink, AreaLinkDraft, Signatory, derived_expiry,
            generated_agreement_id,
        };
        use crate::domain::area::{Area, AreaCode, AreaDraft};
        use crate::domain::dataset::{Dataset, row_changes};
        use crate::domain::money::Currency;
        use crate::domain::partner::{Partner, PartnerCode, PartnerDraft, PartnerSummary};
        use crate::domain::pledge::{Pledge, PledgeDraft};
        use crate::domain::source::{Source, SourceDraft};
        use crate::auth::ApiKey;
        use crate::domain::query::{
            AgreementCount, AgreementGroup, AgreementQuery, GroupValue, Include, PledgeGroup, PledgeTotal,
            PledgeYearTotal, Sort, SortKey,
        };
        use crate::domain::rates::{AnnualRate, DailyRate};
        use crate::store::{
            AnnualFilter, AnnualRates, ChangeDetail, ChangeEntry, ChangeFilter, LatestChangeFilter, SourceCount, HistoryEntry, HistoryFilter, IDEMPOTENCY_ABANDONED,
            IDEMPOTENCY_RETENTION, ImportSummary, KeyMatch, Page, PageRequest, RateFilter, RateWrite, Reservation,
            SearchCut, Store, StoreError, StoreResult, StoredResponse, now,
        };

        type Conn = <Db as sqlx::Database>::Connection;
        type DbRow = <Db as sqlx::Database>::Row;

        fn corrupt(what: &str, detail: String) -> StoreError {
            StoreError::Internal(format!("stored {what} is invalid: {detail}"))
        }

        fn vocabulary<V: Vocabulary>(text: &str) -> StoreResult<V> {
            V::parse(text).map_err(|e| corrupt("vocabulary value", format!("{text:?} {e}")))
        }

        fn is_unique_violation(error: &sqlx::Error) -> bool {
            matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
        }

        fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
            matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
        }

        fn invalid(field: &str, message: &str) -> StoreError {
            StoreError::Invalid(vec![FieldError::new(field, message)])
        }

        /// After an UPDATE or DELETE guarded by id and version touched nothing:
        /// was the row missing, or had it moved on?
        async fn missing_or_moved(conn: &mut Conn, table: &str, key_column: &str, key: &str) -> StoreError {
            let sql = format!("SELECT version FROM {table} WHERE {key_column} = $1");
            match sqlx::query_scalar::<_, i64>(&sql).bind(key).fetch_optional(&mut *conn).await {
                Ok(Some(current)) => StoreError::VersionMismatch { current },
                Ok(None) => StoreError::NotFound,
                Err(e) => e.into(),
            }
        }

        fn page_of<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Page<T> {
            let more = items.len() > limit as usize;
            items.truncate(limit as usize);
            let next_after = if more { items.last().map(&key) } else { None };
            Page { items, next_after }
        }

        // ---- partners ------------------------------------------------------

        /// Partners with how many agreements name them (a row of the
        /// agreement rollup) and their first and last signing dates (the ends
        /// of the partner's run of index agreements_partner_signed).
        const PARTNER_SELECT: &str = "SELECT p.code, p.iso3, p.kind, p.name, p.name_uk, p.aliases, p.version, \
             p.created_at, p.updated_at, \
             COALESCE((SELECT r.n FROM agreement_rollup r WHERE r.set_key = 'partner' AND r.area_code = '*' \
                 AND r.partner_code = p.code AND r.year_key = -2 AND r.status = '*' AND r.kind = '*' AND r.binding_key = -2), 0) \
                 AS agreement_count, \
             (SELECT MIN(x.signed_on) FROM agreements x WHERE x.partner_code = p.code) AS first_signed_on, \
             (SELECT MAX(x.signed_on) FROM agreements x WHERE x.partner_code = p.code) AS last_signed_on \
             FROM partners p";

        fn partner_from_row(row: &DbRow) -> StoreResult<Partner> {
            let Json(aliases): Json<Vec<String>> = row.try_get("aliases")?;
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

        async fn load_partner(conn: &mut Conn, code: &str) -> StoreResult<Option<Partner>> {
            let sql = format!("{PARTNER_SELECT} WHERE p.code = $1");
            let row = sqlx::query(&sql).bind(code).fetch_optional(&mut *conn).await?;
            row.as_ref().map(partner_from_row).transpose()
        }

        async fn write_partner_keys(conn: &mut Conn, draft: &PartnerDraft) -> StoreResult<()> {
            sqlx::query("DELETE FROM partner_keys WHERE partner_code = $1")
                .bind(draft.code.as_str())
                .execute(&mut *conn)
                .await?;
            let keys = draft.lookup_keys();
            let mut insert = sqlx::QueryBuilder::<Db>::new("INSERT INTO partner_keys (key, partner_code, rank) ");
            insert.push_values(keys, |mut row, (key, rank)| {
                row.push_bind(key)
                    .push_bind(draft.code.as_str().to_owned())
                    .push_bind(rank as i64);
            });
            insert.build().execute(&mut *conn).await?;
            Ok(())
        }

        fn map_partner_write_error(error: sqlx::Error) -> StoreError {
            if is_unique_violation(&error) {
                invalid("iso3", "is already the alpha-3 code of another partner")
            } else {
                error.into()
            }
        }

        async fn insert_partner(conn: &mut Conn, draft: &PartnerDraft, at: DateTime<Utc>) -> StoreResult<()> {
            let inserted = sqlx::query(
                "INSERT INTO partners (code, iso3, kind, name, name_uk, aliases, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) ON CONFLICT (code) DO NOTHING",
            )
            .bind(draft.code.as_str())
            .bind(draft.iso3.as_deref())
            .bind(draft.kind.as_str())
            .bind(&draft.name)
            .bind(draft.name_uk.as_deref())
            .bind(Json(&draft.aliases))
            .bind(at)
            .execute(&mut *conn)
            .await
            .map_err(map_partner_write_error)?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!("partner {} already exists", draft.code.as_str())));
            }
            write_partner_keys(conn, draft).await
        }

        async fn update_partner(
            conn: &mut Conn,
            draft: &PartnerDraft,
            expected_version: Option<i64>,
            at: DateTime<Utc>,
        ) -> StoreResult<()> {
            let updated = sqlx::query(
                "UPDATE partners SET iso3 = $2, kind = $3, name = $4, name_uk = $5, aliases = $6, \
                 version = version + 1, updated_at = $7 WHERE code = $1 AND ($8 IS NULL OR version = $8)",
            )
            .bind(draft.code.as_str())
            .bind(draft.iso3.as_deref())
            .bind(draft.kind.as_str())
            .bind(&draft.name)
            .bind(draft.name_uk.as_deref())
            .bind(Json(&draft.aliases))
            .bind(at)
            .bind(expected_version)
            .execute(&mut *conn)
            .await
            .map_err(map_partner_write_error)?;
            if updated.rows_affected() == 0 {
                return Err(missing_or_moved(conn, "partners", "code", draft.code.as_str()).await);
            }
            write_partner_keys(conn, draft).await
        }

        // ---- areas -----------------------------------------------------------

        const AREA_SELECT: &str = "SELECT ar.code, ar.name, ar.name_uk, ar.description, ar.version, ar.created_at, ar.updated_at, \
             COALESCE((SELECT r.n FROM agreement_rollup r WHERE r.set_key = 'area' AND r.area_code = ar.code \
                 AND r.partner_code = '*' AND r.year_key = -2 AND r.status = '*' AND r.kind = '*' AND r.binding_key = -2), 0) \
                 AS agreement_count FROM areas ar";

        fn area_from_row(row: &DbRow) -> StoreResult<Area> {
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

        async fn load_area(conn: &mut Conn, code: &str) -> StoreResult<Option<Area>> {
            let sql = format!("{AREA_SELECT} WHERE ar.code = $1");
            let row = sqlx::query(&sql).bind(code).fetch_optional(&mut *conn).await?;
            row.as_ref().map(area_from_row).transpose()
        }

        async fn insert_area(conn: &mut Conn, draft: &AreaDraft, at: DateTime<Utc>) -> StoreResult<()> {
            let inserted = sqlx::query(
                "INSERT INTO areas (code, name, description, version, created_at, updated_at, name_uk) \
                 VALUES ($1, $2, $3, 1, $4, $4, $5) ON CONFLICT (code) DO NOTHING",
            )
            .bind(draft.code.as_str())
            .bind(&draft.name)
            .bind(draft.description.as_deref())
            .bind(at)
            .bind(draft.name_uk.as_deref())
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!("area {} already exists", draft.code.as_str())));
            }
            Ok(())
        }

        async fn update_area(
            conn: &mut Conn,
            draft: &AreaDraft,
            expected_version: Option<i64>,
            at: DateTime<Utc>,
        ) -> StoreResult<()> {
            let updated = sqlx::query(
                "UPDATE areas SET name = $2, description = $3, version = version + 1, updated_at = $4, \
                 name_uk = $6 WHERE code = $1 AND ($5 IS NULL OR version = $5)",
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
                return Err(missing_or_moved(conn, "areas", "code", draft.code.as_str()).await);
            }
            Ok(())
        }

        // ---- agreements: reading -------------------------------------------

        const AGREEMENT_SELECT: &str = "SELECT a.id, a.partner_code, a.title, a.title_uk, a.kind, a.status, a.signed_on, \
             a.signed_at, a.signed_place, a.signatories, a.term_years, a.expires_on, a.legally_binding, a.summary, \
             a.text_url, a.markers, a.version, a.created_at, a.updated_at, p.iso3 AS partner_iso3, \
             p.kind AS partner_kind, p.name AS partner_name, p.name_uk AS partner_name_uk \
             FROM agreements a JOIN partners p ON p.code = a.partner_code";

        fn agreement_from_row(row: &DbRow) -> StoreResult<Agreement> {
            let Json(signatories): Json<Vec<Signatory>> = row.try_get("signatories")?;
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
                    .try_get::<Option<Json<crate::domain::marker::Place>>, _>("signed_place")?
                    .map(|Json(place)| place),
                signatories,
                term_years,
                expires_on: expires_on_given.or_else(|| derived_expiry(signed_on, term_years)),
                expires_on_given,
                legally_binding: row.try_get("legally_binding")?,
                summary: row.try_get("summary")?,
                text_url: row.try_get("text_url")?,
                markers: row.try_get::<Json<Markers>, _>("markers")?.0,
                areas: Vec::new(),
                pledges: Vec::new(),
                sources: Vec::new(),
                version: row.try_get("version")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        const PLEDGE_COLUMNS: &str = "id, agreement_id, amount, currency, year_from, year_to, kind, measure, \
             basis, part_of, markers, in_agreement_text, description, note, version, created_at, updated_at";

        fn pledge_from_row(row: &DbRow) -> StoreResult<Pledge> {
            let measure: Option<&str> = row.try_get("measure")?;
            let currency: &str = row.try_get("currency")?;
            Ok(Pledge {
                id: row.try_get("id")?,
                agreement_id: row.try_get("agreement_id")?,
                amount: amount_from(row.try_get("amount")?).map_err(|e| corrupt("amount", e))?,
                currency: Currency::parse(currency).map_err(|e| corrupt("currency", e))?,
                converted: None,
                year_from: row.try_get("year_from")?,
                year_to: row.try_get("year_to")?,
                kind: vocabulary(row.try_get::<&str, _>("kind")?)?,
                measure: measure.map(vocabulary).transpose()?,
                basis: vocabulary(row.try_get::<&str, _>("basis")?)?,
                part_of: row.try_get("part_of")?,
                parts: Vec::new(),
                in_agreement_text: row.try_get("in_agreement_text")?,
                description: row.try_get("description")?,
                note: row.try_get("note")?,
                markers: row.try_get::<Json<Markers>, _>("markers")?.0,
                sources: Vec::new(),
                version: row.try_get("version")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        const SOURCE_COLUMNS: &str =
            "id, agreement_id, pledge_ids, fields, url, title, publisher, published_on, version, created_at, updated_at";

        fn source_from_row(row: &DbRow) -> StoreResult<Source> {
            Ok(Source {
                id: row.try_get("id")?,
                agreement_id: row.try_get("agreement_id")?,
                url: row.try_get("url")?,
                title: row.try_get("title")?,
                publisher: row.try_get("publisher")?,
                published_on: row.try_get("published_on")?,
                pledges: row.try_get::<Json<Vec<String>>, _>("pledge_ids")?.0,
                fields: row.try_get::<Json<Vec<String>>, _>("fields")?.0,
                version: row.try_get("version")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        /// The pledges that are part of each of `pledges`: one query for the
        /// page, through the part_of index.
        async fn attach_parts(conn: &mut Conn, pledges: &mut [&mut Pledge], with: &str) -> StoreResult<()> {
            if pledges.is_empty() {
                return Ok(());
            }
            let wholes: Vec<String> = pledges.iter().map(|p| p.id.clone()).collect();
            let mut query = sqlx::QueryBuilder::<Db>::new(format!("{with}SELECT id, part_of FROM pledges WHERE part_of IS NOT NULL AND part_of"));
            push_in_ids(&mut query, &wholes);
            // Sorted here: an ORDER BY id had SQLite walk every pledge in id
            // order instead of looking the wholes up in the part_of index.
            let rows = query.build().fetch_all(&mut *conn).await?;
            let mut parts: HashMap<String, Vec<String>> = HashMap::new();
            for row in rows {
                parts.entry(row.try_get("part_of")?).or_default().push(row.try_get("id")?);
            }
            for pledge in pledges.iter_mut() {
                pledge.parts = parts.remove(&pledge.id).unwrap_or_default();
                pledge.parts.sort();
            }
            Ok(())
        }

        /// Restricts a child query to the listed agreements, or to none when
        /// `ids` is None (every agreement: an export).
        fn push_agreement_ids(query: &mut sqlx::QueryBuilder<'_, Db>, column: &str, ids: Option<&[String]>) {
            match ids {
                None => {
                    query.push(" WHERE 1 = 1");
                }
                Some(ids) => {
                    query.push(format!(" WHERE {column}"));
                    push_in_ids(query, ids);
                }
            }
        }

        /// Fills in the children `include` asks for, one query per kind of
        /// child for the whole page.
        async fn attach_children(conn: &mut Conn, agreements: &mut [Agreement], include: Include, all: bool, with: &str) -> StoreResult<()> {
            if agreements.is_empty() {
                return Ok(());
            }
            let index: HashMap<String, usize> =
                agreements.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
            let ids: Vec<String> = agreements.iter().map(|a| a.id.clone()).collect();
            let ids = (!all).then_some(ids.as_slice());

            if include.areas {
                let mut query = sqlx::QueryBuilder::<Db>::new(format!(
                    "{with}SELECT l.agreement_id, l.area_code, ar.name, ar.name_uk, l.detail FROM agreement_areas l \
                     JOIN areas ar ON ar.code = l.area_code",
                ));
                push_agreement_ids(&mut query, "l.agreement_id", ids);
                query.push(" ORDER BY l.agreement_id, l.area_code");
                for row in query.build().fetch_all(&mut *conn).await? {
                    let agreement_id: &str = row.try_get("agreement_id")?;
                    if let Some(&i) = index.get(agreement_id) {
                        agreements[i].areas.push(AreaLink {
                            code: AreaCode::from_trusted(row.try_get("area_code")?),
                            name: row.try_get("name")?,
                            name_uk: row.try_get("name_uk")?,
                            detail: row.try_get("detail")?,
                        });
                    }
                }
            }
            // A pledge lists its sources, so pledges need the sources loaded.
            if include.sources || include.pledges {
                let mut query = sqlx::QueryBuilder::<Db>::new(format!("{with}SELECT {SOURCE_COLUMNS} FROM sources"));
                push_agreement_ids(&mut query, "agreement_id", ids);
                query.push(" ORDER BY agreement_id, position");
                for row in query.build().fetch_all(&mut *conn).await? {
                    let source = source_from_row(&row)?;
                    if let Some(&i) = index.get(&source.agreement_id) {
                        agreements[i].sources.push(source);
                    }
                }
            }
            if include.pledges {
                let mut query = sqlx::QueryBuilder::<Db>::new(format!("{with}SELECT {PLEDGE_COLUMNS} FROM pledges"));
                push_agreement_ids(&mut query, "agreement_id", ids);
                query.push(" ORDER BY agreement_id, position");
                for row in query.build().fetch_all(&mut *conn).await? {
                    let mut pledge = pledge_from_row(&row)?;
                    if let Some(&i) = index.get(&pledge.agreement_id) {
                        pledge.sources = agreements[i]
                            .sources
                            .iter()
                            .filter(|s| s.pledges.contains(&pledge.id))
                            .cloned()
                            .collect();
                        agreements[i].pledges.push(pledge);
                    }
                }
                let mut pledges: Vec<&mut Pledge> =
                    agreements.iter_mut().flat_map(|a| a.pledges.iter_mut()).collect();
                attach_parts(conn, &mut pledges, with).await?;
            }
            if !include.sources {
                for agreement in agreements.iter_mut() {
                    agreement.sources.clear();
                }
            }
            Ok(())
        }

        async fn load_agreement(conn: &mut Conn, id: &str) -> StoreResult<Option<Agreement>> {
            load_agreement_with(conn, id, "").await
        }

        /// The agreement as the statements prefixed by `with` see the
        /// tables: as they are (""), or as of a revision ([`as_of`]).
        async fn load_agreement_with(conn: &mut Conn, id: &str, with: &str) -> StoreResult<Option<Agreement>> {
            let sql = format!("{with}{AGREEMENT_SELECT} WHERE a.id = $1");
            let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await? else {
                return Ok(None);
            };
            let mut agreements = vec![agreement_from_row(&row)?];
            attach_children(conn, &mut agreements, Include::ALL, false, with).await?;
            Ok(agreements.pop())
        }

        /// The tables an agreement is read from (see [`AGREEMENT_SELECT`] and
        /// [`attach_children`]).
        const AGREEMENT_TABLES: [&str; 6] = ["agreements", "partners", "agreement_areas", "areas", "pledges", "sources"];

        /// A WITH clause naming each table of an agreement after its rows as
        /// of `revision` (migration 0014): a CTE shadows the table of its
        /// name, so the very statements that read an agreement now read it
        /// then. Each CTE is used once and inlined, so the outer query's
        /// conditions reach the versions' indexes. The revision is an
        /// integer, written into the text rather than bound, so the
        /// statements keep their own parameters.
        fn as_of(revision: i64) -> String {
            let tables: Vec<String> = AGREEMENT_TABLES
                .iter()
                .map(|t| {
                    format!(
                        "{t} AS (SELECT * FROM {t}_versions WHERE rev_from <= {revision} \
                         AND (rev_to IS NULL OR rev_to > {revision}))"
                    )
                })
                .collect();
            format!("WITH {} ", tables.join(", "))
        }

        /// Every agreement with its children, in id order: an export.
        async fn load_all_agreements(conn: &mut Conn) -> StoreResult<Vec<Agreement>> {
            let sql = format!("{AGREEMENT_SELECT} ORDER BY a.id");
            let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
            let mut agreements = rows.iter().map(agreement_from_row).collect::<StoreResult<Vec<_>>>()?;
            attach_children(conn, &mut agreements, Include::ALL, true, "").await?;
            Ok(agreements)
        }

        /// The filters of an agreement query, as `AND ...` conditions on `a`
        /// (agreements) joined with `p` (partners). Values are always bound.
        ///
        /// A page (`page`) not in signing order compares the date as
        /// [`SIGNED_ON_IN_PAGE`] says: SQLite read a broad range of dates
        /// through its index and sorted it (60,000 agreements for `year=2024`
        /// at 100,000), where walking the page's own order stops at its limit.
        /// A page in signing order compares the sort's own expression (an
        /// unknown date as the earliest, and excluded by a date range as
        /// before), so a filter's index that also holds that order (the
        /// partner's, the status's, the kind's: migration 0017) serves the
        /// range, the filter and the order at once.
        fn push_filters(sql: &mut sqlx::QueryBuilder<'_, Db>, query: &AgreementQuery, pledge_alias: Option<&str>, page: bool) {
            let in_signing_order = page && query.sort.key == SortKey::SignedOn;
            let signed_on = match (page, in_signing_order) {
                (true, true) => sort_expression(SortKey::SignedOn),
                (true, false) => SIGNED_ON_IN_PAGE,
                (false, _) => "a.signed_on",
            };
            if in_signing_order && (query.signed_from.is_some() || query.signed_to.is_some()) {
                sql.push(format!(" AND {SIGNED_ON_IN_PAGE} IS NOT NULL"));
            }
            fn push_list<T: ToString>(sql: &mut sqlx::QueryBuilder<'_, Db>, column: &str, values: &[T]) {
                sql.push(format!(" AND {column} IN ("));
                let mut list = sql.separated(", ");
                for value in values {
                    list.push_bind(value.to_string());
                }
                list.push_unseparated(")");
            }
            if !query.partners.is_empty() {
                let codes: Vec<&str> = query.partners.iter().map(PartnerCode::as_str).collect();
                push_list(sql, "a.partner_code", &codes);
            }
            for any_of in &query.areas {
                sql.push(" AND EXISTS (SELECT 1 FROM agreement_areas fa WHERE fa.agreement_id = a.id AND fa.area_code IN (");
                let mut list = sql.separated(", ");
                for code in any_of {
                    list.push_bind(code.as_str().to_owned());
                }
                list.push_unseparated("))");
            }
            if !query.statuses.is_empty() {
                let names: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
                push_list(sql, "a.status", &names);
            }
            if !query.kinds.is_empty() {
                let names: Vec<&str> = query.kinds.iter().map(|k| k.as_str()).collect();
                push_list(sql, "a.kind", &names);
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
                    push_list(sql, &format!("{alias}.kind"), &names);
                }
                if let Some(currency) = &query.pledge.currency {
                    sql.push(format!(" AND {alias}.currency = ")).push_bind(currency.as_str().to_owned());
                }
                if let Some(min) = query.pledge.min_minor {
                    sql.push(format!(" AND {alias}.amount_minor >= ")).push_bind(min);
                }
                if let Some(max) = query.pledge.max_minor {
                    sql.push(format!(" AND {alias}.amount_minor <= ")).push_bind(max);
                }
                if pledge_alias.is_none() {
                    sql.push(")");
                }
            }
        }

        /// The years of a signing range that is made of whole years (from 1
        /// January, to 31 December), as the rollups key them; None when
        /// either end falls inside a year, which no rollup can answer.
        fn whole_signing_years(query: &AgreementQuery) -> Option<(Option<i64>, Option<i64>)> {
            let from = match query.signed_from {
                Some(from) if (from.month(), from.day()) != (1, 1) => return None,
                from => from.map(|d| i64::from(d.year())),
            };
            let to = match query.signed_to {
                Some(to) if (to.month(), to.day()) != (12, 31) => return None,
                to => to.map(|d| i64::from(d.year())),
            };
            Some((from, to))
        }

        /// `AND column IN (values…)`, bound; nothing for no values.
        fn push_in(sql: &mut sqlx::QueryBuilder<'static, Db>, column: &str, values: Vec<String>) {
            if values.is_empty() {
                return;
            }
            sql.push(format!(" AND {column} IN ("));
            let mut list = sql.separated(", ");
            for value in values {
                list.push_bind(value);
            }
            list.push_unseparated(")");
        }

        /// The signing years (in `year_column`) and the legal nature of a
        /// rollup row, as the rollups of migrations 0011 and 0016 key them.
        fn push_rollup_conditions(
            sql: &mut sqlx::QueryBuilder<'static, Db>,
            year_column: &str,
            (from, to): (Option<i64>, Option<i64>),
            legally_binding: Option<Option<bool>>,
        ) {
            if let Some(year) = from {
                sql.push(format!(" AND {year_column} >= ")).push_bind(year);
            }
            if let Some(year) = to {
                // -1 (unknown) is below every year, and matches no date range.
                sql.push(format!(" AND {year_column} >= 0 AND {year_column} <= ")).push_bind(year);
            }
            if let Some(binding) = legally_binding {
                sql.push(" AND r.binding_key = ").push_bind(match binding {
                    Some(true) => 1_i64,
                    Some(false) => 0,
                    None => -1,
                });
            }
        }

        /// Counts agreements grouped by `groups` from the agreement rollup
        /// (migration 0011), reading a number of rows that grows with the
        /// groups, not the agreements. None when the question needs more
        /// than a rollup set keeps: a search, conditions on pledges, dates
        /// that are not whole years, several areas at once, or an area with
        /// two more dimensions.
        fn push_rollup_count(query: &AgreementQuery, groups: &[AgreementGroup]) -> Option<sqlx::QueryBuilder<'static, Db>> {
            if query.search.is_some() || !query.pledge.is_empty() {
                return None;
            }
            let (whole_year_from, whole_year_to) = whole_signing_years(query)?;
            let by_area = groups.contains(&AgreementGroup::Area);
            let one_area = match query.areas.as_slice() {
                [] => None,
                [only] if only.len() == 1 && !by_area => Some(only[0].as_str().to_owned()),
                _ => return None,
            };
            let mut dimensions = Vec::new();
            for (name, wanted) in [
                ("area", by_area || one_area.is_some()),
                ("partner", groups.contains(&AgreementGroup::Partner) || !query.partners.is_empty()),
                ("year", groups.contains(&AgreementGroup::Year) || whole_year_from.is_some() || whole_year_to.is_some()),
                ("status", groups.contains(&AgreementGroup::Status) || !query.statuses.is_empty()),
                ("kind", groups.contains(&AgreementGroup::Kind) || !query.kinds.is_empty()),
                ("binding", query.legally_binding.is_some()),
            ] {
                if wanted {
                    dimensions.push(name);
                }
            }
            let set_key = match dimensions.len() {
                0..=2 => dimensions.join(","),
                // Three or more: the set of every dimension but the area.
                _ if !dimensions.contains(&"area") => "partner,year,status,kind,binding".to_owned(),
                _ => return None,
            };
            let expressions: Vec<&str> = groups
                .iter()
                .map(|g| match g {
                    AgreementGroup::Year => "NULLIF(r.year_key, -1)",
                    AgreementGroup::Status => "r.status",
                    AgreementGroup::Kind => "r.kind",
                    AgreementGroup::Area => "r.area_code",
                    AgreementGroup::Partner => "r.partner_code",
                })
                .collect();
            let mut sql = sqlx::QueryBuilder::<Db>::new("SELECT ");
            for (i, expression) in expressions.iter().enumerate() {
                sql.push(format!("{expression} AS g{i}, "));
            }
            sql.push("COALESCE(CAST(SUM(r.n) AS BIGINT), 0) AS n FROM agreement_rollup r WHERE r.set_key = ");
            sql.push_bind(set_key);
            if let Some(area) = one_area {
                sql.push(" AND r.area_code = ").push_bind(area);
            }
            push_in(&mut sql, "r.partner_code", query.partners.iter().map(|p| p.as_str().to_owned()).collect());
            push_in(&mut sql, "r.status", query.statuses.iter().map(|v| v.as_str().to_owned()).collect());
            push_in(&mut sql, "r.kind", query.kinds.iter().map(|v| v.as_str().to_owned()).collect());
            push_rollup_conditions(&mut sql, "r.year_key", (whole_year_from, whole_year_to), query.legally_binding);
            if !expressions.is_empty() {
                sql.push(" GROUP BY ");
                for (i, expression) in expressions.iter().enumerate() {
                    push_group(&mut sql, expression, i == 0);
                }
                // Counts that fell to 0 stay in the rollup; they are no group.
                sql.push(" HAVING SUM(r.n) > 0 ORDER BY ");
                for (i, expression) in expressions.iter().enumerate() {
                    push_group(&mut sql, &format!("({expression} IS NULL), {expression}"), i == 0);
                }
            }
            Some(sql)
        }

        /// The expression an order sorts on; NULL dates sort as the earliest.
        fn sort_expression(key: SortKey) -> &'static str {
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
        fn page_key(agreement: &Agreement, key: SortKey, rank: Option<f64>) -> String {
            let value = match key {
                SortKey::Id => serde_json::Value::Null,
                SortKey::SignedOn => serde_json::json!(agreement.signed_on.map_or("0001-01-01".to_owned(), |d| d.to_string())),
                SortKey::Partner => serde_json::json!(agreement.partner.name),
                SortKey::Title => serde_json::json!(agreement.title),
                SortKey::UpdatedAt => serde_json::json!(agreement.updated_at),
                SortKey::Relevance => serde_json::json!(rank.unwrap_or_default()),
            };
            serde_json::json!([value, agreement.id]).to_string()
        }

        fn bad_cursor() -> StoreError {
            StoreError::Invalid(vec![FieldError::new("cursor", "is not one this service gave out for this sort")])
        }

        /// The rank and id of a relevance page key.
        fn relevance_key(after: &str) -> StoreResult<(f64, String)> {
            match serde_json::from_str(after).map_err(|_| bad_cursor())? {
                (serde_json::Value::Number(rank), id) => Ok((rank.as_f64().ok_or_else(bad_cursor)?, id)),
                _ => Err(bad_cursor()),
            }
        }

        /// Continues after a page key: `(sort value, id)` beyond the last seen.
        fn push_keyset(sql: &mut sqlx::QueryBuilder<'_, Db>, sort: Sort, after: &str) -> StoreResult<()> {
            let (value, id): (serde_json::Value, String) = serde_json::from_str(after).map_err(|_| bad_cursor())?;
            let op = if sort.descending { "<" } else { ">" };
            let expression = sort_expression(sort.key);
            if sort.key == SortKey::Id {
                sql.push(format!(" AND a.id {op} ")).push_bind(id);
                return Ok(());
            }
            sql.push(format!(" AND ({expression}, a.id) {op} ("));
            match (sort.key, value) {
                (SortKey::SignedOn, serde_json::Value::String(text)) => {
                    let date: NaiveDate = text.parse().map_err(|_| bad_cursor())?;
                    sql.push_bind(date);
                }
                (SortKey::UpdatedAt, serde_json::Value::String(text)) => {
                    let at: DateTime<Utc> = text.parse().map_err(|_| bad_cursor())?;
                    sql.push_bind(at);
                }
                (SortKey::Partner | SortKey::Title, serde_json::Value::String(text)) => {
                    sql.push_bind(text);
                }
                (SortKey::Relevance, serde_json::Value::Number(n)) => {
                    sql.push_bind(n.as_f64().ok_or_else(bad_cursor)?);
                }
                _ => return Err(bad_cursor()),
            }
            sql.push(", ").push_bind(id).push(")");
            Ok(())
        }

        async fn load_agreements(conn: &mut Conn, query: &AgreementQuery, page: &PageRequest) -> StoreResult<Page<Agreement>> {
            let relevance = query.search.is_some();
            let mut sql = sqlx::QueryBuilder::<Db>::new(AGREEMENT_SELECT.replace(" FROM agreements a", if relevance { ", s.rank AS rank FROM agreements a" } else { " FROM agreements a" }));
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
                        after: page.after.as_deref().map(relevance_key).transpose()?,
                    })
                } else {
                    None
                };
                push_search_join(&mut sql, terms, cut);
            }
            sql.push(" WHERE 1 = 1");
            push_filters(&mut sql, query, None, true);
            if let Some(after) = &page.after {
                push_keyset(&mut sql, query.sort, after)?;
            }
            let direction = if query.sort.descending { "DESC" } else { "ASC" };
            sql.push(format!(" ORDER BY {} {direction}, a.id {direction} LIMIT ", sort_expression(query.sort.key)));
            sql.push_bind(i64::from(page.limit) + 1);
            let rows = sql.build().fetch_all(&mut *conn).await?;
            let mut agreements = Vec::with_capacity(rows.len());
            let mut ranks = Vec::with_capacity(rows.len());
            for row in &rows {
                agreements.push(agreement_from_row(row)?);
                ranks.push(if relevance { Some(row.try_get::<f64, _>("rank")?) } else { None });
            }
            let more = agreements.len() > page.limit as usize;
            agreements.truncate(page.limit as usize);
            let next_after = if more {
                agreements.last().map(|a| page_key(a, query.sort.key, ranks[agreements.len() - 1]))
            } else {
                None
            };
            attach_children(conn, &mut agreements, query.include, false, "").await?;
            Ok(Page { items: agreements, next_after })
        }

        /// Rewrites the search text and the partner's pledge totals after one
        /// agreement or its children changed.
        async fn reindex(conn: &mut Conn, agreement_id: &str, pledges_changed: bool) -> StoreResult<()> {
            if let Some(agreement) = load_agreement(conn, agreement_id).await? {
                index_search_text(conn, agreement_id, &agreement.search_text()).await?;
                // Sources carry no amounts: only pledge changes move the totals
                // (the triggers of migration 0011 moved them; the bound is checked here).
                if pledges_changed {
                    totals_fit(conn).await?;
                }
            }
            Ok(())
        }

        /// No partner, area or agreement yet: existence checks, not counts,
        /// so a large store answers at once.
        async fn holds_nothing(conn: &mut Conn) -> StoreResult<bool> {
            let any: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM partners) OR EXISTS (SELECT 1 FROM areas) OR EXISTS (SELECT 1 FROM agreements)",
            )
            .fetch_one(&mut *conn)
            .await?;
            Ok(!any)
        }

        /// Deletes a pledge or a source, guarded by its version: its agreement
        /// changes with it, and the deletion is recorded.
        async fn delete_child(
            conn: &mut Conn,
            actor: &str,
            (entity, table): (&str, &str),
            id: &str,
            expected_version: Option<i64>,
            (version, before): (i64, serde_json::Value),
        ) -> StoreResult<()> {
            let sql = format!("DELETE FROM {table} WHERE id = $1 AND ($2 IS NULL OR version = $2) RETURNING agreement_id");
            let agreement_id = sqlx::query_scalar::<_, String>(&sql)
                .bind(id)
                .bind(expected_version)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(agreement_id) = agreement_id else {
                return Err(missing_or_moved(conn, table, "id", id).await);
            };
            let at = now();
            touch_agreement(conn, &agreement_id, at).await?;
            let mut change = Change::new(entity, id, "delete", version).of_agreement(&agreement_id);
            change.before = Some(before);
            record(conn, at, actor, change).await?;
            reindex(conn, &agreement_id, entity == "pledge").await
        }

        /// The combinations of pledge year, kind and measure the rollup keeps
        /// (see migration 0004), each with its set_key.
        const ROLLUP_SETS: [(bool, bool, bool); 8] = [
            (false, false, false),
            (true, false, false),
            (false, true, false),
            (false, false, true),
            (true, true, false),
            (true, false, true),
            (false, true, true),
            (true, true, true),
        ];

        fn rollup_set_key((year, kind, measure): (bool, bool, bool)) -> String {
            let mut names = Vec::new();
            if year {
                names.push("year");
            }
            if kind {
                names.push("kind");
            }
            if measure {
                names.push("measure");
            }
            names.join(",")
        }

        /// Pledge totals under conditions on their agreements (year of
        /// signing in whole years, status, kind, legal nature) from the
        /// condition rollup (migration 0016), reading rows that grow with
        /// the groups, not the pledges. None when the question needs more
        /// than a set keeps: an area, a search, amounts, dates that are not
        /// whole years, or several agreement conditions with a pledge
        /// dimension other than the kind.
        fn push_condition_totals(
            query: &AgreementQuery,
            groups: &[PledgeGroup],
            pledge_set: &str,
        ) -> Option<sqlx::QueryBuilder<'static, Db>> {
            if groups.contains(&PledgeGroup::Area)
                || !query.areas.is_empty()
                || query.search.is_some()
                || query.pledge.min_minor.is_some()
                || query.pledge.max_minor.is_some()
            {
                return None;
            }
            let (whole_year_from, whole_year_to) = whole_signing_years(query)?;
            let conditions: Vec<&str> = [
                ("signed", whole_year_from.is_some() || whole_year_to.is_some()),
                ("status", !query.statuses.is_empty()),
                ("kind", !query.kinds.is_empty()),
                ("binding", query.legally_binding.is_some()),
            ]
            .into_iter()
            .filter_map(|(name, wanted)| wanted.then_some(name))
            .collect();
            let condition_set = match conditions.as_slice() {
                [] => return None,
                [one] => *one,
                _ if pledge_set.is_empty() || pledge_set == "kind" => "signed,status,kind,binding",
                _ => return None,
            };
            let expressions: Vec<&str> = groups
                .iter()
                .map(|g| match g {
                    PledgeGroup::Partner => "r.partner_code",
                    PledgeGroup::Year => "NULLIF(r.year_key, -1)",
                    PledgeGroup::Kind => "r.kind",
                    PledgeGroup::Measure => "NULLIF(r.measure_key, '')",
                    PledgeGroup::Area => unreachable!("grouping by area returned above"),
                })
                .collect();
            let mut sql = sqlx::QueryBuilder::<Db>::new("SELECT ");
            for (i, expression) in expressions.iter().enumerate() {
                sql.push(format!("{expression} AS g{i}, "));
            }
            sql.push(
                "r.currency AS currency, CAST(SUM(r.total_minor) AS BIGINT) AS total_minor, \
                 CAST(SUM(r.n) AS BIGINT) AS n, CAST(SUM(r.years) AS BIGINT) AS years \
                 FROM pledge_condition_rollup r WHERE r.set_key = ",
            );
            sql.push_bind(format!("{pledge_set}|{condition_set}"));
            push_in(&mut sql, "r.partner_code", query.partners.iter().map(|p| p.as_str().to_owned()).collect());
            push_in(&mut sql, "r.kind", query.pledge.kinds.iter().map(|k| k.as_str().to_owned()).collect());
            if let Some(wanted) = &query.pledge.currency {
                sql.push(" AND r.currency = ").push_bind(wanted.as_str().to_owned());
            }
            push_in(&mut sql, "r.status", query.statuses.iter().map(|v| v.as_str().to_owned()).collect());
            push_in(&mut sql, "r.agreement_kind", query.kinds.iter().map(|v| v.as_str().to_owned()).collect());
            push_rollup_conditions(&mut sql, "r.signed_key", (whole_year_from, whole_year_to), query.legally_binding);
            sql.push(" GROUP BY ");
            for expression in &expressions {
                sql.push(format!("{expression}, "));
            }
            // Totals that fell to nothing stay in place: they are no group.
            sql.push("r.currency HAVING SUM(r.n) > 0");
            Some(sql)
        }

        /// Pledge totals from the rows of a statistic, sorted the same on
        /// both backends: byte order, an unknown group (year, measure)
        /// last, then the currency.
        fn pledge_totals_from(rows: &[DbRow], years: &[bool]) -> StoreResult<Vec<PledgeTotal>> {
            let mut totals = rows
                .iter()
                .map(|row| {
                    let currency: &str = row.try_get("currency")?;
                    Ok(PledgeTotal {
                        groups: group_values(row, years)?,
                        currency: Currency::parse(currency).map_err(|e| corrupt("currency", e))?,
                        total_minor: row.try_get("total_minor")?,
                        count: row.try_get("n")?,
                        years: row.try_get::<Option<i64>, _>("years")?.unwrap_or_default(),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            totals.sort_by(|a, b| a.groups.cmp(&b.groups).then_with(|| a.currency.as_str().cmp(b.currency.as_str())));
            Ok(totals)
        }

        /// Recomputes the pledge totals of one partner: O(that partner's
        /// pledges). Writes keep the totals by triggers (migration 0011);
        /// this rebuilds a rollup found empty when the store opens.
        async fn refresh_rollup(conn: &mut Conn, partner_code: &str) -> StoreResult<()> {
            if let Some(lock) = LOCK_PARTNER_ROLLUP {
                sqlx::query(lock).bind(partner_code).execute(&mut *conn).await?;
            }
            sqlx::query("DELETE FROM pledge_rollup WHERE partner_code = $1")
                .bind(partner_code)
                .execute(&mut *conn)
                .await?;
            for set in ROLLUP_SETS {
                let (year, kind, measure) = set;
                let year_expression = if year { "COALESCE(pl.year_from, -1)" } else { "-2" };
                let kind_expression = if kind { "pl.kind" } else { "'*'" };
                let measure_expression = if measure { "COALESCE(pl.measure, '')" } else { "'*'" };
                let mut grouped = vec!["a.partner_code", "pl.currency"];
                grouped.extend(year.then_some("COALESCE(pl.year_from, -1)"));
                grouped.extend(kind.then_some("pl.kind"));
                grouped.extend(measure.then_some("COALESCE(pl.measure, '')"));
                // Parts are left out: their whole is counted.
                let sql = format!(
                    "INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, currency, total_minor, n, years) \
                     SELECT $2, a.partner_code, {year_expression}, {kind_expression}, {measure_expression}, pl.currency, \
                     SUM(pl.counted_minor), COUNT(*), SUM(pl.years_counted) FROM pledges pl JOIN agreements a ON a.id = pl.agreement_id \
                     WHERE a.partner_code = $1 AND pl.part_of IS NULL GROUP BY {}",
                    grouped.join(", ")
                );
                sqlx::query(&sql)
                    .bind(partner_code)
                    .bind(rollup_set_key(set))
                    .execute(&mut *conn)
                    .await
                    .map_err(overflow_is_invalid)?;
            }
            totals_fit(conn).await
        }

        /// Every total the stats can answer is part of one currency's total
        /// over the whole store: keeping that within [`MAX_TOTAL_MINOR`] in
        /// the write's transaction means no sum a reader asks for overflows.
        /// The comparison is made in floating point only to find a total
        /// near the bound (it never reaches an answer); the totals stay exact.
        async fn totals_fit(conn: &mut Conn) -> StoreResult<()> {
            let over: Option<String> = sqlx::query_scalar(
                "SELECT currency FROM pledge_rollup WHERE set_key = $1 GROUP BY currency \
                 HAVING SUM(CAST(total_minor AS DOUBLE PRECISION)) > $2 LIMIT 1",
            )
            .bind(rollup_set_key((false, false, false)))
            .bind(crate::store::MAX_TOTAL_MINOR as f64)
            .fetch_optional(&mut *conn)
            .await?;
            match over {
                Some(currency) => Err(too_large_total(&currency)),
                None => Ok(()),
            }
        }

        fn too_large_total(currency: &str) -> StoreError {
            invalid(
                "pledges",
                &format!(
                    "the pledges in {currency} would add up to more than the service can total exactly \
                     ({} in minor units); nothing was written",
                    crate::store::MAX_TOTAL_MINOR
                ),
            )
        }

        /// A sum past the integer range while totalling (SQLite's "integer
        /// overflow", PostgreSQL's 22003) is a write to refuse, not a fault.
        fn overflow_is_invalid(error: sqlx::Error) -> StoreError {
            if let sqlx::Error::Database(db) = &error
                && (db.message().contains("integer overflow") || db.code().as_deref() == Some("22003"))
            {
                return too_large_total("one currency");
            }
            error.into()
        }

        /// Rebuilds the search index and the pledge rollup when they do not
        /// cover the data (a store from before they existed, a restored backup).
        async fn rebuild_search_index_if_stale(pool: &sqlx::Pool<Db>) -> StoreResult<()> {
            let mut tx = begin_write(pool).await?;
            // Every agreement indexed once, under its own row (on SQLite,
            // a rowid a VACUUM may have renumbered).
            let (indexed, agreements, aligned): (i64, i64, i64) = sqlx::query_as(&format!(
                "SELECT (SELECT COUNT(*) FROM agreement_search), (SELECT COUNT(*) FROM agreements), \
                 (SELECT COUNT(*) FROM agreement_search s JOIN agreements a ON {SEARCH_ROW_OF_AGREEMENT})"
            ))
            .fetch_one(&mut *tx)
            .await?;
            if indexed != agreements || aligned != agreements {
                sqlx::query("DELETE FROM agreement_search").execute(&mut *tx).await?;
                for agreement in load_all_agreements(&mut tx).await? {
                    index_search_text(&mut tx, &agreement.id, &agreement.search_text()).await?;
                }
            }
            let missing: bool = sqlx::query_scalar(
                "SELECT NOT EXISTS (SELECT 1 FROM pledge_rollup) AND EXISTS (SELECT 1 FROM pledges)",
            )
            .fetch_one(&mut *tx)
            .await?;
            if missing {
                let partners: Vec<String> = sqlx::query_scalar("SELECT DISTINCT partner_code FROM agreements")
                    .fetch_all(&mut *tx)
                    .await?;
                for partner in partners {
                    refresh_rollup(&mut tx, &partner).await?;
                }
            }
            tx.commit().await?;
            Ok(())
        }

        fn push_group(sql: &mut sqlx::QueryBuilder<'_, Db>, expression: &str, first: bool) {
            if !first {
                sql.push(", ");
            }
            sql.push(expression);
        }

        fn group_values(row: &DbRow, years: &[bool]) -> StoreResult<Vec<GroupValue>> {
            years
                .iter()
                .enumerate()
                .map(|(i, is_year)| {
                    let column = format!("g{i}");
                    Ok(if *is_year {
                        GroupValue::Year(row.try_get::<Option<i64>, _>(column.as_str())?)
                    } else {
                        GroupValue::Text(row.try_get::<Option<String>, _>(column.as_str())?)
                    })
                })
                .collect()
        }

        async fn load_pledge(conn: &mut Conn, id: &str) -> StoreResult<Option<Pledge>> {
            let sql = format!("SELECT {PLEDGE_COLUMNS} FROM pledges WHERE id = $1");
            let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await? else {
                return Ok(None);
            };
            let mut pledge = pledge_from_row(&row)?;
            let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE agreement_id = $1 ORDER BY position");
            let rows = sqlx::query(&sql).bind(&pledge.agreement_id).fetch_all(&mut *conn).await?;
            pledge.sources = rows
                .iter()
                .map(source_from_row)
                .filter(|s| s.as_ref().map_or(true, |s| s.pledges.contains(&pledge.id)))
                .collect::<StoreResult<_>>()?;
            attach_parts(conn, &mut [&mut pledge], "").await?;
            Ok(Some(pledge))
        }

        /// A source by its id, or by an id it had before sources were stored
        /// once per agreement (so old links still lead to it).
        async fn load_source(conn: &mut Conn, id: &str) -> StoreResult<Option<Source>> {
            let sql = format!(
                "SELECT {SOURCE_COLUMNS} FROM sources WHERE id = $1 \
                 OR id = (SELECT source_id FROM source_aliases WHERE alias = $1) ORDER BY (id = $1) DESC LIMIT 1"
            );
            let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
            row.as_ref().map(source_from_row).transpose()
        }

        // ---- agreements: writing -------------------------------------------

        /// Marks an agreement changed (its embedded children count as part of
        /// it); answers NotFound when it does not exist.
        async fn touch_agreement(conn: &mut Conn, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
            let touched = sqlx::query("UPDATE agreements SET version = version + 1, updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            if touched.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }

        fn map_agreement_write_error(error: sqlx::Error) -> StoreError {
            if is_foreign_key_violation(&error) {
                invalid("partner", "is not a known partner")
            } else {
                error.into()
            }
        }

        /// Inserts the agreement row; without an id, tries `ua-jp-2024`,
        /// `ua-jp-2024-2`, ... until one is free.
        async fn insert_agreement(conn: &mut Conn, draft: &AgreementDraft, at: DateTime<Utc>) -> StoreResult<String> {
            let base = draft
                .id
                .clone()
                .unwrap_or_else(|| generated_agreement_id(&draft.partner, draft.signed_on));
            for attempt in 1..=100 {
                let id = if attempt == 1 { base.clone() } else { format!("{base}-{attempt}") };
                let inserted = sqlx::query(
                    "INSERT INTO agreements (id, partner_code, title, kind, status, signed_on, signed_at, \
                     signatories, term_years, expires_on, legally_binding, summary, text_url, version, \
                     created_at, updated_at, signed_place, markers, title_uk) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $14, $15, $16, $17) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&id)
                .bind(draft.partner.as_str())
                .bind(&draft.title)
                .bind(draft.kind.as_str())
                .bind(draft.status.as_str())
                .bind(draft.signed_on)
                .bind(draft.signed_at.as_deref())
                .bind(Json(&draft.signatories))
                .bind(draft.term_years)
                .bind(draft.expires_on)
                .bind(draft.legally_binding)
                .bind(draft.summary.as_deref())
                .bind(draft.text_url.as_deref())
                .bind(at)
                .bind(draft.signed_place.as_ref().map(Json))
                .bind(Json(&draft.markers))
                .bind(draft.title_uk.as_deref())
                .execute(&mut *conn)
                .await
                .map_err(map_agreement_write_error)?;
                if inserted.rows_affected() == 1 {
                    write_children(conn, &id, draft, at).await?;
                    return Ok(id);
                }
                if draft.id.is_some() {
                    return Err(StoreError::Conflict(format!("agreement {id} already exists")));
                }
            }
            Err(StoreError::Conflict(format!("no free id left after {base}-100")))
        }

        async fn update_agreement(
            conn: &mut Conn,
            id: &str,
            draft: &AgreementDraft,
            expected_version: Option<i64>,
            at: DateTime<Utc>,
        ) -> StoreResult<()> {
            let updated = sqlx::query(
                "UPDATE agreements SET partner_code = $2, title = $3, kind = $4, status = $5, signed_on = $6, \
                 signed_at = $7, signatories = $8, term_years = $9, expires_on = $10, legally_binding = $11, \
                 summary = $12, text_url = $13, version = version + 1, updated_at = $14, \
                 signed_place = $16, markers = $17, title_uk = $18 \
                 WHERE id = $1 AND ($15 IS NULL OR version = $15)",
            )
            .bind(id)
            .bind(draft.partner.as_str())
            .bind(&draft.title)
            .bind(draft.kind.as_str())
            .bind(draft.status.as_str())
            .bind(draft.signed_on)
            .bind(draft.signed_at.as_deref())
            .bind(Json(&draft.signatories))
            .bind(draft.term_years)
            .bind(draft.expires_on)
            .bind(draft.legally_binding)
            .bind(draft.summary.as_deref())
            .bind(draft.text_url.as_deref())
            .bind(at)
            .bind(expected_version)
            .bind(draft.signed_place.as_ref().map(Json))
            .bind(Json(&draft.markers))
            .bind(draft.title_uk.as_deref())
            .execute(&mut *conn)
            .await
            .map_err(map_agreement_write_error)?;
            if updated.rows_affected() == 0 {
                return Err(missing_or_moved(conn, "agreements", "id", id).await);
            }
            write_children(conn, id, draft, at).await
        }

        /// Replaces each child list the draft carries; lists it leaves out stay.
        async fn write_children(conn: &mut Conn, id: &str, draft: &AgreementDraft, at: DateTime<Utc>) -> StoreResult<()> {
            if let Some(areas) = &draft.areas {
                write_area_links(conn, id, areas).await?;
            }
            if let Some(pledges) = &draft.pledges {
                sync_pledges(conn, id, pledges, at).await?;
            }
            if let Some(sources) = &draft.sources {
                sync_sources(conn, id, sources, at).await?;
            }
            Ok(())
        }

        async fn write_area_links(conn: &mut Conn, id: &str, links: &[AreaLinkDraft]) -> StoreResult<()> {
            sqlx::query("DELETE FROM agreement_areas WHERE agreement_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            for (i, link) in links.iter().enumerate() {
                sqlx::query("INSERT INTO agreement_areas (agreement_id, area_code, detail) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(link.code.as_str())
                    .bind(link.detail.as_deref())
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        if is_foreign_key_violation(&e) {
                            invalid(&format!("areas[{i}].code"), "is not a known cooperation area")
                        } else {
                            e.into()
                        }
                    })?;
            }
            Ok(())
        }

        async fn child_ids(conn: &mut Conn, table: &str, agreement_id: &str) -> StoreResult<Vec<String>> {
            let sql = format!("SELECT id FROM {table} WHERE agreement_id = $1");
            Ok(sqlx::query_scalar::<_, String>(&sql).bind(agreement_id).fetch_all(&mut *conn).await?)
        }

        /// The agreement's pledges as drafts with their positions, by id.
        async fn stored_pledges(conn: &mut Conn, agreement_id: &str) -> StoreResult<HashMap<String, (PledgeDraft, i64)>> {
            let sql = format!("SELECT {PLEDGE_COLUMNS}, position FROM pledges WHERE agreement_id = $1");
            let rows = sqlx::query(&sql).bind(agreement_id).fetch_all(&mut *conn).await?;
            rows.iter()
                .map(|row| Ok((row.try_get("id")?, (pledge_from_row(row)?.draft(), row.try_get("position")?))))
                .collect()
        }

        async fn stored_sources(conn: &mut Conn, agreement_id: &str) -> StoreResult<HashMap<String, (SourceDraft, i64)>> {
            let sql = format!("SELECT {SOURCE_COLUMNS}, position FROM sources WHERE agreement_id = $1");
            let rows = sqlx::query(&sql).bind(agreement_id).fetch_all(&mut *conn).await?;
            rows.iter()
                .map(|row| Ok((row.try_get("id")?, (source_from_row(row)?.draft(), row.try_get("position")?))))
                .collect()
        }

        /// Makes the agreement's pledges exactly `drafts`: known ids are
        /// updated, new ones inserted (an id is generated when none is given),
        /// and the rest deleted.
        async fn sync_pledges(conn: &mut Conn, agreement_id: &str, drafts: &[PledgeDraft], at: DateTime<Utc>) -> StoreResult<()> {
            let existing = stored_pledges(conn, agreement_id).await?;
            let kept: HashSet<&str> = drafts.iter().filter_map(|d| d.id.as_deref()).collect();
            for gone in existing.keys().filter(|id| !kept.contains(id.as_str())) {
                sqlx::query("DELETE FROM pledges WHERE id = $1").bind(gone).execute(&mut *conn).await?;
            }
            for (position, draft) in drafts.iter().enumerate() {
                let field = format!("pledges[{position}].id");
                match draft.id.as_deref().and_then(|id| existing.get_key_value(id)) {
                    // Unchanged pledges keep their version: only real edits count.
                    Some((_, (stored, at_position))) if stored == draft && *at_position == position as i64 => {}
                    Some((id, _)) => {
                        update_pledge_row(conn, id, draft, position as i64, None, at).await?;
                    }
                    _ => {
                        insert_pledge_row(conn, agreement_id, draft, position as i64, at, &field).await?;
                    }
                }
            }
            Ok(())
        }

        async fn sync_sources(conn: &mut Conn, agreement_id: &str, drafts: &[SourceDraft], at: DateTime<Utc>) -> StoreResult<()> {
            let existing = stored_sources(conn, agreement_id).await?;
            let pledges: HashSet<String> = child_ids(conn, "pledges", agreement_id).await?.into_iter().collect();
            for (i, draft) in drafts.iter().enumerate() {
                for (j, pledge_id) in draft.pledges.iter().enumerate() {
                    if !pledges.contains(pledge_id) {
                        return Err(invalid(&format!("sources[{i}].pledges[{j}]"), "must be the id of a pledge of this agreement"));
                    }
                }
            }
            let kept: HashSet<&str> = drafts.iter().filter_map(|d| d.id.as_deref()).collect();
            for gone in existing.keys().filter(|id| !kept.contains(id.as_str())) {
                sqlx::query("DELETE FROM sources WHERE id = $1").bind(gone).execute(&mut *conn).await?;
            }
            for (position, draft) in drafts.iter().enumerate() {
                let field = format!("sources[{position}].id");
                match draft.id.as_deref().and_then(|id| existing.get_key_value(id)) {
                    Some((_, (stored, at_position))) if stored == draft && *at_position == position as i64 => {}
                    Some((id, _)) => {
                        update_source_row(conn, id, draft, position as i64, None, at).await?;
                    }
                    _ => {
                        insert_source_row(conn, agreement_id, draft, position as i64, at, &field).await?;
                    }
                }
            }
            Ok(())
        }

        /// Candidate ids for a new child: the given one, or `<agreement>-p1`, `-p2`, ...
        fn child_id_candidates<'a>(agreement_id: &'a str, letter: char, given: Option<&'a str>) -> Box<dyn Iterator<Item = String> + Send + 'a> {
            match given {
                Some(id) => Box::new(std::iter::once(id.to_owned())),
                None => Box::new((1..=1000).map(move |n| format!("{agreement_id}-{letter}{n}"))),
            }
        }

        async fn insert_pledge_row(
            conn: &mut Conn,
            agreement_id: &str,
            draft: &PledgeDraft,
            position: i64,
            at: DateTime<Utc>,
            field: &str,
        ) -> StoreResult<String> {
            for id in child_id_candidates(agreement_id, 'p', draft.id.as_deref()) {
                let inserted = sqlx::query(
                    "INSERT INTO pledges (id, agreement_id, position, amount, currency, year_from, year_to, kind, \
                     measure, in_agreement_text, description, note, version, created_at, updated_at, amount_minor, \
                     basis, part_of, markers, counted_minor, years_counted) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13, $14, $15, $16, $17, $18, $19) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&id)
                .bind(agreement_id)
                .bind(position)
                .bind(amount_param(&draft.amount))
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
                .bind(Json(&draft.markers))
                .bind(counted_minor(draft, field)?)
                .bind(per_year_years(draft))
                .execute(&mut *conn)
                .await
                // The rollup's triggers add the amount to the totals.
                .map_err(overflow_is_invalid)?;
                if inserted.rows_affected() == 1 {
                    return Ok(id);
                }
            }
            Err(invalid(field, "is already the id of another pledge"))
        }

        async fn update_pledge_row(
            conn: &mut Conn,
            id: &str,
            draft: &PledgeDraft,
            position: i64,
            expected_version: Option<i64>,
            at: DateTime<Utc>,
        ) -> StoreResult<String> {
            let agreement_id = sqlx::query_scalar::<_, String>(
                "UPDATE pledges SET position = COALESCE($2, position), amount = $3, currency = $4, year_from = $5, \
                 year_to = $6, kind = $7, measure = $8, in_agreement_text = $9, description = $10, note = $11, \
                 version = version + 1, updated_at = $12, amount_minor = $14, basis = $15, part_of = $16, markers = $17, \
                 counted_minor = $18, years_counted = $19 WHERE id = $1 AND ($13 IS NULL OR version = $13) \
                 RETURNING agreement_id",
            )
            .bind(id)
            .bind((position >= 0).then_some(position))
            .bind(amount_param(&draft.amount))
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
            .bind(Json(&draft.markers))
            .bind(counted_minor(draft, "amount")?)
            .bind(per_year_years(draft))
            .fetch_optional(&mut *conn)
            .await
            .map_err(overflow_is_invalid)?;
            match agreement_id {
                Some(agreement_id) => Ok(agreement_id),
                None => Err(missing_or_moved(conn, "pledges", "id", id).await),
            }
        }

        async fn insert_source_row(
            conn: &mut Conn,
            agreement_id: &str,
            draft: &SourceDraft,
            position: i64,
            at: DateTime<Utc>,
            field: &str,
        ) -> StoreResult<String> {
            for id in child_id_candidates(agreement_id, 's', draft.id.as_deref()) {
                let inserted = sqlx::query(
                    "INSERT INTO sources (id, agreement_id, pledge_ids, position, url, title, publisher, published_on, \
                     version, created_at, updated_at, fields) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&id)
                .bind(agreement_id)
                .bind(Json(&draft.pledges))
                .bind(position)
                .bind(&draft.url)
                .bind(&draft.title)
                .bind(draft.publisher.as_deref())
                .bind(draft.published_on)
                .bind(at)
                .bind(Json(&draft.fields))
                .execute(&mut *conn)
                .await
                .map_err(|e| same_url_twice(e, field))?;
                if inserted.rows_affected() == 1 {
                    return Ok(id);
                }
            }
            Err(invalid(field, "is already the id of another source"))
        }

        async fn update_source_row(
            conn: &mut Conn,
            id: &str,
            draft: &SourceDraft,
            position: i64,
            expected_version: Option<i64>,
            at: DateTime<Utc>,
        ) -> StoreResult<String> {
            let agreement_id = sqlx::query_scalar::<_, String>(
                "UPDATE sources SET position = COALESCE($2, position), pledge_ids = $3, url = $4, title = $5, \
                 publisher = $6, published_on = $7, version = version + 1, updated_at = $8, fields = $10 \
                 WHERE id = $1 AND ($9 IS NULL OR version = $9) RETURNING agreement_id",
            )
            .bind(id)
            .bind((position >= 0).then_some(position))
            .bind(Json(&draft.pledges))
            .bind(&draft.url)
            .bind(&draft.title)
            .bind(draft.publisher.as_deref())
            .bind(draft.published_on)
            .bind(at)
            .bind(expected_version)
            .bind(Json(&draft.fields))
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| same_url_twice(e, "id"))?;
            match agreement_id {
                Some(agreement_id) => Ok(agreement_id),
                None => Err(missing_or_moved(conn, "sources", "id", id).await),
            }
        }

        /// A source is stored once per agreement: a second one with the same
        /// URL (the unique index sources_agreement_url) is a 422 on its `url`.
        fn same_url_twice(error: sqlx::Error, id_field: &str) -> StoreError {
            let url_index = matches!(&error, sqlx::Error::Database(db)
                if db.is_unique_violation() && db.message().contains("url") || db.constraint() == Some("sources_agreement_url"));
            if url_index {
                let field = match id_field.strip_suffix("id") {
                    Some(prefix) => format!("{prefix}url"),
                    None => "url".into(),
                };
                invalid(&field, "is already a source of this agreement: list it once, naming every pledge and field it supports")
            } else {
                error.into()
            }
        }

        async fn next_position(conn: &mut Conn, table: &str, agreement_id: &str) -> StoreResult<i64> {
            let sql = format!("SELECT COALESCE(MAX(position) + 1, 0) FROM {table} WHERE agreement_id = $1");
            Ok(sqlx::query_scalar::<_, i64>(&sql).bind(agreement_id).fetch_one(&mut *conn).await?)
        }

        /// A source may only point at a pledge of its own agreement.
        async fn check_source_pledge(conn: &mut Conn, agreement_id: &str, draft: &SourceDraft) -> StoreResult<()> {
            for (i, pledge_id) in draft.pledges.iter().enumerate() {
                let owner = sqlx::query_scalar::<_, String>("SELECT agreement_id FROM pledges WHERE id = $1")
                    .bind(pledge_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                if owner.as_deref() != Some(agreement_id) {
                    return Err(invalid(&format!("pledges[{i}]"), "must be the id of a pledge of the same agreement"));
                }
            }
            Ok(())
        }

        /// What totals count of a pledge, in minor units (see
        /// [`PledgeDraft::counted_minor`]); a 422 on `field` if it cannot be
        /// totalled exactly.
        fn counted_minor(draft: &PledgeDraft, field: &str) -> StoreResult<i64> {
            draft.counted_minor().ok_or_else(|| {
                invalid(field, "counted for each of its years, this amount is more than the service can total exactly")
            })
        }

        /// The years a per-year pledge counts for; 0 for a total (or a part).
        fn per_year_years(draft: &PledgeDraft) -> i64 {
            match (draft.basis, &draft.part_of) {
                (crate::domain::pledge::PledgeBasis::PerYear, None) => draft.years_counted(),
                _ => 0,
            }
        }

        /// Every `part_of` names a pledge that exists (in any agreement), and
        /// following the links never comes back: checked after a write, in
        /// its transaction, so a body may link pledges it creates.
        async fn check_part_of(conn: &mut Conn, links: &[(String, String, String)]) -> StoreResult<()> {
            for (field, id, whole) in links {
                let mut current = whole.clone();
                for _ in 0..64 {
                    if &current == id {
                        return Err(invalid(field, "makes a circle: a pledge cannot be part of itself, directly or through others"));
                    }
                    let next: Option<Option<String>> = sqlx::query_scalar("SELECT part_of FROM pledges WHERE id = $1")
                        .bind(&current)
                        .fetch_optional(&mut *conn)
                        .await?;
                    match next {
                        None if &current == whole => {
                            return Err(invalid(field, "must be the id of an existing pledge (of any agreement)"));
                        }
                        Some(Some(up)) => current = up,
                        _ => break,
                    }
                }
            }
            Ok(())
        }

        /// The part_of links of an agreement's pledges, to check after writing them.
        fn part_of_links(agreement_id: &str, pledges: &[PledgeDraft], prefix: &str) -> Vec<(String, String, String)> {
            pledges
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let whole = p.part_of.clone()?;
                    let id = p.id.clone().unwrap_or_else(|| format!("{agreement_id}-p{}", i + 1));
                    Some((format!("{prefix}pledges[{i}].part_of"), id, whole))
                })
                .collect()
        }

        /// Upserts a dataset inside the caller's transaction.
        async fn import_into(tx: &mut Conn, actor: &str, dataset: &Dataset) -> StoreResult<ImportSummary> {
            check_import_references(&mut *tx, dataset).await?;
            let at = now();
            let mut summary = ImportSummary::default();
            for (i, draft) in dataset.partners.iter().enumerate() {
                let code = draft.code.as_str();
                let before = load_partner(&mut *tx, code).await?;
                if before.as_ref().is_some_and(|b| b.draft() == *draft) {
                    summary.unchanged += 1;
                    continue;
                }
                let written = match &before {
                    None => insert_partner(&mut *tx, draft, at).await,
                    Some(_) => update_partner(&mut *tx, draft, None, at).await,
                };
                written.map_err(|e| within(&format!("partners[{i}]"), e))?;
                let after = load_partner(&mut *tx, code).await?.ok_or(StoreError::NotFound)?;
                let change = Change::imported("partner", code, before.as_ref().map(Partner::draft), &after.draft(), after.version)?;
                summary.changes.extend(row_changes("partner", code, change.before.clone(), change.after.clone().unwrap_or_default()));
                record(&mut *tx, at, actor, change).await?;
                summary.count(before.is_none());
            }
            for (i, draft) in dataset.areas.iter().enumerate() {
                let code = draft.code.as_str();
                let before = load_area(&mut *tx, code).await?;
                if before.as_ref().is_some_and(|b| b.draft() == *draft) {
                    summary.unchanged += 1;
                    continue;
                }
                let written = match &before {
                    None => insert_area(&mut *tx, draft, at).await,
                    Some(_) => update_area(&mut *tx, draft, None, at).await,
                };
                written.map_err(|e| within(&format!("areas[{i}]"), e))?;
                let after = load_area(&mut *tx, code).await?.ok_or(StoreError::NotFound)?;
                let change = Change::imported("area", code, before.as_ref().map(Area::draft), &after.draft(), after.version)?;
                summary.changes.extend(row_changes("area", code, change.before.clone(), change.after.clone().unwrap_or_default()));
                record(&mut *tx, at, actor, change).await?;
                summary.count(before.is_none());
            }
            let mut agreements_written = false;
            for (i, draft) in dataset.agreements.iter().enumerate() {
                let id = draft.id.as_deref().unwrap_or_default();
                let before = load_agreement(&mut *tx, id).await?;
                if before.as_ref().is_some_and(|b| same_agreement(&b.draft(), draft)) {
                    summary.unchanged += 1;
                    continue;
                }
                let written = match &before {
                    None => insert_agreement(&mut *tx, draft, at).await.map(|_| ()),
                    Some(_) => update_agreement(&mut *tx, id, draft, None, at).await,
                };
                written.map_err(|e| within(&format!("agreements[{i}]"), e))?;
                let after = load_agreement(&mut *tx, id).await?.ok_or(StoreError::NotFound)?;
                index_search_text(&mut *tx, id, &after.search_text()).await?;
                agreement_moved(&mut *tx, before.as_ref(), Some(&after)).await?;
                agreements_written = true;
                let change = Change::imported("agreement", id, before.as_ref().map(Agreement::draft), &after.draft(), after.version)?
                    .of_agreement(id);
                summary.changes.extend(row_changes("agreement", id, change.before.clone(), change.after.clone().unwrap_or_default()));
                record(&mut *tx, at, actor, change).await?;
                summary.count(before.is_none());
            }
            // Links may point at agreements imported after their own.
            let links: Vec<(String, String, String)> = dataset
                .agreements
                .iter()
                .enumerate()
                .flat_map(|(i, draft)| {
                    part_of_links(
                        draft.id.as_deref().unwrap_or_default(),
                        draft.pledges.as_deref().unwrap_or_default(),
                        &format!("agreements[{i}]."),
                    )
                })
                .collect();
            check_part_of(&mut *tx, &links).await?;
            if agreements_written {
                totals_fit(&mut *tx).await?;
            }
            Ok(summary)
        }

        /// Every partner and area an imported agreement names must exist in
        /// the store or in the import itself. Checked for all records before
        /// anything is written, so an editor learns of every bad reference at once.
        async fn check_import_references(conn: &mut Conn, dataset: &Dataset) -> StoreResult<()> {
            let mut partners = KnownCodes::new("SELECT 1 FROM partners WHERE code = $1", dataset.partners.iter().map(|p| p.code.as_str()));
            let mut areas = KnownCodes::new("SELECT 1 FROM areas WHERE code = $1", dataset.areas.iter().map(|a| a.code.as_str()));
            let mut errors = Vec::new();
            for (i, agreement) in dataset.agreements.iter().enumerate() {
                if !partners.contain(&mut *conn, agreement.partner.as_str()).await? {
                    errors.push(FieldError::new(format!("agreements[{i}].partner"), "is not a known partner"));
                }
                for (j, link) in agreement.areas.iter().flatten().enumerate() {
                    if !areas.contain(&mut *conn, link.code.as_str()).await? {
                        errors.push(FieldError::new(
                            format!("agreements[{i}].areas[{j}].code"),
                            "is not a known cooperation area",
                        ));
                    }
                }
            }
            if errors.is_empty() { Ok(()) } else { Err(StoreError::Invalid(errors)) }
        }

        /// The codes of one table, each looked up once; those an import brings
        /// itself count as known.
        struct KnownCodes {
            lookup: &'static str,
            seen: HashMap<String, bool>,
        }

        impl KnownCodes {
            fn new<'a>(lookup: &'static str, brought: impl Iterator<Item = &'a str>) -> Self {
                Self { lookup, seen: brought.map(|code| (code.to_owned(), true)).collect() }
            }

            async fn contain(&mut self, conn: &mut Conn, code: &str) -> StoreResult<bool> {
                if let Some(known) = self.seen.get(code) {
                    return Ok(*known);
                }
                let known = sqlx::query(self.lookup).bind(code).fetch_optional(&mut *conn).await?.is_some();
                self.seen.insert(code.to_owned(), known);
                Ok(known)
            }
        }

        /// A partner or area embeds figures drawn from its agreements (counts,
        /// first and last signing dates), and an agreement embeds its partner's
        /// and areas' names: when one side changes, the other's version moves
        /// too, so its ETag never lets a client keep a stale copy.
        async fn agreement_moved(conn: &mut Conn, before: Option<&Agreement>, after: Option<&Agreement>) -> StoreResult<()> {
            let partner_of = |a: Option<&Agreement>| a.map(|a| (a.partner.code.as_str().to_owned(), a.signed_on));
            let mut partners: Vec<String> = Vec::new();
            if partner_of(before) != partner_of(after) {
                partners.extend(before.iter().chain(after.iter()).map(|a| a.partner.code.as_str().to_owned()));
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
                a.map(|a| a.areas.iter().map(|l| l.code.as_str().to_owned()).collect()).unwrap_or_default()
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

        /// A renamed partner or area changes every agreement that shows it.
        /// The partner and area names an imported draft is searched by, read
        /// once per import rather than once per agreement.
        struct SearchNames {
            partners: HashMap<String, Vec<String>>,
            areas: HashMap<String, Vec<String>>,
        }

        impl SearchNames {
            async fn load(conn: &mut Conn) -> StoreResult<Self> {
                let mut partners: HashMap<String, Vec<String>> = HashMap::new();
                for (code, name, name_uk) in sqlx::query_as::<_, (String, String, Option<String>)>("SELECT code, name, name_uk FROM partners")
                    .fetch_all(&mut *conn)
                    .await?
                {
                    partners.insert(code, std::iter::once(name).chain(name_uk).collect());
                }
                let mut areas: HashMap<String, Vec<String>> = HashMap::new();
                for (code, name, name_uk) in sqlx::query_as::<_, (String, String, Option<String>)>("SELECT code, name, name_uk FROM areas")
                    .fetch_all(&mut *conn)
                    .await?
                {
                    areas.insert(code, std::iter::once(name).chain(name_uk).collect());
                }
                Ok(Self { partners, areas })
            }

            fn of<'a>(&'a self, draft: &AgreementDraft) -> Vec<&'a str> {
                let mut names: Vec<&str> =
                    self.partners.get(draft.partner.as_str()).into_iter().flatten().map(String::as_str).collect();
                for link in draft.areas.iter().flatten() {
                    names.extend(self.areas.get(link.code.as_str()).into_iter().flatten().map(String::as_str));
                }
                names
            }
        }

        /// A partner's or area's name changed: the agreements that embed it
        /// get a new version and are found by the new name.
        async fn embedding_agreements_changed(conn: &mut Conn, partner: Option<&str>, area: Option<&str>, at: DateTime<Utc>) -> StoreResult<()> {
            if let Some(code) = partner {
                sqlx::query("UPDATE agreements SET version = version + 1, updated_at = $2 WHERE partner_code = $1")
                    .bind(code)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
            }
            if let Some(code) = area {
                sqlx::query(
                    "UPDATE agreements SET version = version + 1, updated_at = $2 \
                     WHERE id IN (SELECT agreement_id FROM agreement_areas WHERE area_code = $1)",
                )
                .bind(code)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM agreements WHERE partner_code = $1 \
                 OR id IN (SELECT agreement_id FROM agreement_areas WHERE area_code = $2)",
            )
            .bind(partner)
            .bind(area)
            .fetch_all(&mut *conn)
            .await?;
            for id in ids {
                if let Some(agreement) = load_agreement(conn, &id).await? {
                    index_search_text(conn, &id, &agreement.search_text()).await?;
                }
            }
            Ok(())
        }

        // ---- exchange rates --------------------------------------------------

        const RATE_COLUMNS: &str = "currency, day, rate";

        fn rate_from_row(row: &DbRow) -> StoreResult<DailyRate> {
            let currency: &str = row.try_get("currency")?;
            Ok(DailyRate {
                currency: Currency::parse(currency).map_err(|e| corrupt("currency", e))?,
                date: row.try_get("day")?,
                rate: rate_from(row.try_get("rate")?).map_err(|e| corrupt("rate", e))?,
            })
        }

        fn annual_from_row(row: &DbRow) -> StoreResult<AnnualRate> {
            let currency: &str = row.try_get("currency")?;
            let average: &str = row.try_get("average")?;
            Ok(AnnualRate {
                currency: Currency::parse(currency).map_err(|e| corrupt("currency", e))?,
                year: row.try_get("year")?,
                average: average
                    .parse::<rust_decimal::Decimal>()
                    .map_err(|e| corrupt("annual average", format!("{average:?}: {e}")))?,
                days: row.try_get("days")?,
                first_day: row.try_get("first_day")?,
                last_day: row.try_get("last_day")?,
            })
        }

        /// The first and last day of a year.
        fn year_bounds(year: i64) -> StoreResult<(NaiveDate, NaiveDate)> {
            i32::try_from(year)
                .ok()
                .and_then(|y| Some((NaiveDate::from_ymd_opt(y, 1, 1)?, NaiveDate::from_ymd_opt(y, 12, 31)?)))
                .ok_or_else(|| invalid("year", "is out of range"))
        }

        fn year_of(date: NaiveDate) -> i64 {
            i64::from(chrono::Datelike::year(&date))
        }

        async fn load_rate(conn: &mut Conn, currency: &Currency, date: NaiveDate) -> StoreResult<Option<DailyRate>> {
            let sql = format!("SELECT {RATE_COLUMNS} FROM exchange_rates WHERE currency = $1 AND day = $2");
            let row = sqlx::query(&sql).bind(currency.as_str()).bind(date).fetch_optional(&mut *conn).await?;
            row.as_ref().map(rate_from_row).transpose()
        }

        /// Recomputes the annual averages of `currency` in `years` from its
        /// daily rates: exactly, in Rust; a year left without rates loses its row.
        async fn refresh_annual(conn: &mut Conn, currency: &Currency, years: &BTreeSet<i64>) -> StoreResult<()> {
            let sql = format!("SELECT {RATE_COLUMNS} FROM exchange_rates WHERE currency = $1 AND day >= $2 AND day <= $3");
            for &year in years {
                let (first, last) = year_bounds(year)?;
                let rows = sqlx::query(&sql)
                    .bind(currency.as_str())
                    .bind(first)
                    .bind(last)
                    .fetch_all(&mut *conn)
                    .await?;
                let days = rows
                    .iter()
                    .map(|row| rate_from_row(row).map(|r| (r.date, r.rate)))
                    .collect::<StoreResult<Vec<_>>>()?;
                if days.is_empty() {
                    sqlx::query("DELETE FROM annual_rates WHERE currency = $1 AND year = $2")
                        .bind(currency.as_str())
                        .bind(year)
                        .execute(&mut *conn)
                        .await?;
                    continue;
                }
                let annual = AnnualRate::of(currency.clone(), year, &days)
                    .ok_or_else(|| corrupt("rates", format!("the {} average of {year} does not fit", currency.as_str())))?;
                sqlx::query(
                    "INSERT INTO annual_rates (currency, year, average, days, first_day, last_day) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (currency, year) DO UPDATE SET \
                     average = excluded.average, days = excluded.days, first_day = excluded.first_day, \
                     last_day = excluded.last_day",
                )
                .bind(currency.as_str())
                .bind(year)
                .bind(annual.average.to_string())
                .bind(annual.days)
                .bind(annual.first_day)
                .bind(annual.last_day)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Upserts rates, counting what was new, changed or already so, and
        /// refreshes the annual averages of every (currency, year) changed.
        async fn write_rates(conn: &mut Conn, rates: &[DailyRate]) -> StoreResult<ImportSummary> {
            let mut by_currency: BTreeMap<&str, Vec<&DailyRate>> = BTreeMap::new();
            for rate in rates {
                by_currency.entry(rate.currency.as_str()).or_default().push(rate);
            }
            let mut summary = ImportSummary::default();
            let mut changed: Vec<&DailyRate> = Vec::new();
            let sql = format!("SELECT {RATE_COLUMNS} FROM exchange_rates WHERE currency = $1 AND day >= $2 AND day <= $3");
            for (code, incoming) in &by_currency {
                let (Some(first), Some(last)) = (incoming.iter().map(|r| r.date).min(), incoming.iter().map(|r| r.date).max()) else {
                    continue;
                };
                let rows = sqlx::query(&sql).bind(*code).bind(first).bind(last).fetch_all(&mut *conn).await?;
                let stored: HashMap<NaiveDate, crate::domain::rates::Rate> = rows
                    .iter()
                    .map(|row| rate_from_row(row).map(|r| (r.date, r.rate)))
                    .collect::<StoreResult<_>>()?;
                for rate in incoming {
                    match stored.get(&rate.date) {
                        Some(old) if *old == rate.rate => summary.unchanged += 1,
                        Some(_) => {
                            summary.updated += 1;
                            changed.push(rate);
                        }
                        None => {
                            summary.created += 1;
                            changed.push(rate);
                        }
                    }
                }
            }
            // Three parameters a row stay far under SQLite's limit per statement.
            for batch in changed.chunks(300) {
                let mut insert = sqlx::QueryBuilder::<Db>::new("INSERT INTO exchange_rates (currency, day, rate) ");
                insert.push_values(batch, |mut row, rate| {
                    row.push_bind(rate.currency.as_str().to_owned())
                        .push_bind(rate.date)
                        .push_bind(rate_param(&rate.rate));
                });
                insert.push(" ON CONFLICT (currency, day) DO UPDATE SET rate = excluded.rate");
                insert.build().execute(&mut *conn).await?;
            }
            let mut touched: BTreeMap<&str, (&Currency, BTreeSet<i64>)> = BTreeMap::new();
            for rate in &changed {
                touched
                    .entry(rate.currency.as_str())
                    .or_insert_with(|| (&rate.currency, BTreeSet::new()))
                    .1
                    .insert(year_of(rate.date));
            }
            for (currency, years) in touched.values() {
                refresh_annual(conn, currency, years).await?;
            }
            Ok(summary)
        }

        /// The tables migration 0014 keeps versions of, each with its key,
        /// parents before children (foreign keys hold as a replay fills).
        const VERSIONED_TABLES: [(&str, &str); 10] = [
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

        /// Fills a freshly migrated replay store (on `conn`, in its
        /// transaction) with the rows visible at `revision` in the versions
        /// tables of `source` (an attached database or a schema), the history
        /// up to it, and the revision itself. The rollups follow by their
        /// triggers; the search index is rebuilt after. The replay's own
        /// versioning triggers are dropped first: it never changes again.
        async fn fill_replay(conn: &mut Conn, source: &str, revision: i64) -> StoreResult<()> {
            for (table, _) in VERSIONED_TABLES {
                for statement in drop_versioning(table) {
                    sqlx::query(&statement).execute(&mut *conn).await?;
                }
            }
            for (table, key) in VERSIONED_TABLES {
                let columns: Vec<String> = sqlx::query_scalar(COLUMNS_OF_TABLE).bind(table).fetch_all(&mut *conn).await?;
                let columns = columns.join(", ");
                sqlx::query(&format!(
                    "INSERT INTO {table} ({columns}) SELECT {columns} FROM {source}.{table}_versions \
                     WHERE rev_from <= $1 AND (rev_to IS NULL OR rev_to > $1) ORDER BY {key}"
                ))
                .bind(revision)
                .execute(&mut *conn)
                .await?;
            }
            let columns: Vec<String> = sqlx::query_scalar(COLUMNS_OF_TABLE).bind("history").fetch_all(&mut *conn).await?;
            let columns = columns.join(", ");
            sqlx::query(&format!(
                "INSERT INTO history ({columns}) SELECT {columns} FROM {source}.history WHERE feed_seq <= $1 ORDER BY seq"
            ))
            .bind(revision)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE revision SET seq = $1, \
                 rates_seq = COALESCE((SELECT MAX(feed_seq) FROM history WHERE entity = 'rate' AND feed_seq <= $1), 0) WHERE id = 1",
            )
            .bind(revision)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Records a rates change in the history and the feed, and moves the
        /// rates revision that converted answers' ETags name.
        async fn rates_changed(conn: &mut Conn, at: DateTime<Utc>, actor: &str, change: Change<'_>) -> StoreResult<()> {
            record(conn, at, actor, change).await?;
            sqlx::query("UPDATE revision SET rates_seq = seq WHERE id = 1").execute(&mut *conn).await?;
            Ok(())
        }

        // ---- the store -----------------------------------------------------

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                BACKEND
            }

            fn database(&self) -> crate::store::webhooks::DatabasePool {
                self.pool.clone().into()
            }

            async fn ready(&self) -> StoreResult<()> {
                let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&self.pool)
                    .await?;
                let carried = MIGRATOR.iter().count() as i64;
                if applied < carried {
                    return Err(StoreError::Unavailable(format!("{applied} of {carried} migrations applied")));
                }
                Ok(())
            }

            fn pool_status(&self) -> crate::store::PoolStatus {
                crate::store::PoolStatus {
                    size: self.pool.size(),
                    idle: self.pool.num_idle(),
                    wal_bytes: self.wal_bytes(),
                }
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn list_partners(&self, page: &PageRequest, only_with_agreements: bool) -> StoreResult<Page<Partner>> {
                let sql = format!(
                    "{PARTNER_SELECT} WHERE ($1 IS NULL OR p.code > $1) \
                     AND (NOT $3 OR EXISTS (SELECT 1 FROM agreements x WHERE x.partner_code = p.code)) \
                     ORDER BY p.code LIMIT $2"
                );
                let rows = sqlx::query(&sql)
                    .bind(page.after.as_deref())
                    .bind(i64::from(page.limit) + 1)
                    .bind(only_with_agreements)
                    .fetch_all(&self.pool)
                    .await?;
                let items = rows.iter().map(partner_from_row).collect::<StoreResult<Vec<_>>>()?;
                Ok(page_of(items, page.limit, |p| p.code.as_str().to_owned()))
            }

            async fn get_partner(&self, code: &PartnerCode) -> StoreResult<Option<Partner>> {
                let mut conn = self.pool.acquire().await?;
                load_partner(&mut conn, code.as_str()).await
            }

            async fn find_partner_keys(&self, folded_key: &str) -> StoreResult<Vec<KeyMatch>> {
                let rows = sqlx::query("SELECT key, partner_code, rank FROM partner_keys WHERE key = $1 ORDER BY rank, partner_code")
                    .bind(folded_key)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(key_match_from_row).collect()
            }

            async fn all_partner_keys(&self) -> StoreResult<Vec<KeyMatch>> {
                let rows = sqlx::query("SELECT key, partner_code, rank FROM partner_keys ORDER BY partner_code, rank")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(key_match_from_row).collect()
            }

            async fn create_partner(&self, actor: &str, draft: &PartnerDraft) -> StoreResult<Partner> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                insert_partner(&mut tx, draft, at).await?;
                let partner = load_partner(&mut tx, draft.code.as_str()).await?.ok_or(StoreError::NotFound)?;
                let change = Change::new("partner", partner.code.as_str(), "create", 1).after(&partner.draft())?;
                record(&mut tx, at, actor, change).await?;
                tx.commit().await?;
                Ok(partner)
            }

            async fn replace_partner(&self, actor: &str, draft: &PartnerDraft, expected_version: Option<i64>) -> StoreResult<Partner> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                let before = load_partner(&mut tx, draft.code.as_str()).await?.ok_or(StoreError::NotFound)?;
                update_partner(&mut tx, draft, expected_version, at).await?;
                let partner = load_partner(&mut tx, draft.code.as_str()).await?.ok_or(StoreError::NotFound)?;
                let shown = |p: &Partner| (p.iso3.clone(), p.kind, p.name.clone(), p.name_uk.clone());
                if shown(&before) != shown(&partner) {
                    embedding_agreements_changed(&mut tx, Some(partner.code.as_str()), None, at).await?;
                }
                let change = Change::new("partner", partner.code.as_str(), "update", partner.version)
                    .before(&before.draft())?
                    .after(&partner.draft())?;
                record(&mut tx, at, actor, change).await?;
                tx.commit().await?;
                Ok(partner)
            }

            async fn delete_partner(&self, actor: &str, code: &PartnerCode, expected_version: Option<i64>) -> StoreResult<()> {
                let mut tx = begin_write(&self.pool).await?;
                let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agreements WHERE partner_code = $1")
                    .bind(code.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                if used > 0 {
                    return Err(StoreError::Conflict(format!(
                        "partner {} is named by {used} agreement(s); delete or move them first",
                        code.as_str()
                    )));
                }
                let before = load_partner(&mut tx, code.as_str()).await?.ok_or(StoreError::NotFound)?;
                let deleted = sqlx::query("DELETE FROM partners WHERE code = $1 AND ($2 IS NULL OR version = $2)")
                    .bind(code.as_str())
                    .bind(expected_version)
                    .execute(&mut *tx)
                    .await?;
                if deleted.rows_affected() == 0 {
                    return Err(missing_or_moved(&mut tx, "partners", "code", code.as_str()).await);
                }
                let change = Change::new("partner", code.as_str(), "delete", before.version).before(&before.draft())?;
                record(&mut tx, now(), actor, change).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_areas(&self, page: &PageRequest) -> StoreResult<Page<Area>> {
                let sql = format!("{AREA_SELECT} WHERE ($1 IS NULL OR ar.code > $1) ORDER BY ar.code LIMIT $2");
                let rows = sqlx::query(&sql)
                    .bind(page.after.as_deref())
                    .bind(i64::from(page.limit) + 1)
                    .fetch_all(&self.pool)
                    .await?;
                let items = rows.iter().map(area_from_row).collect::<StoreResult<Vec<_>>>()?;
                Ok(page_of(items, page.limit, |a| a.code.as_str().to_owned()))
            }

            async fn get_area(&self, code: &AreaCode) -> StoreResult<Option<Area>> {
                let mut conn = self.pool.acquire().await?;
                load_area(&mut conn, code.as_str()).await
            }

            async fn area_exists(&self, code: &AreaCode) -> StoreResult<bool> {
                let found: Option<String> = sqlx::query_scalar("SELECT code FROM areas WHERE code = $1")
                    .bind(code.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(found.is_some())
            }

            async fn create_area(&self, actor: &str, draft: &AreaDraft) -> StoreResult<Area> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                insert_area(&mut tx, draft, at).await?;
                let area = load_area(&mut tx, draft.code.as_str()).await?.ok_or(StoreError::NotFound)?;
                let change = Change::new("area", area.code.as_str(), "create", 1).after(&area.draft())?;
                record(&mut tx, at, actor, change).await?;
                tx.commit().await?;
                Ok(area)
            }

            async fn replace_area(&self, actor: &str, draft: &AreaDraft, expected_version: Option<i64>) -> StoreResult<Area> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                let before = load_area(&mut tx, draft.code.as_str()).await?.ok_or(StoreError::NotFound)?;
                update_area(&mut tx, draft, expected_version, at).await?;
                let area = load_area(&mut tx, draft.code.as_str()).await?.ok_or(StoreError::NotFound)?;
                if before.name != area.name || before.name_uk != area.name_uk {
                    embedding_agreements_changed(&mut tx, None, Some(area.code.as_str()), at).await?;
                }
                let change = Change::new("area", area.code.as_str(), "update", area.version)
                    .before(&before.draft())?
                    .after(&area.draft())?;
                record(&mut tx, at, actor, change).await?;
                tx.commit().await?;
                Ok(area)
            }

            async fn delete_area(&self, actor: &str, code: &AreaCode, expected_version: Option<i64>) -> StoreResult<()> {
                let mut tx = begin_write(&self.pool).await?;
                let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agreement_areas WHERE area_code = $1")
                    .bind(code.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                if used > 0 {
                    return Err(StoreError::Conflict(format!(
                        "area {} is linked to {used} agreement(s); unlink it first",
                        code.as_str()
                    )));
                }
                let before = load_area(&mut tx, code.as_str()).await?.ok_or(StoreError::NotFound)?;
                let deleted = sqlx::query("DELETE FROM areas WHERE code = $1 AND ($2 IS NULL OR version = $2)")
                    .bind(code.as_str())
                    .bind(expected_version)
                    .execute(&mut *tx)
                    .await?;
                if deleted.rows_affected() == 0 {
                    return Err(missing_or_moved(&mut tx, "areas", "code", code.as_str()).await);
                }
                let change = Change::new("area", code.as_str(), "delete", before.version).before(&before.draft())?;
                record(&mut tx, now(), actor, change).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_agreements(&self, query: &AgreementQuery, page: &PageRequest) -> StoreResult<Page<Agreement>> {
                let mut tx = begin_read(&self.pool).await?;
                let page = load_agreements(&mut tx, query, page).await?;
                tx.commit().await?;
                Ok(page)
            }

            async fn count_agreements(&self, query: &AgreementQuery) -> StoreResult<i64> {
                if let Some(mut sql) = push_rollup_count(query, &[]) {
                    return Ok(sql.build_query_scalar::<i64>().fetch_one(&self.pool).await?);
                }
                let mut sql = sqlx::QueryBuilder::<Db>::new("SELECT COUNT(*) FROM agreements a JOIN partners p ON p.code = a.partner_code");
                if let Some(terms) = &query.search {
                    push_search_join(&mut sql, terms, None);
                }
                sql.push(" WHERE 1 = 1");
                push_filters(&mut sql, query, None, false);
                Ok(sql.build_query_scalar::<i64>().fetch_one(&self.pool).await?)
            }

            async fn count_sources(&self, query: &AgreementQuery) -> StoreResult<SourceCount> {
                let mut sql = sqlx::QueryBuilder::<Db>::new(
                    "SELECT COUNT(*) AS agreements, \
                     CAST(COALESCE(SUM((SELECT COUNT(*) FROM sources s WHERE s.agreement_id = a.id)), 0) AS BIGINT) AS sources \
                     FROM agreements a JOIN partners p ON p.code = a.partner_code",
                );
                if let Some(terms) = &query.search {
                    push_search_join(&mut sql, terms, None);
                }
                sql.push(" WHERE 1 = 1");
                push_filters(&mut sql, query, None, false);
                let row = sql.build().fetch_one(&self.pool).await?;
                Ok(SourceCount { agreements: row.try_get("agreements")?, sources: row.try_get("sources")? })
            }

            async fn pledge_totals(&self, query: &AgreementQuery, groups: &[PledgeGroup]) -> StoreResult<Vec<PledgeTotal>> {
                // Questions about partners, years, kinds, measures and currencies
                // only are answered from the rollup; the rest from the pledges.
                let needs = |dimension: PledgeGroup| {
                    groups.contains(&dimension) || (dimension == PledgeGroup::Kind && !query.pledge.kinds.is_empty())
                };
                let set_key = rollup_set_key((needs(PledgeGroup::Year), needs(PledgeGroup::Kind), needs(PledgeGroup::Measure)));
                let years: Vec<bool> = groups.iter().map(|g| *g == PledgeGroup::Year).collect();
                if let Some(mut sql) = push_condition_totals(query, groups, &set_key) {
                    return pledge_totals_from(&sql.build().fetch_all(&self.pool).await?, &years);
                }
                let from_rollup = query.areas.is_empty()
                    && query.statuses.is_empty()
                    && query.kinds.is_empty()
                    && query.signed_from.is_none()
                    && query.signed_to.is_none()
                    && query.legally_binding.is_none()
                    && query.search.is_none()
                    && query.pledge.min_minor.is_none()
                    && query.pledge.max_minor.is_none();
                // Totals by area come from the area rollup (migration 0011),
                // which keeps at most one of year, kind and measure besides.
                let by_area = groups.contains(&PledgeGroup::Area);
                let others = [PledgeGroup::Year, PledgeGroup::Kind, PledgeGroup::Measure]
                    .into_iter()
                    .filter(|d| needs(*d))
                    .count();
                let from_rollup = from_rollup && (!by_area || others <= 1);
                let expressions: Vec<&str> = groups
                    .iter()
                    .map(|g| match (g, from_rollup) {
                        (PledgeGroup::Area, true) => "r.area_code",
                        (PledgeGroup::Partner, true) => "r.partner_code",
                        (PledgeGroup::Year, true) => "NULLIF(r.year_key, -1)",
                        (PledgeGroup::Kind, true) => "r.kind",
                        (PledgeGroup::Measure, true) => "NULLIF(r.measure_key, '')",
                        (PledgeGroup::Partner, false) => "a.partner_code",
                        (PledgeGroup::Year, false) => "pl.year_from",
                        (PledgeGroup::Kind, false) => "pl.kind",
                        (PledgeGroup::Measure, false) => "pl.measure",
                        (PledgeGroup::Area, _) => "ga.area_code",
                    })
                    .collect();
                let currency = if from_rollup { "r.currency" } else { "pl.currency" };
                let mut sql = sqlx::QueryBuilder::<Db>::new("SELECT ");
                for (i, expression) in expressions.iter().enumerate() {
                    sql.push(format!("{expression} AS g{i}, "));
                }
                if from_rollup {
                    sql.push(
                        "r.currency AS currency, CAST(SUM(r.total_minor) AS BIGINT) AS total_minor, \
                         CAST(SUM(r.n) AS BIGINT) AS n, CAST(SUM(r.years) AS BIGINT) AS years FROM ",
                    );
                    sql.push(if by_area { "pledge_area_rollup" } else { "pledge_rollup" });
                    sql.push(" r WHERE r.set_key = ");
                    sql.push_bind(set_key);
                    if !query.partners.is_empty() {
                        sql.push(" AND r.partner_code IN (");
                        let mut list = sql.separated(", ");
                        for code in &query.partners {
                            list.push_bind(code.as_str().to_owned());
                        }
                        list.push_unseparated(")");
                    }
                    if !query.pledge.kinds.is_empty() {
                        sql.push(" AND r.kind IN (");
                        let mut list = sql.separated(", ");
                        for kind in &query.pledge.kinds {
                            list.push_bind(kind.as_str());
                        }
                        list.push_unseparated(")");
                    }
                    if let Some(wanted) = &query.pledge.currency {
                        sql.push(" AND r.currency = ").push_bind(wanted.as_str().to_owned());
                    }
                } else {
                    sql.push(
                        "pl.currency AS currency, CAST(SUM(pl.counted_minor) AS BIGINT) AS total_minor, COUNT(*) AS n, \
                         CAST(SUM(pl.years_counted) AS BIGINT) AS years \
                         FROM pledges pl JOIN agreements a ON a.id = pl.agreement_id JOIN partners p ON p.code = a.partner_code",
                    );
                    if groups.contains(&PledgeGroup::Area) {
                        sql.push(" JOIN agreement_areas ga ON ga.agreement_id = a.id");
                    }
                    if let Some(terms) = &query.search {
                        push_search_join(&mut sql, terms, None);
                    }
                    sql.push(" WHERE 1 = 1");
                    push_filters(&mut sql, query, Some("pl"), false);
                // Parts are never counted: their whole is.
                sql.push(" AND pl.part_of IS NULL");
                }
                sql.push(" GROUP BY ");
                if from_rollup && by_area {
                    for expression in &expressions {
                        sql.push(format!("{expression}, "));
                    }
                    sql.push("r.currency HAVING SUM(r.n) > 0");
                } else if from_rollup {
                    // The key's own columns, in its order, so the groups come
                    // out of one run of the key without a sort. A column of
                    // the key outside the set holds one placeholder, so
                    // grouping by it changes nothing once partners are
                    // grouped; a column inside the set but not asked for is
                    // summed over.
                    let partners = groups.contains(&PledgeGroup::Partner);
                    let mut columns = Vec::new();
                    for (dimension, column) in [
                        (PledgeGroup::Partner, "r.partner_code"),
                        (PledgeGroup::Year, "r.year_key"),
                        (PledgeGroup::Kind, "r.kind"),
                        (PledgeGroup::Measure, "r.measure_key"),
                    ] {
                        if groups.contains(&dimension) || (partners && !needs(dimension)) {
                            columns.push(column);
                        }
                    }
                    columns.push("r.currency");
                    sql.push(columns.join(", "));
                    // The triggers leave a total that fell to nothing in
                    // place (migration 0011): it is no group.
                    sql.push(" HAVING SUM(r.n) > 0");
                } else {
                    for (i, expression) in expressions.iter().enumerate() {
                        push_group(&mut sql, expression, i == 0);
                    }
                    push_group(&mut sql, currency, expressions.is_empty());
                }
                pledge_totals_from(&sql.build().fetch_all(&self.pool).await?, &years)
            }

            async fn agreement_counts(&self, query: &AgreementQuery, groups: &[AgreementGroup]) -> StoreResult<Vec<AgreementCount>> {
                let years: Vec<bool> = groups.iter().map(|g| *g == AgreementGroup::Year).collect();
                let read = |rows: Vec<DbRow>| -> StoreResult<Vec<AgreementCount>> {
                    rows.iter()
                        .map(|row| Ok(AgreementCount { groups: group_values(row, &years)?, count: row.try_get("n")? }))
                        .collect()
                };
                if let Some(mut sql) = push_rollup_count(query, groups) {
                    return read(sql.build().fetch_all(&self.pool).await?);
                }
                let expressions: Vec<&str> = groups
                    .iter()
                    .map(|g| match g {
                        AgreementGroup::Year => SIGNED_YEAR,
                        AgreementGroup::Status => "a.status",
                        AgreementGroup::Kind => "a.kind",
                        AgreementGroup::Area => "ga.area_code",
                        AgreementGroup::Partner => "a.partner_code",
                    })
                    .collect();
                let mut sql = sqlx::QueryBuilder::<Db>::new("SELECT ");
                for (i, expression) in expressions.iter().enumerate() {
                    sql.push(format!("{expression} AS g{i}, "));
                }
                sql.push("COUNT(DISTINCT a.id) AS n FROM agreements a JOIN partners p ON p.code = a.partner_code");
                if groups.contains(&AgreementGroup::Area) {
                    sql.push(" JOIN agreement_areas ga ON ga.agreement_id = a.id");
                }
                if let Some(terms) = &query.search {
                    push_search_join(&mut sql, terms, None);
                }
                sql.push(" WHERE 1 = 1");
                push_filters(&mut sql, query, None, false);
                if !expressions.is_empty() {
                    sql.push(" GROUP BY ");
                    for (i, expression) in expressions.iter().enumerate() {
                        push_group(&mut sql, expression, i == 0);
                    }
                    sql.push(" ORDER BY ");
                    for (i, expression) in expressions.iter().enumerate() {
                        push_group(&mut sql, &format!("({expression} IS NULL), {expression}"), i == 0);
                    }
                }
                read(sql.build().fetch_all(&self.pool).await?)
            }

            async fn get_agreement(&self, id: &str) -> StoreResult<Option<Agreement>> {
                let mut tx = begin_read(&self.pool).await?;
                let agreement = load_agreement(&mut tx, id).await?;
                tx.commit().await?;
                Ok(agreement)
            }

            async fn create_agreement(&self, actor: &str, draft: &AgreementDraft) -> StoreResult<Agreement> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                let id = insert_agreement(&mut tx, draft, at).await?;
                check_part_of(&mut tx, &part_of_links(&id, draft.pledges.as_deref().unwrap_or_default(), "")).await?;
                let agreement = load_agreement(&mut tx, &id).await?.ok_or(StoreError::NotFound)?;
                index_search_text(&mut tx, &agreement.id, &agreement.search_text()).await?;
                totals_fit(&mut tx).await?;
                agreement_moved(&mut tx, None, Some(&agreement)).await?;
                let change = Change::new("agreement", &id, "create", agreement.version)
                    .of_agreement(&id)
                    .after(&agreement.draft())?;
                record(&mut tx, at, actor, change).await?;
                tx.commit().await?;
                Ok(agreement)
            }

            async fn replace_agreement(&self, actor: &str, id: &str, draft: &AgreementDraft, expected_version: Option<i64>) -> StoreResult<Agreement> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                let before = load_agreement(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                update_agreement(&mut tx, id, draft, expected_version, at).await?;
                check_part_of(&mut tx, &part_of_links(id, draft.pledges.as_deref().unwrap_or_default(), "")).await?;
                let agreement = load_agreement(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                index_search_text(&mut tx, &agreement.id, &agreement.search_text()).await?;
                totals_fit(&mut tx).await?;
                agreement_moved(&mut tx, Some(&before), Some(&agreement)).await?;
                let change = Change::new("agreement", id, "update", agreement.version)
                    .of_agreement(id)
                    .before(&before.draft())?
                    .after(&agreement.draft())?;
                record(&mut tx, at, actor, change).await?;
                tx.commit().await?;
                Ok(agreement)
            }

            async fn delete_agreement(&self, actor: &str, id: &str, expected_version: Option<i64>) -> StoreResult<()> {
                let mut tx = begin_write(&self.pool).await?;
                let before = load_agreement(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                // Before the row goes: SQLite finds the search row by the agreement's rowid.
                unindex_search_text(&mut tx, id).await?;
                let deleted = sqlx::query("DELETE FROM agreements WHERE id = $1 AND ($2 IS NULL OR version = $2)")
                    .bind(id)
                    .bind(expected_version)
                    .execute(&mut *tx)
                    .await?;
                if deleted.rows_affected() == 0 {
                    return Err(missing_or_moved(&mut tx, "agreements", "id", id).await);
                }
                agreement_moved(&mut tx, Some(&before), None).await?;
                // The whole agreement, children included, so it can be restored.
                let change = Change::new("agreement", id, "delete", before.version)
                    .of_agreement(id)
                    .of_partner(before.partner.code.as_str())
                    .before(&before.draft())?;
                record(&mut tx, now(), actor, change).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn restore_agreement(&self, actor: &str, id: &str) -> StoreResult<Agreement> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                if load_agreement(&mut tx, id).await?.is_some() {
                    return Err(StoreError::Conflict(format!("agreement {id} exists; only a deleted agreement can be restored")));
                }
                let deleted = sqlx::query(
                    "SELECT version, before FROM history WHERE entity = 'agreement' AND entity_id = $1 AND op = 'delete' \
                     ORDER BY seq DESC LIMIT 1",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                let last_version: i64 = deleted.try_get("version")?;
                let Some(Json(before)): Option<Json<serde_json::Value>> = deleted.try_get("before")? else {
                    return Err(corrupt("history", format!("the deletion of {id} kept no copy")));
                };
                let draft = restorable(before).map_err(|e| corrupt("history", e))?;
                insert_agreement(&mut tx, &draft, at).await?;
                // Versions go on from the deleted one, so an old ETag never matches the restored agreement.
                sqlx::query("UPDATE agreements SET version = $2 WHERE id = $1")
                    .bind(id)
                    .bind(last_version + 1)
                    .execute(&mut *tx)
                    .await?;
                let agreement = load_agreement(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                index_search_text(&mut tx, &agreement.id, &agreement.search_text()).await?;
                totals_fit(&mut tx).await?;
                agreement_moved(&mut tx, None, Some(&agreement)).await?;
                let change = Change::new("agreement", id, "restore", agreement.version)
                    .of_agreement(id)
                    .after(&agreement.draft())?;
                record(&mut tx, at, actor, change).await?;
                tx.commit().await?;
                Ok(agreement)
            }

            async fn get_pledge(&self, id: &str) -> StoreResult<Option<Pledge>> {
                let mut tx = begin_read(&self.pool).await?;
                let pledge = load_pledge(&mut tx, id).await?;
                tx.commit().await?;
                Ok(pledge)
            }

            async fn create_pledge(&self, actor: &str, agreement_id: &str, draft: &PledgeDraft) -> StoreResult<Pledge> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                touch_agreement(&mut tx, agreement_id, at).await?;
                let position = next_position(&mut tx, "pledges", agreement_id).await?;
                let id = insert_pledge_row(&mut tx, agreement_id, draft, position, at, "id").await?;
                if let Some(whole) = &draft.part_of {
                    check_part_of(&mut tx, &[("part_of".into(), id.clone(), whole.clone())]).await?;
                }
                let pledge = load_pledge(&mut tx, &id).await?.ok_or(StoreError::NotFound)?;
                let change = Change::new("pledge", &id, "create", pledge.version)
                    .of_agreement(agreement_id)
                    .after(&pledge.draft())?;
                record(&mut tx, at, actor, change).await?;
                reindex(&mut tx, &agreement_id, true).await?;
                tx.commit().await?;
                Ok(pledge)
            }

            async fn replace_pledge(&self, actor: &str, id: &str, draft: &PledgeDraft, expected_version: Option<i64>) -> StoreResult<Pledge> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                let before = load_pledge(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                let agreement_id = update_pledge_row(&mut tx, id, draft, -1, expected_version, at).await?;
                if let Some(whole) = &draft.part_of {
                    check_part_of(&mut tx, &[("part_of".into(), id.to_owned(), whole.clone())]).await?;
                }
                touch_agreement(&mut tx, &agreement_id, at).await?;
                let pledge = load_pledge(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                let change = Change::new("pledge", id, "update", pledge.version)
                    .of_agreement(&agreement_id)
                    .before(&before.draft())?
                    .after(&pledge.draft())?;
                record(&mut tx, at, actor, change).await?;
                reindex(&mut tx, &agreement_id, true).await?;
                tx.commit().await?;
                Ok(pledge)
            }

            async fn delete_pledge(&self, actor: &str, id: &str, expected_version: Option<i64>) -> StoreResult<()> {
                let mut tx = begin_write(&self.pool).await?;
                let before = load_pledge(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                let before = (before.version, as_json(&before.draft())?);
                delete_child(&mut tx, actor, ("pledge", "pledges"), id, expected_version, before).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_source(&self, id: &str) -> StoreResult<Option<Source>> {
                let mut conn = self.pool.acquire().await?;
                load_source(&mut conn, id).await
            }

            async fn create_source(&self, actor: &str, agreement_id: &str, draft: &SourceDraft) -> StoreResult<Source> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                touch_agreement(&mut tx, agreement_id, at).await?;
                check_source_pledge(&mut tx, agreement_id, draft).await?;
                let position = next_position(&mut tx, "sources", agreement_id).await?;
                let id = insert_source_row(&mut tx, agreement_id, draft, position, at, "id").await?;
                let source = load_source(&mut tx, &id).await?.ok_or(StoreError::NotFound)?;
                let change = Change::new("source", &id, "create", source.version)
                    .of_agreement(agreement_id)
                    .after(&source.draft())?;
                record(&mut tx, at, actor, change).await?;
                reindex(&mut tx, &agreement_id, false).await?;
                tx.commit().await?;
                Ok(source)
            }

            async fn replace_source(&self, actor: &str, id: &str, draft: &SourceDraft, expected_version: Option<i64>) -> StoreResult<Source> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                let before = load_source(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                let agreement_id = update_source_row(&mut tx, id, draft, -1, expected_version, at).await?;
                check_source_pledge(&mut tx, &agreement_id, draft).await?;
                touch_agreement(&mut tx, &agreement_id, at).await?;
                let source = load_source(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                let change = Change::new("source", id, "update", source.version)
                    .of_agreement(&agreement_id)
                    .before(&before.draft())?
                    .after(&source.draft())?;
                record(&mut tx, at, actor, change).await?;
                reindex(&mut tx, &agreement_id, false).await?;
                tx.commit().await?;
                Ok(source)
            }

            async fn delete_source(&self, actor: &str, id: &str, expected_version: Option<i64>) -> StoreResult<()> {
                let mut tx = begin_write(&self.pool).await?;
                let before = load_source(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
                let before = (before.version, as_json(&before.draft())?);
                delete_child(&mut tx, actor, ("source", "sources"), id, expected_version, before).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn export(&self) -> StoreResult<Dataset> {
                let mut tx = begin_read(&self.pool).await?;
                let sql = format!("{PARTNER_SELECT} ORDER BY p.code");
                let partners = sqlx::query(&sql).fetch_all(&mut *tx).await?;
                let sql = format!("{AREA_SELECT} ORDER BY ar.code");
                let areas = sqlx::query(&sql).fetch_all(&mut *tx).await?;
                let agreements = load_all_agreements(&mut tx).await?;
                tx.commit().await?;
                Ok(Dataset {
                    partners: partners.iter().map(|r| partner_from_row(r).map(|p| p.draft())).collect::<StoreResult<_>>()?,
                    areas: areas.iter().map(|r| area_from_row(r).map(|a| a.draft())).collect::<StoreResult<_>>()?,
                    agreements: agreements.iter().map(Agreement::draft).collect(),
                })
            }

            async fn import(&self, actor: &str, dataset: &Dataset, dry_run: bool) -> StoreResult<ImportSummary> {
                let mut tx = begin_write(&self.pool).await?;
                let mut summary = import_into(&mut tx, actor, dataset).await?;
                if dry_run {
                    tx.rollback().await?;
                    summary.dry_run = true;
                } else {
                    tx.commit().await?;
                }
                Ok(summary)
            }

            async fn seed(&self, actor: &str, dataset: &Dataset) -> StoreResult<Option<ImportSummary>> {
                let mut tx = begin_write(&self.pool).await?;
                // Instances starting together on one empty database: one seeds, the others see it done.
                lock_for_seed(&mut tx).await?;
                if !holds_nothing(&mut tx).await? {
                    return Ok(None);
                }
                let summary = import_into(&mut tx, actor, dataset).await?;
                tx.commit().await?;
                Ok(Some(summary))
            }

            async fn bulk_insert_agreements(&self, agreements: &[AgreementDraft]) -> StoreResult<()> {
                let mut tx = begin_write(&self.pool).await?;
                prepare_bulk_load(&mut tx).await?;
                let at = now();
                let names = SearchNames::load(&mut tx).await?;
                // Batches stay under SQLite's limit of bound parameters per statement.
                for batch in agreements.chunks(200) {
                    let mut sql = sqlx::QueryBuilder::<Db>::new(
                        "INSERT INTO agreements (id, partner_code, title, kind, status, signed_on, signed_at, signatories, \
                         term_years, expires_on, legally_binding, summary, text_url, version, created_at, updated_at, \
                         signed_place, markers) ",
                    );
                    sql.push_values(batch, |mut row, d| {
                        row.push_bind(d.id.clone().unwrap_or_default())
                            .push_bind(d.partner.as_str().to_owned())
                            .push_bind(d.title.clone())
                            .push_bind(d.kind.as_str())
                            .push_bind(d.status.as_str())
                            .push_bind(d.signed_on)
                            .push_bind(d.signed_at.clone())
                            .push_bind(Json(d.signatories.clone()))
                            .push_bind(d.term_years)
                            .push_bind(d.expires_on)
                            .push_bind(d.legally_binding)
                            .push_bind(d.summary.clone())
                            .push_bind(d.text_url.clone())
                            .push_bind(1_i64)
                            .push_bind(at)
                            .push_bind(at)
                            .push_bind(d.signed_place.clone().map(Json))
                            .push_bind(Json(d.markers.clone()));
                    });
                    sql.build().execute(&mut *tx).await?;

                    let links: Vec<(&str, &AreaLinkDraft)> = batch
                        .iter()
                        .flat_map(|d| d.areas.iter().flatten().map(move |l| (d.id.as_deref().unwrap_or_default(), l)))
                        .collect();
                    for links in links.chunks(1000) {
                        let mut sql = sqlx::QueryBuilder::<Db>::new("INSERT INTO agreement_areas (agreement_id, area_code, detail) ");
                        sql.push_values(links, |mut row, (id, link)| {
                            row.push_bind(id.to_string()).push_bind(link.code.as_str().to_owned()).push_bind(link.detail.clone());
                        });
                        sql.build().execute(&mut *tx).await?;
                    }

                    let pledges: Vec<(&str, usize, &PledgeDraft)> = batch
                        .iter()
                        .flat_map(|d| {
                            d.pledges.iter().flatten().enumerate().map(move |(i, p)| (d.id.as_deref().unwrap_or_default(), i, p))
                        })
                        .collect();
                    for (i, (_, _, p)) in pledges.iter().enumerate() {
                        counted_minor(p, &format!("pledges[{i}].amount"))?;
                    }
                    for pledges in pledges.chunks(500) {
                        let mut sql = sqlx::QueryBuilder::<Db>::new(
                            "INSERT INTO pledges (id, agreement_id, position, amount, currency, year_from, year_to, kind, measure, \
                             in_agreement_text, description, note, version, created_at, updated_at, amount_minor, \
                             basis, part_of, markers, counted_minor, years_counted) ",
                        );
                        sql.push_values(pledges, |mut row, (agreement_id, position, p)| {
                            row.push_bind(p.id.clone().unwrap_or_default())
                                .push_bind(agreement_id.to_string())
                                .push_bind(*position as i64)
                                .push_bind(amount_param(&p.amount))
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
                                .push_bind(Json(p.markers.clone()))
                                .push_bind(p.counted_minor().unwrap_or_default())
                                .push_bind(per_year_years(p));
                        });
                        sql.build().execute(&mut *tx).await.map_err(overflow_is_invalid)?;
                    }

                    let sources: Vec<(&str, usize, &SourceDraft)> = batch
                        .iter()
                        .flat_map(|d| {
                            d.sources.iter().flatten().enumerate().map(move |(i, s)| (d.id.as_deref().unwrap_or_default(), i, s))
                        })
                        .collect();
                    for sources in sources.chunks(500) {
                        let mut sql = sqlx::QueryBuilder::<Db>::new(
                            "INSERT INTO sources (id, agreement_id, pledge_ids, position, url, title, publisher, published_on, \
                             version, created_at, updated_at, fields) ",
                        );
                        sql.push_values(sources, |mut row, (agreement_id, position, s)| {
                            row.push_bind(s.id.clone().unwrap_or_default())
                                .push_bind(agreement_id.to_string())
                                .push_bind(Json(s.pledges.clone()))
                                .push_bind(*position as i64)
                                .push_bind(s.url.clone())
                                .push_bind(s.title.clone())
                                .push_bind(s.publisher.clone())
                                .push_bind(s.published_on)
                                .push_bind(1_i64)
                                .push_bind(at)
                                .push_bind(at)
                                .push_bind(Json(s.fields.clone()));
                        });
                        sql.build().execute(&mut *tx).await?;
                    }

                    for draft in batch {
                        let names = names.of(draft);
                        index_search_text(&mut tx, draft.id.as_deref().unwrap_or_default(), &draft.search_text(&names)).await?;
                    }
                }
                // The triggers of migration 0011 added the new rows to the rollups.
                totals_fit(&mut tx).await?;
                // One entry for the batch: the feed and the revision move on.
                let count = agreements.len().to_string();
                record(&mut tx, at, "generate", Change::new("dataset", &count, "bulk_insert", 1)).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn revision(&self) -> StoreResult<i64> {
                Ok(sqlx::query_scalar("SELECT seq FROM revision WHERE id = 1").fetch_one(&self.pool).await?)
            }

            async fn feed_position_at(&self, at: DateTime<Utc>) -> StoreResult<i64> {
                // Index history_at: one step to the first change at or after `at`.
                let first: Option<i64> =
                    sqlx::query_scalar("SELECT feed_seq FROM history WHERE at >= $1 AND feed_seq IS NOT NULL ORDER BY at, feed_seq LIMIT 1")
                        .bind(at)
                        .fetch_optional(&self.pool)
                        .await?;
                match first {
                    Some(seq) => Ok(seq - 1),
                    None => self.revision().await,
                }
            }

            async fn changes(&self, filter: &ChangeFilter) -> StoreResult<Vec<ChangeEntry>> {
                let rows = sqlx::query(
                    "SELECT feed_seq, at, entity, entity_id, agreement_id, partner_code, op, version FROM history \
                     WHERE feed_seq > $1 AND ($2 IS NULL OR entity = $2) AND ($3 IS NULL OR partner_code = $3) \
                     ORDER BY feed_seq LIMIT $4",
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

            async fn latest_changes(&self, filter: &LatestChangeFilter) -> StoreResult<Vec<ChangeDetail>> {
                let rows = sqlx::query(
                    "SELECT feed_seq, at, entity, entity_id, agreement_id, partner_code, op, version, before, after \
                     FROM history WHERE feed_seq IS NOT NULL AND ($1 IS NULL OR entity = $1) \
                     AND ($2 IS NULL OR partner_code = $2) \
                     AND ($3 IS NULL OR agreement_id IN (SELECT agreement_id FROM agreement_areas WHERE area_code = $3)) \
                     AND ($4 IS NULL OR agreement_id IN (SELECT id FROM agreements WHERE kind = $4)) \
                     ORDER BY feed_seq DESC LIMIT $5",
                )
                .bind(filter.entity.as_deref())
                .bind(filter.partner.as_ref().map(PartnerCode::as_str))
                .bind(filter.area.as_ref().map(AreaCode::as_str))
                .bind(filter.agreement_kind.map(|k| k.as_str()))
                .bind(i64::from(filter.limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let before: Option<Json<serde_json::Value>> = row.try_get("before")?;
                        let after: Option<Json<serde_json::Value>> = row.try_get("after")?;
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
                            before: before.map(|Json(v)| v),
                            after: after.map(|Json(v)| v),
                        })
                    })
                    .collect()
            }

            async fn change_notifications(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
                listen_for_changes(&self.pool).await
            }

            async fn analyze(&self) -> StoreResult<()> {
                sqlx::query(AFTER_BULK_LOAD).execute(&self.pool).await?;
                Ok(())
            }

            async fn is_empty(&self) -> StoreResult<bool> {
                let mut conn = self.pool.acquire().await?;
                holds_nothing(&mut conn).await
            }

            async fn history(&self, filter: &HistoryFilter) -> StoreResult<Page<HistoryEntry>> {
                let rows = sqlx::query(
                    "SELECT seq, at, actor, entity, entity_id, agreement_id, op, version, before, after FROM history \
                     WHERE ($1 IS NULL OR seq < $1) AND ($2 IS NULL OR at >= $2) AND ($3 IS NULL OR at < $3) \
                     AND ($4 IS NULL OR actor = $4) AND ($5 IS NULL OR entity = $5) AND ($6 IS NULL OR entity_id = $6) \
                     AND ($7 IS NULL OR agreement_id = $7) ORDER BY seq DESC LIMIT $8",
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
                        let before: Option<Json<serde_json::Value>> = row.try_get("before")?;
                        let after: Option<Json<serde_json::Value>> = row.try_get("after")?;
                        Ok(HistoryEntry {
                            seq: row.try_get("seq")?,
                            at: row.try_get("at")?,
                            actor: row.try_get("actor")?,
                            entity: row.try_get("entity")?,
                            entity_id: row.try_get("entity_id")?,
                            agreement_id: row.try_get("agreement_id")?,
                            op: row.try_get("op")?,
                            version: row.try_get("version")?,
                            before: before.map(|Json(v)| v),
                            after: after.map(|Json(v)| v),
                        })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(page_of(items, filter.limit, |e| e.seq.to_string()))
            }

            async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
                let inserted = sqlx::query(
                    "INSERT INTO api_keys (id, name, scope, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT DO NOTHING",
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
                    return Err(StoreError::Conflict(format!("a key named {:?} exists already", key.name)));
                }
                Ok(())
            }

            async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
                let row = sqlx::query(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(api_key_from_row).transpose()
            }

            async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
                let rows = sqlx::query(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY name"))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(api_key_from_row).collect()
            }

            async fn revoke_api_key(&self, name: &str) -> StoreResult<bool> {
                let revoked = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1")
                    .bind(name)
                    .bind(now())
                    .execute(&self.pool)
                    .await?;
                Ok(revoked.rows_affected() > 0)
            }

            async fn load_rates(&self, actor: &str, rates: &[DailyRate]) -> StoreResult<ImportSummary> {
                let mut tx = begin_write(&self.pool).await?;
                lock_for_rates(&mut tx).await?;
                let at = now();
                let summary = write_rates(&mut tx, rates).await?;
                if summary.created + summary.updated > 0 {
                    let mut currencies: Vec<&str> = rates.iter().map(|r| r.currency.as_str()).collect();
                    currencies.sort_unstable();
                    currencies.dedup();
                    let loaded = serde_json::json!({
                        "created": summary.created,
                        "updated": summary.updated,
                        "unchanged": summary.unchanged,
                        "currencies": currencies,
                        "first_date": rates.iter().map(|r| r.date).min(),
                        "last_date": rates.iter().map(|r| r.date).max(),
                    });
                    let change = Change::new("rate", "load", "load", 0).after(&loaded)?;
                    rates_changed(&mut tx, at, actor, change).await?;
                }
                tx.commit().await?;
                Ok(summary)
            }

            async fn list_rates(&self, filter: &RateFilter, page: &PageRequest) -> StoreResult<Page<DailyRate>> {
                let mut sql = sqlx::QueryBuilder::<Db>::new(format!("SELECT {RATE_COLUMNS} FROM exchange_rates WHERE 1 = 1"));
                if !filter.currencies.is_empty() {
                    sql.push(" AND currency IN (");
                    let mut list = sql.separated(", ");
                    for currency in &filter.currencies {
                        list.push_bind(currency.as_str().to_owned());
                    }
                    list.push_unseparated(")");
                }
                if let Some(year) = filter.year {
                    let (first, last) = year_bounds(year)?;
                    sql.push(" AND day >= ").push_bind(first).push(" AND day <= ").push_bind(last);
                }
                if let Some(after) = &page.after {
                    let bad = || invalid("cursor", "is not one this service gave out");
                    let (code, date) = after.split_once('/').ok_or_else(bad)?;
                    let date: NaiveDate = date.parse().map_err(|_| bad())?;
                    sql.push(" AND (currency, day) > (").push_bind(code.to_owned()).push(", ").push_bind(date).push(")");
                }
                sql.push(" ORDER BY currency, day LIMIT ").push_bind(i64::from(page.limit) + 1);
                let rows = sql.build().fetch_all(&self.pool).await?;
                let items = rows.iter().map(rate_from_row).collect::<StoreResult<Vec<_>>>()?;
                Ok(page_of(items, page.limit, |r| format!("{}/{}", r.currency.as_str(), r.date)))
            }

            async fn get_rate(&self, currency: &Currency, date: NaiveDate) -> StoreResult<Option<DailyRate>> {
                let mut conn = self.pool.acquire().await?;
                load_rate(&mut conn, currency, date).await
            }

            async fn put_rate(&self, actor: &str, rate: &DailyRate) -> StoreResult<RateWrite> {
                let mut tx = begin_write(&self.pool).await?;
                lock_for_rates(&mut tx).await?;
                let at = now();
                let before = load_rate(&mut tx, &rate.currency, rate.date).await?;
                let outcome = match &before {
                    Some(old) if old.rate == rate.rate => return Ok(RateWrite::Unchanged),
                    Some(_) => RateWrite::Updated,
                    None => RateWrite::Created,
                };
                write_rates(&mut tx, std::slice::from_ref(rate)).await?;
                let id = format!("{}/{}", rate.currency.as_str(), rate.date);
                let op = if before.is_some() { "update" } else { "create" };
                let mut change = Change::new("rate", &id, op, 0).after(rate)?;
                if let Some(before) = &before {
                    change = change.before(before)?;
                }
                rates_changed(&mut tx, at, actor, change).await?;
                tx.commit().await?;
                Ok(outcome)
            }

            async fn delete_rate(&self, actor: &str, currency: &Currency, date: NaiveDate) -> StoreResult<()> {
                let mut tx = begin_write(&self.pool).await?;
                lock_for_rates(&mut tx).await?;
                let at = now();
                let before = load_rate(&mut tx, currency, date).await?.ok_or(StoreError::NotFound)?;
                sqlx::query("DELETE FROM exchange_rates WHERE currency = $1 AND day = $2")
                    .bind(currency.as_str())
                    .bind(date)
                    .execute(&mut *tx)
                    .await?;
                refresh_annual(&mut tx, currency, &BTreeSet::from([year_of(date)])).await?;
                let id = format!("{}/{}", currency.as_str(), date);
                let change = Change::new("rate", &id, "delete", 0).before(&before)?;
                rates_changed(&mut tx, at, actor, change).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn annual_rates(&self, filter: &AnnualFilter) -> StoreResult<AnnualRates> {
                let mut tx = begin_read(&self.pool).await?;
                let revision: i64 = sqlx::query_scalar("SELECT rates_seq FROM revision WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
                let mut sql = sqlx::QueryBuilder::<Db>::new(
                    "SELECT currency, year, average, days, first_day, last_day FROM annual_rates WHERE 1 = 1",
                );
                if !filter.currencies.is_empty() {
                    sql.push(" AND currency IN (");
                    let mut list = sql.separated(", ");
                    for currency in &filter.currencies {
                        list.push_bind(currency.as_str().to_owned());
                    }
                    list.push_unseparated(")");
                }
                match filter.years.as_deref() {
                    None => {}
                    Some([]) => {
                        sql.push(" AND 1 = 0");
                    }
                    Some(years) => {
                        sql.push(" AND year IN (");
                        let mut list = sql.separated(", ");
                        for year in years {
                            list.push_bind(*year);
                        }
                        list.push_unseparated(")");
                    }
                }
                sql.push(" ORDER BY currency, year");
                let rows = sql.build().fetch_all(&mut *tx).await?;
                tx.commit().await?;
                let items = rows.iter().map(annual_from_row).collect::<StoreResult<Vec<_>>>()?;
                Ok(AnnualRates { revision, items })
            }

            async fn pledge_year_totals(&self, query: &AgreementQuery, groups: &[PledgeGroup]) -> StoreResult<Vec<PledgeYearTotal>> {
                let expressions: Vec<&str> = groups
                    .iter()
                    .map(|g| match g {
                        PledgeGroup::Partner => "a.partner_code",
                        PledgeGroup::Year => "pl.year_from",
                        PledgeGroup::Kind => "pl.kind",
                        PledgeGroup::Measure => "pl.measure",
                        PledgeGroup::Area => "ga.area_code",
                    })
                    .collect();
                // A per-year pledge converts each year's amount at that year's
                // rate (one row per year of its range); a total at its first
                // year, else its agreement's signing year.
                let year = format!("COALESCE(py.y, pl.year_from, {SIGNED_YEAR})");
                let mut sql = sqlx::QueryBuilder::<Db>::new(
                    "WITH RECURSIVE pledge_years(y) AS (SELECT 1991 UNION ALL SELECT y + 1 FROM pledge_years WHERE y < 2100) SELECT ",
                );
                for (i, expression) in expressions.iter().enumerate() {
                    sql.push(format!("{expression} AS g{i}, "));
                }
                sql.push(format!(
                    "pl.currency AS currency, {year} AS conversion_year, \
                     CAST(SUM(CASE WHEN py.y IS NULL THEN pl.counted_minor ELSE pl.amount_minor END) AS BIGINT) AS total_minor, \
                     SUM(CASE WHEN py.y IS NULL OR py.y = pl.year_from THEN 1 ELSE 0 END) AS n \
                     FROM pledges pl JOIN agreements a ON a.id = pl.agreement_id \
                     JOIN partners p ON p.code = a.partner_code \
                     LEFT JOIN pledge_years py ON pl.basis = 'per_year' AND py.y BETWEEN pl.year_from AND pl.year_to"
                ));
                if groups.contains(&PledgeGroup::Area) {
                    sql.push(" JOIN agreement_areas ga ON ga.agreement_id = a.id");
                }
                if let Some(terms) = &query.search {
                    push_search_join(&mut sql, terms, None);
                }
                sql.push(" WHERE 1 = 1");
                push_filters(&mut sql, query, Some("pl"), false);
                // Parts are never counted: their whole is.
                sql.push(" AND pl.part_of IS NULL");
                sql.push(" GROUP BY ");
                for expression in &expressions {
                    sql.push(format!("{expression}, "));
                }
                sql.push(format!("pl.currency, {year} ORDER BY "));
                for expression in &expressions {
                    sql.push(format!("({expression} IS NULL), {expression}, "));
                }
                sql.push(format!("pl.currency, {year}"));
                let years: Vec<bool> = groups.iter().map(|g| *g == PledgeGroup::Year).collect();
                let rows = sql.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|row| {
                        let currency: &str = row.try_get("currency")?;
                        Ok(PledgeYearTotal {
                            groups: group_values(row, &years)?,
                            currency: Currency::parse(currency).map_err(|e| corrupt("currency", e))?,
                            year: row.try_get("conversion_year")?,
                            total_minor: row.try_get("total_minor")?,
                            count: row.try_get("n")?,
                        })
                    })
                    .collect()
            }

            async fn reserve_idempotency_key(&self, caller: &str, key: &str, request_hash: &str) -> StoreResult<Reservation> {
                let mut tx = begin_write(&self.pool).await?;
                let at = now();
                sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(at - IDEMPOTENCY_RETENTION)
                    .execute(&mut *tx)
                    .await?;
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (caller, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (caller, key) DO NOTHING",
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
                    "SELECT request_hash, status, headers, body, created_at, committed_seq FROM idempotency_keys WHERE caller = $1 AND key = $2",
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
                    let headers: Option<Json<Vec<(String, String)>>> = row.try_get("headers")?;
                    Reservation::Replay(StoredResponse {
                        status: u16::try_from(status).map_err(|_| corrupt("idempotent status", status.to_string()))?,
                        headers: headers.map(|Json(h)| h).unwrap_or_default(),
                        body: row.try_get::<Option<String>, _>("body")?.unwrap_or_default(),
                    })
                } else if let (true, Some(seq)) =
                    (created_at < at - IDEMPOTENCY_ABANDONED, row.try_get::<Option<i64>, _>("committed_seq")?)
                {
                    // The first request committed, then died before keeping its
                    // answer: never run it again; answer from what it wrote.
                    let change = sqlx::query("SELECT entity, entity_id, op FROM history WHERE feed_seq = $1")
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
                    sqlx::query("UPDATE idempotency_keys SET created_at = $3 WHERE caller = $1 AND key = $2")
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

            async fn complete_idempotency_key(&self, caller: &str, key: &str, response: &StoredResponse) -> StoreResult<()> {
                sqlx::query("UPDATE idempotency_keys SET status = $3, headers = $4, body = $5 WHERE caller = $1 AND key = $2")
                    .bind(caller)
                    .bind(key)
                    .bind(i64::from(response.status))
                    .bind(Json(&response.headers))
                    .bind(&response.body)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn revision_bounds(&self) -> StoreResult<crate::store::RevisionBounds> {
                let (earliest, latest): (i64, i64) = sqlx::query_as(
                    "SELECT (SELECT began FROM revision_history WHERE id = 1), (SELECT seq FROM revision WHERE id = 1)",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(crate::store::RevisionBounds { earliest, latest })
            }

            async fn revision_at(&self, at: DateTime<Utc>) -> StoreResult<Option<i64>> {
                // Index history_at: one step back from `at`.
                Ok(sqlx::query_scalar(
                    "SELECT feed_seq FROM history WHERE at <= $1 AND feed_seq IS NOT NULL ORDER BY at DESC, feed_seq DESC LIMIT 1",
                )
                .bind(at)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn get_agreement_at(&self, id: &str, revision: i64) -> StoreResult<Option<Agreement>> {
                let mut tx = begin_read(&self.pool).await?;
                let agreement = load_agreement_with(&mut tx, id, &as_of(revision)).await?;
                tx.commit().await?;
                Ok(agreement)
            }

            async fn replay(&self, revision: i64) -> StoreResult<std::sync::Arc<dyn Store>> {
                Ok(std::sync::Arc::new(self.build_replay(revision).await?))
            }

            async fn release_idempotency_key(&self, caller: &str, key: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND status IS NULL")
                    .bind(caller)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        const API_KEY_COLUMNS: &str = "id, name, scope, secret_hash, created_at, expires_at, revoked_at";

        fn api_key_from_row(row: &DbRow) -> StoreResult<ApiKey> {
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

        /// One entry of the audit history, written in the transaction of its change.
        struct Change<'a> {
            entity: &'a str,
            id: &'a str,
            agreement_id: Option<&'a str>,
            /// The partner, when its agreement is gone by the time of recording.
            partner: Option<&'a str>,
            op: &'a str,
            version: i64,
            before: Option<serde_json::Value>,
            after: Option<serde_json::Value>,
        }

        fn as_json<T: serde::Serialize>(value: &T) -> StoreResult<serde_json::Value> {
            serde_json::to_value(value).map_err(|e| StoreError::Internal(format!("cannot record history: {e}")))
        }

        impl<'a> Change<'a> {
            fn new(entity: &'a str, id: &'a str, op: &'a str, version: i64) -> Self {
                Self { entity, id, agreement_id: None, partner: None, op, version, before: None, after: None }
            }

            fn imported<T: serde::Serialize>(entity: &'a str, id: &'a str, before: Option<T>, after: &T, version: i64) -> StoreResult<Self> {
                let op = if before.is_some() { "update" } else { "create" };
                let change = Self::new(entity, id, op, version).after(after)?;
                match before {
                    Some(before) => change.before(&before),
                    None => Ok(change),
                }
            }

            fn of_agreement(mut self, agreement_id: &'a str) -> Self {
                self.agreement_id = Some(agreement_id);
                self
            }

            fn of_partner(mut self, partner: &'a str) -> Self {
                self.partner = Some(partner);
                self
            }

            fn before<T: serde::Serialize>(mut self, value: &T) -> StoreResult<Self> {
                self.before = Some(as_json(value)?);
                Ok(self)
            }

            fn after<T: serde::Serialize>(mut self, value: &T) -> StoreResult<Self> {
                self.after = Some(as_json(value)?);
                Ok(self)
            }
        }

        /// Writes one history entry with the next number of the change feed.
        /// Taking the number locks the counter's row until commit, so feed
        /// numbers become visible in order, without gaps.
        async fn record(conn: &mut Conn, at: DateTime<Utc>, actor: &str, change: Change<'_>) -> StoreResult<()> {
            let seq: i64 = sqlx::query_scalar("UPDATE revision SET seq = seq + 1 WHERE id = 1 RETURNING seq")
                .fetch_one(&mut *conn)
                .await?;
            let partner = match change.entity {
                "partner" => Some(change.id),
                _ => change.partner,
            };
            sqlx::query(
                "INSERT INTO history (at, actor, entity, entity_id, agreement_id, op, version, before, after, feed_seq, partner_code) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11, (SELECT partner_code FROM agreements WHERE id = $5)))",
            )
            .bind(at)
            .bind(actor)
            .bind(change.entity)
            .bind(change.id)
            .bind(change.agreement_id)
            .bind(change.op)
            .bind(change.version)
            .bind(change.before.map(Json))
            .bind(change.after.map(Json))
            .bind(seq)
            .bind(partner)
            .execute(&mut *conn)
            .await?;
            // In the change's own transaction: a crash after the commit still
            // leaves a retry with the same key something to answer from.
            if let Some((caller, key)) = crate::store::current_idempotency_key() {
                sqlx::query(
                    "UPDATE idempotency_keys SET committed_seq = COALESCE(committed_seq, $3) WHERE caller = $1 AND key = $2",
                )
                .bind(caller)
                .bind(key)
                .bind(seq)
                .execute(&mut *conn)
                .await?;
            }
            notify_change(conn, seq).await
        }

        /// The draft a deletion kept, ready to be inserted again.
        fn restorable(before: serde_json::Value) -> Result<AgreementDraft, String> {
            let body: crate::wire::agreement::AgreementBody = serde_json::from_value(before).map_err(|e| e.to_string())?;
            let partner = body.partner_ref().and_then(|r| r.map(|r| PartnerCode::parse(&r)).transpose());
            body.parse(partner).map_err(|errors| format!("{errors:?}"))
        }

        fn key_match_from_row(row: &DbRow) -> StoreResult<KeyMatch> {
            Ok(KeyMatch {
                key: row.try_get("key")?,
                partner: PartnerCode::from_trusted(row.try_get("partner_code")?),
                rank: row.try_get("rank")?,
            })
        }

        /// Child lists an import leaves out count as unchanged.
        fn same_agreement(current: &AgreementDraft, incoming: &AgreementDraft) -> bool {
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
        fn within(prefix: &str, error: StoreError) -> StoreError {
            match error {
                StoreError::Invalid(errors) => StoreError::Invalid(
                    errors
                        .into_iter()
                        .map(|e| FieldError::new(format!("{prefix}.{}", e.field), e.message))
                        .collect(),
                ),
                StoreError::Conflict(message) => StoreError::Invalid(vec![FieldError::new(prefix, message)]),
                other => other,
            }
        }
    };
}

pub(crate) use shared_sql_store;
