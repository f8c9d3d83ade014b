//! SQLite: the embedded default. WAL so readers never wait for the writer,
//! foreign keys on, and writes begun with BEGIN IMMEDIATE so a transaction
//! that reads before it writes waits for the lock instead of failing.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::dialect::{Builder, Constraint, DbRow, Dialect, Tx, begin};
use super::sql_store::SqlStore;
use super::webhooks::DatabasePool;
use super::{SearchCut, StoreError, StoreOptions, StoreResult};
use crate::domain::money::Amount;
use crate::domain::query::SearchTerms;
use crate::domain::rates::Rate;

/// The migrations compiled into the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The embedded backend.
pub struct Sqlite;

pub type SqliteStore = SqlStore<Sqlite>;

/// What a SQLite store keeps beside its pool.
pub struct SqliteState {
    /// The write-ahead log's size as last measured (bytes), for /metrics.
    wal_bytes: Arc<AtomicU64>,
    /// Stops the checkpointer when the store goes away (none for a replay).
    _checkpointer: Option<AbortOnDrop>,
    /// The database file, which a replay attaches to copy rows from
    /// (None: an in-memory store, which cannot be attached).
    file: Option<PathBuf>,
    /// A replay's own file, deleted with it.
    _replay_file: Option<RemoveOnDrop>,
}

/// A replay's database file (and its journal), removed when the replay goes.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

static REPLAYS_MADE: AtomicU64 = AtomicU64::new(0);

/// The write-ahead log is checkpointed and truncated once it passes this,
/// and cut back to it after any checkpoint (`journal_size_limit`).
const WAL_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

/// How often the log's size is looked at.
const WAL_CHECK_EVERY: Duration = Duration::from_secs(5);

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
            .busy_timeout(options.acquire_timeout)
            .pragma("journal_size_limit", WAL_LIMIT_BYTES.to_string());
        let wal_path = wal_path_of(&connect);
        let file = wal_path
            .as_ref()
            .map(|_| connect.get_filename().to_path_buf());
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // A connection to a local file does not go stale; the ping
            // sqlx sends before every borrow was one of the seven hand-offs
            // to the connection's worker thread that a single read made.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot open the SQLite database: {e}"))
            })?;
        MIGRATOR.run(&pool).await?;
        Self::rebuild_search_index_if_stale(&pool).await?;
        // Keeps the planner's statistics current (cheap when they are).
        sqlx::query("PRAGMA optimize=0x10002")
            .execute(&pool)
            .await?;
        let wal_bytes = Arc::new(AtomicU64::new(0));
        let checkpointer =
            tokio::spawn(keep_wal_bounded(pool.clone(), wal_path, wal_bytes.clone()));
        Ok(Self::new(
            pool,
            SqliteState {
                wal_bytes,
                _checkpointer: Some(AbortOnDrop(checkpointer)),
                file,
                _replay_file: None,
            },
        ))
    }

    /// A replay of the store at `revision`: a private database in a
    /// temporary file (not in memory: a replay is as large as the store),
    /// never synced (it is rebuilt if lost), migrated, filled from the
    /// versions tables of this store's file, attached read-only.
    async fn build_replay(
        state: &SqliteState,
        revision: i64,
    ) -> StoreResult<(SqlitePool, SqliteState)> {
        let Some(file) = &state.file else {
            return Err(StoreError::Unavailable(
                "an in-memory store keeps no past revisions to replay".into(),
            ));
        };
        let made = REPLAYS_MADE.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "accords_rev_{}_{revision}_{made}.db",
            std::process::id()
        ));
        let replay_file = RemoveOnDrop(path.clone());
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open a replay database: {e}")))?;
        MIGRATOR.run(&pool).await?;
        let mut conn = pool.acquire().await?;
        let source = format!(
            "file:{}?mode=ro",
            file.to_string_lossy()
                .replace('%', "%25")
                .replace('?', "%3f")
                .replace('#', "%23")
        );
        sqlx::query("ATTACH DATABASE $1 AS src")
            .bind(&source)
            .execute(&mut *conn)
            .await?;
        let filled = async {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            Self::fill_replay(&mut tx, "src", revision).await?;
            tx.commit().await?;
            StoreResult::Ok(())
        }
        .await;
        sqlx::query("DETACH DATABASE src")
            .execute(&mut *conn)
            .await?;
        filled?;
        drop(conn);
        Self::rebuild_search_index_if_stale(&pool).await?;
        let state = SqliteState {
            wal_bytes: Arc::new(AtomicU64::new(0)),
            _checkpointer: None,
            file: None,
            _replay_file: Some(replay_file),
        };
        Ok((pool, state))
    }
}

/// The `-wal` file beside the database file (none for an in-memory store).
fn wal_path_of(options: &SqliteConnectOptions) -> Option<PathBuf> {
    let file = options.get_filename();
    let name = file.to_str()?;
    (!name.is_empty() && name != ":memory:").then(|| PathBuf::from(format!("{name}-wal")))
}

/// With readers always active, SQLite's automatic checkpoints never get to
/// reset the log, which then grows without end (checkpoint starvation: 450 MB
/// after an 8-minute soak). Every few seconds this measures the log and,
/// past the limit, runs a TRUNCATE checkpoint: it waits (up to the busy
/// timeout) for readers to move to the latest snapshot, copies the log into
/// the database and empties it. A checkpoint that cannot finish under load
/// still copies what it can and is tried again next time.
async fn keep_wal_bounded(pool: SqlitePool, wal_path: Option<PathBuf>, wal_bytes: Arc<AtomicU64>) {
    let Some(wal_path) = wal_path else { return };
    let mut ticks = tokio::time::interval(WAL_CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if pool.is_closed() {
            return;
        }
        let size = std::fs::metadata(&wal_path).map_or(0, |m| m.len());
        wal_bytes.store(size, Ordering::Relaxed);
        if size <= WAL_LIMIT_BYTES {
            continue;
        }
        match sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
        {
            Ok(_) => {
                let after = std::fs::metadata(&wal_path).map_or(0, |m| m.len());
                wal_bytes.store(after, Ordering::Relaxed);
                tracing::debug!(before = size, after, "write-ahead log checkpointed");
            }
            Err(error) => {
                tracing::warn!(%error, size, "write-ahead log checkpoint failed; retrying later")
            }
        }
    }
}

impl Dialect for Sqlite {
    type Db = sqlx::Sqlite;
    type Number = String;
    type State = SqliteState;

    const BACKEND: &'static str = "sqlite";

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    const ONE_WRITER: bool = true;

    async fn begin_write(pool: &SqlitePool) -> Result<Tx<Self>, sqlx::Error> {
        begin(pool, "BEGIN IMMEDIATE").await
    }

    /// A deferred transaction: one consistent snapshot for a multi-query read.
    async fn begin_read(pool: &SqlitePool) -> Result<Tx<Self>, sqlx::Error> {
        begin(pool, "BEGIN").await
    }

    /// SQLite writes one transaction at a time (BEGIN IMMEDIATE): rollup
    /// refreshes never overlap, so there is nothing to lock.
    const LOCK_PARTNER_ROLLUP: Option<&'static str> = None;

    /// Run once a large load is done: fresh statistics for the planner.
    const AFTER_BULK_LOAD: &'static str = "ANALYZE";

    /// The signing date in a page's filter: `+` keeps SQLite from choosing
    /// the date index over the page's own order (see `push_filters`).
    const SIGNED_ON_IN_PAGE: &'static str = "+a.signed_on";

    /// The signing year of `a`, as an integer.
    const SIGNED_YEAR: &'static str = "CAST(strftime('%Y', a.signed_on) AS INTEGER)";

    /// Joins the FTS5 matches as `s`, ranked by BM25 (lower is better). Every
    /// word is quoted and prefix-matched, so no query syntax reaches FTS5. A
    /// match is joined by the rowid it shares with its agreement: reading its
    /// UNINDEXED agreement_id would cost a lookup in FTS5's content per match.
    ///
    /// With a `cut`, only the matches a page can hold are joined: each match is
    /// scored once (kept in a materialized CTE); those past the last page's rank
    /// and no further than the `limit`-th beyond it are kept, ties at either end
    /// included, and the caller's order by (rank, id) and keyset decide among
    /// them.
    fn push_search_join(sql: &mut Builder<'_, Self>, terms: &SearchTerms, cut: Option<SearchCut>) {
        let expression: Vec<String> = terms.words().iter().map(|w| format!("\"{w}\"*")).collect();
        let Some(cut) = cut else {
            sql.push(
                " JOIN (SELECT rowid AS search_rowid, bm25(agreement_search) AS rank FROM \
                 agreement_search WHERE agreement_search MATCH ",
            )
            .push_bind(expression.join(" "))
            .push(") s ON s.search_rowid = a.rowid");
            return;
        };
        // Best first: past the last rank means a larger one, and the page ends
        // at the largest rank among the next `limit`; the reverse when descending.
        let (past, end, order, within) = if cut.descending {
            ("<", "min", "DESC", ">=")
        } else {
            (">", "max", "ASC", "<=")
        };
        sql.push(
            " JOIN (WITH matches AS MATERIALIZED (SELECT rowid AS search_rowid, rank FROM \
             agreement_search WHERE agreement_search MATCH ",
        )
        .push_bind(expression.join(" "))
        .push(") SELECT search_rowid, rank FROM matches WHERE ");
        match cut.after {
            Some((rank, _)) => {
                sql.push(format!("rank {past}= "))
                    .push_bind(rank)
                    .push(format!(
                        " AND rank {within} COALESCE((SELECT {end}(rank) FROM (SELECT rank FROM \
                         matches WHERE rank {past} "
                    ))
                    .push_bind(rank)
                    .push(format!(" ORDER BY rank {order} LIMIT "))
                    .push_bind(cut.limit)
                    .push(")), ")
                    .push_bind(rank)
                    .push(")");
            }
            None => {
                sql.push(format!(
                    "rank {within} (SELECT {end}(rank) FROM (SELECT rank FROM matches ORDER BY \
                     rank {order} LIMIT "
                ))
                .push_bind(cut.limit)
                .push("))");
            }
        }
        sql.push(") s ON s.search_rowid = a.rowid");
    }

    /// ` IN` a list of ids, bound as one JSON array: the same statement for any
    /// number of ids, and none of them compared with an indexed column as a
    /// bound value. (SQLite is built with STAT4 here, and re-prepares a
    /// statement on every run when such a value may change its plan.)
    async fn fetch_built(
        sql: &mut Builder<'_, Self>,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<Vec<DbRow<Self>>, sqlx::Error> {
        sql.build().fetch_all(conn).await
    }

    async fn execute_built(
        sql: &mut Builder<'_, Self>,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<u64, sqlx::Error> {
        Ok(sql.build().execute(conn).await?.rows_affected())
    }

    fn push_in_ids(query: &mut Builder<'_, Self>, ids: &[String]) {
        query
            .push(" IN (SELECT value FROM json_each(")
            .push_bind(serde_json::Value::from(ids.to_vec()).to_string())
            .push("))");
    }

    /// How a search row is found from its agreement (see [`index_search_text`]).
    const SEARCH_ROW_OF_AGREEMENT: &'static str = "s.rowid = a.rowid AND s.agreement_id = a.id";

    /// The search row shares its agreement's rowid: FTS5 finds a row by rowid
    /// directly, while a lookup by the UNINDEXED agreement_id would scan them all.
    async fn index_search_text(
        conn: &mut sqlx::SqliteConnection,
        agreement_id: &str,
        text: &str,
    ) -> StoreResult<()> {
        Self::unindex_search_text(conn, agreement_id).await?;
        sqlx::query(
            "INSERT INTO agreement_search (rowid, agreement_id, body) SELECT rowid, id, $2 FROM \
             agreements WHERE id = $1",
        )
        .bind(agreement_id)
        .bind(text)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn unindex_search_text(
        conn: &mut sqlx::SqliteConnection,
        agreement_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM agreement_search WHERE rowid = (SELECT rowid FROM agreements WHERE id = \
             $1)",
        )
        .bind(agreement_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// A bulk load touches index pages all over the file: a large page cache on
    /// the loading connection keeps them in memory instead of re-reading them.
    async fn prepare_bulk_load(conn: &mut sqlx::SqliteConnection) -> StoreResult<()> {
        sqlx::query("PRAGMA cache_size = -262144")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// BEGIN IMMEDIATE already keeps every other writer out.
    async fn lock_for_seed(_conn: &mut sqlx::SqliteConnection) -> StoreResult<()> {
        Ok(())
    }

    /// BEGIN IMMEDIATE already makes rates writers take turns.
    async fn lock_for_rates(_conn: &mut sqlx::SqliteConnection) -> StoreResult<()> {
        Ok(())
    }

    /// SQLite has no notifications: instances learn of changes by polling the feed.
    async fn notify_change(_conn: &mut sqlx::SqliteConnection, _seq: i64) -> StoreResult<()> {
        Ok(())
    }

    fn listen_for_changes(_pool: &SqlitePool) -> Option<tokio::sync::mpsc::Receiver<()>> {
        None
    }

    /// The columns of a table, in order.
    const COLUMNS_OF_TABLE: &'static str = "SELECT name FROM pragma_table_info($1) ORDER BY cid";

    /// SQLite names a broken UNIQUE constraint by its columns, and a broken
    /// foreign key not at all: each statement that may break a foreign key
    /// has only the one.
    fn violates(error: &sqlx::Error, constraint: Constraint) -> bool {
        let sqlx::Error::Database(db) = error else {
            return false;
        };
        match constraint {
            Constraint::PartnerIso3 => db.message() == "UNIQUE constraint failed: partners.iso3",
            Constraint::SourceUrl => {
                db.message() == "UNIQUE constraint failed: sources.agreement_id, sources.url"
            }
            Constraint::AgreementPartner | Constraint::LinkArea => db.is_foreign_key_violation(),
        }
    }

    /// What keeps a table's versions (migration 0014), undone in a replay.
    fn drop_versioning(table: &str) -> Vec<String> {
        ["insert", "update", "delete"]
            .iter()
            .map(|op| format!("DROP TRIGGER {table}_versioned_{op}"))
            .collect()
    }

    const JSON_OBJECT: &'static str = "json_object";

    fn json_array_of(value: &str, order: &str) -> String {
        format!("json_group_array({value} ORDER BY {order})")
    }

    /// SQLite keeps JSON as TEXT: json() marks it as JSON, so the
    /// document embeds it rather than quoting it.
    fn json_in_document(column: &str) -> String {
        format!("json({column})")
    }

    /// Amounts are their decimal TEXT already.
    fn amount_in_document(column: &str) -> String {
        column.to_string()
    }

    fn amount_param(amount: &Amount) -> Self::Number {
        amount.to_string()
    }

    fn amount_from(text: Self::Number) -> Result<Amount, String> {
        Amount::parse(&text)
    }

    fn rate_param(rate: &Rate) -> Self::Number {
        rate.to_string()
    }

    fn rate_from(text: Self::Number) -> Result<Rate, String> {
        Rate::parse(&text)
    }

    fn wal_bytes(state: &SqliteState) -> Option<u64> {
        Some(state.wal_bytes.load(Ordering::Relaxed))
    }

    fn webhook_pool(pool: &SqlitePool) -> DatabasePool {
        pool.clone().into()
    }

    async fn replay(
        _pool: &SqlitePool,
        state: &SqliteState,
        revision: i64,
    ) -> StoreResult<(SqlitePool, SqliteState)> {
        SqliteStore::build_replay(state, revision).await
    }
}
