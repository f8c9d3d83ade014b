//! POST /v1/import: the export format over HTTP, all or nothing; admin only.
//! `?dry_run=true` reports what would change and changes nothing.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{JsonBytes, Params};
use crate::auth::Caller;
use crate::domain::dataset;
use crate::error::{ApiError, ApiResult};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
}

/// Imports the export format, all or nothing (admin key); `dry_run=true` changes nothing.
#[utoipa::path(post, path = "/v1/import", tag = "data desk", params(crate::http::openapi::ImportParams),
    request_body(content = crate::domain::dataset::DatasetBody, description = "The export format: partners, areas and agreements, each section optional"),
    responses((status = 200, description = "What the import did (or would do)", body = crate::store::ImportSummary)))]
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Params(ImportQuery { dry_run }): Params<ImportQuery>,
    JsonBytes(body): JsonBytes,
) -> ApiResult<Response> {
    caller.require_admin()?;
    // Up to 64 MB of JSON to read and check: CPU work, off the async workers.
    let dataset = tokio::task::spawn_blocking(move || {
        dataset::read(&body).map_err(|error| match error {
            dataset::ReadError::Invalid(errors) => ApiError::Validation(errors),
            // A value of the wrong type names its field, as for any body.
            dataset::ReadError::Type(path, message) => {
                ApiError::Validation(vec![crate::domain::FieldError::new(path, message)])
            }
            dataset::ReadError::Syntax(message) => {
                ApiError::BadRequest(format!("the body is not valid JSON: {message}"))
            }
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading the import failed: {e}")))??;
    let summary = state.store.import(&caller.name, &dataset, dry_run).await?;
    Ok(axum::Json(summary).into_response())
}
