//! The ceiling scripts/bench measures /healthz against: a bare axum server
//! answering the same bytes (`{"status":"ok"}`, application/json), with no
//! middleware, on the same machine in the same run.
//!
//!   cargo run --release --example bare_axum -- 127.0.0.1:18092

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18092".into());
    let app = Router::new().route(
        "/healthz",
        get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
    );
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {address}: {e}"));
    axum::serve(listener, app)
        .await
        .unwrap_or_else(|e| panic!("serving failed: {e}"));
}
