//! /v1/rates: exchange rates against EUR — loaded in bulk (a CSV file in
//! the long or the ECB layout, or a JSON list), or one at a time — and the
//! annual averages that `?convert=` uses.

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{JsonBody, ListBody, RawBody, decode_cursor, parse_json};
use serde::Deserialize;
use utoipa::IntoParams;

use super::params::{
    CurrencyList, NoParams, PageLimit, Params, Text, integer, list_of, page_limit, read,
    split_list, value_schema,
};
use super::{created, single};
use crate::auth::Caller;
use crate::domain::FieldError;
use crate::domain::money::Currency;
use crate::domain::rates::{DailyRate, Rate, RatesFile, rate_date, rated_currency};
use crate::error::{ApiError, ApiResult};
use crate::store::{AnnualFilter, PageRequest, RateFilter, RateWrite, StoreError};
use crate::wire::rate::{RateItemBody, RatesBody};

/// Reading and single-rate writes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(annual))
        .routes(routes!(show, replace, remove))
}

/// Bulk loading, under the larger body limit of imports.
pub fn bulk_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(load))
}

value_schema!(RateYear, integer(1999, 2200));
value_schema!(RateYears, list_of(integer(1999, 2200)));

/// The daily rates asked for, a page at a time.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RateParams {
    /// Only these currencies
    #[param(value_type = Option<CurrencyList>, inline, style = Form, explode = false)]
    #[serde(default)]
    currency: Vec<String>,
    /// Only this year
    #[param(value_type = Option<RateYear>, inline)]
    year: Option<String>,
    /// Rates per page (default 50)
    #[param(value_type = Option<PageLimit>, inline)]
    limit: Option<String>,
    /// The next_cursor of the previous page
    #[param(value_type = Option<Text>, inline)]
    cursor: Option<String>,
}

/// The annual averages asked for.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AnnualRateParams {
    /// Only these currencies
    #[param(value_type = Option<CurrencyList>, inline, style = Form, explode = false)]
    #[serde(default)]
    currency: Vec<String>,
    /// Only these years
    #[param(value_type = Option<RateYears>, inline, style = Form, explode = false)]
    #[serde(default)]
    year: Vec<String>,
}

/// `currency=USD,JPY` (or repeated): rated currencies, each checked.
fn currencies(given: &[String], errors: &mut Vec<FieldError>) -> Vec<Currency> {
    // `currency=,` or `currency=USD,` names a currency that is not there.
    if given
        .iter()
        .any(|value| value.split(',').any(|item| item.trim().is_empty()))
    {
        errors.push(FieldError::new(
            "currency",
            "lists an empty item: give ISO 4217 codes separated by commas",
        ));
    }
    split_list(given)
        .into_iter()
        .filter_map(|text| match rated_currency(text) {
            Ok(currency) => Some(currency),
            Err(message) => {
                errors.push(FieldError::new("currency", message));
                None
            }
        })
        .collect()
}

fn year(text: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    match text.parse::<i64>() {
        Ok(year) if (1999..=2200).contains(&year) => Some(year),
        _ => {
            errors.push(FieldError::new(
                "year",
                format!("{text:?} must be a year such as 2024 (from 1999)"),
            ));
            None
        }
    }
}

/// GET /v1/rates?currency=&year=&limit=&cursor=: daily rates by currency and
/// date, keyset-paged.
#[utoipa::path(get, path = "/v1/rates", tag = "rates", params(RateParams),
    responses((status = 200, description = "Daily rates against EUR, by currency and date", body = crate::http::openapi::RatePage)))]
async fn list(
    State(state): State<AppState>,
    Params(params): Params<RateParams>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let currencies = currencies(&params.currency, &mut errors);
    let year = params.year.as_deref().and_then(|t| year(t, &mut errors));
    let limit = page_limit(params.limit.as_deref(), &mut errors);
    let after = params
        .cursor
        .as_deref()
        .and_then(|cursor| match decode_cursor(cursor) {
            Ok(key) => Some(key),
            Err(_) => {
                errors.push(FieldError::new(
                    "cursor",
                    "is not one this service gave out; start again without it",
                ));
                None
            }
        });
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let page = state
        .store
        .list_rates(
            &RateFilter { currencies, year },
            &PageRequest { after, limit },
        )
        .await
        .map_err(|e| match e {
            StoreError::Invalid(errors) => ApiError::InvalidQuery(errors),
            other => other.into(),
        })?;
    Ok(axum::Json(ListBody::from(page)).into_response())
}

/// GET /v1/rates/annual?currency=&year=: the averages conversion uses, with
/// how many days each rests on and its first and last date.
/// The annual averages conversions use.
#[utoipa::path(get, path = "/v1/rates/annual", tag = "rates", params(AnnualRateParams),
    responses((status = 200, description = "Annual averages per currency and year", body = crate::http::openapi::AnnualRatePage)))]
async fn annual(
    State(state): State<AppState>,
    Params(params): Params<AnnualRateParams>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let currencies = currencies(&params.currency, &mut errors);
    let years: Vec<i64> = split_list(&params.year)
        .into_iter()
        .filter_map(|t| year(t, &mut errors))
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let annual = state
        .store
        .annual_rates(&AnnualFilter {
            currencies,
            years: (!years.is_empty()).then_some(years),
        })
        .await?;
    Ok(axum::Json(json!({"items": annual.items, "next_cursor": null, "revision": super::extract::answering_revision()})).into_response())
}

/// The rate a path names; a path that cannot name one is a 404.
fn path_rate(currency: &str, date: &str) -> ApiResult<(Currency, chrono::NaiveDate)> {
    let not_found = || ApiError::not_found(format!("no rate of {currency:?} on {date:?}"));
    let currency = rated_currency(currency).map_err(|_| not_found())?;
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| not_found())?;
    Ok((currency, date))
}

fn location(rate: &DailyRate) -> String {
    format!("/v1/rates/{}/{}", rate.currency.as_str(), rate.date)
}

#[utoipa::path(get, path = "/v1/rates/{currency}/{date}", tag = "rates", params(("currency" = String, Path, description = "An ISO 4217 code other than EUR"), ("date" = String, Path, description = "The day, YYYY-MM-DD")),
    responses((status = 200, description = "One day's rate", body = crate::domain::rates::DailyRate)))]
async fn show(
    State(state): State<AppState>,
    uri: Uri,
    Path((currency, date)): Path<(String, String)>,
) -> ApiResult<Response> {
    read::<NoParams>(uri.query())?;
    let (code, day) = path_rate(&currency, &date)?;
    let rate = state
        .store
        .get_rate(&code, day)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no {} rate on {day}", code.as_str())))?;
    Ok(axum::Json(rate).into_response())
}

/// PUT /v1/rates/{currency}/{date} `{"rate": "1.0823"}`: creates (201) or
/// replaces (200) one rate. The body may repeat the path's currency and date.
#[utoipa::path(put, path = "/v1/rates/{currency}/{date}", tag = "rates", params(("currency" = String, Path, description = "An ISO 4217 code other than EUR"), ("date" = String, Path, description = "The day, YYYY-MM-DD")),
    request_body(content = crate::http::openapi::RateBody, description = "The rate: units of the currency per 1 EUR"),
    responses(
        (status = 200, description = "Replaced", body = crate::domain::rates::DailyRate),
        (status = 201, description = "Created", body = crate::domain::rates::DailyRate, headers(("Location" = String, description = "Its URL"))),
    ))]
async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path((currency, date)): Path<(String, String)>,
    JsonBody(body): JsonBody<RateItemBody>,
) -> ApiResult<Response> {
    read::<NoParams>(uri.query())?;
    let mut errors = Vec::new();
    let code = rated_currency(&currency)
        .map_err(|m| errors.push(FieldError::new("currency", format!("(in the path) {m}"))))
        .ok();
    let day = rate_date(&date).ok().or_else(|| {
        errors.push(FieldError::new(
            "date",
            format!("(in the path) {date:?} is not a valid date (YYYY-MM-DD, from 1999)"),
        ));
        None
    });
    let same =
        |given: &Option<Value>, name: &str, path: Option<String>, errors: &mut Vec<FieldError>| {
            match (given, path) {
                (None | Some(Value::Null), _) | (_, None) => {}
                (Some(Value::String(text)), Some(path)) if text.eq_ignore_ascii_case(&path) => {}
                (Some(_), Some(path)) => errors.push(FieldError::new(
                    name,
                    format!("must be {path} (as in the path) or left out"),
                )),
            }
        };
    same(
        &body.currency,
        "currency",
        code.as_ref().map(|c| c.as_str().to_owned()),
        &mut errors,
    );
    same(&body.date, "date", day.map(|d| d.to_string()), &mut errors);
    let rate = match &body.rate {
        Some(Value::String(text)) => Rate::parse(text)
            .map_err(|m| errors.push(FieldError::new("rate", m)))
            .ok(),
        None | Some(Value::Null) => {
            errors.push(FieldError::new("rate", "is required"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                "rate",
                "must be a string (rates are decimal strings such as \"1.0823\", never JSON numbers)",
            ));
            None
        }
    };
    let (Some(currency), Some(date), Some(rate)) = (code, day, rate) else {
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let daily = DailyRate {
        currency,
        date,
        rate,
    };
    let written = state.store.put_rate(&caller.name, &daily).await?;
    let mut response = match written {
        RateWrite::Created => created(&location(&daily), &daily, 1),
        RateWrite::Updated | RateWrite::Unchanged => single(&daily, 1),
    };
    // Rates have no versions: no ETag to send back in If-Match.
    response.headers_mut().remove(axum::http::header::ETAG);
    Ok(response)
}

#[utoipa::path(delete, path = "/v1/rates/{currency}/{date}", tag = "rates", params(("currency" = String, Path, description = "An ISO 4217 code other than EUR"), ("date" = String, Path, description = "The day, YYYY-MM-DD")),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path((currency, date)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    read::<NoParams>(uri.query())?;
    let (code, day) = path_rate(&currency, &date)?;
    state
        .store
        .delete_rate(&caller.name, &code, day)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => {
                ApiError::not_found(format!("no {} rate on {day}", code.as_str()))
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// What kind of body a bulk load is.
enum BodyKind {
    Csv,
    Json,
}

fn body_kind(headers: &HeaderMap) -> ApiResult<BodyKind> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut parts = content_type.split(';').map(str::trim);
    let essence = parts.next().unwrap_or("");
    let charset = parts
        .filter_map(|p| p.strip_prefix("charset="))
        .map(|c| c.trim_matches('"'))
        .next();
    match essence {
        "text/csv" | "application/csv" => match charset {
            None | Some("utf-8") | Some("utf8") | Some("us-ascii") => Ok(BodyKind::Csv),
            Some(other) => Err(ApiError::UnsupportedMediaType(format!(
                "send the CSV as UTF-8, not {other}"
            ))),
        },
        "application/json" => Ok(BodyKind::Json),
        e if e.starts_with("application/") && e.ends_with("+json") => Ok(BodyKind::Json),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "send rates as text/csv (date,currency,rate or the ECB layout) or application/json ({{\"items\": [...]}}), not {:?}",
            if content_type.is_empty() {
                "no Content-Type"
            } else {
                content_type.as_str()
            }
        ))),
    }
}

/// POST /v1/rates: a CSV file (`text/csv`, either layout) or `{"items":
/// [...]}`; upserts all or nothing and answers what it did. Every error is
/// listed (`line 12, column rate`), and then nothing is written.
#[utoipa::path(post, path = "/v1/rates", tag = "rates",
    request_body(description = "Rates as CSV (date,currency,rate or the ECB's wide layout) or JSON",
        content((String = "text/csv"), (crate::http::openapi::RateItems = "application/json"))),
    responses((status = 200, description = "What was loaded", body = Object)))]
async fn load(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    read::<NoParams>(uri.query())?;
    let kind = body_kind(&headers)?;
    // Up to the rates body limit of parsing: CPU work, off the async workers.
    let parse = move || match kind {
        BodyKind::Csv => RatesFile::parse_csv(&body).map_err(|errors| {
            ApiError::InvalidBody(errors.iter().map(|e| e.field_error()).collect())
        }),
        BodyKind::Json => {
            let items: RatesBody = parse_json(&body).map_err(|e| match e {
                ApiError::Validation(errors) => ApiError::InvalidBody(errors),
                other => other,
            })?;
            items.parse().map_err(ApiError::InvalidBody)
        }
    };
    let file = tokio::task::spawn_blocking(parse)
        .await
        .map_err(|e| ApiError::Internal(format!("parsing rates failed: {e}")))??;
    let summary = state.store.load_rates(&caller.name, &file.rates).await?;
    let (currencies, first, last) = file.extent();
    Ok(axum::Json(json!({
        "rates": file.rates.len(),
        "created": summary.created,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "currencies": currencies,
        "first_date": first,
        "last_date": last,
        "skipped": file.skipped,
    }))
    .into_response())
}
