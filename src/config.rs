//! Every setting in one place: a flag, an environment variable and a default.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::http::HttpOptions;
use crate::http::limits::RateLimits;
use crate::store::StoreOptions;

/// The longest any timeout or wait may be set to: a day. Longer is a typo,
/// and past the clock's range a panic; refused at start with a clear error.
const DAY: u64 = 24 * 60 * 60;

/// Where the data lives; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct StoreConfig {
    /// sqlite:PATH (created if missing) or postgres://USER@HOST:PORT/DB.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite:accords.db",
        global = true
    )]
    pub database_url: String,

    /// Largest number of database connections this instance keeps open.
    #[arg(
        long,
        env = "ACCORDS_MAX_CONNECTIONS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=1_000),
        global = true
    )]
    pub max_connections: u32,

    /// How long a request waits for a database connection or lock before it
    /// is answered 503, in milliseconds.
    #[arg(
        long,
        env = "ACCORDS_DB_TIMEOUT_MS",
        default_value_t = 3000,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000),
        global = true
    )]
    pub db_timeout_ms: u64,
}

impl StoreConfig {
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            database_url: self.database_url.clone(),
            max_connections: self.max_connections.max(1),
            acquire_timeout: Duration::from_millis(self.db_timeout_ms.max(1)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// How `accords serve` listens and behaves.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[arg(long, env = "ACCORDS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Do not load the bundled dataset into an empty store.
    #[arg(long, env = "ACCORDS_NO_SEED", default_value_t = false)]
    pub no_seed: bool,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "ACCORDS_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// Largest body of POST /v1/import, in bytes.
    #[arg(long, env = "ACCORDS_IMPORT_BODY_LIMIT", default_value_t = 64 * 1024 * 1024)]
    pub import_body_limit: usize,

    /// Largest body of POST /v1/rates, in bytes (the ECB's whole history is about 2 MB).
    #[arg(long, env = "ACCORDS_RATES_BODY_LIMIT", default_value_t = 16 * 1024 * 1024)]
    pub rates_body_limit: usize,

    /// Reads need an API key too.
    #[arg(long, env = "ACCORDS_READ_AUTH", default_value_t = false, action = clap::ArgAction::Set)]
    pub read_auth: bool,

    /// PUT, PATCH and DELETE need If-Match (428 without it).
    #[arg(long, env = "ACCORDS_REQUIRE_IF_MATCH", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_if_match: bool,

    /// Reads per second per client (GET, HEAD); 0 turns the limit off.
    #[arg(long, env = "ACCORDS_READ_RATE", default_value_t = 50)]
    pub read_rate: u32,

    /// Writes per second per client; 0 turns the limit off.
    #[arg(long, env = "ACCORDS_WRITE_RATE", default_value_t = 10)]
    pub write_rate: u32,

    /// Proxies whose X-Forwarded-For is believed, comma-separated IP addresses.
    #[arg(long, env = "ACCORDS_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Origins allowed by CORS: empty for none, `*` for public reads, or a comma-separated list.
    #[arg(long, env = "ACCORDS_CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,

    /// Sites that may frame the embeds (/embed/...): `*` for any, `none`, or a comma-separated list of origins. Everything else is never framed.
    #[arg(long, env = "ACCORDS_EMBED_ORIGINS", default_value = "*")]
    pub embed_origins: String,

    /// Seconds requests in flight may take to finish after SIGINT or SIGTERM.
    #[arg(long, env = "ACCORDS_SHUTDOWN_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=DAY))]
    pub shutdown_grace_secs: u64,

    /// Seconds to keep trying an unreachable database at start; 0 fails at once.
    #[arg(long, env = "ACCORDS_WAIT_FOR_DB_SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=DAY))]
    pub wait_for_db_secs: u64,

    /// Cache-Control of every read; `no-cache` makes clients revalidate (cheaply, with If-None-Match).
    #[arg(long, env = "ACCORDS_CACHE_CONTROL", default_value = "no-cache")]
    pub cache_control: String,

    /// Cache-Control of answers at a past revision (`?revision=`, `?as_of=`), which never change.
    #[arg(long, env = "ACCORDS_PAST_CACHE_CONTROL", default_value = crate::http::PAST_CACHE_CONTROL)]
    pub past_cache_control: String,

    /// Bytes of rendered read answers kept in memory until the data changes (0: none; every read runs its query).
    #[arg(long, env = "ACCORDS_RENDER_CACHE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub render_cache_bytes: usize,

    /// Seconds a request may run before it is answered 408.
    #[arg(long, env = "ACCORDS_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=DAY))]
    pub request_timeout_secs: u64,

    /// Open client connections in total; over it a new one is answered 503 and closed (0: unlimited, but never more than the open-files limit allows).
    #[arg(long, env = "ACCORDS_CONNECTION_LIMIT", default_value_t = 512)]
    pub connection_limit: usize,

    /// Open connections per client address; over it a new one is answered 429 and closed (0: unlimited). Trusted proxies count only in the total.
    #[arg(long, env = "ACCORDS_CONNECTIONS_PER_CLIENT", default_value_t = 64)]
    pub connections_per_client: usize,

    /// Seconds a client has to send a request's headers, and the longest a keep-alive connection waits idle for its next request (0: no limit).
    #[arg(long, env = "ACCORDS_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=DAY))]
    pub header_timeout_secs: u64,

    /// Seconds a connection may pass without a byte read or written before it is closed (0: no limit).
    #[arg(long, env = "ACCORDS_IDLE_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=DAY))]
    pub idle_timeout_secs: u64,

    /// Seconds to wait for the next piece of a request body before answering 408.
    #[arg(long, env = "ACCORDS_BODY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=DAY))]
    pub body_timeout_secs: u64,

    /// Open event streams (GET /v1/events) in total; over it 503 (0: unlimited).
    #[arg(long, env = "ACCORDS_EVENT_STREAM_LIMIT", default_value_t = 256)]
    pub event_stream_limit: usize,

    /// Open event streams per client; over it 429 (0: unlimited).
    #[arg(long, env = "ACCORDS_EVENT_STREAMS_PER_CLIENT", default_value_t = 8)]
    pub event_streams_per_client: usize,

    /// Milliseconds one webhook delivery attempt (connect, send, answer) may take.
    #[arg(long, env = "ACCORDS_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=DAY * 1000))]
    pub webhook_timeout_ms: u64,

    /// Seconds a failing webhook delivery is retried (from its first attempt) before it is given up and its subscription disabled.
    #[arg(long, env = "ACCORDS_WEBHOOK_RETRY_FOR_SECS", default_value_t = DAY, value_parser = clap::value_parser!(u64).range(0..=7 * DAY))]
    pub webhook_retry_for_secs: u64,

    /// Milliseconds before the first retry of a failed webhook delivery; each next one waits twice as long (at most an hour), with jitter.
    #[arg(long, env = "ACCORDS_WEBHOOK_RETRY_BASE_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=DAY * 1000))]
    pub webhook_retry_base_ms: u64,

    /// Milliseconds between looks at the webhook outbox when nothing wakes the dispatcher (other instances' writes on SQLite, retries falling due).
    #[arg(long, env = "ACCORDS_WEBHOOK_POLL_MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub webhook_poll_ms: u64,

    /// Webhooks may point at loopback, private and link-local addresses (tests, private networks). Off, such URLs are refused and host names resolving to them are not delivered to.
    #[arg(long, env = "ACCORDS_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ServeConfig {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn wait_for_db(&self) -> Duration {
        Duration::from_secs(self.wait_for_db_secs)
    }

    pub fn webhook_settings(&self) -> crate::webhooks::DeliverySettings {
        crate::webhooks::DeliverySettings {
            timeout: Duration::from_millis(self.webhook_timeout_ms.max(1)),
            retry_for: Duration::from_secs(self.webhook_retry_for_secs),
            retry_base: Duration::from_millis(self.webhook_retry_base_ms.max(1)),
            poll: Duration::from_millis(self.webhook_poll_ms.max(10)),
            allow_private: self.webhook_allow_private,
        }
    }

    pub fn http_options(&self) -> Result<HttpOptions, String> {
        Ok(HttpOptions {
            body_limit: self.body_limit,
            import_body_limit: self.import_body_limit,
            rates_body_limit: self.rates_body_limit,
            read_auth: self.read_auth,
            require_if_match: self.require_if_match,
            rate_limits: RateLimits {
                read_per_second: self.read_rate,
                write_per_second: self.write_rate,
                trusted_proxies: self.trusted_proxies.clone(),
            },
            cors_origins: self.cors_origins.clone(),
            embed_frame_ancestors: crate::http::cors::frame_ancestors(&self.embed_origins)?,
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            cache_control: self.cache_control.clone(),
            past_cache_control: self.past_cache_control.clone(),
            render_cache_bytes: self.render_cache_bytes,
            connections: crate::http::ConnectionLimits {
                total: self.connection_limit,
                per_client: self.connections_per_client,
                header_timeout: Duration::from_secs(self.header_timeout_secs),
                idle_timeout: Duration::from_secs(self.idle_timeout_secs),
                body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
                event_streams_total: self.event_stream_limit,
                event_streams_per_client: self.event_streams_per_client,
            },
            webhook_allow_private: self.webhook_allow_private,
        })
    }
}
