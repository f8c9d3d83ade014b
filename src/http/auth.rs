//! Who may do what: writes need `Authorization: Bearer <key>`; reads too when
//! ACCORDS_READ_AUTH is on. A key in the query string is never looked at.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::auth::{self, Caller, Scope};
use crate::error::ApiError;

/// Safe methods (GET, HEAD, OPTIONS, TRACE) read; TRACE is answered 405.
fn is_read(method: &Method) -> bool {
    method.is_safe()
}

/// Whether [`authenticate`] has anything to do: the request needs a key or
/// presents one. Embeds show the same data: closed when reads are.
pub fn concerns<B>(read_auth: bool, request: &axum::http::Request<B>) -> bool {
    let path = request.uri().path();
    let needs_key = (path.starts_with("/v1/") || path.starts_with("/embed/") || path == "/oembed")
        && (!is_read(request.method()) || (read_auth && request.method() != Method::OPTIONS));
    needs_key || request.headers().contains_key(header::AUTHORIZATION)
}

/// Checks the bearer key of every request that needs one and records the
/// caller for the handlers; a request that needs none passes untouched.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if !concerns(state.options.read_auth, &request) {
        return next.run(request).await;
    }
    let presented = request.headers().get(header::AUTHORIZATION).cloned();
    match caller(&state, presented.as_ref()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        // A bad key is refused even on a public read: it is a client bug worth showing.
        Err(error) => error.into_response(),
    }
}

async fn caller(
    state: &AppState,
    presented: Option<&axum::http::HeaderValue>,
) -> Result<Caller, ApiError> {
    let unauthorized =
        |why: &str| ApiError::Unauthorized(format!("{why}; send Authorization: Bearer <key>"));
    let value = presented.ok_or_else(|| unauthorized("this request needs an API key"))?;
    let text = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not readable"))?;
    let token = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .ok_or_else(|| unauthorized("the Authorization header is not a bearer key"))?
        .trim();
    let (id, secret) = auth::split(token).ok_or_else(|| unauthorized("the key is not valid"))?;
    let key = state
        .store
        .find_api_key(id)
        .await?
        .filter(|key| key.matches(secret))
        .ok_or_else(|| unauthorized("the key is not valid"))?;
    if !key.is_active(crate::domain::clock::now()) {
        return Err(unauthorized("the key is revoked or expired"));
    }
    Ok(Caller {
        name: key.name,
        scope: key.scope,
    })
}

/// The caller of a request that needs a key; the middleware already refused
/// requests without one, so a missing caller is answered 401 as well.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::Unauthorized(
                "this request needs an API key; send Authorization: Bearer <key>".into(),
            )
        })
    }
}

impl Caller {
    /// Bulk operations need the admin scope.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Admin => Ok(()),
            Scope::Write => Err(ApiError::Forbidden(format!(
                "the key {:?} has the write scope; this operation needs admin",
                self.name
            ))),
        }
    }
}
