//! PostgreSQL: the production store, and the way to run several instances.
//! Reads spanning several queries run in one REPEATABLE READ snapshot.

use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;

use super::dialect::{Builder, Constraint, DbRow, Dialect, Tx, begin};
use super::sql_store::SqlStore;
use super::webhooks::DatabasePool;
use super::{SearchCut, StoreError, StoreOptions, StoreResult};
use crate::domain::money::Amount;
use crate::domain::query::SearchTerms;
use crate::domain::rates::Rate;

/// The migrations compiled into the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The production backend.
pub struct Postgres;

pub type PostgresStore = SqlStore<Postgres>;

/// What a PostgreSQL store keeps beside its pool.
pub struct PostgresState {
    /// Set on a replay: its schema, dropped with it.
    _replay: Option<ReplaySchema>,
}

/// The schema of a replay (`accords_rev_<instance>_<revision>_<n>`), dropped
/// (through the store's own pool) when the replay goes away.
struct ReplaySchema {
    owner: PgPool,
    name: String,
    /// The replay's own pool, closed first.
    pool: Option<PgPool>,
}

impl Drop for ReplaySchema {
    fn drop(&mut self) {
        let owner = self.owner.clone();
        let replay = self.pool.take();
        let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Some(replay) = replay {
                    replay.close().await;
                }
                if let Err(error) = sqlx::query(&statement).execute(&owner).await {
                    tracing::warn!(%error, "cannot drop a replay schema");
                }
            });
        }
    }
}

/// Names this process's replay schemas, and is the application_name of
/// their connections: a schema whose instance has no connection left is
/// stale (its process died before dropping it) and is dropped at startup.
fn instance() -> &'static str {
    static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| {
        format!(
            "{:08x}",
            getrandom::u32().unwrap_or_else(|_| std::process::id())
        )
    })
}

static REPLAYS_MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
        MIGRATOR.run(&pool).await?;
        Self::rebuild_search_index_if_stale(&pool).await?;
        drop_stale_replays(&pool).await;
        Ok(Self::new(pool, PostgresState { _replay: None }))
    }

    /// A replay of the store at `revision`: a schema of its own in the same
    /// database, migrated through a small pool whose search_path is that
    /// schema, filled from this store's versions tables.
    async fn build_replay(owner: &PgPool, revision: i64) -> StoreResult<(PgPool, PostgresState)> {
        let made = REPLAYS_MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("accords_rev_{}_{revision}_{made}", instance());
        let source: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(owner)
            .await?;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(owner)
            .await?;
        // From here on, dropping `schema` drops the schema.
        let mut schema = ReplaySchema {
            owner: owner.clone(),
            name: name.clone(),
            pool: None,
        };
        let connect = (*owner.connect_options())
            .clone()
            .application_name(&format!("accords_rev_{}", instance()))
            .options([("search_path", name.as_str())]);
        // Always one connection open: it is what tells other instances
        // this schema is in use (see drop_stale_replays).
        let pool = PgPoolOptions::new()
            .min_connections(1)
            .max_connections(2)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect a replay: {e}")))?;
        schema.pool = Some(pool.clone());
        MIGRATOR.run(&pool).await?;
        let mut tx = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *tx)
            .await?;
        Self::fill_replay(
            &mut tx,
            &format!("\"{}\"", source.replace('"', "\"\"")),
            revision,
        )
        .await?;
        tx.commit().await?;
        Self::rebuild_search_index_if_stale(&pool).await?;
        let state = PostgresState {
            _replay: Some(schema),
        };
        Ok((pool, state))
    }
}

impl Dialect for Postgres {
    type Db = sqlx::Postgres;
    type Number = Decimal;
    type State = PostgresState;

    const BACKEND: &'static str = "postgres";

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    const ONE_WRITER: bool = false;

    async fn begin_write(pool: &PgPool) -> Result<Tx<Self>, sqlx::Error> {
        begin(pool, "BEGIN").await
    }

    async fn begin_read(pool: &PgPool) -> Result<Tx<Self>, sqlx::Error> {
        begin(pool, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await
    }

    /// Serialises the rollup refreshes of one partner: two transactions writing
    /// the same partner's pledges would otherwise both delete its rollup rows
    /// and both insert them again (a unique violation, or totals from a snapshot
    /// that missed the other's pledges). Held until the transaction ends.
    const LOCK_PARTNER_ROLLUP: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(hashtext('pledge_rollup:' || $1))");

    /// Run once a large load is done: fresh statistics for the planner, and a
    /// visibility map, without which an index-only scan (the pledge rollup's)
    /// still visits every row it reads until autovacuum comes by.
    const AFTER_BULK_LOAD: &'static str = "VACUUM ANALYZE";

    /// The signing date in a page's filter: PostgreSQL weighs the limit itself.
    const SIGNED_ON_IN_PAGE: &'static str = "a.signed_on";

    /// The signing year of `a`, as a BIGINT.
    const SIGNED_YEAR: &'static str = "CAST(EXTRACT(YEAR FROM a.signed_on) AS BIGINT)";

    /// Joins the full-text matches as `s`, ranked (negated, so lower is better,
    /// as on SQLite). Words are alphanumeric and prefix-matched, so no tsquery
    /// syntax comes from the client. With a `cut`, only the matches the page can
    /// hold: ranked, continued after the last page's (rank, id) and cut before
    /// the join, in the order the caller sorts by.
    fn push_search_join(sql: &mut Builder<'_, Self>, terms: &SearchTerms, cut: Option<SearchCut>) {
        let expression: Vec<String> = terms.words().iter().map(|w| format!("{w}:*")).collect();
        let expression = expression.join(" & ");
        let rank = |sql: &mut Builder<'_, Self>| {
            sql.push("CAST(-ts_rank(document, to_tsquery('simple', ")
                .push_bind(expression.clone())
                .push(")) AS DOUBLE PRECISION)");
        };
        sql.push(" JOIN (SELECT agreement_id, ");
        rank(sql);
        sql.push(" AS rank FROM agreement_search WHERE document @@ to_tsquery('simple', ")
            .push_bind(expression.clone())
            .push(")");
        if let Some(cut) = cut {
            let (past, order) = if cut.descending {
                ("<", "DESC")
            } else {
                (">", "ASC")
            };
            if let Some((after_rank, after_id)) = cut.after {
                sql.push(" AND (");
                rank(sql);
                sql.push(format!(", agreement_id) {past} ("))
                    .push_bind(after_rank)
                    .push(", ")
                    .push_bind(after_id)
                    .push(")");
            }
            sql.push(format!(
                " ORDER BY rank {order}, agreement_id {order} LIMIT "
            ))
            .push_bind(cut.limit);
        }
        sql.push(") s ON s.agreement_id = a.id");
    }

    /// ` IN` a list of ids, bound as one array: the same statement for any
    /// number of ids.
    async fn fetch_built(
        sql: &mut Builder<'_, Self>,
        conn: &mut sqlx::PgConnection,
    ) -> Result<Vec<DbRow<Self>>, sqlx::Error> {
        sql.build().fetch_all(conn).await
    }

    async fn execute_built(
        sql: &mut Builder<'_, Self>,
        conn: &mut sqlx::PgConnection,
    ) -> Result<u64, sqlx::Error> {
        Ok(sql.build().execute(conn).await?.rows_affected())
    }

    fn push_in_ids(query: &mut Builder<'_, Self>, ids: &[String]) {
        query.push(" = ANY(").push_bind(ids.to_vec()).push(")");
    }

    /// How a search row is found from its agreement.
    const SEARCH_ROW_OF_AGREEMENT: &'static str = "s.agreement_id = a.id";

    async fn index_search_text(
        conn: &mut sqlx::PgConnection,
        agreement_id: &str,
        text: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO agreement_search (agreement_id, document) VALUES ($1, \
             to_tsvector('simple', $2)) ON CONFLICT (agreement_id) DO UPDATE SET document = \
             EXCLUDED.document",
        )
        .bind(agreement_id)
        .bind(text)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn unindex_search_text(
        conn: &mut sqlx::PgConnection,
        agreement_id: &str,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM agreement_search WHERE agreement_id = $1")
            .bind(agreement_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn prepare_bulk_load(conn: &mut sqlx::PgConnection) -> StoreResult<()> {
        // Compiling a plan costs more than running a batch's statements.
        sqlx::query("SET LOCAL jit = off")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// A transaction-scoped advisory lock: one seeding instance at a time.
    async fn lock_for_seed(conn: &mut sqlx::PgConnection) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(7231020224)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Rates writers take turns: each recomputes annual averages from the daily
    /// rates it reads, which must include every write committed before it.
    async fn lock_for_rates(conn: &mut sqlx::PgConnection) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(7231020225)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn notify_change(conn: &mut sqlx::PgConnection, seq: i64) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(seq.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Listens for other instances' writes on a connection of its own, and
    /// reconnects when it drops; the receiver only learns "something changed".
    fn listen_for_changes(pool: &PgPool) -> Option<tokio::sync::mpsc::Receiver<()>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let pool = pool.clone();
        tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if listener.listen(CHANGES_CHANNEL).await.is_ok() {
                            // A reconnect may have missed notifications: wake the reader once.
                            let _ = sender.try_send(());
                            while listener.recv().await.is_ok() {
                                if sender.is_closed() {
                                    return;
                                }
                                let _ = sender.try_send(());
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot listen for changes"),
                }
                if sender.is_closed() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
        Some(receiver)
    }

    /// The columns of a table of the current schema, in order.
    const COLUMNS_OF_TABLE: &'static str = "SELECT CAST(column_name AS TEXT) FROM \
                                            information_schema.columns WHERE table_schema = \
                                            current_schema() AND table_name = $1 ORDER BY \
                                            ordinal_position";

    /// PostgreSQL names the constraint (or the unique index) a write broke.
    fn violates(error: &sqlx::Error, constraint: Constraint) -> bool {
        let name = match constraint {
            Constraint::PartnerIso3 => "partners_iso3_key",
            Constraint::SourceUrl => "sources_agreement_url",
            Constraint::AgreementPartner => "agreements_partner_code_fkey",
            Constraint::LinkArea => "agreement_areas_area_code_fkey",
        };
        matches!(error, sqlx::Error::Database(db) if db.constraint() == Some(name))
    }

    /// What keeps a table's versions (migration 0014), undone in a replay.
    fn drop_versioning(table: &str) -> Vec<String> {
        vec![format!("DROP TRIGGER {table}_versioned ON {table}")]
    }

    const JSON_OBJECT: &'static str = "json_build_object";

    fn json_array_of(value: &str, order: &str) -> String {
        format!("COALESCE(json_agg({value} ORDER BY {order}), '[]'::json)")
    }

    /// JSONB columns are JSON already.
    fn json_in_document(column: &str) -> String {
        column.to_string()
    }

    /// As text, so no JSON number (and no float) ever carries an amount.
    fn amount_in_document(column: &str) -> String {
        format!("{column}::text")
    }

    fn amount_param(amount: &Amount) -> Self::Number {
        amount.as_decimal()
    }

    fn amount_from(value: Self::Number) -> Result<Amount, String> {
        Amount::from_decimal(value)
    }

    fn rate_param(rate: &Rate) -> Self::Number {
        rate.as_decimal()
    }

    fn rate_from(value: Self::Number) -> Result<Rate, String> {
        Rate::from_decimal(value)
    }

    /// PostgreSQL manages its own log: nothing to report per instance.
    fn wal_bytes(_state: &PostgresState) -> Option<u64> {
        None
    }

    fn webhook_pool(pool: &PgPool) -> DatabasePool {
        pool.clone().into()
    }

    async fn replay(
        pool: &PgPool,
        _state: &PostgresState,
        revision: i64,
    ) -> StoreResult<(PgPool, PostgresState)> {
        PostgresStore::build_replay(pool, revision).await
    }
}

/// The channel every instance listens on; a notification is delivered at commit.
const CHANGES_CHANNEL: &str = "accords_changes";

/// Drops the replay schemas of instances that are gone (no connection of
/// theirs is open): a process that died keeps no replay.
async fn drop_stale_replays(pool: &PgPool) {
    let stale: Result<Vec<String>, _> = sqlx::query_scalar(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'accords\\_rev\\_%' AND NOT EXISTS \
         (SELECT 1 FROM pg_stat_activity WHERE application_name = 'accords_rev_' || \
         split_part(nspname, '_', 3))",
    )
    .fetch_all(pool)
    .await;
    for name in stale.unwrap_or_default() {
        if let Err(error) = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
            .execute(pool)
            .await
        {
            tracing::warn!(%error, schema = name, "cannot drop a stale replay schema");
        }
    }
}
