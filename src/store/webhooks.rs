//! Webhook subscriptions and their outbox of deliveries (migration 0013).
//! Deliveries are queued by a trigger on `history`, in the writing
//! transaction; this module manages subscriptions and lets the dispatcher
//! claim, record and retry deliveries.
//!
//! Every query is written once for both backends (`$1` placeholders, times
//! as BIGINT milliseconds); the one real difference, how a claim skips rows
//! another instance holds, is [`Dialect`].

use chrono::{DateTime, TimeZone, Utc};
use sqlx::{Pool, Postgres, Sqlite};

use super::{StoreError, StoreResult};

/// The pool of the store's backend, shared with the webhook queries.
#[derive(Debug, Clone)]
pub enum DatabasePool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl From<sqlx::SqlitePool> for DatabasePool {
    fn from(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

impl From<sqlx::PgPool> for DatabasePool {
    fn from(pool: sqlx::PgPool) -> Self {
        Self::Postgres(pool)
    }
}

/// What differs between the backends in these queries.
pub trait Dialect: sqlx::Database {
    /// Appended to the claim's row selection. PostgreSQL instances skip the
    /// rows another instance is claiming at that moment; SQLite has one
    /// writer at a time, so the claim's UPDATE is already atomic.
    const SKIP_LOCKED: &'static str;
    /// Begins a writing transaction. SQLite takes the write lock at once: a
    /// deferred transaction that read first could not upgrade after another
    /// writer's commit (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out).
    const BEGIN_WRITE: &'static str;
    /// Rows a statement changed (each backend's result type has its own).
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

impl Dialect for Sqlite {
    const SKIP_LOCKED: &'static str = "";
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for Postgres {
    const SKIP_LOCKED: &'static str = " FOR UPDATE OF d SKIP LOCKED";
    const BEGIN_WRITE: &'static str = "BEGIN";

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// A filter field and the values a change must have in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookFilters {
    pub partner: Vec<String>,
    pub agreement: Vec<String>,
}

/// A subscription as shown: everything but its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub filters: WebhookFilters,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// What a subscription is made of or changed to.
#[derive(Debug, Clone)]
pub struct SubscriptionDraft {
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub filters: WebhookFilters,
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One delivery and how sending it went.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub subscription_id: String,
    /// The `webhook-id` header: the same on every attempt.
    pub message_id: String,
    pub event: String,
    /// The change's number in the feed; None for a test ping.
    pub feed_seq: Option<i64>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Where a delivery goes and the secret that signs it (no Debug: the
/// secret must never reach a log).
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub secret: String,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered {
        status: i64,
    },
    /// Failed; tried again at `next_attempt_at`.
    Retry {
        status: Option<i64>,
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    /// Failed for the whole retry window: given up, and the subscription
    /// disabled for this reason (test pings disable nothing).
    GaveUp {
        status: Option<i64>,
        error: String,
        disable_reason: Option<String>,
    },
}

/// Why a delivery cannot be retried now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryRefusal {
    NotFound,
    /// An instance is sending it at this moment.
    InFlight,
}

pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn instant(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    id: String,
    url: String,
    description: String,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

#[derive(sqlx::FromRow)]
struct ListRow {
    subscription_id: String,
    value: String,
    field: String,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    subscription_id: String,
    message_id: String,
    event: String,
    feed_seq: Option<i64>,
    status: String,
    attempts: i64,
    created_at: i64,
    next_attempt_at: i64,
    first_attempt_at: Option<i64>,
    last_attempt_at: Option<i64>,
    last_status: Option<i64>,
    last_error: Option<String>,
    delivered_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct TargetRow {
    url: String,
    secret: String,
}

impl DeliveryRow {
    fn into_delivery(self) -> StoreResult<Delivery> {
        let status = DeliveryStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Internal(format!("unknown delivery status {:?}", self.status))
        })?;
        Ok(Delivery {
            id: self.id,
            subscription_id: self.subscription_id,
            message_id: self.message_id,
            event: self.event,
            feed_seq: self.feed_seq,
            status,
            attempts: self.attempts,
            created_at: instant(self.created_at),
            next_attempt_at: (status == DeliveryStatus::Pending)
                .then(|| instant(self.next_attempt_at)),
            first_attempt_at: self.first_attempt_at.map(instant),
            last_attempt_at: self.last_attempt_at.map(instant),
            last_status: self.last_status,
            last_error: self.last_error,
            delivered_at: self.delivered_at.map(instant),
        })
    }
}

const SUBSCRIPTION_COLUMNS: &str =
    "id, url, description, enabled, disabled_reason, created_at, updated_at, version";
const DELIVERY_COLUMNS: &str = "id, subscription_id, message_id, event, feed_seq, status, attempts, created_at, \
     next_attempt_at, first_attempt_at, last_attempt_at, last_status, last_error, delivered_at";

/// The webhook tables, on the store's own pool.
#[derive(Debug, Clone)]
pub struct WebhookStore {
    pool: DatabasePool,
}

/// Runs one generic query method on whichever backend the pool is.
macro_rules! on_backend {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.pool {
            DatabasePool::Sqlite(pool) => Queries(pool).$method($($arg),*).await,
            DatabasePool::Postgres(pool) => Queries(pool).$method($($arg),*).await,
        }
    };
}

impl WebhookStore {
    pub fn new(pool: DatabasePool) -> Self {
        Self { pool }
    }

    pub async fn count_subscriptions(&self) -> StoreResult<i64> {
        on_backend!(self.count_subscriptions())
    }

    /// Stores a new subscription with its secret.
    pub async fn create_subscription(
        &self,
        id: &str,
        secret: &str,
        draft: &SubscriptionDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Subscription> {
        on_backend!(self.create_subscription(id, secret, draft, now))
    }

    pub async fn list_subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        on_backend!(self.subscriptions(None))
    }

    pub async fn get_subscription(&self, id: &str) -> StoreResult<Option<Subscription>> {
        Ok(on_backend!(self.subscriptions(Some(id)))?
            .into_iter()
            .next())
    }

    /// Replaces the settings of a subscription still at `expected_version`
    /// (else VersionMismatch); enabling it clears why it was disabled.
    pub async fn update_subscription(
        &self,
        id: &str,
        draft: &SubscriptionDraft,
        expected_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Subscription> {
        on_backend!(self.update_subscription(id, draft, expected_version, now))
    }

    /// Removes a subscription (at `expected_version`, when given) and its deliveries.
    pub async fn delete_subscription(
        &self,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        on_backend!(self.delete_subscription(id, expected_version))
    }

    /// Queues a test delivery (`webhook.ping`) to one subscription.
    pub async fn queue_ping(
        &self,
        subscription_id: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Delivery> {
        on_backend!(self.queue_ping(subscription_id, message_id, now))
    }

    /// A subscription's deliveries, newest first, before the delivery `before`.
    pub async fn list_deliveries(
        &self,
        subscription_id: &str,
        status: Option<DeliveryStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        on_backend!(self.list_deliveries(subscription_id, status, before, limit))
    }

    pub async fn get_delivery(&self, id: i64) -> StoreResult<Option<Delivery>> {
        on_backend!(self.get_delivery(id))
    }

    /// Makes a delivery due now, whatever became of it, with a fresh retry window.
    pub async fn retry_delivery(
        &self,
        subscription_id: &str,
        delivery_id: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Delivery, RetryRefusal>> {
        on_backend!(self.retry_delivery(subscription_id, delivery_id, now))
    }

    /// Claims up to `limit` due deliveries until `lease_until`. Of a
    /// subscription's event deliveries only the oldest pending one is due,
    /// so they arrive in feed order, one at a time; test pings go on their own.
    pub async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        on_backend!(self.claim(now, lease_until, limit))
    }

    /// Where a subscription's deliveries go, and the secret that signs them.
    pub async fn target(&self, subscription_id: &str) -> StoreResult<Option<Target>> {
        on_backend!(self.target(subscription_id))
    }

    /// Records how an attempt at a claimed delivery ended, and lets it go.
    pub async fn record_attempt(
        &self,
        delivery: &Delivery,
        at: DateTime<Utc>,
        outcome: &Outcome,
    ) -> StoreResult<()> {
        on_backend!(self.record_attempt(delivery, at, outcome))
    }
}

/// The queries, generic over the backend.
struct Queries<'a, DB: sqlx::Database>(&'a Pool<DB>);

impl<DB> Queries<'_, DB>
where
    DB: sqlx::Database + Dialect,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: for<'q> sqlx::Encode<'q, DB>,
    Option<String>: for<'q> sqlx::Encode<'q, DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    SubscriptionRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    ListRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    DeliveryRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    TargetRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    /// A writing transaction, begun in a task of its own: sqlx 0.8's BEGIN is
    /// not cancel-safe (see postgres.rs), and a cancelled request must not
    /// hand a connection back inside a transaction.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, DB>> {
        let pool = self.0.clone();
        let begun = tokio::spawn(async move { pool.begin_with(DB::BEGIN_WRITE).await })
            .await
            .map_err(|_| StoreError::Unavailable("a transaction could not begin".into()))?;
        Ok(begun?)
    }

    async fn count_subscriptions(&self) -> StoreResult<i64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_subscriptions")
            .fetch_one(self.0)
            .await?;
        Ok(count)
    }

    async fn create_subscription(
        &self,
        id: &str,
        secret: &str,
        draft: &SubscriptionDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Subscription> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO webhook_subscriptions (id, url, description, secret, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id.to_owned())
        .bind(draft.url.clone())
        .bind(draft.description.clone())
        .bind(secret.to_owned())
        .bind(draft.enabled)
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        Self::write_lists(&mut tx, id, draft).await?;
        tx.commit().await?;
        self.subscriptions(Some(id))
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    async fn write_lists(
        tx: &mut sqlx::Transaction<'static, DB>,
        id: &str,
        draft: &SubscriptionDraft,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM webhook_events WHERE subscription_id = $1")
            .bind(id.to_owned())
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM webhook_filters WHERE subscription_id = $1")
            .bind(id.to_owned())
            .execute(&mut **tx)
            .await?;
        let mut events = draft.events.clone();
        events.sort();
        events.dedup();
        for event in events {
            sqlx::query("INSERT INTO webhook_events (subscription_id, event) VALUES ($1, $2)")
                .bind(id.to_owned())
                .bind(event)
                .execute(&mut **tx)
                .await?;
        }
        for (field, values) in [
            ("partner", &draft.filters.partner),
            ("agreement", &draft.filters.agreement),
        ] {
            let mut values = values.clone();
            values.sort();
            values.dedup();
            for value in values {
                sqlx::query(
                    "INSERT INTO webhook_filters (subscription_id, field, value) VALUES ($1, $2, $3)",
                )
                .bind(id.to_owned())
                .bind(field.to_owned())
                .bind(value)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }

    /// One subscription, or all of them in id order.
    async fn subscriptions(&self, id: Option<&str>) -> StoreResult<Vec<Subscription>> {
        let id = id.map(str::to_owned);
        let rows: Vec<SubscriptionRow> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE ($1 IS NULL OR id = $1) ORDER BY id"
        ))
        .bind(id.clone())
        .fetch_all(self.0)
        .await?;
        let lists: Vec<ListRow> = sqlx::query_as(
            "SELECT subscription_id, event AS value, 'event' AS field FROM webhook_events WHERE ($1 IS NULL OR subscription_id = $1) \
             UNION ALL SELECT subscription_id, value, field FROM webhook_filters WHERE ($1 IS NULL OR subscription_id = $1) \
             ORDER BY 1, 3, 2",
        )
        .bind(id)
        .fetch_all(self.0)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut subscription = Subscription {
                    id: row.id,
                    url: row.url,
                    description: row.description,
                    events: Vec::new(),
                    filters: WebhookFilters::default(),
                    enabled: row.enabled,
                    disabled_reason: row.disabled_reason,
                    created_at: instant(row.created_at),
                    updated_at: instant(row.updated_at),
                    version: row.version,
                };
                for list in lists
                    .iter()
                    .filter(|l| l.subscription_id == subscription.id)
                {
                    let into = match list.field.as_str() {
                        "event" => &mut subscription.events,
                        "partner" => &mut subscription.filters.partner,
                        _ => &mut subscription.filters.agreement,
                    };
                    into.push(list.value.clone());
                }
                subscription
            })
            .collect())
    }

    async fn update_subscription(
        &self,
        id: &str,
        draft: &SubscriptionDraft,
        expected_version: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Subscription> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE webhook_subscriptions SET url = $2, description = $3, enabled = $4, updated_at = $5, \
             version = version + 1, disabled_reason = CASE WHEN $4 THEN NULL ELSE disabled_reason END \
             WHERE id = $1 AND version = $6",
        )
        .bind(id.to_owned())
        .bind(draft.url.clone())
        .bind(draft.description.clone())
        .bind(draft.enabled)
        .bind(millis(now))
        .bind(expected_version)
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&updated) == 0 {
            return Err(Self::missed(&mut tx, id).await);
        }
        Self::write_lists(&mut tx, id, draft).await?;
        tx.commit().await?;
        self.subscriptions(Some(id))
            .await?
            .into_iter()
            .next()
            .ok_or(StoreError::NotFound)
    }

    /// Why a change by id and version changed nothing: gone, or at another version.
    async fn missed(tx: &mut sqlx::Transaction<'static, DB>, id: &str) -> StoreError {
        let current: Result<Option<(i64,)>, _> =
            sqlx::query_as("SELECT version FROM webhook_subscriptions WHERE id = $1")
                .bind(id.to_owned())
                .fetch_optional(&mut **tx)
                .await;
        match current {
            Ok(Some((current,))) => StoreError::VersionMismatch { current },
            Ok(None) => StoreError::NotFound,
            Err(error) => error.into(),
        }
    }

    async fn delete_subscription(
        &self,
        id: &str,
        expected_version: Option<i64>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM webhook_subscriptions WHERE id = $1 AND ($2 IS NULL OR version = $2)",
        )
        .bind(id.to_owned())
        .bind(expected_version)
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&deleted) == 0 {
            return Err(Self::missed(&mut tx, id).await);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn queue_ping(
        &self,
        subscription_id: &str,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Delivery> {
        let mut tx = self.begin_write().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO webhook_deliveries (subscription_id, message_id, event, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(subscription_id.to_owned())
        .bind(message_id.to_owned())
        .bind(crate::domain::webhook::PING_EVENT.to_owned())
        .bind(millis(now))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.get_delivery(id).await?.ok_or(StoreError::NotFound)
    }

    async fn get_delivery(&self, id: i64) -> StoreResult<Option<Delivery>> {
        let row: Option<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.0)
        .await?;
        row.map(DeliveryRow::into_delivery).transpose()
    }

    async fn list_deliveries(
        &self,
        subscription_id: &str,
        status: Option<DeliveryStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = $1 \
             AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        ))
        .bind(subscription_id.to_owned())
        .bind(status.map(|s| s.as_str().to_owned()))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(self.0)
        .await?;
        rows.into_iter().map(DeliveryRow::into_delivery).collect()
    }

    async fn retry_delivery(
        &self,
        subscription_id: &str,
        delivery_id: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Delivery, RetryRefusal>> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3, first_attempt_at = NULL, \
             locked_until = NULL WHERE id = $1 AND subscription_id = $2 \
             AND (locked_until IS NULL OR locked_until <= $3)",
        )
        .bind(delivery_id)
        .bind(subscription_id.to_owned())
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let delivery = self
            .get_delivery(delivery_id)
            .await?
            .filter(|d| d.subscription_id == subscription_id);
        Ok(match delivery {
            None => Err(RetryRefusal::NotFound),
            Some(_) if DB::rows_affected(&updated) == 0 => Err(RetryRefusal::InFlight),
            Some(delivery) => Ok(delivery),
        })
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        // A look first, without taking the write lock: most polls find nothing due.
        let due: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (locked_until IS NULL OR locked_until <= $1) LIMIT 1",
        )
        .bind(millis(now))
        .fetch_optional(self.0)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "UPDATE webhook_deliveries SET locked_until = $2 WHERE id IN (\
               SELECT d.id FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id \
               WHERE d.status = 'pending' AND s.enabled AND d.next_attempt_at <= $1 \
               AND (d.locked_until IS NULL OR d.locked_until <= $1) \
               AND (d.feed_seq IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                    WHERE e.subscription_id = d.subscription_id AND e.status = 'pending' \
                    AND e.feed_seq IS NOT NULL AND e.id < d.id)) \
               ORDER BY d.id LIMIT $3{}) \
             RETURNING {DELIVERY_COLUMNS}",
            DB::SKIP_LOCKED
        ))
        .bind(millis(now))
        .bind(millis(lease_until))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut claimed: Vec<Delivery> = rows
            .into_iter()
            .map(DeliveryRow::into_delivery)
            .collect::<StoreResult<_>>()?;
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    async fn target(&self, subscription_id: &str) -> StoreResult<Option<Target>> {
        let row: Option<TargetRow> =
            sqlx::query_as("SELECT url, secret FROM webhook_subscriptions WHERE id = $1")
                .bind(subscription_id.to_owned())
                .fetch_optional(self.0)
                .await?;
        Ok(row.map(|row| Target {
            url: row.url,
            secret: row.secret,
        }))
    }

    async fn record_attempt(
        &self,
        delivery: &Delivery,
        at: DateTime<Utc>,
        outcome: &Outcome,
    ) -> StoreResult<()> {
        let (status, code, error, next, disable) = match outcome {
            Outcome::Delivered { status } => ("delivered", Some(*status), None, 0, None),
            Outcome::Retry {
                status,
                error,
                next_attempt_at,
            } => (
                "pending",
                *status,
                Some(error.clone()),
                millis(*next_attempt_at),
                None,
            ),
            Outcome::GaveUp {
                status,
                error,
                disable_reason,
            } => (
                "failed",
                *status,
                Some(error.clone()),
                0,
                disable_reason.clone(),
            ),
        };
        let mut tx = self.begin_write().await?;
        // Only while still pending: a delivery retried or removed meanwhile is left as it is now.
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_attempt_at = $3, \
             first_attempt_at = COALESCE(first_attempt_at, $3), last_status = $4, last_error = $5, \
             next_attempt_at = $6, locked_until = NULL, \
             delivered_at = CASE WHEN $2 = 'delivered' THEN $3 ELSE delivered_at END \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(delivery.id)
        .bind(status.to_owned())
        .bind(millis(at))
        .bind(code)
        .bind(error)
        .bind(next)
        .execute(&mut *tx)
        .await?;
        if let Some(reason) = disable {
            sqlx::query(
                "UPDATE webhook_subscriptions SET enabled = FALSE, disabled_reason = $2, updated_at = $3, \
                 version = version + 1 WHERE id = $1 AND enabled",
            )
            .bind(delivery.subscription_id.clone())
            .bind(reason)
            .bind(millis(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
