//! `pretty=true` on every JSON answer (documented by `params::JsonLayout`),
//! from one place: the parameter is taken off the query before any handler,
//! cache or tag sees it (so pretty and compact answers share their kept copy
//! and their ETag), and the JSON that comes back is indented on its way out.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::extract::take_query_param;
use super::params::flag;
use crate::domain::FieldError;
use crate::error::{ApiError, PROBLEM_JSON};

/// A JSON answer larger than this is sent as it is: lists are at most 500
/// items, so only a body no JSON answer reaches would be left compact.
const MAX_INDENTED_BYTES: usize = 64 * 1024 * 1024;

/// Whether [`indent`] may have anything to do: the query may name `pretty`.
pub fn concerns<B>(request: &axum::http::Request<B>) -> bool {
    request
        .uri()
        .query()
        .is_some_and(|q| q.contains("pretty") || q.contains('%'))
}

pub async fn indent(mut request: Request, next: Next) -> Response {
    let (given, stripped) = take_query_param(request.uri(), "pretty");
    if given.len() > 1 {
        return invalid(vec![FieldError::new("pretty", "may be given only once")]);
    }
    let mut errors = Vec::new();
    let pretty = flag("pretty", given.first().map(String::as_str), &mut errors);
    if !errors.is_empty() {
        return invalid(errors);
    }
    if let Some(uri) = stripped {
        *request.uri_mut() = uri;
    }
    let response = next.run(request).await;
    if !pretty {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with(PROBLEM_JSON));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_INDENTED_BYTES).await else {
        return ApiError::Internal("an answer too large to indent".into()).into_response();
    };
    let indented = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|value| serde_json::to_vec_pretty(&value).ok());
    let body = indented.unwrap_or_else(|| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Ok(length) = HeaderValue::from_str(&body.len().to_string()) {
        parts.headers.insert(header::CONTENT_LENGTH, length);
    }
    Response::from_parts(parts, Body::from(body))
}

fn invalid(errors: Vec<FieldError>) -> Response {
    ApiError::InvalidQuery(errors).into_response()
}
