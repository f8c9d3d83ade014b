//! One error type for the whole API, rendered as RFC 9457 problem details
//! (`application/problem+json`). Causes of 5xx answers are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::FieldError;
use crate::store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

tokio::task_local! {
    /// The id of the request being answered: every problem body carries it,
    /// written once, where the body is rendered.
    static REQUEST_ID: String;
}

/// Runs `work` (the answering of one request) with its request id known to
/// every problem rendered in it.
pub async fn with_request_id<F: std::future::Future>(id: String, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// Query parameters that cannot be used, each named.
    #[error("invalid query parameters")]
    InvalidQuery(Vec<FieldError>),
    /// A body with problems at several places (a rates file's lines), each
    /// listed; nothing was written.
    #[error("the request body has errors")]
    InvalidBody(Vec<FieldError>),
    #[error("{detail}")]
    NotFound {
        detail: String,
        /// Extra members of the problem, such as the closest matches.
        extensions: Option<Value>,
    },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("the resource has changed: its current version is {current}")]
    VersionConflict { current: i64 },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body is not valid")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A missing or invalid key: 401 with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid key without the scope this needs.
    #[error("{0}")]
    Forbidden(String),
    /// An If-Match that no longer matches: nothing was changed.
    #[error(
        "the resource has changed since the version in If-Match: its current version is {current}"
    )]
    PreconditionFailed { current: i64 },
    /// This instance requires If-Match on changes to existing resources.
    #[error("send If-Match with the ETag of the version you edited")]
    PreconditionRequired,
    /// The client's rate limit is used up; retry after this many seconds.
    #[error("too many requests: retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("the request took too long and was abandoned")]
    RequestTimeout,
    #[error("the store is unavailable")]
    Unavailable(String),
    /// The service holds as many of something as it may (connections,
    /// event streams): 503 with Retry-After.
    #[error("{0}")]
    Overloaded(String),
    #[error("the store is full")]
    InsufficientStorage,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound {
            detail: detail.into(),
            extensions: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidQuery(_) | Self::InvalidBody(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) | Self::VersionConflict { .. } => StatusCode::CONFLICT,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable(_) | Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem `type`: a stable URN per kind of problem, listed in the README.
    fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) | Self::InvalidBody(_) => "urn:accords:problem:bad-request",
            Self::InvalidQuery(_) => "urn:accords:problem:invalid-query",
            Self::NotFound { .. } => "urn:accords:problem:not-found",
            Self::MethodNotAllowed => "urn:accords:problem:method-not-allowed",
            Self::Conflict(_) => "urn:accords:problem:conflict",
            Self::VersionConflict { .. } => "urn:accords:problem:version-conflict",
            Self::UnsupportedMediaType(_) => "urn:accords:problem:unsupported-media-type",
            Self::Validation(_) => "urn:accords:problem:validation",
            Self::PayloadTooLarge(_) => "urn:accords:problem:payload-too-large",
            Self::Unauthorized(_) => "urn:accords:problem:unauthorized",
            Self::Forbidden(_) => "urn:accords:problem:forbidden",
            Self::PreconditionFailed { .. } => "urn:accords:problem:precondition-failed",
            Self::PreconditionRequired => "urn:accords:problem:precondition-required",
            Self::TooManyRequests { .. } => "urn:accords:problem:too-many-requests",
            Self::RequestTimeout => "urn:accords:problem:request-timeout",
            Self::Unavailable(_) => "urn:accords:problem:unavailable",
            Self::Overloaded(_) => "urn:accords:problem:overloaded",
            Self::InsufficientStorage => "urn:accords:problem:insufficient-storage",
            Self::Internal(_) => "urn:accords:problem:internal",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Validation(errors) => {
                format!("{} field(s) are not valid; see errors", errors.len())
            }
            Self::InvalidBody(errors) => format!(
                "{} error(s) in the body; nothing was written; see errors",
                errors.len()
            ),
            Self::InvalidQuery(errors) => {
                let named: Vec<String> = errors
                    .iter()
                    .take(MAX_LISTED_ERRORS)
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect();
                let more = errors.len().saturating_sub(MAX_LISTED_ERRORS);
                let more = if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                };
                format!("invalid query parameters: {}{more}", named.join("; "))
            }
            Self::MethodNotAllowed => {
                "this method is not allowed on this resource; see the Allow header".into()
            }
            Self::Unavailable(_) => "the store cannot be reached right now; retry shortly".into(),
            Self::InsufficientStorage => {
                "the store has no room left for this write; nothing was changed".into()
            }
            Self::Internal(_) => "an unexpected error occurred; it has been logged".into(),
            other => other.to_string(),
        }
    }
}

/// A problem lists at most this many errors, and its detail is cut at
/// [`MAX_DETAIL_CHARS`]: a request with 30,000 bad parameters gets a short
/// answer that says how many there were, not a body as big as its request.
pub const MAX_LISTED_ERRORS: usize = 2_000;
pub const MAX_DETAIL_CHARS: usize = 2_000;

fn truncated(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_DETAIL_CHARS) {
        text.truncate(cut);
        text.push_str("… (truncated)");
    }
    text
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Internal(cause) => tracing::error!(%cause, "request failed"),
            Self::Unavailable(cause) => tracing::warn!(%cause, "store unavailable"),
            _ => {}
        }
        // In the request's language where a translation exists; what stays
        // in English is named in `untranslated`.
        let lang = crate::domain::lang::current();
        let english = self.detail();
        let detail = lang.problem_detail(&english);
        let problem = Problem {
            kind: self.kind(),
            title: lang.problem_title(
                status.as_u16(),
                status.canonical_reason().unwrap_or("Error"),
            ),
            status: status.as_u16(),
            detail: truncated(detail.clone().unwrap_or(english)),
            errors: match &self {
                Self::Validation(errors)
                | Self::InvalidQuery(errors)
                | Self::InvalidBody(errors) => Some(&errors[..errors.len().min(MAX_LISTED_ERRORS)]),
                _ => None,
            },
        };
        let mut body = serde_json::to_value(&problem).unwrap_or_else(|_| json!({}));
        if let (Ok(id), Some(object)) = (REQUEST_ID.try_with(Clone::clone), body.as_object_mut()) {
            object.insert("request_id".into(), json!(id));
        }
        if let (crate::domain::lang::Lang::Uk, Some(object)) = (lang, body.as_object_mut()) {
            let mut untranslated = Vec::new();
            if detail.is_none() {
                untranslated.push("detail");
            }
            if object.contains_key("errors") {
                untranslated.push("errors");
            }
            if !untranslated.is_empty() {
                object.insert("untranslated".into(), json!(untranslated));
            }
        }
        match (&self, body.as_object_mut()) {
            (
                Self::NotFound {
                    extensions: Some(Value::Object(extra)),
                    ..
                },
                Some(object),
            ) => {
                object.extend(extra.clone());
            }
            (
                Self::Validation(errors) | Self::InvalidQuery(errors) | Self::InvalidBody(errors),
                Some(object),
            ) => {
                // A mistyped reference's suggestions also at the top, where
                // the 404 for the same reference has them.
                let closest: Vec<&crate::domain::Suggestion> =
                    errors.iter().flat_map(|e| &e.closest_matches).collect();
                if !closest.is_empty() {
                    object.insert("closest_matches".into(), json!(closest));
                }
            }
            (
                Self::VersionConflict { current } | Self::PreconditionFailed { current },
                Some(object),
            ) => {
                object.insert("current_version".into(), json!(current));
            }
            _ => {}
        }
        let mut response = (status, body.to_string()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        let headers = response.headers_mut();
        match &self {
            Self::Unavailable(_) | Self::Overloaded(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::TooManyRequests { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"accords\""),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::not_found("no such resource"),
            StoreError::VersionMismatch { current } => Self::VersionConflict { current },
            StoreError::Conflict(message) => Self::Conflict(message),
            StoreError::Invalid(errors) => Self::Validation(errors),
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            StoreError::Full => Self::InsufficientStorage,
            StoreError::Internal(cause) => Self::Internal(cause),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn problem_bodies_are_bounded_whatever_they_report() {
        let errors: Vec<FieldError> = (0..5_000)
            .map(|i| FieldError::new(format!("p{i}{}", "x".repeat(1_000)), "is not a parameter"))
            .collect();
        let response = ApiError::InvalidQuery(errors).into_response();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["errors"].as_array().unwrap().len(), MAX_LISTED_ERRORS);
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.ends_with("… (truncated)"), "{detail}");
        assert!(detail.chars().count() <= MAX_DETAIL_CHARS + 20);
        // A field name quoted from the request is cut too.
        let field = body["errors"][0]["field"].as_str().unwrap();
        assert!(field.chars().count() <= 301, "{}", field.len());
    }
}
