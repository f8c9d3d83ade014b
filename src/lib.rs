//! accords: Ukraine's bilateral security agreements with its partners — who
//! signed what, when and where, what each partner pledged, which areas they
//! cooperate in, and where every fact comes from — served over HTTP.
//!
//! [`app`] builds the router from a store, so tests drive the real API
//! in-process; [`Server`] binds it to an address; [`serve`] is `accords serve`.

pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod generate;
pub mod http;
pub mod seed;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod webhooks;
pub mod wire;

use std::sync::Arc;

use axum::Router;

use crate::config::{ServeConfig, StoreConfig};
use crate::http::HttpOptions;
use crate::store::Store;

pub use server::Server;

/// The whole API for a store; fails only on invalid settings.
pub fn app(store: Arc<dyn Store>, options: HttpOptions) -> Result<Router, String> {
    http::router(store, options, Arc::default())
}

/// Opens the store; with `wait` set, keeps trying while the database cannot
/// be reached (a container starting next to its database), else fails at once.
async fn open_store(
    config: &StoreConfig,
    wait: std::time::Duration,
) -> Result<Arc<dyn Store>, String> {
    // A wait too long to add to the clock is a wait without end.
    let deadline = std::time::Instant::now().checked_add(wait);
    loop {
        match store::open(&config.options()).await {
            Ok(store) => return Ok(store),
            Err(store::StoreError::Unavailable(reason))
                if deadline.is_none_or(|d| std::time::Instant::now() < d) =>
            {
                tracing::warn!(%reason, "waiting for the database");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error.to_string()),
        }
    }
}

/// `accords serve`: open (and migrate) the store, seed an empty one with the
/// bundled dataset, and serve until SIGINT or SIGTERM.
pub async fn serve(store_config: &StoreConfig, config: &ServeConfig) -> Result<(), String> {
    let _log = telemetry::init(config.log_format);
    let store = open_store(store_config, config.wait_for_db()).await?;
    if !config.no_seed
        && let Some(summary) = seed::seed_if_empty(store.as_ref())
            .await
            .map_err(|e| format!("seeding failed: {e}"))?
    {
        tracing::info!(
            created = summary.created,
            "loaded the bundled dataset into the empty store"
        );
    }
    // Delivers webhooks while the server runs (dropped, it stops; a
    // delivery cut short is sent again once its claim expires).
    let _dispatcher = webhooks::Dispatcher::start(store.clone(), config.webhook_settings())?;
    let server = Server::bind(config.bind, store.clone(), config.http_options()?).await?;
    let address = server.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, backend = store.backend(), "accords is listening");
    server
        .run(shutdown_signal(), config.shutdown_grace())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("accords stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
