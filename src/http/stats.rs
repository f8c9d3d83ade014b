//! Aggregates for charts: exact pledge totals per currency and agreement
//! counts, grouped, under the same filters as the lists; and the timeline.

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use std::collections::{BTreeMap, BTreeSet};

use super::AppState;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, Schema};

use super::convert::{self, ConvertParam, Converter};
use super::invalidation::{Aspects, Reads};
use super::params::{And, Flag, Params, flag, one_of, split_list, value_schema, words};
use super::query::{Filters, PageParams, agreement_query, encode_list_cursor, paging};
use crate::domain::FieldError;
use crate::domain::Vocabulary;
use crate::domain::lang::Lang;
use crate::domain::money::{Amount, Currency};
use crate::domain::query::{
    AgreementGroup, AgreementQuery, GroupValue, PledgeGroup, Sort, SortKey,
};
use crate::domain::rates;
use crate::error::{ApiError, ApiResult};
use crate::store::{LatestChangeFilter, PageRequest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pledges))
        .routes(routes!(agreements))
        .routes(routes!(timeline))
}

/// `group_by`: one or two of these, comma-separated.
fn group_by_schema<G: Vocabulary>() -> Schema {
    ArrayBuilder::new()
        .items(RefOr::T(one_of(words::<G>())))
        .min_items(Some(1))
        .max_items(Some(2))
        .unique_items(true)
        .build()
        .into()
}

value_schema!(PledgeGroups, group_by_schema::<PledgeGroup>());
value_schema!(AgreementGroups, group_by_schema::<AgreementGroup>());
value_schema!(PledgeStatsFormatValue, one_of(vec!["json", "csv", "text"]));

/// How pledge totals are grouped.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PledgeGrouping {
    /// One or two groups, comma-separated (default: partner)
    #[param(value_type = Option<PledgeGroups>, inline, style = Form, explode = false)]
    #[serde(default)]
    pub group_by: Vec<String>,
}

/// How agreement counts are grouped.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgreementGrouping {
    /// One or two groups, comma-separated (default: partner)
    #[param(value_type = Option<AgreementGroups>, inline, style = Form, explode = false)]
    #[serde(default)]
    pub group_by: Vec<String>,
}

/// The formats of pledge totals.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PledgeStatsFormat {
    /// json (default); csv: one row per group, one column per currency (and total_<convert>); text: a table to read
    #[param(value_type = Option<PledgeStatsFormatValue>, inline)]
    format: Option<String>,
    /// With format=csv: a UTF-8 byte order mark first, so that Excel reads the file as UTF-8
    #[param(value_type = Option<Flag>, inline)]
    bom: Option<String>,
}

/// What pledge totals are computed from: the filters, the groups, `convert`.
pub type PledgeTotalsParams = And<Filters, And<PledgeGrouping, ConvertParam>>;

type PledgeStatsParams = And<PledgeTotalsParams, PledgeStatsFormat>;
type AgreementStatsParams = And<Filters, AgreementGrouping>;
type TimelineParams = And<Filters, PageParams>;

/// One or two distinct groups from `group_by`; by partner when it is left
/// out (`group_by=` with nothing in it is a typo, and a 400).
fn groups<G: Vocabulary + PartialEq>(group_by: &[String], errors: &mut Vec<FieldError>) -> Vec<G> {
    if group_by.is_empty() {
        return G::parse("partner").into_iter().collect();
    }
    let names = split_list(group_by);
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

/// Pledge totals per group and currency, exact; never summed across currencies (except converted, with `convert`).
#[utoipa::path(get, path = "/v1/stats/pledges", tag = "stats", params(PledgeStatsParams),
    responses((status = 200, description = "Totals per group and currency (JSON), a chart-ready CSV (format=csv) or a table (format=text)",
        headers(("Accords-Sources" = i64, description = "CSV and text: how many sources the matching agreements cite"),
            ("Accords-Agreements" = i64, description = "CSV and text: how many agreements match the filters"),
            ("Accords-Data-As-Of" = String, description = "CSV and text: the time of the latest change to the data (RFC 3339, UTC); absent while nothing was ever written")),
        content((crate::http::openapi::StatsItems = "application/json"), (String = "text/csv"), (String = "text/plain")))))]
async fn pledges(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Params(And(totals, options)): Params<PledgeStatsParams>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let bom = flag("bom", options.bom.as_deref(), &mut errors);
    let format = match options.format.as_deref() {
        None | Some("json") => StatsFormat::Json,
        Some("csv") => StatsFormat::Csv,
        Some("text") => StatsFormat::Text,
        Some(_) => {
            errors.push(FieldError::new("format", "must be one of: json, csv, text"));
            StatsFormat::Json
        }
    };
    if bom && !matches!(format, StatsFormat::Csv) {
        errors.push(FieldError::new(
            "bom",
            "applies to CSV only: it marks the file as UTF-8 for Excel",
        ));
    }
    let stats = pledge_stats(&state, &totals, errors).await?;
    let mut response = match format {
        StatsFormat::Json => {
            let mut response = axum::Json(&stats.body).into_response();
            // Totals of the pledges of the agreements the query picks. (Files
            // and tables name the latest change: they read everything.)
            response.extensions_mut().insert(Reads::Agreements {
                ids: Vec::new(),
                picked_by: Aspects::picking(&stats.query).with(Aspects::PLEDGES),
            });
            response
        }
        StatsFormat::Csv => {
            let csv = chart_csv(&stats.groups, &stats.body);
            let csv = if bom { format!("\u{FEFF}{csv}") } else { csv };
            let mut response = text_answer("text/csv; charset=utf-8", csv);
            response.headers_mut().insert(
                axum::http::header::CONTENT_DISPOSITION,
                super::listing::attachment("accords-pledge-totals.csv"),
            );
            response
        }
        StatsFormat::Text => text_answer(
            "text/plain; charset=utf-8",
            stats_text(&stats.groups, &stats.body, lang),
        ),
    };
    // Files and tables leave the service and need their provenance beside
    // them; the JSON a dashboard polls does not pay for counting sources
    // over every matching agreement.
    if !matches!(format, StatsFormat::Json) {
        provenance(&state, &stats.query)
            .await?
            .add_headers(response.headers_mut());
    }
    Ok(response)
}

/// Pledge totals as /v1/stats/pledges answers them, with the groups and
/// the query they answer: the one place totals are computed (the stats
/// endpoint and the embedded charts both read them here). `errors` holds
/// the caller's own parameter errors, reported with these.
pub(crate) struct PledgeStats {
    pub groups: Vec<PledgeGroup>,
    pub query: AgreementQuery,
    /// `{"items": [...], "converted": {...}}` as the JSON answer.
    pub body: Value,
}

pub(crate) async fn pledge_stats(
    state: &AppState,
    And(filters, And(grouping, convert)): &PledgeTotalsParams,
    mut errors: Vec<FieldError>,
) -> ApiResult<PledgeStats> {
    let query = agreement_query(state.store.as_ref(), filters, None).await?;
    let groups: Vec<PledgeGroup> = groups(&grouping.group_by, &mut errors);
    let target = convert::target(convert.convert.as_deref(), &mut errors);
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
            // Per-year pledges count once per year of their range: say how many.
            if total.years > 0 {
                item.insert("years".into(), json!(total.years));
            }
            Value::Object(item)
        })
        .collect();
    let mut body = json!({ "items": items });
    if let Some(target) = target {
        body["converted"] = converted_totals(state, &query, &groups, target).await?;
    }
    Ok(PledgeStats {
        groups,
        query,
        body,
    })
}

/// Where figures come from and how fresh they are: the agreements a query
/// matches, the sources they cite, and the time of the latest change.
#[derive(Debug, Clone)]
pub(crate) struct Provenance {
    pub agreements: i64,
    pub sources: i64,
    /// None while the store has never changed.
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
}

/// Response headers naming the sources count and the data's time.
pub(crate) const SOURCES_HEADER: &str = "accords-sources";
pub(crate) const AGREEMENTS_HEADER: &str = "accords-agreements";
pub(crate) const DATA_AS_OF_HEADER: &str = "accords-data-as-of";

pub(crate) async fn provenance(state: &AppState, query: &AgreementQuery) -> ApiResult<Provenance> {
    let counted = state.store.count_sources(query).await?;
    let latest = state
        .store
        .latest_changes(&LatestChangeFilter {
            limit: 1,
            ..LatestChangeFilter::default()
        })
        .await?;
    Ok(Provenance {
        agreements: counted.agreements,
        sources: counted.sources,
        as_of: latest.first().map(|change| change.entry.at),
    })
}

impl Provenance {
    /// "2026-12-02T10:41:03Z": seconds are enough for "data as of".
    pub fn as_of_text(&self) -> Option<String> {
        self.as_of
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    fn add_headers(&self, headers: &mut axum::http::HeaderMap) {
        headers.insert(SOURCES_HEADER, HeaderValue::from(self.sources));
        headers.insert(AGREEMENTS_HEADER, HeaderValue::from(self.agreements));
        if let Some(value) = self
            .as_of_text()
            .and_then(|text| HeaderValue::from_str(&text).ok())
        {
            headers.insert(DATA_AS_OF_HEADER, value);
        }
    }
}

#[derive(Clone, Copy)]
enum StatsFormat {
    Json,
    Csv,
    Text,
}

fn text_answer(content_type: &'static str, text: String) -> Response {
    ([(axum::http::header::CONTENT_TYPE, content_type)], text).into_response()
}

/// The group keys of an item, as cells.
fn group_cells(groups: &[PledgeGroup], item: &Value) -> Vec<String> {
    groups
        .iter()
        .map(|g| match &item[g.as_str()] {
            Value::String(text) => text.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        })
        .collect()
}

/// The layout charting tools take: one row per group, one column per
/// currency (exact totals; empty where a group has none), never summed
/// across currencies — and, with `convert`, a last column of the converted
/// total. Cells are RFC 4180 and neutralised like every CSV the service writes.
fn chart_csv(groups: &[PledgeGroup], body: &Value) -> String {
    let items = body["items"].as_array().cloned().unwrap_or_default();
    let currencies: BTreeSet<String> = items
        .iter()
        .filter_map(|i| i["currency"].as_str().map(str::to_owned))
        .collect();
    let mut rows: BTreeMap<Vec<String>, BTreeMap<String, String>> = BTreeMap::new();
    for item in &items {
        let key = group_cells(groups, item);
        let currency = item["currency"].as_str().unwrap_or_default().to_owned();
        let total = item["total"].as_str().unwrap_or_default().to_owned();
        rows.entry(key).or_default().insert(currency, total);
    }
    let converted = body.get("converted");
    let target = converted
        .and_then(|c| c["currency"].as_str())
        .map(str::to_owned);
    if let Some(converted) = converted {
        for item in converted["items"].as_array().into_iter().flatten() {
            rows.entry(group_cells(groups, item)).or_default();
        }
    }
    let mut header: Vec<String> = groups.iter().map(|g| g.as_str().to_owned()).collect();
    header.extend(currencies.iter().cloned());
    if let Some(target) = &target {
        header.push(format!("total_{target}"));
    }
    let mut out = String::new();
    super::listing::csv_row(&mut out, &header);
    for (key, totals) in rows {
        let mut row = key.clone();
        row.extend(
            currencies
                .iter()
                .map(|c| totals.get(c).cloned().unwrap_or_default()),
        );
        if target.is_some() {
            let total = converted
                .and_then(|c| c["items"].as_array())
                .and_then(|items| items.iter().find(|i| group_cells(groups, i) == key))
                .and_then(|i| i["total"].as_str())
                .unwrap_or_default()
                .to_owned();
            row.push(total);
        }
        super::listing::csv_row(&mut out, &row);
    }
    out
}

/// A table a person reads in a terminal: group, currency, the exact total
/// with thousands separators, the number of pledges, and the years counted.
fn stats_text(groups: &[PledgeGroup], body: &Value, lang: Lang) -> String {
    let words = StatsWords::of(lang);
    let mut out = String::new();
    let head: Vec<String> = groups
        .iter()
        .map(|g| words.group(*g).to_uppercase())
        .collect();
    out.push_str(&format!(
        "{:<28}  {:<8}  {:>26}  {:>7}  {}\n",
        head.join(" / "),
        words.currency,
        words.total,
        words.pledges,
        words.note
    ));
    for item in body["items"].as_array().into_iter().flatten() {
        let group = group_cells(groups, item)
            .into_iter()
            .map(|g| {
                if g.is_empty() {
                    words.not_stated.to_owned()
                } else {
                    g
                }
            })
            .collect::<Vec<_>>()
            .join(" / ");
        let note = match item["years"].as_i64() {
            Some(years) => words.years_counted.replace("{years}", &years.to_string()),
            None => String::new(),
        };
        out.push_str(&format!(
            "{:<28}  {:<8}  {:>26}  {:>7}  {}\n",
            group,
            item["currency"].as_str().unwrap_or_default(),
            super::text_view::grouped(item["total"].as_str().unwrap_or_default()),
            item["count"],
            note
        ));
    }
    out.push_str(words.footer);
    out.push('\n');
    out
}

/// The words of the stats table, per language.
struct StatsWords {
    currency: &'static str,
    total: &'static str,
    pledges: &'static str,
    note: &'static str,
    not_stated: &'static str,
    years_counted: &'static str,
    footer: &'static str,
    uk: bool,
}

impl StatsWords {
    fn of(lang: Lang) -> Self {
        match lang {
            Lang::En => Self {
                currency: "CURRENCY",
                total: "TOTAL",
                pledges: "PLEDGES",
                note: "NOTE",
                not_stated: "(not stated)",
                years_counted: "includes per-year pledges ({years} years counted)",
                footer: "Totals never add different currencies; parts of other pledges are counted once, in their whole.",
                uk: false,
            },
            Lang::Uk => Self {
                currency: "ВАЛЮТА",
                total: "РАЗОМ",
                pledges: "ЗОБОВ’ЯЗАНЬ",
                note: "ПРИМІТКА",
                not_stated: "(не вказано)",
                years_counted: "включно зі щорічними зобов’язаннями (враховано років: {years})",
                footer: "Суми в різних валютах ніколи не додаються; частини інших зобов’язань враховано один раз, у їхньому цілому.",
                uk: true,
            },
        }
    }

    fn group(&self, group: PledgeGroup) -> &'static str {
        if !self.uk {
            return group.as_str();
        }
        match group {
            PledgeGroup::Partner => "партнер",
            PledgeGroup::Year => "рік",
            PledgeGroup::Kind => "вид",
            PledgeGroup::Measure => "міра",
            PledgeGroup::Area => "сфера",
        }
    }
}

/// How converted totals are computed, stated in every answer that has them.
const ROUNDING: &str = "each total is the sum over its pledges of amount × rate, computed exactly and \
    rounded once, half to even, to the cent; rate = annual average of the target currency against EUR / \
    annual average of the pledge's currency against EUR, in the pledge's year (year_from, else the \
    agreement's signing year; a per-year pledge's amount in each year of its range), rounded half to even \
    to 10 decimal places; a pledge that is part of another is not counted (its whole is)";

/// One group of converted totals, being summed.
struct ConvertedGroup {
    keys: Vec<GroupValue>,
    /// Σ amount × rate, exact, at 12 decimal places.
    units: u128,
    count: i64,
    unconverted_count: i64,
    unconverted_minor: BTreeMap<String, i128>,
    reasons: BTreeSet<String>,
}

/// Totals across currencies, in `target` only: per group, the exact sum of
/// every pledge's amount × the rate of its currency and year, rounded once.
/// Pledges without a usable rate are counted apart, never guessed.
async fn converted_totals(
    state: &AppState,
    query: &crate::domain::query::AgreementQuery,
    groups: &[PledgeGroup],
    target: Currency,
) -> ApiResult<Value> {
    let store = state.store.as_ref();
    let rows = store.pledge_year_totals(query, groups).await?;
    let converter = Converter::load(
        store,
        target.clone(),
        rows.iter()
            .map(|r| (r.currency.clone(), r.year))
            .collect::<Vec<_>>(),
    )
    .await?;
    let mut summed: Vec<ConvertedGroup> = Vec::new();
    let mut rates_used: BTreeMap<(String, i64), (String, String)> = BTreeMap::new();
    for row in &rows {
        if summed.last().is_none_or(|g| g.keys != row.groups) {
            summed.push(ConvertedGroup {
                keys: row.groups.clone(),
                units: 0,
                count: 0,
                unconverted_count: 0,
                unconverted_minor: BTreeMap::new(),
                reasons: BTreeSet::new(),
            });
        }
        let Some(group) = summed.last_mut() else {
            continue;
        };
        let rate = if row.currency == target {
            Ok(rust_decimal::Decimal::ONE)
        } else {
            match row.year {
                None => Err(rates::NO_YEAR.to_owned()),
                Some(year) => converter
                    .table()
                    .cross(&row.currency, &target, year)
                    .map(|cross| {
                        rates_used.insert(
                            (row.currency.as_str().to_owned(), year),
                            (cross.rate.to_string(), cross.basis),
                        );
                        cross.rate
                    }),
            }
        };
        let cents = u128::try_from(row.total_minor).unwrap_or_default();
        let added = rate.and_then(|rate| {
            rates::product_units(cents, rate)
                .and_then(|units| group.units.checked_add(units))
                .ok_or_else(|| "the converted total is too large to compute exactly".to_owned())
        });
        match added {
            Ok(units) => {
                group.units = units;
                group.count += row.count;
            }
            Err(reason) => {
                group.unconverted_count += row.count;
                *group
                    .unconverted_minor
                    .entry(row.currency.as_str().to_owned())
                    .or_default() += i128::from(row.total_minor);
                group.reasons.insert(reason);
            }
        }
    }
    let items: Vec<Value> = summed
        .iter()
        .map(|group| {
            let mut item = Map::new();
            for (name, value) in groups.iter().zip(&group.keys) {
                item.insert(name.as_str().into(), group_json(value));
            }
            // Nothing converted: no total at all, rather than a misleading 0.
            let total = rates::cents_of_product_units(group.units)
                .filter(|_| group.count > 0)
                .map(rates::money_text);
            item.insert("total".into(), json!(total));
            item.insert("count".into(), json!(group.count));
            item.insert("unconverted_count".into(), json!(group.unconverted_count));
            let unconverted: Map<String, Value> = group
                .unconverted_minor
                .iter()
                .map(|(currency, minor)| {
                    let text = rates::money_text(u128::try_from(*minor).unwrap_or_default());
                    (currency.clone(), json!(text))
                })
                .collect();
            item.insert(
                "unconverted_total_by_currency".into(),
                Value::Object(unconverted),
            );
            item.insert("unconverted_reasons".into(), json!(group.reasons));
            Value::Object(item)
        })
        .collect();
    let rates: Vec<Value> = rates_used
        .into_iter()
        .map(|((from, year), (rate, basis))| {
            json!({"from": from, "year": year, "rate": rate, "rate_basis": basis})
        })
        .collect();
    Ok(json!({
        "currency": target,
        "rounding": ROUNDING,
        "rates": rates,
        "items": items,
    }))
}

/// Agreement counts per group.
#[utoipa::path(get, path = "/v1/stats/agreements", tag = "stats", params(AgreementStatsParams),
    responses((status = 200, description = "Counts per group", body = crate::http::openapi::StatsItems)))]
async fn agreements(
    State(state): State<AppState>,
    Params(And(filters, grouping)): Params<AgreementStatsParams>,
) -> ApiResult<Response> {
    let query = agreement_query(state.store.as_ref(), &filters, None).await?;
    let mut errors = Vec::new();
    let groups: Vec<AgreementGroup> = groups(&grouping.group_by, &mut errors);
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
/// Agreements signed and pledges made, as dated events, newest first.
#[utoipa::path(get, path = "/v1/timeline", tag = "stats", params(TimelineParams),
    responses((status = 200, description = "A page of events", body = crate::http::openapi::TimelinePage)))]
async fn timeline(
    State(state): State<AppState>,
    Params(And(filters, page)): Params<TimelineParams>,
) -> ApiResult<Response> {
    let mut query = agreement_query(state.store.as_ref(), &filters, None).await?;
    query.sort = Sort {
        key: SortKey::SignedOn,
        descending: true,
    };
    // An agreement still being negotiated has no date to place it on.
    query.signed_from = query
        .signed_from
        .max(chrono::NaiveDate::from_ymd_opt(1900, 1, 1));
    let mut errors = Vec::new();
    let paging = paging(&page, query.sort, &mut errors);
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
        let partner = json!({"code": agreement.partner.code, "name": agreement.partner.name,
            "name_uk": agreement.partner.name_uk});
        items.push(json!({
            "date": agreement.signed_on, "type": "signed", "agreement_id": agreement.id,
            "partner": partner, "title": agreement.title, "title_uk": agreement.title_uk, "status": agreement.status,
            "sources": agreement.sources.iter().map(|s| &s.url).collect::<Vec<_>>(),
        }));
        for pledge in &agreement.pledges {
            items.push(json!({
                "date": agreement.signed_on, "type": "pledge", "agreement_id": agreement.id,
                "pledge_id": pledge.id, "partner": partner, "amount": pledge.amount, "currency": pledge.currency,
                "year_from": pledge.year_from, "year_to": pledge.year_to, "kind": pledge.kind,
                "basis": pledge.basis, "years": pledge.years_counted(), "part_of": pledge.part_of,
                "note": pledge.note, "sources": pledge.sources.iter().map(|s| &s.url).collect::<Vec<_>>(),
            }));
        }
    }
    let next_cursor = page
        .next_after
        .as_deref()
        .map(|key| encode_list_cursor(key, query.sort));
    Ok(axum::Json(json!({
        "items": items,
        "next_cursor": next_cursor,
        "revision": super::extract::answering_revision(),
    }))
    .into_response())
}
