//! SQLite: the embedded default. WAL so readers never wait for the writer,
//! foreign keys on, and writes begun with BEGIN IMMEDIATE so a transaction
//! that reads before it writes waits for the lock instead of failing.

use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreOptions;
use crate::domain::money::Amount;

type Db = sqlx::Sqlite;
const BACKEND: &str = "sqlite";

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(options: &StoreOptions) -> StoreResult<Self> {
        let connect = SqliteConnectOptions::from_str(&options.database_url)
            .map_err(|e| StoreError::Internal(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives even an OS crash or power
            // loss, at the price of one fsync per commit.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.acquire_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot open the SQLite database: {e}"))
            })?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// A deferred transaction: one consistent snapshot for a multi-query read.
async fn begin_read(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

fn amount_param(amount: &Amount) -> String {
    amount.to_string()
}

fn amount_from(text: String) -> Result<Amount, String> {
    Amount::parse(&text)
}

super::sql::shared_sql_store!(SqliteStore);
