//! Aggregates for charts: exact pledge totals per currency and agreement
//! counts, grouped, under the same filters as the lists; and the timeline.

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::AppState;
use super::query::{FILTERS, QueryString, agreement_query, encode_list_cursor, paging};
use crate::domain::FieldError;
use crate::domain::Vocabulary;
use crate::domain::money::Amount;
use crate::domain::query::{AgreementGroup, GroupValue, PledgeGroup, Sort, SortKey};
use crate::error::{ApiError, ApiResult};
use crate::store::PageRequest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/stats/pledges", get(pledges))
        .route("/v1/stats/agreements", get(agreements))
        .route("/v1/timeline", get(timeline))
}

/// One or two distinct groups from `group_by`.
fn groups<G: Vocabulary + PartialEq>(query: &QueryString, errors: &mut Vec<FieldError>) -> Vec<G> {
    let names = query.list("group_by");
    if names.is_empty() || names.len() > 2 {
        let all: Vec<&str> = G::ALL.iter().map(|g| g.as_str()).collect();
        errors.push(FieldError::new(
            "group_by",
            format!("needs one or two of: {}", all.join(", ")),
        ));
        return Vec::new();
    }
    let mut chosen: Vec<G> = Vec::new();
    for name in names {
        match G::parse(name) {
            Ok(group) if chosen.contains(&group) => errors.push(FieldError::new(
                "group_by",
                format!("{name:?} is named twice"),
            )),
            Ok(group) => chosen.push(group),
            Err(message) => errors.push(FieldError::new("group_by", format!("{name:?} {message}"))),
        }
    }
    chosen
}

fn group_json(value: &GroupValue) -> Value {
    match value {
        GroupValue::Text(text) => json!(text),
        GroupValue::Year(year) => json!(year),
    }
}

async fn pledges(State(state): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let raw = QueryString::parse(uri.query(), &[FILTERS, &["group_by"]])?;
    let query = agreement_query(state.store.as_ref(), &raw).await?;
    let mut errors = Vec::new();
    let groups: Vec<PledgeGroup> = groups(&raw, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let totals = state.store.pledge_totals(&query, &groups).await?;
    let items: Vec<Value> = totals
        .iter()
        .map(|total| {
            let mut item = Map::new();
            for (group, value) in groups.iter().zip(&total.groups) {
                item.insert(group.as_str().into(), group_json(value));
            }
            item.insert("currency".into(), json!(total.currency));
            // Totals are positive sums of positive amounts; the fallback only guards the type.
            let exact = Amount::from_minor_units(total.total_minor).map_or_else(
                |_| rust_decimal::Decimal::new(total.total_minor, 2).to_string(),
                |a| a.to_string(),
            );
            item.insert("total".into(), json!(exact));
            item.insert("count".into(), json!(total.count));
            Value::Object(item)
        })
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

async fn agreements(State(state): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let raw = QueryString::parse(uri.query(), &[FILTERS, &["group_by"]])?;
    let query = agreement_query(state.store.as_ref(), &raw).await?;
    let mut errors = Vec::new();
    let groups: Vec<AgreementGroup> = groups(&raw, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let counts = state.store.agreement_counts(&query, &groups).await?;
    let items: Vec<Value> = counts
        .iter()
        .map(|count| {
            let mut item = Map::new();
            for (group, value) in groups.iter().zip(&count.groups) {
                item.insert(group.as_str().into(), group_json(value));
            }
            item.insert("count".into(), json!(count.count));
            Value::Object(item)
        })
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

/// Signings and the pledges made with them, as dated events, newest first.
/// Pages are of agreements: `limit` counts signings, each followed by its pledges.
async fn timeline(State(state): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let raw = QueryString::parse(uri.query(), &[FILTERS, &["limit", "cursor"]])?;
    let mut query = agreement_query(state.store.as_ref(), &raw).await?;
    query.sort = Sort {
        key: SortKey::SignedOn,
        descending: true,
    };
    // An agreement still being negotiated has no date to place it on.
    query.signed_from = query
        .signed_from
        .max(chrono::NaiveDate::from_ymd_opt(1900, 1, 1));
    let mut errors = Vec::new();
    let paging = paging(&raw, query.sort, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let page = state
        .store
        .list_agreements(
            &query,
            &PageRequest {
                after: paging.after,
                limit: paging.limit,
            },
        )
        .await?;
    let mut items = Vec::new();
    for agreement in &page.items {
        let partner = json!({"code": agreement.partner.code, "name": agreement.partner.name});
        items.push(json!({
            "date": agreement.signed_on, "type": "signed", "agreement_id": agreement.id,
            "partner": partner, "title": agreement.title, "status": agreement.status,
            "sources": agreement.sources.iter().map(|s| &s.url).collect::<Vec<_>>(),
        }));
        for pledge in &agreement.pledges {
            items.push(json!({
                "date": agreement.signed_on, "type": "pledge", "agreement_id": agreement.id,
                "pledge_id": pledge.id, "partner": partner, "amount": pledge.amount, "currency": pledge.currency,
                "year_from": pledge.year_from, "year_to": pledge.year_to, "kind": pledge.kind,
                "note": pledge.note, "sources": pledge.sources.iter().map(|s| &s.url).collect::<Vec<_>>(),
            }));
        }
    }
    let next_cursor = page
        .next_after
        .as_deref()
        .map(|key| encode_list_cursor(key, query.sort));
    Ok(axum::Json(json!({ "items": items, "next_cursor": next_cursor })).into_response())
}
