//! GET /v1/checks: the data checks of `accords check`, over HTTP.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use super::extract::Params;
use crate::domain::FieldError;
use crate::domain::checks::{self, Level, Report};
use crate::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/checks", get(run_checks))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksQuery {
    /// `error` lists only findings at the error level; counts always cover all.
    level: Option<String>,
}

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
    let findings = checks::run(&dataset.partners, &dataset.agreements, today);
    Ok(axum::Json(Report::new(findings, level)).into_response())
}
