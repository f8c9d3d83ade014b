//! Exchange rates: daily rates and the annual averages computed from them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::dialect::corrupt;
use super::dialect::{Args, Builder, Column, Conn, DbRow, Dialect, JsonDoc};
use super::feed::Change;
use super::sql_store::SqlStore;
use crate::domain::money::Currency;
use crate::domain::rates::{AnnualRate, DailyRate};
use crate::store::{
    AnnualFilter, AnnualRates, ImportSummary, Page, PageRequest, RateFilter, RateWrite, StoreError,
    StoreResult, now,
};

pub(super) const RATE_COLUMNS: &str = "currency, day, rate";

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
    pub(super) fn rate_from_row(row: &DbRow<D>) -> StoreResult<DailyRate> {
        let currency: &str = row.try_get("currency")?;
        Ok(DailyRate {
            currency: Currency::parse(currency).map_err(|e| corrupt("currency", e))?,
            date: row.try_get("day")?,
            rate: D::rate_from(row.try_get("rate")?).map_err(|e| corrupt("rate", e))?,
        })
    }

    pub(super) fn annual_from_row(row: &DbRow<D>) -> StoreResult<AnnualRate> {
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
    pub(super) fn year_bounds(year: i64) -> StoreResult<(NaiveDate, NaiveDate)> {
        i32::try_from(year)
            .ok()
            .and_then(|y| {
                Some((
                    NaiveDate::from_ymd_opt(y, 1, 1)?,
                    NaiveDate::from_ymd_opt(y, 12, 31)?,
                ))
            })
            .ok_or_else(|| Self::invalid("year", "is out of range"))
    }

    pub(super) fn year_of(date: NaiveDate) -> i64 {
        i64::from(chrono::Datelike::year(&date))
    }

    pub(super) async fn load_rate(
        conn: &mut Conn<D>,
        currency: &Currency,
        date: NaiveDate,
    ) -> StoreResult<Option<DailyRate>> {
        let sql =
            format!("SELECT {RATE_COLUMNS} FROM exchange_rates WHERE currency = $1 AND day = $2");
        let row = sqlx::query(&sql)
            .bind(currency.as_str())
            .bind(date)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(Self::rate_from_row).transpose()
    }

    /// Recomputes the annual averages of `currency` in `years` from its
    /// daily rates: exactly, in Rust; a year left without rates loses its row.
    pub(super) async fn refresh_annual(
        conn: &mut Conn<D>,
        currency: &Currency,
        years: &BTreeSet<i64>,
    ) -> StoreResult<()> {
        let sql = format!(
            "SELECT {RATE_COLUMNS} FROM exchange_rates WHERE currency = $1 AND day >= $2 AND day \
             <= $3"
        );
        for &year in years {
            let (first, last) = Self::year_bounds(year)?;
            let rows = sqlx::query(&sql)
                .bind(currency.as_str())
                .bind(first)
                .bind(last)
                .fetch_all(&mut *conn)
                .await?;
            let days = rows
                .iter()
                .map(|row| Self::rate_from_row(row).map(|r| (r.date, r.rate)))
                .collect::<StoreResult<Vec<_>>>()?;
            if days.is_empty() {
                sqlx::query("DELETE FROM annual_rates WHERE currency = $1 AND year = $2")
                    .bind(currency.as_str())
                    .bind(year)
                    .execute(&mut *conn)
                    .await?;
                continue;
            }
            let annual = AnnualRate::of(currency.clone(), year, &days).ok_or_else(|| {
                corrupt(
                    "rates",
                    format!("the {} average of {year} does not fit", currency.as_str()),
                )
            })?;
            sqlx::query(
                "INSERT INTO annual_rates (currency, year, average, days, first_day, last_day) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (currency, year) DO UPDATE SET \
                 average = excluded.average, days = excluded.days, first_day = \
                 excluded.first_day, last_day = excluded.last_day",
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
    pub(super) async fn write_rates(
        conn: &mut Conn<D>,
        rates: &[DailyRate],
    ) -> StoreResult<ImportSummary> {
        let mut by_currency: BTreeMap<&str, Vec<&DailyRate>> = BTreeMap::new();
        for rate in rates {
            by_currency
                .entry(rate.currency.as_str())
                .or_default()
                .push(rate);
        }
        let mut summary = ImportSummary::default();
        let mut changed: Vec<&DailyRate> = Vec::new();
        let sql = format!(
            "SELECT {RATE_COLUMNS} FROM exchange_rates WHERE currency = $1 AND day >= $2 AND day \
             <= $3"
        );
        for (code, incoming) in &by_currency {
            let (Some(first), Some(last)) = (
                incoming.iter().map(|r| r.date).min(),
                incoming.iter().map(|r| r.date).max(),
            ) else {
                continue;
            };
            let rows = sqlx::query(&sql)
                .bind(*code)
                .bind(first)
                .bind(last)
                .fetch_all(&mut *conn)
                .await?;
            let stored: HashMap<NaiveDate, crate::domain::rates::Rate> = rows
                .iter()
                .map(|row| Self::rate_from_row(row).map(|r| (r.date, r.rate)))
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
            let mut insert = Builder::<D>::new("INSERT INTO exchange_rates (currency, day, rate) ");
            insert.push_values(batch, |mut row, rate| {
                row.push_bind(rate.currency.as_str().to_owned())
                    .push_bind(rate.date)
                    .push_bind(D::rate_param(&rate.rate));
            });
            insert.push(" ON CONFLICT (currency, day) DO UPDATE SET rate = excluded.rate");
            D::execute_built(&mut insert, &mut *conn).await?;
        }
        let mut touched: BTreeMap<&str, (&Currency, BTreeSet<i64>)> = BTreeMap::new();
        for rate in &changed {
            touched
                .entry(rate.currency.as_str())
                .or_insert_with(|| (&rate.currency, BTreeSet::new()))
                .1
                .insert(Self::year_of(rate.date));
        }
        for (currency, years) in touched.values() {
            Self::refresh_annual(conn, currency, years).await?;
        }
        Ok(summary)
    }

    /// Records a rates change in the history and the feed, and moves the
    /// rates revision that converted answers' ETags name.
    pub(super) async fn rates_changed(
        conn: &mut Conn<D>,
        at: DateTime<Utc>,
        actor: &str,
        change: Change<'_>,
    ) -> StoreResult<()> {
        Self::record(conn, at, actor, change).await?;
        sqlx::query("UPDATE revision SET rates_seq = seq WHERE id = 1")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    pub(super) async fn load_rates(
        &self,
        actor: &str,
        rates: &[DailyRate],
    ) -> StoreResult<ImportSummary> {
        let mut tx = self.begin_write().await?;
        D::lock_for_rates(&mut tx).await?;
        let at = now();
        let summary = Self::write_rates(&mut tx, rates).await?;
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
            Self::rates_changed(&mut tx, at, actor, change).await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    pub(super) async fn list_rates(
        &self,
        filter: &RateFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DailyRate>> {
        let mut sql = Builder::<D>::new(format!(
            "SELECT {RATE_COLUMNS} FROM exchange_rates WHERE 1 = 1"
        ));
        if !filter.currencies.is_empty() {
            sql.push(" AND currency IN (");
            let mut list = sql.separated(", ");
            for currency in &filter.currencies {
                list.push_bind(currency.as_str().to_owned());
            }
            list.push_unseparated(")");
        }
        if let Some(year) = filter.year {
            let (first, last) = Self::year_bounds(year)?;
            sql.push(" AND day >= ")
                .push_bind(first)
                .push(" AND day <= ")
                .push_bind(last);
        }
        if let Some(after) = &page.after {
            let bad = || Self::invalid("cursor", "is not one this service gave out");
            let (code, date) = after.split_once('/').ok_or_else(bad)?;
            let date: NaiveDate = date.parse().map_err(|_| bad())?;
            sql.push(" AND (currency, day) > (")
                .push_bind(code.to_owned())
                .push(", ")
                .push_bind(date)
                .push(")");
        }
        sql.push(" ORDER BY currency, day LIMIT ")
            .push_bind(i64::from(page.limit) + 1);
        let rows = D::fetch_built(&mut sql, &mut *self.pool.acquire().await?).await?;
        let items = rows
            .iter()
            .map(Self::rate_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self::page_of(items, page.limit, |r| {
            format!("{}/{}", r.currency.as_str(), r.date)
        }))
    }

    pub(super) async fn get_rate(
        &self,
        currency: &Currency,
        date: NaiveDate,
    ) -> StoreResult<Option<DailyRate>> {
        let mut conn = self.pool.acquire().await?;
        Self::load_rate(&mut conn, currency, date).await
    }

    pub(super) async fn put_rate(&self, actor: &str, rate: &DailyRate) -> StoreResult<RateWrite> {
        let mut tx = self.begin_write().await?;
        D::lock_for_rates(&mut tx).await?;
        let at = now();
        let before = Self::load_rate(&mut tx, &rate.currency, rate.date).await?;
        let outcome = match &before {
            Some(old) if old.rate == rate.rate => return Ok(RateWrite::Unchanged),
            Some(_) => RateWrite::Updated,
            None => RateWrite::Created,
        };
        Self::write_rates(&mut tx, std::slice::from_ref(rate)).await?;
        let id = format!("{}/{}", rate.currency.as_str(), rate.date);
        let op = if before.is_some() { "update" } else { "create" };
        let mut change = Change::new("rate", &id, op, 0).after(rate)?;
        if let Some(before) = &before {
            change = change.before(before)?;
        }
        Self::rates_changed(&mut tx, at, actor, change).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    pub(super) async fn delete_rate(
        &self,
        actor: &str,
        currency: &Currency,
        date: NaiveDate,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        D::lock_for_rates(&mut tx).await?;
        let at = now();
        let before = Self::load_rate(&mut tx, currency, date)
            .await?
            .ok_or(StoreError::NotFound)?;
        sqlx::query("DELETE FROM exchange_rates WHERE currency = $1 AND day = $2")
            .bind(currency.as_str())
            .bind(date)
            .execute(&mut *tx)
            .await?;
        Self::refresh_annual(&mut tx, currency, &BTreeSet::from([Self::year_of(date)])).await?;
        let id = format!("{}/{}", currency.as_str(), date);
        let change = Change::new("rate", &id, "delete", 0).before(&before)?;
        Self::rates_changed(&mut tx, at, actor, change).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn annual_rates(&self, filter: &AnnualFilter) -> StoreResult<AnnualRates> {
        let mut tx = D::begin_read(&self.pool).await?;
        let revision: i64 = sqlx::query_scalar("SELECT rates_seq FROM revision WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let mut sql = Builder::<D>::new(
            "SELECT currency, year, average, days, first_day, last_day FROM annual_rates WHERE 1 \
             = 1",
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
        let rows = D::fetch_built(&mut sql, &mut *tx).await?;
        tx.commit().await?;
        let items = rows
            .iter()
            .map(Self::annual_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(AnnualRates { revision, items })
    }
}
