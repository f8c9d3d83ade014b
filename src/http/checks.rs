//! GET /v1/checks: the data checks of `accords check`, over HTTP.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::params::{Params, one_of, value_schema};
use crate::domain::FieldError;
use crate::domain::checks::{Level, Report};
use crate::error::{ApiError, ApiResult};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(run_checks))
}

value_schema!(CheckLevel, one_of(vec!["error", "warning"]));

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChecksQuery {
    /// error: list only findings at the error level (the counts always cover all)
    #[param(value_type = Option<CheckLevel>, inline)]
    level: Option<String>,
}

/// The data checks: what an editor should fix; `passed` is false when any error-level check finds something.
#[utoipa::path(get, path = "/v1/checks", tag = "data desk", params(ChecksQuery),
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
