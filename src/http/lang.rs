//! The language of an answer: `?lang=uk|en`, else `Accept-Language`, else
//! English. [`negotiate`] (outside everything else) decides it, takes
//! `lang` out of the query string so no handler need know of it, and labels
//! the answer (`Content-Language`, `Vary: Accept-Language`); [`localize`]
//! (inside the conditional-GET layer, so kept answers and their tags are per
//! language) shows display names in Ukrainian.

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::domain::FieldError;
use crate::domain::lang::{self, Lang};
use crate::error::ApiError;

/// The language a request asks for, and its URI without `lang`.
pub fn requested(headers: &HeaderMap, uri: &Uri) -> Result<(Lang, Option<Uri>), ApiError> {
    let (given, stripped) = super::extract::take_query_param(uri, "lang");
    let lang = match given.as_slice() {
        [] => headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map_or(Lang::En, Lang::from_accept_language),
        [one] => Lang::parse(one)
            .map_err(|message| ApiError::InvalidQuery(vec![FieldError::new("lang", message)]))?,
        _ => {
            return Err(ApiError::InvalidQuery(vec![FieldError::new(
                "lang",
                "may be given only once",
            )]));
        }
    };
    Ok((lang, stripped))
}

/// Decides the language (a `lang` that is neither `en` nor `uk` is a 400),
/// answers in it, and says so.
pub async fn negotiate(mut request: Request, next: Next) -> Response {
    let (lang, stripped) = match requested(request.headers(), request.uri()) {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    if let Some(uri) = stripped {
        *request.uri_mut() = uri;
    }
    request.extensions_mut().insert(lang);
    let mut response = lang::with_lang(lang, next.run(request)).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_LANGUAGE)
        .or_insert(HeaderValue::from_static(lang.as_str()));
    if !headers.contains_key(header::VARY) {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
        return response;
    }
    // Every Vary given inside (Accept, Accept-Encoding), as one list.
    let mut vary: Vec<String> = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    if !vary
        .iter()
        .any(|v| v.eq_ignore_ascii_case("accept-language"))
    {
        vary.push("Accept-Language".to_owned());
    }
    let vary = vary.join(", ");
    if let Ok(value) = HeaderValue::from_str(&vary) {
        headers.insert(header::VARY, value);
    }
    response
}

/// Reads whose JSON shows display names: agreements, partners, areas and
/// the timeline. Never the history or the export, which record data as written.
const LOCALIZED: &[&str] = &[
    "/v1/agreements",
    "/v1/agreements/{id}",
    "/v1/partners",
    "/v1/partners/{reference}",
    "/v1/partners/{reference}/agreements",
    "/v1/areas",
    "/v1/areas/{code}",
    "/v1/areas/{code}/agreements",
    "/v1/timeline",
];

/// The largest JSON answer rewritten (a page of 500 agreements stays well under it).
const MAX_LOCALIZED_BYTES: usize = 32 * 1024 * 1024;

/// Whether [`localize`] has anything to do: a read, in Ukrainian, of a
/// route that shows display names.
pub fn concerns<B>(request: &axum::http::Request<B>) -> bool {
    let lang = request
        .extensions()
        .get::<Lang>()
        .copied()
        .unwrap_or_default();
    let localized_route = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| LOCALIZED.contains(&p.as_str()));
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    lang != Lang::En && reads && localized_route
}

/// In Ukrainian, a JSON read shows `name_uk` as `name` and `title_uk` as
/// `title`; where there is none, the English stays and the object lists the
/// field in `untranslated`. Strong tags get a `-uk` suffix.
pub async fn localize(request: Request, next: Next) -> Response {
    let concerned = concerns(&request);
    let response = next.run(request).await;
    if !concerned || response.status() != StatusCode::OK {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let size = response.body().size_hint().exact();
    let (mut parts, body) = response.into_parts();
    if let Some(etag) = parts
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        && let Some(tag) = etag.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && let Ok(value) = HeaderValue::from_str(&format!("\"{tag}-uk\""))
    {
        parts.headers.insert(header::ETAG, value);
    }
    let whole = size.is_some_and(|s| s as usize <= MAX_LOCALIZED_BYTES);
    if !is_json || !whole {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_LOCALIZED_BYTES).await else {
        return ApiError::Internal("a rendered answer could not be read back".into())
            .into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    localize_names(&mut value);
    let pretty = bytes.starts_with(b"{\n");
    let text = if pretty {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    };
    let Ok(text) = text else {
        return ApiError::Internal("a localized answer could not be written".into())
            .into_response();
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}

/// Shows the Ukrainian name of every object that has one.
pub fn localize_names(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(localize_names),
        Value::Object(object) => {
            let mut untranslated = Vec::new();
            for (field, uk_field) in [("name", "name_uk"), ("title", "title_uk")] {
                if !object.contains_key(uk_field)
                    || !object.get(field).is_some_and(Value::is_string)
                {
                    continue;
                }
                match object
                    .get(uk_field)
                    .and_then(Value::as_str)
                    .filter(|t| !t.trim().is_empty())
                {
                    Some(uk) => {
                        let uk = uk.to_owned();
                        object.insert(field.into(), Value::String(uk));
                    }
                    None => untranslated.push(field),
                }
            }
            for child in object.values_mut() {
                localize_names(child);
            }
            if !untranslated.is_empty() {
                object.insert("untranslated".into(), json!(untranslated));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ukrainian_names_replace_english_ones_and_gaps_are_named() {
        let mut value = json!({"items": [
            {"title": "Accord", "title_uk": null, "partner": {"name": "Japan", "name_uk": "Японія"},
             "areas": [{"code": "demining", "name": "Demining", "name_uk": "Розмінування"}]},
        ]});
        localize_names(&mut value);
        let item = &value["items"][0];
        assert_eq!(item["title"], "Accord");
        assert_eq!(item["untranslated"], json!(["title"]));
        assert_eq!(item["partner"]["name"], "Японія");
        assert!(item["partner"].get("untranslated").is_none());
        assert_eq!(item["areas"][0]["name"], "Розмінування");
    }

    #[test]
    fn lang_leaves_the_query_and_picks_the_language() {
        let uri: Uri = "/v1/agreements?partner=jp&lang=uk&limit=2".parse().unwrap();
        let (lang, stripped) = requested(&HeaderMap::new(), &uri).unwrap();
        assert_eq!(lang, Lang::Uk);
        assert_eq!(
            stripped.unwrap().to_string(),
            "/v1/agreements?partner=jp&limit=2"
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("uk-UA"));
        let uri: Uri = "/v1/areas".parse().unwrap();
        assert_eq!(requested(&headers, &uri).unwrap(), (Lang::Uk, None));
        let uri: Uri = "/v1/areas?lang=de".parse().unwrap();
        assert!(requested(&headers, &uri).is_err());
    }
}
