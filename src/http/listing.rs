//! Agreement lists in every format: JSON pages, and CSV, NDJSON and a plain
//! text table that stream page by page, so a large export is never built in
//! memory whole.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rust_decimal::Decimal;
use serde_json::Value;

use super::AppState;
use serde::Deserialize;
use utoipa::IntoParams;

use super::convert::{self, CONVERT, ConvertParam, Converter};
use super::invalidation::{Aspects, Reads};
use super::params::{And, Flag, flag, list_of, one_of, read, split_list, value_schema};
use super::query::{
    AgreementFilters, ListOrder, PageParams, Paging, PartnerFilter, agreement_query,
    encode_list_cursor, paging,
};
use crate::domain::FieldError;
use crate::domain::agreement::Agreement;
use crate::domain::area::AreaCode;
use crate::domain::lang::Lang;
use crate::domain::money::{Amount, Currency};
use crate::domain::partner::PartnerCode;
use crate::domain::query::{AgreementQuery, Include};
use crate::error::{ApiError, ApiResult};
use crate::store::{PageRequest, Store};

pub const FIELDS: &[&str] = &[
    "id",
    "partner",
    "title",
    "kind",
    "status",
    "signed_on",
    "signed_at",
    "signed_place",
    "signatories",
    "term_years",
    "expires_on",
    "legally_binding",
    "summary",
    "text_url",
    "markers",
    "areas",
    "pledges",
    "sources",
    "version",
    "created_at",
    "updated_at",
];

value_schema!(FieldList, list_of(one_of(FIELDS.to_vec())));
value_schema!(ListFormat, one_of(vec!["json", "csv", "ndjson", "text"]));
value_schema!(RowKind, one_of(vec!["agreements", "pledges"]));

/// How a list of agreements is answered, beyond its filters and order.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListOptions {
    /// Adds `total`, the number of matching items (`count` alone means true)
    #[param(value_type = Option<Flag>, inline)]
    count: Option<String>,
    /// Only these fields of each item
    #[param(value_type = Option<FieldList>, inline, style = Form, explode = false)]
    #[serde(default)]
    fields: Vec<String>,
    /// The format, instead of the Accept header
    #[param(value_type = Option<ListFormat>, inline)]
    format: Option<String>,
    /// CSV rows: one per agreement (default) or one per pledge (format=csv only)
    #[param(value_type = Option<RowKind>, inline)]
    rows: Option<String>,
    /// With format=csv: a UTF-8 byte order mark first, so that Excel reads the file as UTF-8
    #[param(value_type = Option<Flag>, inline)]
    bom: Option<String>,
}

/// What every list of agreements takes besides its filters.
type ListParams = And<ListOrder, And<PageParams, And<ListOptions, ConvertParam>>>;

/// The parameters of a list of agreements.
pub type AgreementListParams = And<And<PartnerFilter, AgreementFilters>, ListParams>;

/// The parameters of a partner's own list of agreements: its path names the partner.
pub type PartnerAgreementListParams = And<AgreementFilters, ListParams>;

/// What the path itself fixes: the partner or area of a nested listing.
pub enum Scope {
    All,
    Partner(PartnerCode),
    Area(AreaCode),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Csv,
    Ndjson,
    Text,
}

/// Pages exported per store query.
const EXPORT_PAGE: u32 = 500;

fn format_of(format: Option<&str>, headers: &HeaderMap, errors: &mut Vec<FieldError>) -> Format {
    if let Some(name) = format {
        return match name {
            "json" => Format::Json,
            "csv" => Format::Csv,
            "ndjson" => Format::Ndjson,
            "text" => Format::Text,
            _ => {
                errors.push(FieldError::new(
                    "format",
                    "must be one of: json, csv, ndjson, text",
                ));
                Format::Json
            }
        };
    }
    match negotiated_media(headers) {
        "text/csv" => Format::Csv,
        "application/x-ndjson" => Format::Ndjson,
        "text/plain" => Format::Text,
        _ => Format::Json,
    }
}

/// `format=json|text`, or without it `Accept: text/plain`: whether an
/// answer offered as JSON or a table to read is wanted as text.
pub fn text_wanted(format: Option<&str>, headers: &HeaderMap) -> Result<bool, FieldError> {
    match format {
        None => Ok(negotiated_media(headers) == "text/plain"),
        Some("json") => Ok(false),
        Some("text") => Ok(true),
        Some(_) => Err(FieldError::new("format", "must be json or text")),
    }
}

/// The media type the Accept header chooses among those lists are offered
/// in (the first one named that we have; JSON otherwise). Answers, their
/// kept copies and their ETags vary by this, never by the raw header.
pub fn negotiated_media(headers: &HeaderMap) -> &'static str {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for media in accept
        .split(',')
        .map(|m| m.split(';').next().unwrap_or("").trim())
    {
        match media {
            "text/csv" => return "text/csv",
            "application/x-ndjson" | "application/ndjson" => return "application/x-ndjson",
            "text/plain" => return "text/plain",
            "application/atom+xml" => return "application/atom+xml",
            "application/json" | "*/*" => return "application/json",
            _ => {}
        }
    }
    "application/json"
}

/// Answers a list of agreements as the query string asks.
pub async fn respond(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    scope: Scope,
) -> ApiResult<Response> {
    let (filters, And(order, And(page, And(options, convert)))) = match scope {
        Scope::Partner(_) => {
            let And(filters, list) = read::<PartnerAgreementListParams>(uri.query())?;
            (And(PartnerFilter::default(), filters), list)
        }
        Scope::All | Scope::Area(_) => {
            let And(filters, list) = read::<AgreementListParams>(uri.query())?;
            (filters, list)
        }
    };
    let mut query = agreement_query(state.store.as_ref(), &filters, Some(&order)).await?;
    match scope {
        Scope::All => {}
        Scope::Partner(code) => query.partners = vec![code],
        Scope::Area(code) => query.areas.push(vec![code]),
    }
    let mut errors = Vec::new();
    let paging = paging(&page, query.sort, &mut errors);
    let count = flag("count", options.count.as_deref(), &mut errors);
    let format = format_of(options.format.as_deref(), headers, &mut errors);
    let pledge_rows = match options.rows.as_deref() {
        None | Some("agreements") => false,
        Some("pledges") if format == Format::Csv => true,
        Some("pledges") => {
            errors.push(FieldError::new(
                "rows",
                "pledges rows are a CSV export: add format=csv",
            ));
            false
        }
        Some(_) => {
            errors.push(FieldError::new("rows", "must be agreements or pledges"));
            false
        }
    };
    let fields: Option<Vec<String>> = (!options.fields.is_empty()).then(|| {
        split_list(&options.fields)
            .into_iter()
            .filter(|f| {
                let known = FIELDS.contains(f);
                if !known {
                    errors.push(FieldError::new(
                        "fields",
                        format!("{f:?} is not a field; known: {}", FIELDS.join(", ")),
                    ));
                }
                known
            })
            .map(str::to_owned)
            .collect()
    });
    let bom = flag("bom", options.bom.as_deref(), &mut errors);
    if bom && format != Format::Csv {
        errors.push(FieldError::new(
            "bom",
            "applies to CSV only: it marks the file as UTF-8 for Excel",
        ));
    }
    let convert = convert::target(convert.convert.as_deref(), &mut errors);
    if convert.is_some() && format != Format::Json {
        errors.push(FieldError::new(
            CONVERT,
            "applies to JSON answers only: leave it out of CSV, NDJSON and text exports",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    if pledge_rows {
        query.include.pledges = true;
        query.include.sources = true;
    }
    match format {
        Format::Json => {
            let shape = Shape {
                count,
                fields: fields.as_deref(),
                convert,
            };
            json_page(state, uri, query, &paging, shape).await
        }
        export => Ok(stream_export(
            state.store.clone(),
            query,
            &paging,
            export,
            pledge_rows,
            bom,
            // The body streams after this task has answered: its language goes along.
            crate::domain::lang::current(),
        )),
    }
}

/// How a JSON page is shaped beyond the query itself.
struct Shape<'a> {
    count: bool,
    fields: Option<&'a [String]>,
    /// `?convert=`: add converted amounts to the pledges.
    convert: Option<Currency>,
}

async fn json_page(
    state: &AppState,
    uri: &Uri,
    query: AgreementQuery,
    paging: &Paging,
    shape: Shape<'_>,
) -> ApiResult<Response> {
    let Shape {
        count,
        fields,
        convert,
    } = shape;
    let mut page = state
        .store
        .list_agreements(
            &query,
            &PageRequest {
                after: paging.after.clone(),
                limit: paging.limit,
            },
        )
        .await?;
    let next_cursor = page
        .next_after
        .as_deref()
        .map(|key| encode_list_cursor(key, query.sort));
    if let Some(target) = convert {
        let converter =
            Converter::for_agreements(state.store.as_ref(), target, &page.items).await?;
        for agreement in &mut page.items {
            converter.convert_agreement(agreement);
        }
    }
    let total = if count {
        Some(state.store.count_agreements(&query).await?)
    } else {
        None
    };
    let body = ListBody {
        items: page
            .items
            .iter()
            .map(|a| list_item(a, &query, fields))
            .collect(),
        next_cursor: next_cursor.as_deref(),
        revision: super::extract::answering_revision(),
        total,
    };
    let text = serde_json::to_string(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = ([(header::CONTENT_TYPE, "application/json")], text).into_response();
    if let Some(cursor) = next_cursor {
        add_next_link(&mut response, uri, &cursor);
    }
    response.extensions_mut().insert(Reads::Agreements {
        ids: page.items.iter().map(|a| a.id.clone()).collect(),
        picked_by: Aspects::picking(&query),
    });
    Ok(response)
}

/// `Link: <same query, next cursor>; rel="next"`.
fn add_next_link(response: &mut Response, uri: &Uri, cursor: &str) {
    let mut next = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if name != "cursor" {
            next.append_pair(&name, &value);
        }
    }
    next.append_pair("cursor", cursor);
    let link = format!("<{}?{}>; rel=\"next\"", uri.path(), next.finish());
    if let Ok(value) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, value);
    }
}

/// A page of agreements as JSON.
#[derive(serde::Serialize)]
struct ListBody<'a> {
    items: Vec<ListItem<'a>>,
    next_cursor: Option<&'a str>,
    revision: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
}

/// An agreement as a list item: written straight from the agreement when
/// the reader wants all of it (the default), else through a JSON value
/// without the children left out and the fields not asked for. (Going
/// through the value for every item cost a copy of the whole page.)
#[derive(serde::Serialize)]
#[serde(untagged)]
enum ListItem<'a> {
    Whole(&'a Agreement),
    Trimmed(Value),
}

fn list_item<'a>(
    agreement: &'a Agreement,
    query: &AgreementQuery,
    fields: Option<&[String]>,
) -> ListItem<'a> {
    if fields.is_none() && query.include == Include::ALL {
        return ListItem::Whole(agreement);
    }
    let mut value = serde_json::to_value(agreement).unwrap_or(Value::Null);
    if let Value::Object(members) = &mut value {
        for (child, included) in [
            ("areas", query.include.areas),
            ("pledges", query.include.pledges),
            ("sources", query.include.sources),
        ] {
            if !included {
                members.remove(child);
            }
        }
        if let Some(fields) = fields {
            members.retain(|name, _| fields.iter().any(|f| f == name));
        }
    }
    ListItem::Trimmed(value)
}

struct Export {
    store: Arc<dyn Store>,
    /// The language of the text table.
    lang: Lang,
    query: AgreementQuery,
    after: Option<String>,
    /// A client-chosen limit exports one page; otherwise everything.
    single_page: Option<u32>,
    format: Format,
    pledge_rows: bool,
    /// A UTF-8 byte order mark first, for spreadsheets that guess the encoding.
    bom: bool,
    started: bool,
    finished: bool,
}

fn stream_export(
    store: Arc<dyn Store>,
    query: AgreementQuery,
    paging: &Paging,
    format: Format,
    pledge_rows: bool,
    bom: bool,
    lang: Lang,
) -> Response {
    let export = Export {
        store,
        lang,
        query,
        after: paging.after.clone(),
        single_page: paging.explicit_limit.then_some(paging.limit),
        format,
        pledge_rows,
        bom,
        started: false,
        finished: false,
    };
    let stream = futures_util::stream::unfold(export, |mut export| async move {
        if export.finished {
            return None;
        }
        let request = PageRequest {
            after: export.after.take(),
            limit: export.single_page.unwrap_or(EXPORT_PAGE),
        };
        let page = match export.store.list_agreements(&export.query, &request).await {
            Ok(page) => page,
            Err(error) => {
                // The status is sent already: all that is left is to break the stream.
                tracing::error!(%error, "export stopped");
                export.finished = true;
                return Some((Err(std::io::Error::other(error.to_string())), export));
            }
        };
        let mut chunk = String::new();
        if !export.started {
            if export.bom {
                chunk.push('\u{FEFF}');
            }
            chunk.push_str(&header_of(export.format, export.pledge_rows, export.lang));
            export.started = true;
        }
        for agreement in &page.items {
            render(
                &mut chunk,
                agreement,
                &export.query,
                export.format,
                export.pledge_rows,
                export.lang,
            );
        }
        export.after = page.next_after;
        export.finished = export.after.is_none() || export.single_page.is_some();
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(chunk)), export))
    });
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Ndjson => "application/x-ndjson",
        Format::Text => "text/plain; charset=utf-8",
        Format::Json => "application/json",
    };
    let mut response = (
        [(header::CONTENT_TYPE, content_type)],
        // Fused: a reader past the end (the compression layer reads once
        // more to finish its frame) gets the end again, not a panic.
        Body::from_stream(futures_util::StreamExt::fuse(stream)),
    )
        .into_response();
    if format == Format::Csv {
        let name = if pledge_rows { "pledges" } else { "agreements" };
        response.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            attachment(&format!("accords-{name}.csv")),
        );
    }
    response
}

/// `Content-Disposition` for a file a spreadsheet opens: saved under `name`.
pub fn attachment(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

const AGREEMENT_COLUMNS: &[&str] = &[
    "id",
    "partner",
    "partner_name",
    "title",
    "kind",
    "status",
    "signed_on",
    "signed_at",
    "term_years",
    "expires_on",
    "legally_binding",
    "areas",
    "pledge_totals",
    "pledged_amount",
    "pledged_currency",
    "source_urls",
    "version",
    "updated_at",
];

const PLEDGE_COLUMNS: &[&str] = &[
    "agreement_id",
    "partner",
    "partner_name",
    "signed_on",
    "pledge_id",
    "amount",
    "currency",
    "year_from",
    "year_to",
    "kind",
    "measure",
    "basis",
    "years",
    "part_of",
    "in_agreement_text",
    "description",
    "note",
    "source_urls",
];

fn header_of(format: Format, pledge_rows: bool, lang: Lang) -> String {
    match format {
        Format::Csv => {
            let columns = if pledge_rows {
                PLEDGE_COLUMNS
            } else {
                AGREEMENT_COLUMNS
            };
            format!("{}\r\n", columns.join(","))
        }
        Format::Text => {
            let words = match lang {
                Lang::En => ["ID", "PARTNER", "SIGNED", "STATUS", "TITLE", "PLEDGES"],
                Lang::Uk => [
                    "ID",
                    "ПАРТНЕР",
                    "ПІДПИСАНО",
                    "СТАТУС",
                    "НАЗВА",
                    "ЗОБОВ’ЯЗАННЯ",
                ],
            };
            let head = format!(
                "{:<14}  {:<18}  {:<10}  {:<11}  {:<40}  {}",
                words[0], words[1], words[2], words[3], words[4], words[5]
            );
            format!("{head}\n{}\n", "-".repeat(head.chars().count().max(120)))
        }
        Format::Ndjson | Format::Json => String::new(),
    }
}

/// One CSV line: RFC 4180 as `csv::Writer` writes it (a field with a comma,
/// quote or line break quoted, quotes doubled, CRLF at the end), each field
/// one a spreadsheet would run as a formula neutralised first.
pub(crate) fn csv_row(out: &mut String, fields: &[String]) {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .buffer_capacity(256)
        .from_writer(Vec::new());
    let neutralised = fields
        .iter()
        .map(|f| crate::wire::spreadsheet::neutralised(f));
    // Writing into memory fails only on a bug; the row is then left out
    // rather than half written.
    if writer
        .write_record(neutralised.map(|f| f.into_owned()))
        .is_ok()
        && let Ok(bytes) = writer.into_inner()
        && let Ok(line) = String::from_utf8(bytes)
    {
        out.push_str(&line);
    }
}

fn text_of<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// A currency's pledges in one agreement, counted as the stats count them:
/// a per-year pledge once per year of its range, a part of another pledge
/// not at all (its whole is counted).
struct CurrencyTotal {
    total: Decimal,
    pledges: usize,
    first_year: Option<i64>,
    last_year: Option<i64>,
}

fn currency_totals(agreement: &Agreement) -> BTreeMap<&str, CurrencyTotal> {
    let mut totals: BTreeMap<&str, CurrencyTotal> = BTreeMap::new();
    for pledge in agreement.pledges.iter().filter(|p| p.part_of.is_none()) {
        let entry = totals
            .entry(pledge.currency.as_str())
            .or_insert(CurrencyTotal {
                total: Decimal::ZERO,
                pledges: 0,
                first_year: None,
                last_year: None,
            });
        entry.total += pledge.amount.as_decimal() * Decimal::from(pledge.years_counted());
        entry.pledges += 1;
        let from = pledge.year_from.or(pledge.year_to);
        let to = pledge.year_to.or(pledge.year_from);
        entry.first_year = match (entry.first_year, from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        entry.last_year = match (entry.last_year, to) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    totals
}

fn exact(total: Decimal) -> String {
    Amount::from_decimal(total).map_or_else(|_| total.to_string(), |a| a.to_string())
}

/// Exact totals per currency, in currency order: "EUR 100; USD 4500000000".
fn pledge_totals(agreement: &Agreement) -> String {
    currency_totals(agreement)
        .into_iter()
        .map(|(currency, t)| format!("{currency} {}", exact(t.total)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// For a spreadsheet: the total as a plain number and its currency, when
/// the agreement's pledges are in one currency (a sum across currencies
/// would mean nothing); empty otherwise, with `pledge_totals` beside it.
fn single_currency_total(agreement: &Agreement) -> (String, String) {
    let totals = currency_totals(agreement);
    match totals.into_iter().collect::<Vec<_>>().as_slice() {
        [(currency, t)] => (exact(t.total), (*currency).to_owned()),
        _ => (String::new(), String::new()),
    }
}

/// The text table's pledge cell: per currency the total with thousands
/// separators, and how many pledges over which years made it, so that two
/// pledges never read as one: "EUR 2,000,000 (2 pledges, 2023–2028)".
fn pledge_cell(agreement: &Agreement, lang: Lang) -> String {
    let totals = currency_totals(agreement);
    if totals.is_empty() {
        return match lang {
            Lang::En => "no stated amount",
            Lang::Uk => "суму не вказано",
        }
        .into();
    }
    totals
        .into_iter()
        .map(|(currency, t)| {
            let span = match (t.first_year, t.last_year) {
                (Some(a), Some(b)) if a == b => format!(", {a}"),
                (Some(a), Some(b)) => format!(", {a}–{b}"),
                _ => String::new(),
            };
            let noun = match (lang, t.pledges) {
                (Lang::En, 1) => "pledge",
                (Lang::En, _) => "pledges",
                // 1–4, 21–24…: зобов’язання; 5–20, 25–30…: зобов’язань.
                (Lang::Uk, n) if matches!(n % 10, 1..=4) && !(11..=14).contains(&(n % 100)) => {
                    "зобов’язання"
                }
                (Lang::Uk, _) => "зобов’язань",
            };
            format!(
                "{currency} {} ({} {noun}{span})",
                super::text_view::grouped(&exact(t.total)),
                t.pledges
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn render(
    out: &mut String,
    agreement: &Agreement,
    query: &AgreementQuery,
    format: Format,
    pledge_rows: bool,
    lang: Lang,
) {
    match format {
        Format::Ndjson | Format::Json => {
            if let Ok(line) = serde_json::to_string(&list_item(agreement, query, None)) {
                out.push_str(&line);
            }
            out.push('\n');
        }
        Format::Csv if pledge_rows => {
            for pledge in &agreement.pledges {
                let urls: Vec<&str> = pledge.sources.iter().map(|s| s.url.as_str()).collect();
                csv_row(
                    out,
                    &[
                        agreement.id.clone(),
                        agreement.partner.code.as_str().to_owned(),
                        agreement.partner.name.clone(),
                        text_of(agreement.signed_on),
                        pledge.id.clone(),
                        pledge.amount.to_string(),
                        pledge.currency.as_str().to_owned(),
                        text_of(pledge.year_from),
                        text_of(pledge.year_to),
                        crate::domain::Vocabulary::as_str(pledge.kind).to_owned(),
                        text_of(pledge.measure.map(crate::domain::Vocabulary::as_str)),
                        crate::domain::Vocabulary::as_str(pledge.basis).to_owned(),
                        pledge.years_counted().to_string(),
                        text_of(pledge.part_of.as_deref()),
                        text_of(pledge.in_agreement_text),
                        text_of(pledge.description.as_deref()),
                        text_of(pledge.note.as_deref()),
                        urls.join(" "),
                    ],
                );
            }
        }
        Format::Csv => {
            let areas: Vec<&str> = agreement.areas.iter().map(|a| a.code.as_str()).collect();
            let (pledged_amount, pledged_currency) = single_currency_total(agreement);
            let urls: Vec<&str> = agreement.sources.iter().map(|s| s.url.as_str()).collect();
            csv_row(
                out,
                &[
                    agreement.id.clone(),
                    agreement.partner.code.as_str().to_owned(),
                    agreement.partner.name.clone(),
                    agreement.title.clone(),
                    crate::domain::Vocabulary::as_str(agreement.kind).to_owned(),
                    crate::domain::Vocabulary::as_str(agreement.status).to_owned(),
                    text_of(agreement.signed_on),
                    text_of(agreement.signed_at.as_deref()),
                    text_of(agreement.term_years),
                    text_of(agreement.expires_on),
                    text_of(agreement.legally_binding),
                    areas.join(";"),
                    pledge_totals(agreement),
                    pledged_amount,
                    pledged_currency,
                    urls.join(" "),
                    agreement.version.to_string(),
                    agreement
                        .updated_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ],
            );
        }
        Format::Text => {
            // In Ukrainian where the data has it; otherwise the English.
            let (title, partner) = match lang {
                Lang::Uk => (
                    agreement.title_uk.as_ref().unwrap_or(&agreement.title),
                    agreement
                        .partner
                        .name_uk
                        .as_ref()
                        .unwrap_or(&agreement.partner.name),
                ),
                Lang::En => (&agreement.title, &agreement.partner.name),
            };
            let title: String = if title.chars().count() > 40 {
                title.chars().take(39).chain(std::iter::once('…')).collect()
            } else {
                title.clone()
            };
            let partner: String = partner.chars().take(18).collect();
            out.push_str(&format!(
                "{:<14}  {partner:<18}  {:<10}  {:<11}  {title:<40}  {}\n",
                agreement.id,
                text_of(agreement.signed_on),
                crate::domain::Vocabulary::as_str(agreement.status),
                pledge_cell(agreement, lang)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_as_rfc_4180_says() {
        let row = |fields: &[&str]| {
            let mut out = String::new();
            csv_row(
                &mut out,
                &fields.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            );
            out
        };
        assert_eq!(row(&["plain", "a,b"]), "plain,\"a,b\"\r\n");
        assert_eq!(row(&["say \"hi\""]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(row(&["two\nlines", ""]), "\"two\nlines\",\r\n");
    }
}
