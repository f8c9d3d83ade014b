//! GET /v1/checks: the data checks of `accords check`, over HTTP.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::Params;
use crate::domain::FieldError;
use crate::domain::checks::{Level, Report};
use crate::error::{ApiError, ApiResult};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(run_checks))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksQuery {
    /// `error` lists only findings at the error level; counts always cover all.
    level: Option<String>,
}

/// The data checks: what an editor should fix; `passed` is false when any error-level check finds something.
#[utoipa::path(get, path = "/v1/checks", tag = "data desk", params(crate::http::openapi::ChecksParams),
    responses((status = 200, description = "The checks' report", body = crate::domain::checks::Report)))]
async fn run_checks(
    State(state): State<AppState>,
    Params(query): Params<ChecksQuery>,
) -> ApiResult<Response> {
    let level = query
        .level
        .map(|level| {
            Level::parse(&level)
                .map_err(|message| ApiError::InvalidQuery(vec![FieldError::new("level", message)]))
        })
        .transpose()?;
    let dataset = state.store.export().await?;
    let today = chrono::Utc::now().date_naive();
    Ok(axum::Json(Report::of(&dataset, today, level)).into_response())
}
