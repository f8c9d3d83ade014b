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
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::config::{ServeConfig, StoreConfig};
use crate::http::HttpOptions;
use crate::store::Store;

/// The whole API for a store; fails only on invalid settings.
pub fn app(store: Arc<dyn Store>, options: HttpOptions) -> Result<Router, String> {
    http::router(store, options)
}

/// A bound, not yet running server; binding to port 0 lets tests run many.
pub struct Server {
    listener: TcpListener,
    router: Router,
    store: Arc<dyn Store>,
}

impl Server {
    pub async fn bind(
        address: SocketAddr,
        store: Arc<dyn Store>,
        options: HttpOptions,
    ) -> Result<Self, String> {
        let router = app(store.clone(), options)?;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        Ok(Self {
            listener,
            router,
            store,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, then
    /// closes the store's connections.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The peer address feeds the per-client rate limits.
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
        self.store.close().await;
        result
    }
}

/// `accords serve`: open (and migrate) the store, seed an empty one with the
/// bundled dataset, and serve until SIGINT or SIGTERM.
pub async fn serve(store_config: &StoreConfig, config: &ServeConfig) -> Result<(), String> {
    cli::init_tracing(config.log_format);
    let store = store::open(&store_config.options())
        .await
        .map_err(|e| e.to_string())?;
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
    let server = Server::bind(config.bind, store.clone(), config.http_options()?).await?;
    let address = server.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, backend = store.backend(), "accords is listening");
    server
        .run(shutdown_signal())
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
