//! PostgreSQL: the production store, and the way to run several instances.
//! Reads spanning several queries run in one REPEATABLE READ snapshot.

use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;

use super::StoreOptions;
use crate::domain::money::Amount;

type Db = sqlx::Postgres;
const BACKEND: &str = "postgres";

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(options: &StoreOptions) -> StoreResult<Self> {
        let connect = PgConnectOptions::from_str(&options.database_url)
            .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("accords");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        // Several instances may start at once; sqlx serialises migrations with
        // an advisory lock, so they do not race.
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

async fn begin_write(pool: &PgPool) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

async fn begin_read(pool: &PgPool) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
}

fn amount_param(amount: &Amount) -> Decimal {
    amount.as_decimal()
}

fn amount_from(value: Decimal) -> Result<Amount, String> {
    Amount::from_decimal(value)
}

super::sql::shared_sql_store!(PostgresStore);
