//! Every setting in one place: a flag, an environment variable and a default.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::http::HttpOptions;
use crate::store::StoreOptions;

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
        global = true
    )]
    pub max_connections: u32,

    /// How long a request waits for a database connection or lock before it
    /// is answered 503, in milliseconds.
    #[arg(
        long,
        env = "ACCORDS_DB_TIMEOUT_MS",
        default_value_t = 3000,
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
    #[arg(long, env = "ACCORDS_BODY_LIMIT", default_value_t = 16 * 1024 * 1024)]
    pub body_limit: usize,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ServeConfig {
    pub fn http_options(&self) -> HttpOptions {
        HttpOptions {
            body_limit: self.body_limit,
        }
    }
}
