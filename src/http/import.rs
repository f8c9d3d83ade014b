//! POST /v1/import: the export format over HTTP, all or nothing; admin only.
//! `?dry_run=true` reports what would change and changes nothing.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{body_stream_error, require_json};
use super::params::Params;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::wire::dataset;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// Report what would change, and change nothing
    #[serde(default)]
    dry_run: bool,
}

/// An import's body, kept as the chunks it arrived in and read from them
/// (up to 64 MB: never copied into one buffer as well).
struct ImportBody(Box<dyn bytes::Buf + Send>);

impl axum::extract::FromRequest<AppState> for ImportBody {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        use http_body_util::BodyExt;
        require_json(request.headers())?;
        let limit = state.options.body_limit_for(request.uri().path());
        let body = http_body_util::Limited::new(request.into_body(), limit);
        let collected = body.collect().await.map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                ApiError::PayloadTooLarge(
                    "the request body is larger than the configured limit".into(),
                )
            } else {
                body_stream_error(error.as_ref())
            }
        })?;
        Ok(ImportBody(Box::new(collected.aggregate())))
    }
}

/// Imports the export format, all or nothing (admin key); `dry_run=true` changes nothing.
#[utoipa::path(post, path = "/v1/import", tag = "data desk", params(ImportQuery),
    request_body(content = crate::wire::dataset::DatasetBody, description = "The export format: partners, areas and agreements, each section optional"),
    responses((status = 200, description = "What the import did (or would do)", body = crate::store::ImportSummary)))]
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Params(ImportQuery { dry_run }): Params<ImportQuery>,
    ImportBody(body): ImportBody,
) -> ApiResult<Response> {
    caller.require_admin()?;
    // Up to 64 MB of JSON to read and check: CPU work, off the async workers.
    let dataset = tokio::task::spawn_blocking(move || {
        dataset::read(bytes::Buf::reader(body)).map_err(|error| match error {
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
