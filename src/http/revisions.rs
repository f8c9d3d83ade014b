//! Reading the past: `?revision=N` or `?as_of=<time>` on the reads of
//! agreements, pledges, sources, partners, areas, rates, stats and the
//! timeline answer exactly as the store stood then; `/diff` endpoints say
//! what changed between two revisions.
//!
//! A past answer is the same handler run over the store as of N, through
//! the same router: [`AsOf`] is a store that reads one agreement straight
//! from the versions tables (fast, one indexed lookup per table) and
//! everything else from a replay of the store at N (a private copy, built
//! once and kept in a small cache). An answer at a revision never changes,
//! so it is served immutable.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, OnceCell, Semaphore};
use tower::ServiceExt as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{parse_instant, take_query_param};
use serde::Deserialize;
use utoipa::IntoParams;

use super::params::{And, Params, split_list};
use super::query::Filters;
use super::stats::PledgeGrouping;
use super::{AppState, HttpOptions};
use crate::auth::ApiKey;
use crate::domain::FieldError;
use crate::domain::agreement::{Agreement, AgreementDraft};
use crate::domain::area::{Area, AreaCode, AreaDraft};
use crate::domain::dataset::Dataset;
use crate::domain::lang::Lang;
use crate::domain::money::Currency;
use crate::domain::partner::{Partner, PartnerCode, PartnerDraft};
use crate::domain::pledge::{Pledge, PledgeDraft};
use crate::domain::query::{
    AgreementCount, AgreementGroup, AgreementQuery, PledgeGroup, PledgeTotal, PledgeYearTotal,
};
use crate::domain::rates::DailyRate;
use crate::domain::source::{Source, SourceDraft};
use crate::error::{ApiError, ApiResult};
use crate::store::{
    AnnualFilter, AnnualRates, ChangeDetail, ChangeEntry, ChangeFilter, HistoryEntry,
    HistoryFilter, ImportSummary, KeyMatch, LatestChangeFilter, Page, PageRequest, PoolStatus,
    RateFilter, RateWrite, Reservation, RevisionBounds, SourceCount, Store, StoreError,
    StoreResult, StoredResponse,
};

/// The header every read answer carries: the revision it reflects.
pub const REVISION_HEADER: &str = "accords-revision";

/// Past revisions kept ready at once: each holds a copy of the store.
const KEPT_REVISIONS: usize = 4;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(agreement_diff))
        .routes(routes!(pledge_stats_diff))
}

/// The routers of past revisions, a few at a time, most recently used last.
pub struct Past {
    kept: Mutex<VecDeque<(i64, Router)>>,
    /// The (route, method) pairs the API declares: a request for any other
    /// is the router's 405, whatever its query names.
    declared: std::sync::OnceLock<std::collections::HashSet<(String, Method)>>,
    /// One replay is built at a time: each copies the whole store.
    building: Arc<Semaphore>,
}

impl Default for Past {
    fn default() -> Self {
        Self::new()
    }
}

impl Past {
    pub fn new() -> Self {
        Self {
            kept: Mutex::default(),
            declared: std::sync::OnceLock::new(),
            building: Arc::new(Semaphore::new(1)),
        }
    }

    /// Notes the operations of the API's document.
    pub fn declare(&self, spec: &utoipa::openapi::OpenApi) {
        let mut declared = std::collections::HashSet::new();
        for (path, item) in &spec.paths.paths {
            let methods = [
                (item.get.is_some(), Method::GET),
                (item.get.is_some() || item.head.is_some(), Method::HEAD),
                (item.post.is_some(), Method::POST),
                (item.put.is_some(), Method::PUT),
                (item.patch.is_some(), Method::PATCH),
                (item.delete.is_some(), Method::DELETE),
            ];
            for (has, method) in methods {
                if has {
                    declared.insert((path.clone(), method));
                }
            }
        }
        let _ = self.declared.set(declared);
    }

    fn declares(&self, route: Option<&str>, method: &Method) -> bool {
        match (self.declared.get(), route) {
            (Some(declared), Some(route)) => declared.contains(&(route.to_owned(), method.clone())),
            _ => true,
        }
    }

    /// The whole API as it answered at `revision`.
    async fn router_at(&self, state: &AppState, revision: i64) -> ApiResult<Router> {
        let mut kept = self.kept.lock().await;
        if let Some(at) = kept.iter().position(|(n, _)| *n == revision) {
            let entry = kept.remove(at).expect("the position was just found");
            let router = entry.1.clone();
            kept.push_back(entry);
            return Ok(router);
        }
        let store: Arc<dyn Store> = Arc::new(AsOf {
            live: state.store.clone(),
            revision,
            replay: Arc::default(),
            building: self.building.clone(),
        });
        let mut options: HttpOptions = (*state.options).clone();
        options.cache_control = state.options.past_cache_control.clone();
        // The live stack in front already limited, allowed and timed the request.
        options.rate_limits.read_per_second = 0;
        options.rate_limits.write_per_second = 0;
        options.cors_origins = String::new();
        options.render_cache_bytes = options.render_cache_bytes.min(1024 * 1024);
        let router = super::router(store, options, Arc::default()).map_err(ApiError::Internal)?;
        if kept.len() >= KEPT_REVISIONS {
            // Dropping the router drops its replay once no request holds it.
            kept.pop_front();
        }
        kept.push_back((revision, router.clone()));
        Ok(router)
    }
}

/// Whether [`at_revision`] may have anything to do: a read of the API whose
/// query may name `revision` or `as_of` (percent-encoded names included).
pub fn concerns<B>(request: &axum::http::Request<B>) -> bool {
    request.uri().path().starts_with("/v1/")
        && request
            .uri()
            .query()
            .is_some_and(|q| q.contains("revision") || q.contains("as_of") || q.contains('%'))
}

/// Takes `revision` / `as_of` off a read's query and answers it from the
/// store as it stood then; every other request passes on untouched.
pub async fn at_revision(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match past(&state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn past(state: &AppState, request: Request, next: Next) -> ApiResult<Response> {
    // The dashboard's own address keeps `revision=` for the page's script,
    // which asks the API for it: only the API's reads have a past.
    // A method no route declares (TRACE, made-up ones) is the router's
    // 405 whatever its query says.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let declared = state.past.declares(route.as_deref(), request.method());
    if !request.uri().path().starts_with("/v1/") || !declared {
        return Ok(next.run(request).await);
    }
    let (revisions, stripped) = take_query_param(request.uri(), "revision");
    let uri = stripped.unwrap_or_else(|| request.uri().clone());
    let (times, stripped) = take_query_param(&uri, "as_of");
    if revisions.is_empty() && times.is_empty() {
        return Ok(next.run(request).await);
    }
    let uri = stripped.unwrap_or(uri);
    let given = match (revisions.as_slice(), times.as_slice()) {
        ([one], []) => Given::Revision(one.clone()),
        ([], [one]) => Given::Time(one.clone()),
        ([_, _, ..], _) => return Err(invalid("revision", "may be given only once")),
        (_, [_, _, ..]) => return Err(invalid("as_of", "may be given only once")),
        _ => return Err(invalid("revision", "give revision or as_of, not both")),
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return Err(ApiError::BadRequest(format!(
            "revision and as_of read the past: a {} cannot be made there",
            request.method()
        )));
    }
    let path = uri.path();
    if !super::openapi::has_past(path) {
        return Err(ApiError::BadRequest(format!(
            "{path} cannot be read at a past revision; these can: {}",
            super::openapi::PAST_READS.join(", ")
        )));
    }
    let name = given.name();
    let revision = resolve(state.store.as_ref(), name, given.text()).await?;
    // The language the live stack negotiated, named again for the past one.
    let lang = request.extensions().get::<Lang>().copied();
    let mut uri = uri;
    if let Some(lang) = lang {
        let query = match uri.query() {
            Some(q) if !q.is_empty() => format!("{q}&lang={}", lang.as_str()),
            _ => format!("lang={}", lang.as_str()),
        };
        uri = format!("{}?{query}", uri.path())
            .parse()
            .map_err(|_| ApiError::BadRequest("the URL cannot be read".into()))?;
    }
    // A new request: what the routing out here noted (the path's
    // parameters) must not reach the routing in there.
    let (parts, body) = request.into_parts();
    let mut forwarded = Request::new(body);
    *forwarded.method_mut() = parts.method;
    *forwarded.uri_mut() = uri;
    *forwarded.version_mut() = parts.version;
    *forwarded.headers_mut() = parts.headers;
    let router = state.past.router_at(state, revision).await?;
    let mut response = router
        .oneshot(forwarded)
        .await
        .unwrap_or_else(|never| match never {});
    // A past answer never changes: its tag can be strong.
    if let Some(strong) = response
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(|tag| tag.strip_prefix("W/"))
        .and_then(|tag| HeaderValue::from_str(tag).ok())
    {
        response.headers_mut().insert(header::ETAG, strong);
    }
    Ok(response)
}

enum Given {
    Revision(String),
    Time(String),
}

impl Given {
    fn name(&self) -> &'static str {
        match self {
            Given::Revision(_) => "revision",
            Given::Time(_) => "as_of",
        }
    }

    fn text(&self) -> &str {
        match self {
            Given::Revision(t) | Given::Time(t) => t,
        }
    }
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::InvalidQuery(vec![FieldError::new(field, message)])
}

/// A revision number or an RFC 3339 time (the last revision committed at
/// or before it), within the store's history.
async fn resolve(store: &dyn Store, field: &str, text: &str) -> ApiResult<i64> {
    let bounds = store.revision_bounds().await?;
    let span = |what: String| {
        invalid(
            field,
            &format!(
                "{what}: the store's history runs from revision {} to revision {} (the latest)",
                bounds.earliest, bounds.latest
            ),
        )
    };
    let revision = if let Ok(n) = text.parse::<i64>() {
        n
    } else if let Some(at) = parse_instant(text) {
        match store.revision_at(at).await? {
            Some(n) => n,
            None => return Err(span(format!("nothing had changed yet at {text}"))),
        }
    } else {
        return Err(invalid(
            field,
            &format!(
                "must be a revision number or an RFC 3339 time such as 2026-12-01T10:00:00Z; \
                 the store's history runs from revision {} to revision {}",
                bounds.earliest, bounds.latest
            ),
        ));
    };
    if revision < bounds.earliest {
        return Err(span(format!(
            "revision {revision} is from before the history began"
        )));
    }
    if revision > bounds.latest {
        return Err(span(format!("revision {revision} has not happened yet")));
    }
    Ok(revision)
}

/// Marks an answer as the store's at `revision`, cached for good when the
/// revision was asked for (not "now").
fn past_headers(state: &AppState, response: &mut Response, revision: i64, immutable: bool) {
    if let Ok(value) = HeaderValue::from_str(&revision.to_string()) {
        response.headers_mut().insert(REVISION_HEADER, value);
    }
    let cache_control = if immutable {
        &state.options.past_cache_control
    } else {
        &state.options.cache_control
    };
    if let Ok(value) = HeaderValue::from_str(cache_control) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
}

// ---- diffs -------------------------------------------------------------

/// The revisions a diff compares.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DiffSpan {
    /// A revision number, or an RFC 3339 time (the last revision at or before it)
    #[param(value_type = String)]
    from: Option<String>,
    /// Likewise; the latest revision when left out
    to: Option<String>,
}

/// How a diff is answered.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DiffFormat {
    /// json (default) or text
    #[param(value_type = Option<super::params::JsonOrText>, inline)]
    format: Option<String>,
}

type AgreementDiffParams = And<DiffSpan, DiffFormat>;
type PledgeStatsDiffParams = And<DiffSpan, And<And<Filters, PledgeGrouping>, DiffFormat>>;

/// The revisions a diff compares: `from` is required, `to` is the latest
/// unless given; each a revision number or an RFC 3339 time.
async fn span(state: &AppState, DiffSpan { from, to }: &DiffSpan) -> ApiResult<(i64, i64, bool)> {
    let Some(from) = from else {
        return Err(invalid(
            "from",
            "is required: a revision number or an RFC 3339 time",
        ));
    };
    let from = resolve(state.store.as_ref(), "from", from).await?;
    let (to, fixed) = match to {
        Some(to) => (resolve(state.store.as_ref(), "to", to).await?, true),
        None => (state.store.revision_bounds().await?.latest, false),
    };
    Ok((from, to, fixed))
}

/// What changed in one agreement between two revisions, field by field;
/// pledges, sources and areas matched by their id (or code).
#[utoipa::path(get, path = "/v1/agreements/{id}/diff", tag = "agreements",
    params(("id" = String, Path, description = "The agreement id, e.g. ua-jp-2024"), AgreementDiffParams),
    responses((status = 200, description = "The changes: path, op (added, removed, changed), from/to or value",
        content((Object = "application/json", example = json!({"agreement": "ua-jp-2024", "from": 12, "to": 15, "changes": [
            {"path": "pledges[ua-jp-2024-p1].amount", "op": "changed", "from": "4.5", "to": "4.6"},
            {"path": "sources[ua-jp-2024-s3]", "op": "added", "value": {"id": "ua-jp-2024-s3"}}]})),
            (String = "text/plain")),
        headers(("Accords-Revision" = i64, description = "The `to` revision")))))]
async fn agreement_diff(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(And(diff_span, DiffFormat { format })): Params<AgreementDiffParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let text = super::listing::text_wanted(format.as_deref(), &headers).unwrap_or_else(|error| {
        errors.push(error);
        false
    });
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let id = super::extract::path_id(&id)?;
    let (from, to, fixed) = span(&state, &diff_span).await?;
    let before = state.store.get_agreement_at(&id, from).await?;
    let after = state.store.get_agreement_at(&id, to).await?;
    if before.is_none() && after.is_none() {
        return Err(ApiError::not_found(format!(
            "no agreement {id:?} at revision {from} or {to}"
        )));
    }
    let before = serde_json::to_value(&before).map_err(|e| ApiError::Internal(e.to_string()))?;
    let after = serde_json::to_value(&after).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut changes = Vec::new();
    diff_values("", &before, &after, &mut changes);
    let body = json!({"agreement": id, "from": from, "to": to, "changes": changes});
    let mut response = if text {
        text_response(diff_text(&body))
    } else {
        axum::Json(body).into_response()
    };
    past_headers(&state, &mut response, to, fixed);
    Ok(response)
}

/// Appends the changes turning `before` into `after` under `path`.
fn diff_values(path: &str, before: &Value, after: &Value, out: &mut Vec<Value>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Null, _) => out.push(json!({"path": or_root(path), "op": "added", "value": after})),
        (_, Value::Null) => {
            out.push(json!({"path": or_root(path), "op": "removed", "value": before}));
        }
        (Value::Object(a), Value::Object(b)) => {
            for (key, old) in a {
                let here = join(path, key);
                match b.get(key) {
                    Some(new) => diff_values(&here, old, new, out),
                    None => out.push(json!({"path": here, "op": "removed", "value": old})),
                }
            }
            for (key, new) in b {
                if !a.contains_key(key) {
                    out.push(json!({"path": join(path, key), "op": "added", "value": new}));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if keyed(a).is_some() && keyed(b).is_some() => {
            let (old, new) = (keyed(a).unwrap_or_default(), keyed(b).unwrap_or_default());
            for (key, value) in &old {
                let here = format!("{path}[{key}]");
                match new.get(key) {
                    Some(next) => diff_values(&here, value, next, out),
                    None => out.push(json!({"path": here, "op": "removed", "value": value})),
                }
            }
            for (key, value) in &new {
                if !old.contains_key(key) {
                    out.push(
                        json!({"path": format!("{path}[{key}]"), "op": "added", "value": value}),
                    );
                }
            }
        }
        _ => out.push(json!({"path": or_root(path), "op": "changed", "from": before, "to": after})),
    }
}

fn or_root(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// An array of records each named by `id` (pledges, sources) or `code`
/// (areas), by that name, in their order; None for any other array.
fn keyed(items: &[Value]) -> Option<BTreeMap<String, &Value>> {
    let mut named = BTreeMap::new();
    for item in items {
        let key = item
            .get("id")
            .or_else(|| item.get("code"))
            .and_then(Value::as_str)?;
        if named.insert(key.to_owned(), item).is_some() {
            return None;
        }
    }
    Some(named)
}

/// A diff to read in a terminal: one line per change.
fn diff_text(body: &Value) -> String {
    let mut text = format!(
        "{} from revision {} to revision {}\n",
        body["agreement"].as_str().unwrap_or_default(),
        body["from"],
        body["to"]
    );
    let changes = body["changes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if changes.is_empty() {
        text.push_str("no changes\n");
    }
    for change in changes {
        let path = change["path"].as_str().unwrap_or_default();
        let line = match change["op"].as_str() {
            Some("added") => format!("+ {path}: {}", change["value"]),
            Some("removed") => format!("- {path}: {}", change["value"]),
            _ => format!("~ {path}: {} -> {}", change["from"], change["to"]),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn text_response(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// Which pledge totals moved between two revisions, and by how much
/// (exact decimals), under the filters and grouping of /v1/stats/pledges.
#[utoipa::path(get, path = "/v1/stats/pledges/diff", tag = "stats",
    params(PledgeStatsDiffParams),
    responses((status = 200, description = "The totals that moved: each group's from, to and change per currency",
        content((Object = "application/json", example = json!({"from": 12, "to": 15, "items": [
            {"partner": "jp", "currency": "USD", "from": "4500000000.00", "to": "4600000000.00", "change": "100000000.00"}]})),
            (String = "text/plain")))))]
async fn pledge_stats_diff(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let And(diff_span, And(And(_, grouping), DiffFormat { format })) =
        super::params::read::<PledgeStatsDiffParams>(uri.query())?;
    let mut errors = Vec::new();
    let text = match format.as_deref() {
        None | Some("json") => false,
        Some("text") => true,
        Some(_) => {
            errors.push(FieldError::new("format", "must be json or text"));
            false
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let (from, to, fixed) = span(&state, &diff_span).await?;
    // The stats query as /v1/stats/pledges takes it: the same pairs, less ours.
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .filter(|(k, _)| !matches!(k.as_ref(), "from" | "to" | "format")),
        )
        .finish();
    let before = match stats_at(&state, &headers, from, &query).await? {
        Ok(body) => body,
        Err(refused) => return Ok(refused),
    };
    let after = match stats_at(&state, &headers, to, &query).await? {
        Ok(body) => body,
        Err(refused) => return Ok(refused),
    };
    let group_keys: Vec<String> = split_list(&grouping.group_by)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let key_of = |item: &Value| -> String {
        let mut key: Vec<String> = group_keys.iter().map(|g| item[g].to_string()).collect();
        key.push(item["currency"].to_string());
        key.join("\u{1f}")
    };
    let totals = |body: &Value| -> BTreeMap<String, Value> {
        body["items"]
            .as_array()
            .map(|items| items.iter().map(|i| (key_of(i), i.clone())).collect())
            .unwrap_or_default()
    };
    let (old, new) = (totals(&before), totals(&after));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut items = Vec::new();
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        let amount = |item: Option<&Value>| -> Decimal {
            item.and_then(|i| i["total"].as_str())
                .and_then(|t| t.parse().ok())
                .unwrap_or(Decimal::ZERO)
        };
        let (x, y) = (amount(a), amount(b));
        let count = |item: Option<&Value>| item.and_then(|i| i["count"].as_i64()).unwrap_or(0);
        if x == y && count(a) == count(b) {
            continue;
        }
        let Some(sample) = b.or(a) else { continue };
        let mut item = Map::new();
        for group in &group_keys {
            item.insert(group.clone(), sample[group].clone());
        }
        item.insert("currency".into(), sample["currency"].clone());
        item.insert("from".into(), json!(fixed_2(x)));
        item.insert("to".into(), json!(fixed_2(y)));
        item.insert("change".into(), json!(fixed_2(y - x)));
        item.insert("count_from".into(), json!(count(a)));
        item.insert("count_to".into(), json!(count(b)));
        items.push(Value::Object(item));
    }
    let body = json!({"from": from, "to": to, "items": items});
    let mut response = if text {
        let mut lines = format!("pledge totals from revision {from} to revision {to}\n");
        if items.is_empty() {
            lines.push_str("no totals moved\n");
        }
        for item in &items {
            let group: Vec<String> = group_keys
                .iter()
                .map(|g| format!("{g}={}", item[g]))
                .collect();
            lines.push_str(&format!(
                "{}{} {}: {} -> {} ({})\n",
                group.join(" "),
                if group.is_empty() { "" } else { ":" },
                item["currency"].as_str().unwrap_or_default(),
                item["from"].as_str().unwrap_or_default(),
                item["to"].as_str().unwrap_or_default(),
                signed(item["change"].as_str().unwrap_or_default()),
            ));
        }
        text_response(lines)
    } else {
        axum::Json(body).into_response()
    };
    past_headers(&state, &mut response, to, fixed);
    Ok(response)
}

/// An exact amount with its two decimals, as totals are written.
fn fixed_2(value: Decimal) -> String {
    let mut value = value;
    value.rescale(2);
    value.to_string()
}

fn signed(change: &str) -> String {
    if change.starts_with('-') {
        change.to_owned()
    } else {
        format!("+{change}")
    }
}

/// /v1/stats/pledges as it answered at `revision`, as JSON.
async fn stats_at(
    state: &AppState,
    headers: &HeaderMap,
    revision: i64,
    query: &str,
) -> ApiResult<Result<Value, Response>> {
    let router = state.past.router_at(state, revision).await?;
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(format!("/v1/stats/pledges?{query}"))
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    // Whoever may read here may read there (read keys, when required).
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, auth.clone());
    }
    let response = router
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    if response.status() != StatusCode::OK {
        // The stats' own complaint (a filter that is not valid) is the answer.
        return Ok(Err(response));
    }
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let body: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Ok(body))
}

// ---- the store as of a revision ---------------------------------------

/// The store as it stood at one revision, read-only: one agreement straight
/// from the versions tables, everything else from a replay built when first
/// needed. API keys are the live ones (who may read is decided now).
struct AsOf {
    live: Arc<dyn Store>,
    revision: i64,
    /// Shared with the task that builds it, which outlives the request.
    replay: Arc<OnceCell<Arc<dyn Store>>>,
    building: Arc<Semaphore>,
}

impl AsOf {
    /// The replay, built on a task of its own: a request that gives up (its
    /// timeout, a closed connection) leaves the copy to finish for the next
    /// one. Dropped with the request, a copy that takes longer than the
    /// timeout (minutes at 100,000 agreements) would start again from
    /// nothing on every request and never be done. One is built at a time;
    /// a request for another revision meanwhile is told to retry (503), not
    /// queued, so no client can line up copies.
    async fn replay(&self) -> StoreResult<&Arc<dyn Store>> {
        if let Some(replay) = self.replay.get() {
            return Ok(replay);
        }
        let (cell, live, building, revision) = (
            self.replay.clone(),
            self.live.clone(),
            self.building.clone(),
            self.revision,
        );
        let build = tokio::spawn(async move {
            cell.get_or_try_init(|| async {
                let replay: StoreResult<Arc<dyn Store>> = async {
                    let _turn = building.try_acquire_owned().map_err(|_| {
                        StoreError::Unavailable(
                            "another past revision is being prepared; retry shortly".into(),
                        )
                    })?;
                    let started = std::time::Instant::now();
                    let replay = live.replay(revision).await?;
                    tracing::info!(
                        revision,
                        elapsed_ms = started.elapsed().as_millis(),
                        "replay built"
                    );
                    Ok(replay)
                }
                .await;
                replay
            })
            .await
            .map(|_| ())
        });
        build
            .await
            .map_err(|e| StoreError::Internal(format!("building a replay: {e}")))??;
        self.replay
            .get()
            .ok_or_else(|| StoreError::Internal("a built replay is missing".into()))
    }
}

fn read_only() -> StoreError {
    StoreError::Conflict("a past revision cannot be changed".into())
}

#[async_trait]
impl Store for AsOf {
    /// The live store's: the past never changes, but whatever watches it
    /// for freshness then errs on the side of reading again.
    fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.live.commits()
    }
    fn backend(&self) -> &'static str {
        self.live.backend()
    }
    /// The live pool: the past router never forwards webhook requests
    /// (they are not among [`super::openapi::PAST_READS`]).
    fn database(&self) -> crate::store::webhooks::DatabasePool {
        self.live.database()
    }
    async fn ready(&self) -> StoreResult<()> {
        Ok(())
    }
    fn pool_status(&self) -> PoolStatus {
        self.live.pool_status()
    }
    async fn close(&self) {}
    async fn list_partners(
        &self,
        page: &PageRequest,
        only_with_agreements: bool,
    ) -> StoreResult<Page<Partner>> {
        self.replay()
            .await?
            .list_partners(page, only_with_agreements)
            .await
    }
    async fn get_partner(&self, code: &PartnerCode) -> StoreResult<Option<Partner>> {
        self.replay().await?.get_partner(code).await
    }
    async fn find_partner_keys(&self, folded_key: &str) -> StoreResult<Vec<KeyMatch>> {
        self.replay().await?.find_partner_keys(folded_key).await
    }
    async fn all_partner_keys(&self) -> StoreResult<Vec<KeyMatch>> {
        self.replay().await?.all_partner_keys().await
    }
    async fn create_partner(&self, _: &str, _: &PartnerDraft) -> StoreResult<Partner> {
        Err(read_only())
    }
    async fn replace_partner(
        &self,
        _: &str,
        _: &PartnerDraft,
        _: Option<i64>,
    ) -> StoreResult<Partner> {
        Err(read_only())
    }
    async fn delete_partner(&self, _: &str, _: &PartnerCode, _: Option<i64>) -> StoreResult<()> {
        Err(read_only())
    }
    async fn list_areas(&self, page: &PageRequest) -> StoreResult<Page<Area>> {
        self.replay().await?.list_areas(page).await
    }
    async fn get_area(&self, code: &AreaCode) -> StoreResult<Option<Area>> {
        self.replay().await?.get_area(code).await
    }
    async fn area_exists(&self, code: &AreaCode) -> StoreResult<bool> {
        self.replay().await?.area_exists(code).await
    }
    async fn create_area(&self, _: &str, _: &AreaDraft) -> StoreResult<Area> {
        Err(read_only())
    }
    async fn replace_area(&self, _: &str, _: &AreaDraft, _: Option<i64>) -> StoreResult<Area> {
        Err(read_only())
    }
    async fn delete_area(&self, _: &str, _: &AreaCode, _: Option<i64>) -> StoreResult<()> {
        Err(read_only())
    }
    async fn list_agreements(
        &self,
        query: &AgreementQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Agreement>> {
        self.replay().await?.list_agreements(query, page).await
    }
    async fn count_agreements(&self, query: &AgreementQuery) -> StoreResult<i64> {
        self.replay().await?.count_agreements(query).await
    }
    async fn count_sources(&self, query: &AgreementQuery) -> StoreResult<SourceCount> {
        self.replay().await?.count_sources(query).await
    }
    async fn pledge_totals(
        &self,
        query: &AgreementQuery,
        groups: &[PledgeGroup],
    ) -> StoreResult<Vec<PledgeTotal>> {
        self.replay().await?.pledge_totals(query, groups).await
    }
    async fn agreement_counts(
        &self,
        query: &AgreementQuery,
        groups: &[AgreementGroup],
    ) -> StoreResult<Vec<AgreementCount>> {
        self.replay().await?.agreement_counts(query, groups).await
    }
    /// The one read that needs no replay: straight from the versions.
    async fn get_agreement(&self, id: &str) -> StoreResult<Option<Agreement>> {
        self.live.get_agreement_at(id, self.revision).await
    }
    async fn create_agreement(&self, _: &str, _: &AgreementDraft) -> StoreResult<Agreement> {
        Err(read_only())
    }
    async fn replace_agreement(
        &self,
        _: &str,
        _: &str,
        _: &AgreementDraft,
        _: Option<i64>,
    ) -> StoreResult<Agreement> {
        Err(read_only())
    }
    async fn delete_agreement(&self, _: &str, _: &str, _: Option<i64>) -> StoreResult<()> {
        Err(read_only())
    }
    async fn get_pledge(&self, id: &str) -> StoreResult<Option<Pledge>> {
        self.replay().await?.get_pledge(id).await
    }
    async fn create_pledge(&self, _: &str, _: &str, _: &PledgeDraft) -> StoreResult<Pledge> {
        Err(read_only())
    }
    async fn replace_pledge(
        &self,
        _: &str,
        _: &str,
        _: &PledgeDraft,
        _: Option<i64>,
    ) -> StoreResult<Pledge> {
        Err(read_only())
    }
    async fn delete_pledge(&self, _: &str, _: &str, _: Option<i64>) -> StoreResult<()> {
        Err(read_only())
    }
    async fn get_source(&self, id: &str) -> StoreResult<Option<Source>> {
        self.replay().await?.get_source(id).await
    }
    async fn create_source(&self, _: &str, _: &str, _: &SourceDraft) -> StoreResult<Source> {
        Err(read_only())
    }
    async fn replace_source(
        &self,
        _: &str,
        _: &str,
        _: &SourceDraft,
        _: Option<i64>,
    ) -> StoreResult<Source> {
        Err(read_only())
    }
    async fn delete_source(&self, _: &str, _: &str, _: Option<i64>) -> StoreResult<()> {
        Err(read_only())
    }
    async fn export(&self) -> StoreResult<Dataset> {
        self.replay().await?.export().await
    }
    async fn import(&self, _: &str, _: &Dataset, _: bool) -> StoreResult<ImportSummary> {
        Err(read_only())
    }
    async fn bulk_insert_agreements(&self, _: &[AgreementDraft]) -> StoreResult<()> {
        Err(read_only())
    }
    async fn revision(&self) -> StoreResult<i64> {
        Ok(self.revision)
    }
    async fn feed_position_at(&self, at: chrono::DateTime<chrono::Utc>) -> StoreResult<i64> {
        self.replay().await?.feed_position_at(at).await
    }
    async fn changes(&self, filter: &ChangeFilter) -> StoreResult<Vec<ChangeEntry>> {
        self.replay().await?.changes(filter).await
    }
    async fn latest_changes(&self, filter: &LatestChangeFilter) -> StoreResult<Vec<ChangeDetail>> {
        self.replay().await?.latest_changes(filter).await
    }
    async fn changes_between(&self, after: i64, upto: i64) -> StoreResult<Vec<ChangeDetail>> {
        self.replay().await?.changes_between(after, upto).await
    }
    async fn change_notifications(&self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        None
    }
    async fn analyze(&self) -> StoreResult<()> {
        Ok(())
    }
    async fn seed(&self, _: &str, _: &Dataset) -> StoreResult<Option<ImportSummary>> {
        Err(read_only())
    }
    async fn is_empty(&self) -> StoreResult<bool> {
        self.replay().await?.is_empty().await
    }
    async fn restore_agreement(&self, _: &str, _: &str) -> StoreResult<Agreement> {
        Err(read_only())
    }
    async fn history(&self, filter: &HistoryFilter) -> StoreResult<Page<HistoryEntry>> {
        self.replay().await?.history(filter).await
    }
    async fn create_api_key(&self, _: &ApiKey) -> StoreResult<()> {
        Err(read_only())
    }
    async fn find_api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        self.live.find_api_key(id).await
    }
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.live.list_api_keys().await
    }
    async fn revoke_api_key(&self, _: &str) -> StoreResult<bool> {
        Err(read_only())
    }
    async fn load_rates(&self, _: &str, _: &[DailyRate]) -> StoreResult<ImportSummary> {
        Err(read_only())
    }
    async fn list_rates(
        &self,
        filter: &RateFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<DailyRate>> {
        self.replay().await?.list_rates(filter, page).await
    }
    async fn get_rate(
        &self,
        currency: &Currency,
        date: chrono::NaiveDate,
    ) -> StoreResult<Option<DailyRate>> {
        self.replay().await?.get_rate(currency, date).await
    }
    async fn put_rate(&self, _: &str, _: &DailyRate) -> StoreResult<RateWrite> {
        Err(read_only())
    }
    async fn delete_rate(&self, _: &str, _: &Currency, _: chrono::NaiveDate) -> StoreResult<()> {
        Err(read_only())
    }
    async fn annual_rates(&self, filter: &AnnualFilter) -> StoreResult<AnnualRates> {
        self.replay().await?.annual_rates(filter).await
    }
    async fn pledge_year_totals(
        &self,
        query: &AgreementQuery,
        groups: &[PledgeGroup],
    ) -> StoreResult<Vec<PledgeYearTotal>> {
        self.replay().await?.pledge_year_totals(query, groups).await
    }
    async fn reserve_idempotency_key(&self, _: &str, _: &str, _: &str) -> StoreResult<Reservation> {
        Err(read_only())
    }
    async fn complete_idempotency_key(
        &self,
        _: &str,
        _: &str,
        _: &StoredResponse,
    ) -> StoreResult<()> {
        Err(read_only())
    }
    async fn release_idempotency_key(&self, _: &str, _: &str) -> StoreResult<()> {
        Err(read_only())
    }
    async fn revision_bounds(&self) -> StoreResult<RevisionBounds> {
        Ok(RevisionBounds {
            earliest: self.live.revision_bounds().await?.earliest,
            latest: self.revision,
        })
    }
    async fn revision_at(&self, at: chrono::DateTime<chrono::Utc>) -> StoreResult<Option<i64>> {
        Ok(self
            .live
            .revision_at(at)
            .await?
            .map(|n| n.min(self.revision)))
    }
    async fn get_agreement_at(&self, id: &str, revision: i64) -> StoreResult<Option<Agreement>> {
        self.live
            .get_agreement_at(id, revision.min(self.revision))
            .await
    }
    async fn replay(&self, revision: i64) -> StoreResult<Arc<dyn Store>> {
        self.live.replay(revision.min(self.revision)).await
    }
}
