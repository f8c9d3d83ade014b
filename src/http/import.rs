//! POST /v1/import: the export format over HTTP, all or nothing; admin only.
//! `?dry_run=true` reports what would change and changes nothing.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use super::AppState;
use super::extract::{JsonBody, Params};
use crate::auth::Caller;
use crate::domain::dataset::DatasetBody;
use crate::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/import", post(import))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Params(ImportQuery { dry_run }): Params<ImportQuery>,
    JsonBody(body): JsonBody<DatasetBody>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let dataset = body.parse().map_err(ApiError::Validation)?;
    let summary = state.store.import(&caller.name, &dataset, dry_run).await?;
    Ok(axum::Json(summary).into_response())
}
