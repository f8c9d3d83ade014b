//! Extractors whose rejections are our problem documents, so a malformed body
//! or query gets a clear 4xx, never axum's plain-text default.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::FieldError;
use crate::error::ApiError;
use crate::store::{Page, PageRequest};

/// A JSON request body: `application/json`, `application/merge-patch+json`
/// or any other `+json` type; anything else is a 415.
pub struct JsonBody<T>(pub T);

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A JSON body, or a 415 saying how to send one.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if is_json(content_type) {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "send the body as application/json (or application/merge-patch+json for PATCH), not {:?}",
        if content_type.is_empty() {
            "no Content-Type"
        } else {
            content_type
        }
    )))
}

/// A JSON request body read but not yet parsed, for bodies large enough
/// that parsing belongs off the async workers.
pub struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        require_json(request.headers())?;
        Bytes::from_request(request, state)
            .await
            .map(JsonBytes)
            .map_err(body_read_error)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBytes(bytes) = JsonBytes::from_request(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A request body of any type, read whole within the route's limit, with
/// the same 413/408/400 problems as a JSON body.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(body_read_error)
    }
}

/// Why a body could not be read: too large (413), too slow (408), or cut off (400).
pub fn body_read_error(rejection: BytesRejection) -> ApiError {
    match rejection {
        BytesRejection::FailedToBufferBody(inner)
            if inner.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::PayloadTooLarge("the request body is larger than the configured limit".into())
        }
        other => body_stream_error(&other),
    }
}

/// A body that stopped arriving (408) or broke off (400).
pub fn body_stream_error(error: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::RequestTimeout;
        }
        cause = error.source();
    }
    ApiError::BadRequest(format!("could not read the request body: {error}"))
}

/// Parses JSON text: a syntax error is a 400, a value of the wrong shape a 422
/// naming the field (`pledges[0].amount`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut *deserializer);
    let value = result.map_err(|e| {
        let inner = e.inner();
        if inner.is_data() {
            ApiError::Validation(vec![field_error(e.path().to_string(), inner)])
        } else {
            ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
        }
    })?;
    // Exactly one JSON value: `{...}}}` is a broken client, not a body.
    deserializer.end().map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be exactly one JSON value; found more after it: {e}"
        ))
    })?;
    Ok(value)
}

/// Deserialises a document built in the service (a merged PATCH) with the
/// same field-naming errors as a body.
pub fn from_document<T: DeserializeOwned>(document: Value) -> Result<T, ApiError> {
    let result: Result<T, _> = serde_path_to_error::deserialize(document);
    result.map_err(|e| ApiError::Validation(vec![field_error(e.path().to_string(), e.inner())]))
}

fn field_error(path: String, error: &impl std::fmt::Display) -> FieldError {
    let field = if path == "." { String::new() } else { path };
    // serde_json appends " at line L column C", which is noise for a field error.
    let message = error.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    FieldError::new(field, message)
}

/// The body a PATCH amounts to: the resource's current draft with the merge
/// patch applied, read as if the client had sent it whole.
pub fn patched<B: DeserializeOwned>(
    current: &impl serde::Serialize,
    patch: &Value,
) -> Result<B, ApiError> {
    let mut document =
        serde_json::to_value(current).map_err(|e| ApiError::Internal(e.to_string()))?;
    merge_patch(&mut document, patch);
    // Removing a member the record never had still names a member: the body
    // must know it (an unknown one is refused, never silently ignored).
    if let (Value::Object(members), Value::Object(patch_members)) = (&mut document, patch) {
        for (key, value) in patch_members {
            if value.is_null() && !members.contains_key(key) {
                members.insert(key.clone(), Value::Null);
            }
        }
    }
    from_document(document)
}

/// RFC 7396 JSON merge patch: objects merge member by member, `null`
/// removes a member, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(members) = target {
        for (key, value) in patch_members {
            if value.is_null() {
                members.remove(key);
            } else {
                merge_patch(members.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The `If-Match` precondition of a change (RFC 9110, strong comparison:
/// a weak tag never matches).
#[derive(Debug, Clone, PartialEq)]
pub enum IfMatch {
    Absent,
    Any,
    Versions(Vec<i64>),
}

impl FromRequestParts<super::AppState> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &super::AppState,
    ) -> Result<Self, ApiError> {
        let mut tags = Vec::new();
        for value in parts.headers.get_all(axum::http::header::IF_MATCH) {
            let text = value
                .to_str()
                .map_err(|_| ApiError::BadRequest("If-Match is not readable text".into()))?;
            tags.extend(
                text.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            );
        }
        if tags.is_empty() {
            return if state.options.require_if_match {
                Err(ApiError::PreconditionRequired)
            } else {
                Ok(IfMatch::Absent)
            };
        }
        if tags.iter().any(|t| t == "*") {
            return Ok(IfMatch::Any);
        }
        let versions = tags
            .iter()
            // The Ukrainian view of a version ("3-uk") names the same version.
            .filter_map(|t| {
                let tag = t.strip_prefix('"')?.strip_suffix('"')?;
                tag.strip_suffix("-uk").unwrap_or(tag).parse::<i64>().ok()
            })
            .collect();
        Ok(IfMatch::Versions(versions))
    }
}

impl IfMatch {
    /// A `version` sent in a write body (as a GET answered it) is a
    /// precondition exactly like If-Match: the change applies only to that
    /// version. With both, both must hold.
    pub fn with_body_version(self, version: Option<i64>) -> IfMatch {
        match (self, version) {
            (condition, None) => condition,
            (IfMatch::Absent | IfMatch::Any, Some(version)) => IfMatch::Versions(vec![version]),
            (IfMatch::Versions(versions), Some(version)) => {
                IfMatch::Versions(versions.into_iter().filter(|v| *v == version).collect())
            }
        }
    }

    /// [`Self::with_body_version`] for a merge patch: its `version` member,
    /// which must be a whole number (or null, meaning none).
    pub fn with_patch_version(self, patch: &Value) -> Result<IfMatch, ApiError> {
        let version = match patch.get("version") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_i64().ok_or_else(|| {
                ApiError::Validation(vec![FieldError::new(
                    "version",
                    "must be a whole number: the version you edited, as in its ETag",
                )])
            })?),
        };
        Ok(self.with_body_version(version))
    }

    /// The version a change must be based on, given the current one: None
    /// for an unconditional change, 412 when the precondition already fails.
    pub fn expected(&self, current: i64) -> Result<Option<i64>, ApiError> {
        match self {
            IfMatch::Absent => Ok(None),
            IfMatch::Any => Ok(Some(current)),
            IfMatch::Versions(versions) if versions.contains(&current) => Ok(Some(current)),
            IfMatch::Versions(_) => Err(ApiError::PreconditionFailed { current }),
        }
    }

    /// A store conflict means: with If-Match, the precondition failed (412);
    /// without, another writer got in between (retried by PATCH).
    pub fn on_error(&self, error: crate::store::StoreError) -> ApiError {
        match (self, error) {
            (IfMatch::Absent, error) => error.into(),
            (_, crate::store::StoreError::VersionMismatch { current }) => {
                ApiError::PreconditionFailed { current }
            }
            (_, error) => error.into(),
        }
    }
}

/// `?limit=&cursor=` on every list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// The next_cursor of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn page_request(&self) -> Result<PageRequest, ApiError> {
        let mut errors = Vec::new();
        let limit = super::params::page_limit(self.limit.as_deref(), &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::InvalidQuery(errors));
        }
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(PageRequest { after, limit })
    }
}

/// Cursors are opaque to clients: the hex of the last key seen, behind a
/// version tag so their form can change later.
pub fn encode_cursor(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("c1{hex}")
}

pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::BadRequest(
            "cursor is not one this service gave out; start again without it".into(),
        )
    };
    let hex = cursor.strip_prefix("c1").ok_or_else(invalid)?;
    if hex.len() % 2 != 0 || hex.len() > 1024 {
        return Err(invalid());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    let key = String::from_utf8(bytes).map_err(|_| invalid())?;
    // Keys this service gives out never hold control characters (and
    // PostgreSQL cannot even compare text holding a NUL).
    if key.chars().any(char::is_control) {
        return Err(invalid());
    }
    Ok(key)
}

/// The list envelope: `{"items": [...], "next_cursor": null | "...",
/// "revision": N}`, N the store revision the page reflects.
#[derive(serde::Serialize)]
pub struct ListBody<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
    pub revision: Option<i64>,
}

impl<T> ListBody<T> {
    /// Items that are the whole list (no next page), at the revision being answered.
    pub fn whole(items: Vec<T>) -> Self {
        ListBody {
            items,
            next_cursor: None,
            revision: answering_revision(),
        }
    }
}

impl<T> From<Page<T>> for ListBody<T> {
    fn from(page: Page<T>) -> Self {
        ListBody {
            items: page.items,
            next_cursor: page.next_after.as_deref().map(encode_cursor),
            revision: answering_revision(),
        }
    }
}

tokio::task_local! {
    /// The store revision the read being answered reflects (set by the
    /// conditional-GET layer, which read it), for the bodies that name it.
    static ANSWERING: i64;
}

/// Answers the read `work` at `revision`.
pub async fn answering_at<F: std::future::Future>(revision: i64, work: F) -> F::Output {
    ANSWERING.scope(revision, work).await
}

/// The revision the read being answered reflects; None outside one.
pub fn answering_revision() -> Option<i64> {
    ANSWERING.try_with(|revision| *revision).ok()
}

/// An RFC 3339 timestamp, or a date meaning its first instant (UTC): how a
/// query names a moment (`since=2026-12-01T10:00:00Z`, `since=2026-12-01`).
pub fn parse_instant(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// Takes every `name=` off a query: the values given, and the URI without
/// them (None when it had none). For parameters that layers answer for every
/// route (`lang`, `pretty`), so no handler's parser sees them.
pub fn take_query_param(
    uri: &axum::http::Uri,
    name: &str,
) -> (Vec<String>, Option<axum::http::Uri>) {
    let query = uri.query().unwrap_or("");
    // Every request passes here twice (lang, pretty): most name neither.
    if !query.contains(name) && !query.contains('%') {
        return (Vec::new(), None);
    }
    let mut given: Vec<String> = Vec::new();
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match form_urlencoded::parse(pair.as_bytes()).next() {
            Some((key, value)) if key == name => given.push(value.into_owned()),
            _ => kept.push(pair),
        }
    }
    if given.is_empty() {
        return (given, None);
    }
    let mut path_and_query = uri.path().to_owned();
    if !kept.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(&kept.join("&"));
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    (given, axum::http::Uri::from_parts(parts).ok())
}

/// Parses an id from the path; a malformed one cannot exist, so it is a 404.
pub fn path_id(id: &str) -> crate::error::ApiResult<String> {
    crate::domain::agreement::agreement_id(id)
        .map_err(|_| crate::error::ApiError::not_found(format!("no agreement {id:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": [1, 2]});
        merge_patch(&mut doc, &json!({"a": [3]}));
        assert_eq!(doc, json!({"a": [3]}));
    }

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let cursor = encode_cursor("ua-jp-2024");
        assert_eq!(decode_cursor(&cursor).unwrap(), "ua-jp-2024");
        assert!(decode_cursor("garbage").is_err());
        assert!(decode_cursor("c1zz").is_err());
        assert!(decode_cursor("c1f").is_err());
        assert!(decode_cursor("c1610062").is_err(), "a NUL inside");
    }

    #[test]
    fn a_body_is_exactly_one_json_value() {
        assert!(parse_json::<Value>(br#"{"a": 1}"#).is_ok());
        assert!(parse_json::<Value>(b"{\"a\": 1}  \n").is_ok());
        assert!(matches!(
            parse_json::<Value>(br#"{"a": 1}}}"#),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Value>(br#"{"a": 1} {"b": 2}"#),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }
}
