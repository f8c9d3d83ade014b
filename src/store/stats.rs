//! Counts, pledge totals and the rollups kept by triggers that answer
//! most of them without reading every row.

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use sqlx::Row as _;

use super::dialect::corrupt;
use super::dialect::{Args, Builder, Column, Conn, DbRow, Dialect, JsonDoc};
use super::sql_store::SqlStore;
use crate::domain::Vocabulary;
use crate::domain::money::Currency;
use crate::domain::query::{
    AgreementCount, AgreementGroup, AgreementQuery, GroupValue, PledgeGroup, PledgeTotal,
    PledgeYearTotal,
};
use crate::store::{SourceCount, StoreError, StoreResult};

/// The combinations of pledge year, kind and measure the rollup keeps
/// (see migration 0004), each with its set_key.
pub(super) const ROLLUP_SETS: [(bool, bool, bool); 8] = [
    (false, false, false),
    (true, false, false),
    (false, true, false),
    (false, false, true),
    (true, true, false),
    (true, false, true),
    (false, true, true),
    (true, true, true),
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
    /// The years of a signing range that is made of whole years (from 1
    /// January, to 31 December), as the rollups key them; None when
    /// either end falls inside a year, which no rollup can answer.
    pub(super) fn whole_signing_years(
        query: &AgreementQuery,
    ) -> Option<(Option<i64>, Option<i64>)> {
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
    pub(super) fn push_in(sql: &mut Builder<'static, D>, column: &str, values: Vec<String>) {
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

    /// The conditions on agreements both rollups keep: partners, statuses,
    /// kinds (`kind_column`), whole years of signing (`year_column`; see
    /// [`Self::whole_signing_years`]) and legal nature.
    pub(super) fn push_agreement_conditions(
        sql: &mut Builder<'static, D>,
        query: &AgreementQuery,
        (kind_column, year_column): (&str, &str),
        (from, to): (Option<i64>, Option<i64>),
    ) {
        let texts = |values: &mut dyn Iterator<Item = &str>| values.map(str::to_owned).collect();
        Self::push_in(
            sql,
            "r.partner_code",
            texts(&mut query.partners.iter().map(|p| p.as_str())),
        );
        Self::push_in(
            sql,
            "r.status",
            texts(&mut query.statuses.iter().map(|v| v.as_str())),
        );
        Self::push_in(
            sql,
            kind_column,
            texts(&mut query.kinds.iter().map(|v| v.as_str())),
        );
        if let Some(year) = from {
            sql.push(format!(" AND {year_column} >= ")).push_bind(year);
        }
        if let Some(year) = to {
            // -1 (unknown) is below every year, and matches no date range.
            sql.push(format!(" AND {year_column} >= 0 AND {year_column} <= "))
                .push_bind(year);
        }
        if let Some(binding) = query.legally_binding {
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
    pub(super) fn push_rollup_count(
        query: &AgreementQuery,
        groups: &[AgreementGroup],
    ) -> Option<Builder<'static, D>> {
        if query.search.is_some() || !query.pledge.is_empty() {
            return None;
        }
        let (whole_year_from, whole_year_to) = Self::whole_signing_years(query)?;
        let by_area = groups.contains(&AgreementGroup::Area);
        let one_area = match query.areas.as_slice() {
            [] => None,
            [only] if only.len() == 1 && !by_area => Some(only[0].as_str().to_owned()),
            _ => return None,
        };
        let mut dimensions = Vec::new();
        for (name, wanted) in [
            ("area", by_area || one_area.is_some()),
            (
                "partner",
                groups.contains(&AgreementGroup::Partner) || !query.partners.is_empty(),
            ),
            (
                "year",
                groups.contains(&AgreementGroup::Year)
                    || whole_year_from.is_some()
                    || whole_year_to.is_some(),
            ),
            (
                "status",
                groups.contains(&AgreementGroup::Status) || !query.statuses.is_empty(),
            ),
            (
                "kind",
                groups.contains(&AgreementGroup::Kind) || !query.kinds.is_empty(),
            ),
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
        let mut sql = Builder::<D>::new("SELECT ");
        for (i, expression) in expressions.iter().enumerate() {
            sql.push(format!("{expression} AS g{i}, "));
        }
        sql.push(
            "COALESCE(CAST(SUM(r.n) AS BIGINT), 0) AS n FROM agreement_rollup r WHERE r.set_key = ",
        );
        sql.push_bind(set_key);
        if let Some(area) = one_area {
            sql.push(" AND r.area_code = ").push_bind(area);
        }
        Self::push_agreement_conditions(
            &mut sql,
            query,
            ("r.kind", "r.year_key"),
            (whole_year_from, whole_year_to),
        );
        if !expressions.is_empty() {
            sql.push(" GROUP BY ");
            for (i, expression) in expressions.iter().enumerate() {
                Self::push_group(&mut sql, expression, i == 0);
            }
            // Counts that fell to 0 stay in the rollup; they are no group.
            sql.push(" HAVING SUM(r.n) > 0 ORDER BY ");
            for (i, expression) in expressions.iter().enumerate() {
                Self::push_group(
                    &mut sql,
                    &format!("({expression} IS NULL), {expression}"),
                    i == 0,
                );
            }
        }
        Some(sql)
    }

    pub(super) fn rollup_set_key((year, kind, measure): (bool, bool, bool)) -> String {
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
    pub(super) fn push_condition_totals(
        query: &AgreementQuery,
        groups: &[PledgeGroup],
        pledge_set: &str,
    ) -> Option<Builder<'static, D>> {
        if groups.contains(&PledgeGroup::Area)
            || !query.areas.is_empty()
            || query.search.is_some()
            || query.pledge.min_minor.is_some()
            || query.pledge.max_minor.is_some()
        {
            return None;
        }
        let (whole_year_from, whole_year_to) = Self::whole_signing_years(query)?;
        let conditions: Vec<&str> = [
            (
                "signed",
                whole_year_from.is_some() || whole_year_to.is_some(),
            ),
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
        let mut sql = Builder::<D>::new("SELECT ");
        for (i, expression) in expressions.iter().enumerate() {
            sql.push(format!("{expression} AS g{i}, "));
        }
        sql.push(
            "r.currency AS currency, CAST(SUM(r.total_minor) AS BIGINT) AS total_minor, \
             CAST(SUM(r.n) AS BIGINT) AS n, CAST(SUM(r.years) AS BIGINT) AS years FROM \
             pledge_condition_rollup r WHERE r.set_key = ",
        );
        sql.push_bind(format!("{pledge_set}|{condition_set}"));
        Self::push_agreement_conditions(
            &mut sql,
            query,
            ("r.agreement_kind", "r.signed_key"),
            (whole_year_from, whole_year_to),
        );
        Self::push_in(
            &mut sql,
            "r.kind",
            query
                .pledge
                .kinds
                .iter()
                .map(|k| k.as_str().to_owned())
                .collect(),
        );
        if let Some(wanted) = &query.pledge.currency {
            sql.push(" AND r.currency = ")
                .push_bind(wanted.as_str().to_owned());
        }
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
    pub(super) fn pledge_totals_from(
        rows: &[DbRow<D>],
        years: &[bool],
    ) -> StoreResult<Vec<PledgeTotal>> {
        let mut totals = rows
            .iter()
            .map(|row| {
                let currency: &str = row.try_get("currency")?;
                Ok(PledgeTotal {
                    groups: Self::group_values(row, years)?,
                    currency: Currency::parse(currency).map_err(|e| corrupt("currency", e))?,
                    total_minor: row.try_get("total_minor")?,
                    count: row.try_get("n")?,
                    years: row.try_get::<Option<i64>, _>("years")?.unwrap_or_default(),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        totals.sort_by(|a, b| {
            a.groups
                .cmp(&b.groups)
                .then_with(|| a.currency.as_str().cmp(b.currency.as_str()))
        });
        Ok(totals)
    }

    /// Recomputes the pledge totals of one partner: O(that partner's
    /// pledges). Writes keep the totals by triggers (migration 0011);
    /// this rebuilds a rollup found empty when the store opens.
    pub(super) async fn refresh_rollup(conn: &mut Conn<D>, partner_code: &str) -> StoreResult<()> {
        if let Some(lock) = D::LOCK_PARTNER_ROLLUP {
            sqlx::query(lock)
                .bind(partner_code)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query("DELETE FROM pledge_rollup WHERE partner_code = $1")
            .bind(partner_code)
            .execute(&mut *conn)
            .await?;
        for set in ROLLUP_SETS {
            let (year, kind, measure) = set;
            let year_expression = if year {
                "COALESCE(pl.year_from, -1)"
            } else {
                "-2"
            };
            let kind_expression = if kind { "pl.kind" } else { "'*'" };
            let measure_expression = if measure {
                "COALESCE(pl.measure, '')"
            } else {
                "'*'"
            };
            let mut grouped = vec!["a.partner_code", "pl.currency"];
            grouped.extend(year.then_some("COALESCE(pl.year_from, -1)"));
            grouped.extend(kind.then_some("pl.kind"));
            grouped.extend(measure.then_some("COALESCE(pl.measure, '')"));
            // Parts are left out: their whole is counted.
            let sql = format!(
                "INSERT INTO pledge_rollup (set_key, partner_code, year_key, kind, measure_key, \
                 currency, total_minor, n, years) SELECT $2, a.partner_code, {year_expression}, \
                 {kind_expression}, {measure_expression}, pl.currency, SUM(pl.counted_minor), \
                 COUNT(*), SUM(pl.years_counted) FROM pledges pl JOIN agreements a ON a.id = \
                 pl.agreement_id WHERE a.partner_code = $1 AND pl.part_of IS NULL GROUP BY {}",
                grouped.join(", ")
            );
            sqlx::query(&sql)
                .bind(partner_code)
                .bind(Self::rollup_set_key(set))
                .execute(&mut *conn)
                .await
                .map_err(Self::overflow_is_invalid)?;
        }
        Self::totals_fit(conn).await
    }

    /// Every total the stats can answer is part of one currency's total
    /// over the whole store: keeping that within [`MAX_TOTAL_MINOR`] in
    /// the write's transaction means no sum a reader asks for overflows.
    /// The comparison is made in floating point only to find a total
    /// near the bound (it never reaches an answer); the totals stay exact.
    pub(super) async fn totals_fit(conn: &mut Conn<D>) -> StoreResult<()> {
        let over: Option<String> = sqlx::query_scalar(
            "SELECT currency FROM pledge_rollup WHERE set_key = $1 GROUP BY currency HAVING \
             SUM(CAST(total_minor AS DOUBLE PRECISION)) > $2 LIMIT 1",
        )
        .bind(Self::rollup_set_key((false, false, false)))
        .bind(crate::store::MAX_TOTAL_MINOR as f64)
        .fetch_optional(&mut *conn)
        .await?;
        match over {
            Some(currency) => Err(Self::too_large_total(&currency)),
            None => Ok(()),
        }
    }

    pub(super) fn too_large_total(currency: &str) -> StoreError {
        Self::invalid(
            "pledges",
            &format!(
                "the pledges in {currency} would add up to more than the service can total \
                 exactly ({} in minor units); nothing was written",
                crate::store::MAX_TOTAL_MINOR
            ),
        )
    }

    /// A sum past the integer range while totalling (SQLite's "integer
    /// overflow", PostgreSQL's 22003) is a write to refuse, not a fault.
    pub(super) fn overflow_is_invalid(error: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &error
            && (db.message().contains("integer overflow") || db.code().as_deref() == Some("22003"))
        {
            return Self::too_large_total("one currency");
        }
        error.into()
    }

    pub(super) fn push_group(sql: &mut Builder<'_, D>, expression: &str, first: bool) {
        if !first {
            sql.push(", ");
        }
        sql.push(expression);
    }

    pub(super) fn group_values(row: &DbRow<D>, years: &[bool]) -> StoreResult<Vec<GroupValue>> {
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

    pub(super) async fn count_agreements(&self, query: &AgreementQuery) -> StoreResult<i64> {
        if let Some(mut sql) = Self::push_rollup_count(query, &[]) {
            return Ok(
                Self::fetch_one_built(&mut sql, &mut *self.pool.acquire().await?)
                    .await?
                    .try_get::<i64, _>(0)?,
            );
        }
        let mut sql = Builder::<D>::new(
            "SELECT COUNT(*) FROM agreements a JOIN partners p ON p.code = a.partner_code",
        );
        if let Some(terms) = &query.search {
            D::push_search_join(&mut sql, terms, None);
        }
        sql.push(" WHERE 1 = 1");
        Self::push_filters(&mut sql, query, None, false);
        Ok(
            Self::fetch_one_built(&mut sql, &mut *self.pool.acquire().await?)
                .await?
                .try_get::<i64, _>(0)?,
        )
    }

    pub(super) async fn count_sources(&self, query: &AgreementQuery) -> StoreResult<SourceCount> {
        let mut sql = Builder::<D>::new(
            "SELECT COUNT(*) AS agreements, CAST(COALESCE(SUM((SELECT COUNT(*) FROM sources s \
             WHERE s.agreement_id = a.id)), 0) AS BIGINT) AS sources FROM agreements a JOIN \
             partners p ON p.code = a.partner_code",
        );
        if let Some(terms) = &query.search {
            D::push_search_join(&mut sql, terms, None);
        }
        sql.push(" WHERE 1 = 1");
        Self::push_filters(&mut sql, query, None, false);
        let row = Self::fetch_one_built(&mut sql, &mut *self.pool.acquire().await?).await?;
        Ok(SourceCount {
            agreements: row.try_get("agreements")?,
            sources: row.try_get("sources")?,
        })
    }

    pub(super) async fn pledge_totals(
        &self,
        query: &AgreementQuery,
        groups: &[PledgeGroup],
    ) -> StoreResult<Vec<PledgeTotal>> {
        // Questions about partners, years, kinds, measures and currencies
        // only are answered from the rollup; the rest from the pledges.
        let needs = |dimension: PledgeGroup| {
            groups.contains(&dimension)
                || (dimension == PledgeGroup::Kind && !query.pledge.kinds.is_empty())
        };
        let set_key = Self::rollup_set_key((
            needs(PledgeGroup::Year),
            needs(PledgeGroup::Kind),
            needs(PledgeGroup::Measure),
        ));
        let years: Vec<bool> = groups.iter().map(|g| *g == PledgeGroup::Year).collect();
        if let Some(mut sql) = Self::push_condition_totals(query, groups, &set_key) {
            return Self::pledge_totals_from(
                &D::fetch_built(&mut sql, &mut *self.pool.acquire().await?).await?,
                &years,
            );
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
        let currency = if from_rollup {
            "r.currency"
        } else {
            "pl.currency"
        };
        let mut sql = Builder::<D>::new("SELECT ");
        for (i, expression) in expressions.iter().enumerate() {
            sql.push(format!("{expression} AS g{i}, "));
        }
        if from_rollup {
            sql.push(
                "r.currency AS currency, CAST(SUM(r.total_minor) AS BIGINT) AS total_minor, \
                 CAST(SUM(r.n) AS BIGINT) AS n, CAST(SUM(r.years) AS BIGINT) AS years FROM ",
            );
            sql.push(if by_area {
                "pledge_area_rollup"
            } else {
                "pledge_rollup"
            });
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
                sql.push(" AND r.currency = ")
                    .push_bind(wanted.as_str().to_owned());
            }
        } else {
            sql.push(
                "pl.currency AS currency, CAST(SUM(pl.counted_minor) AS BIGINT) AS total_minor, \
                 COUNT(*) AS n, CAST(SUM(pl.years_counted) AS BIGINT) AS years FROM pledges pl \
                 JOIN agreements a ON a.id = pl.agreement_id JOIN partners p ON p.code = \
                 a.partner_code",
            );
            if groups.contains(&PledgeGroup::Area) {
                sql.push(" JOIN agreement_areas ga ON ga.agreement_id = a.id");
            }
            if let Some(terms) = &query.search {
                D::push_search_join(&mut sql, terms, None);
            }
            sql.push(" WHERE 1 = 1");
            Self::push_filters(&mut sql, query, Some("pl"), false);
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
                Self::push_group(&mut sql, expression, i == 0);
            }
            Self::push_group(&mut sql, currency, expressions.is_empty());
        }
        Self::pledge_totals_from(
            &D::fetch_built(&mut sql, &mut *self.pool.acquire().await?).await?,
            &years,
        )
    }

    pub(super) async fn agreement_counts(
        &self,
        query: &AgreementQuery,
        groups: &[AgreementGroup],
    ) -> StoreResult<Vec<AgreementCount>> {
        let years: Vec<bool> = groups.iter().map(|g| *g == AgreementGroup::Year).collect();
        let read = |rows: Vec<DbRow<D>>| -> StoreResult<Vec<AgreementCount>> {
            rows.iter()
                .map(|row| {
                    Ok(AgreementCount {
                        groups: Self::group_values(row, &years)?,
                        count: row.try_get("n")?,
                    })
                })
                .collect()
        };
        if let Some(mut sql) = Self::push_rollup_count(query, groups) {
            return read(D::fetch_built(&mut sql, &mut *self.pool.acquire().await?).await?);
        }
        let expressions: Vec<&str> = groups
            .iter()
            .map(|g| match g {
                AgreementGroup::Year => D::SIGNED_YEAR,
                AgreementGroup::Status => "a.status",
                AgreementGroup::Kind => "a.kind",
                AgreementGroup::Area => "ga.area_code",
                AgreementGroup::Partner => "a.partner_code",
            })
            .collect();
        let mut sql = Builder::<D>::new("SELECT ");
        for (i, expression) in expressions.iter().enumerate() {
            sql.push(format!("{expression} AS g{i}, "));
        }
        sql.push(
            "COUNT(DISTINCT a.id) AS n FROM agreements a JOIN partners p ON p.code = \
             a.partner_code",
        );
        if groups.contains(&AgreementGroup::Area) {
            sql.push(" JOIN agreement_areas ga ON ga.agreement_id = a.id");
        }
        if let Some(terms) = &query.search {
            D::push_search_join(&mut sql, terms, None);
        }
        sql.push(" WHERE 1 = 1");
        Self::push_filters(&mut sql, query, None, false);
        if !expressions.is_empty() {
            sql.push(" GROUP BY ");
            for (i, expression) in expressions.iter().enumerate() {
                Self::push_group(&mut sql, expression, i == 0);
            }
            sql.push(" ORDER BY ");
            for (i, expression) in expressions.iter().enumerate() {
                Self::push_group(
                    &mut sql,
                    &format!("({expression} IS NULL), {expression}"),
                    i == 0,
                );
            }
        }
        read(D::fetch_built(&mut sql, &mut *self.pool.acquire().await?).await?)
    }

    pub(super) async fn pledge_year_totals(
        &self,
        query: &AgreementQuery,
        groups: &[PledgeGroup],
    ) -> StoreResult<Vec<PledgeYearTotal>> {
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
        let year = format!("COALESCE(py.y, pl.year_from, {})", D::SIGNED_YEAR);
        let mut sql = Builder::<D>::new(
            "WITH RECURSIVE pledge_years(y) AS (SELECT 1991 UNION ALL SELECT y + 1 FROM \
             pledge_years WHERE y < 2100) SELECT ",
        );
        for (i, expression) in expressions.iter().enumerate() {
            sql.push(format!("{expression} AS g{i}, "));
        }
        sql.push(format!(
            "pl.currency AS currency, {year} AS conversion_year, CAST(SUM(CASE WHEN py.y IS NULL \
             THEN pl.counted_minor ELSE pl.amount_minor END) AS BIGINT) AS total_minor, SUM(CASE \
             WHEN py.y IS NULL OR py.y = pl.year_from THEN 1 ELSE 0 END) AS n FROM pledges pl \
             JOIN agreements a ON a.id = pl.agreement_id JOIN partners p ON p.code = \
             a.partner_code LEFT JOIN pledge_years py ON pl.basis = 'per_year' AND py.y BETWEEN \
             pl.year_from AND pl.year_to"
        ));
        if groups.contains(&PledgeGroup::Area) {
            sql.push(" JOIN agreement_areas ga ON ga.agreement_id = a.id");
        }
        if let Some(terms) = &query.search {
            D::push_search_join(&mut sql, terms, None);
        }
        sql.push(" WHERE 1 = 1");
        Self::push_filters(&mut sql, query, Some("pl"), false);
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
        let rows = D::fetch_built(&mut sql, &mut *self.pool.acquire().await?).await?;
        rows.iter()
            .map(|row| {
                let currency: &str = row.try_get("currency")?;
                Ok(PledgeYearTotal {
                    groups: Self::group_values(row, &years)?,
                    currency: Currency::parse(currency).map_err(|e| corrupt("currency", e))?,
                    year: row.try_get("conversion_year")?,
                    total_minor: row.try_get("total_minor")?,
                    count: row.try_get("n")?,
                })
            })
            .collect()
    }
}
