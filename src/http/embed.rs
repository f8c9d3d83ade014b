//! What a story embeds: an agreement as a small card, and the pledge totals
//! of /v1/stats/pledges as a bar chart (SVG, or the SVG in a page for an
//! iframe), and the oEmbed answer that turns a pasted accords URL into one of
//! them. Self-contained: no script, nothing loaded from anywhere; framable
//! by the origins in ACCORDS_EMBED_ORIGINS only. The same data gives the
//! same bytes, so answers cache and diff.

use crate::domain::text::escape_markup;
use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use serde::Deserialize;
use utoipa::IntoParams;

use super::params::{NoParams, Params, parameter_names, read};
use super::query::Filters;
use super::stats::{PledgeStats, PledgeTotalsParams, Provenance, pledge_stats, provenance};
use super::text_view::{grouped, short_amount};
use crate::domain::FieldError;
use crate::domain::Vocabulary;
use crate::domain::agreement::Agreement;
use crate::domain::area::AreaCode;
use crate::domain::lang::Lang;
use crate::domain::marker::Markers;
use crate::domain::partner::PartnerCode;
use crate::domain::pledge::{PledgeBasis, PledgeKind};
use crate::domain::query::PledgeGroup;
use crate::error::{ApiError, ApiResult};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(card))
        .routes(routes!(chart_svg))
        .routes(routes!(chart_page))
        .routes(routes!(oembed))
}

/// Bars a chart shows at most; the rest are counted in a last line.
const MAX_BARS: usize = 60;
const CHART_WIDTH: i64 = 640;
const CARD_WIDTH: i64 = 400;
const CARD_HEIGHT: i64 = 640;

/// The content security policy of every embed: nothing but inline styles,
/// framable by `frame_ancestors` (from ACCORDS_EMBED_ORIGINS).
fn policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; \
         form-action 'none'; frame-ancestors {frame_ancestors}"
    )
}

fn embed_answer(state: &AppState, content_type: &'static str, body: String) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(csp) = HeaderValue::from_str(&policy(&state.options.embed_frame_ancestors)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The words of the embeds, per language.
struct Words {
    signed: &'static str,
    not_signed: &'static str,
    in_place: &'static str,
    term: &'static str,
    years: &'static str,
    to: &'static str,
    not_stated: &'static str,
    status: &'static str,
    pledges: &'static str,
    no_amount: &'static str,
    a_year: &'static str,
    part_of: &'static str,
    areas: &'static str,
    sources: &'static str,
    no_source: &'static str,
    marked: &'static str,
    data_as_of: &'static str,
    on_dashboard: &'static str,
    no_uk_title: &'static str,
    chart_title: &'static str,
    by: fn(PledgeGroup) -> &'static str,
    converted_to: &'static str,
    rates: &'static str,
    not_converted: &'static str,
    source_line: &'static str,
    more_bars: &'static str,
    no_data: &'static str,
    pledges_counted: &'static str,
}

impl Words {
    fn of(lang: Lang) -> &'static Words {
        match lang {
            Lang::En => &EN,
            Lang::Uk => &UK,
        }
    }
}

const EN: Words = Words {
    signed: "Signed",
    not_signed: "Not signed yet",
    in_place: "in",
    term: "Term",
    years: "years",
    to: "to",
    not_stated: "not stated",
    status: "Status",
    pledges: "Pledges",
    no_amount: "No amount stated.",
    a_year: "a year",
    part_of: "part of",
    areas: "Areas of cooperation",
    sources: "Sources",
    no_source: "no source yet",
    marked: "Marked facts",
    data_as_of: "Data as of",
    on_dashboard: "This agreement on accords",
    no_uk_title: "No official Ukrainian title is known yet; the English title is shown.",
    chart_title: "Pledges",
    by: |group| match group {
        PledgeGroup::Partner => "by partner",
        PledgeGroup::Year => "by year",
        PledgeGroup::Kind => "by kind",
        PledgeGroup::Measure => "by measure",
        PledgeGroup::Area => "by area",
    },
    converted_to: "converted to",
    rates: "Rates",
    not_converted: "pledges without a usable rate are left out",
    source_line: "Source: accords, Ukraine's bilateral security agreements",
    more_bars: "more groups not shown",
    no_data: "No pledges match.",
    pledges_counted: "pledges",
};

const UK: Words = Words {
    signed: "Підписано",
    not_signed: "Ще не підписано",
    in_place: "у",
    term: "Строк",
    years: "років",
    to: "до",
    not_stated: "не вказано",
    status: "Стан",
    pledges: "Зобов’язання",
    no_amount: "Суму не вказано.",
    a_year: "щороку",
    part_of: "частина",
    areas: "Сфери співпраці",
    sources: "Джерела",
    no_source: "джерела ще немає",
    marked: "Позначені факти",
    data_as_of: "Дані станом на",
    on_dashboard: "Ця угода на accords",
    no_uk_title: "Офіційна українська назва поки невідома; показано англійську.",
    chart_title: "Зобов’язання",
    by: |group| match group {
        PledgeGroup::Partner => "за партнерами",
        PledgeGroup::Year => "за роками",
        PledgeGroup::Kind => "за видами",
        PledgeGroup::Measure => "за мірою",
        PledgeGroup::Area => "за сферами",
    },
    converted_to: "у перерахунку на",
    rates: "Курси",
    not_converted: "зобов’язання без придатного курсу не враховано",
    source_line: "Джерело: accords, двосторонні безпекові угоди України",
    more_bars: "груп не показано",
    no_data: "Немає зобов’язань за цим запитом.",
    pledges_counted: "зобов’язань",
};

const CARD_STYLE: &str = "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;background:#fff}\
.card{max-width:40rem;padding:12px 14px;border:1px solid #d0d4da;border-radius:6px;overflow-wrap:anywhere}\
h1{font-size:1.1em;margin:.2em 0 .4em}h2{font-size:.95em;margin:1em 0 .3em;text-transform:uppercase;letter-spacing:.03em;color:#444}\
.partner{margin:0;font-weight:600;color:#1f4e8c}.note{font-size:.85em;color:#555}\
dl{margin:0}dt{font-weight:600;display:inline}dd{display:inline;margin:0}dd::after{content:'';display:block}\
ul,ol{margin:0;padding-left:1.3em}li{margin:.15em 0}.exact{color:#555;font-size:.9em}\
mark{background:#fff3bf;padding:0 .2em;border-radius:2px;font-size:.85em}mark.contested{background:#ffd8d8}\
a{color:#1f4e8c}footer{margin-top:1em;font-size:.85em;color:#555}\
@media print{.card{border:0;padding:0}a{color:inherit}a[href^='http']::after{content:' <' attr(href) '>';font-size:.8em}}";

/// An agreement as a card for articles: partner, signing, term, pledges
/// per currency with their basis, areas, sources as links, marked facts,
/// and the data's time with a link back.
#[utoipa::path(get, path = "/embed/agreements/{id}", tag = "embed",
    params(("id" = String, Path, description = "The agreement id, e.g. ua-jp-2024")),
    responses((status = 200, description = "A self-contained HTML card (no script, nothing loaded from elsewhere)",
        body = String, content_type = "text/html")))]
async fn card(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Path(id): Path<String>,
    Params(NoParams {}): Params<NoParams>,
) -> ApiResult<Response> {
    let agreement = super::agreements::load(state.store.as_ref(), &id).await?;
    let html = card_html(&agreement, lang);
    Ok(embed_answer(&state, "text/html; charset=utf-8", html))
}

fn marks(markers: &Markers, field: &str, lang: Lang) -> String {
    markers.get(field).map_or(String::new(), |marker| {
        format!(
            " <mark class=\"{}\" title=\"{}\">{}</mark>",
            marker.status.as_str(),
            escape_markup(&marker.note),
            lang.marker_status(marker.status)
        )
    })
}

fn card_html(agreement: &Agreement, lang: Lang) -> String {
    let words = Words::of(lang);
    let uk = lang == Lang::Uk;
    let partner = match (&agreement.partner.name_uk, uk) {
        (Some(name), true) => name.clone(),
        _ => agreement.partner.name.clone(),
    };
    let (title, title_fallback) = match (&agreement.title_uk, uk) {
        (Some(title), true) => (title.clone(), false),
        (None, true) => (agreement.title.clone(), true),
        _ => (agreement.title.clone(), false),
    };
    let mark = |field: &str| marks(&agreement.markers, field, lang);
    let number_of = |source_id: &str| {
        agreement
            .sources
            .iter()
            .position(|s| s.id == source_id)
            .map_or_else(String::new, |i| format!("[{}]", i + 1))
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title_text}</title>\n<style>{CARD_STYLE}</style>\n</head>\n<body>\n<article class=\"card\">\n",
        lang = lang.as_str(),
        title_text = escape_markup(&format!("{partner} — {title}")),
    );
    let _ = writeln!(out, "<p class=\"partner\">{}</p>", escape_markup(&partner));
    let title_lang = if title_fallback { " lang=\"en\"" } else { "" };
    let _ = writeln!(
        out,
        "<h1{title_lang}>{}{}</h1>",
        escape_markup(&title),
        mark("title")
    );
    if title_fallback {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", words.no_uk_title);
    }
    out.push_str("<dl>\n");
    let signed = match agreement.signed_on {
        Some(on) => {
            let place = agreement.signed_at.as_deref().map_or(String::new(), |at| {
                format!(
                    " {} {}{}",
                    words.in_place,
                    escape_markup(at),
                    mark("signed_at")
                )
            });
            format!("{on}{}{place}", mark("signed_on"))
        }
        None => words.not_signed.to_owned(),
    };
    let _ = writeln!(out, "<dt>{}:</dt> <dd>{signed}</dd>", words.signed);
    let term = match (agreement.term_years, agreement.expires_on) {
        (Some(years), Some(end)) => format!("{years} {}, {} {end}", words.years, words.to),
        (Some(years), None) => format!("{years} {}", words.years),
        (None, Some(end)) => format!("{} {end}", words.to),
        (None, None) => words.not_stated.to_owned(),
    };
    let _ = writeln!(
        out,
        "<dt>{}:</dt> <dd>{term}{}</dd>",
        words.term,
        mark("term_years")
    );
    let _ = writeln!(
        out,
        "<dt>{}:</dt> <dd>{} · {}{}</dd>",
        words.status,
        lang.agreement_kind(agreement.kind),
        lang.agreement_status(agreement.status),
        mark("status")
    );
    out.push_str("</dl>\n");

    let _ = writeln!(out, "<h2>{}</h2>", words.pledges);
    if agreement.pledges.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", words.no_amount);
    }
    // Per currency, in the order of the pledges' first appearance: amounts
    // of different currencies are never added.
    let mut currencies: Vec<&str> = Vec::new();
    for pledge in &agreement.pledges {
        if !currencies.contains(&pledge.currency.as_str()) {
            currencies.push(pledge.currency.as_str());
        }
    }
    for currency in currencies {
        let _ = writeln!(out, "<p><strong>{currency}</strong></p>\n<ul>");
        for pledge in agreement
            .pledges
            .iter()
            .filter(|p| p.currency.as_str() == currency)
        {
            let amount = pledge.amount.as_decimal();
            let short = short_amount(currency, amount, lang);
            let basis = match pledge.basis {
                PledgeBasis::PerYear => format!(" {}", words.a_year),
                PledgeBasis::Total => format!(" {}", lang.pledge_basis(PledgeBasis::Total)),
            };
            let span = match (pledge.year_from, pledge.year_to) {
                (Some(from), Some(to)) if from != to => format!(", {from}–{to}"),
                (Some(year), _) | (None, Some(year)) => format!(", {year}"),
                (None, None) => String::new(),
            };
            let part = pledge.part_of.as_deref().map_or(String::new(), |whole| {
                format!(" ({} {})", words.part_of, escape_markup(whole))
            });
            let cited: Vec<String> = pledge.sources.iter().map(|s| number_of(&s.id)).collect();
            let cited = if cited.is_empty() {
                format!(" <mark class=\"unverified\">{}</mark>", words.no_source)
            } else {
                format!(" {}", cited.join(""))
            };
            let pledge_marks: String = pledge
                .markers
                .keys()
                .map(|field| marks(&pledge.markers, field, lang))
                .collect();
            let _ = writeln!(
                out,
                "<li data-pledge=\"{id}\"><span class=\"amount\">{short}</span> <span class=\"exact\">({currency} {exact})</span>{basis}{span} · {kind}{part}{cited}{pledge_marks}</li>",
                id = escape_markup(&pledge.id),
                exact = grouped(&pledge.amount.to_string()),
                kind = lang.pledge_kind(pledge.kind),
            );
        }
        out.push_str("</ul>\n");
    }

    if !agreement.areas.is_empty() {
        let names: Vec<String> = agreement
            .areas
            .iter()
            .map(|area| match (&area.name_uk, uk) {
                (Some(name), true) => escape_markup(name),
                (None, true) => format!("<span lang=\"en\">{}</span>", escape_markup(&area.name)),
                _ => escape_markup(&area.name),
            })
            .collect();
        let _ = writeln!(out, "<h2>{}</h2>\n<p>{}</p>", words.areas, names.join(", "));
    }

    if !agreement.markers.is_empty() {
        let _ = writeln!(out, "<h2>{}</h2>\n<ul>", words.marked);
        for (field, marker) in &agreement.markers {
            let _ = writeln!(
                out,
                "<li><mark class=\"{}\">{}</mark> {}: {}</li>",
                marker.status.as_str(),
                lang.marker_status(marker.status),
                escape_markup(field),
                escape_markup(&marker.note)
            );
        }
        out.push_str("</ul>\n");
    }

    let _ = writeln!(out, "<h2>{}</h2>\n<ol>", words.sources);
    for source in &agreement.sources {
        let by: Vec<String> = source
            .publisher
            .iter()
            .cloned()
            .chain(source.published_on.map(|d| d.to_string()))
            .collect();
        let by = if by.is_empty() {
            String::new()
        } else {
            format!(" — {}", escape_markup(&by.join(", ")))
        };
        let _ = writeln!(
            out,
            "<li><a href=\"{}\" rel=\"noopener noreferrer\" target=\"_blank\">{}</a>{by}</li>",
            escape_markup(&source.url),
            escape_markup(&source.title)
        );
    }
    out.push_str("</ol>\n");
    let as_of = agreement
        .updated_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let _ = write!(
        out,
        "<footer>{} <time datetime=\"{as_of}\">{as_of}</time> · \
         <a href=\"/?open={id}\" target=\"_blank\" rel=\"noopener\">{}</a></footer>\n\
         </article>\n</body>\n</html>\n",
        words.data_as_of,
        words.on_dashboard,
        id = escape_markup(&agreement.id),
    );
    out
}

/// The pledge totals of /v1/stats/pledges for the same query, as a bar chart.
#[utoipa::path(get, path = "/embed/charts/pledges.svg", tag = "embed",
    params(PledgeTotalsParams),
    responses((status = 200, description = "An SVG bar chart of the exact totals, one currency (or converted with `convert`), with title, description and source line",
        body = String, content_type = "image/svg+xml")))]
async fn chart_svg(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    uri: Uri,
) -> ApiResult<Response> {
    let chart = chart(&state, &uri, lang).await?;
    Ok(embed_answer(
        &state,
        "image/svg+xml; charset=utf-8",
        chart.svg,
    ))
}

/// The same chart in a page, for an iframe.
#[utoipa::path(get, path = "/embed/charts/pledges", tag = "embed",
    params(PledgeTotalsParams),
    responses((status = 200, description = "The SVG chart in a self-contained HTML page", body = String, content_type = "text/html")))]
async fn chart_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    uri: Uri,
) -> ApiResult<Response> {
    let Chart { svg, title, .. } = chart(&state, &uri, lang).await?;
    let title = escape_markup(&title);
    let html = format!(
        "<!doctype html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n\
         <style>body{{margin:0;background:#fff}}svg{{display:block;width:100%;height:auto;max-width:{CHART_WIDTH}px}}</style>\n\
         </head>\n<body>\n{svg}</body>\n</html>\n",
        lang.as_str()
    );
    Ok(embed_answer(&state, "text/html; charset=utf-8", html))
}

/// A drawn chart: the SVG, its title and its height in pixels.
struct Chart {
    svg: String,
    title: String,
    height: i64,
}

/// One bar: its label, the exact total and how many pledges it counts.
struct Bar {
    key: String,
    label: String,
    total: Decimal,
    exact: String,
    count: i64,
}

/// A chart takes the parameters of the pledge totals: the stats filters,
/// one `group_by`, `convert`.
async fn chart(state: &AppState, uri: &Uri, lang: Lang) -> ApiResult<Chart> {
    let params = read::<PledgeTotalsParams>(uri.query())?;
    let mut errors = Vec::new();
    if super::params::split_list(&params.1.0.group_by).len() > 1 {
        errors.push(FieldError::new(
            "group_by",
            "a chart groups by one of: partner, year, kind, measure, area",
        ));
    }
    let stats = pledge_stats(state, &params, errors).await?;
    let group = stats
        .groups
        .first()
        .copied()
        .unwrap_or(PledgeGroup::Partner);
    let converted = stats.body.get("converted");
    let (currency, rows) = match converted {
        Some(converted) => (
            converted["currency"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            converted["items"].as_array().cloned().unwrap_or_default(),
        ),
        None => {
            let items = stats.body["items"].as_array().cloned().unwrap_or_default();
            let mut currencies: Vec<String> = items
                .iter()
                .filter_map(|i| i["currency"].as_str().map(str::to_owned))
                .collect();
            currencies.sort();
            currencies.dedup();
            if currencies.len() > 1 {
                return Err(ApiError::InvalidQuery(vec![FieldError::new(
                    "currency",
                    format!(
                        "a chart shows one currency, and these pledges are in {}: add currency= (one of them) or convert= (a currency to convert all to)",
                        currencies.join(", ")
                    ),
                )]));
            }
            (currencies.pop().unwrap_or_default(), items)
        }
    };
    let mut bars = Vec::new();
    for row in &rows {
        let Some(exact) = row["total"].as_str() else {
            continue;
        };
        let total: Decimal = exact.parse().unwrap_or_default();
        let key = match &row[group.as_str()] {
            Value::String(text) => text.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        bars.push(Bar {
            label: group_label(state, group, &key, lang).await?,
            key,
            total,
            exact: exact.to_owned(),
            count: row["count"].as_i64().unwrap_or_default(),
        });
    }
    // Years read in order; other groups largest first (ties by key).
    if group != PledgeGroup::Year {
        bars.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
    }
    let provenance = provenance(state, &stats.query).await?;
    Ok(chart_svg_text(
        &stats,
        &filters_text(uri.query()),
        group,
        &currency,
        &bars,
        &provenance,
        lang,
    ))
}

async fn group_label(
    state: &AppState,
    group: PledgeGroup,
    key: &str,
    lang: Lang,
) -> ApiResult<String> {
    let words = Words::of(lang);
    if key.is_empty() {
        return Ok(format!("({})", words.not_stated));
    }
    Ok(match group {
        PledgeGroup::Partner => {
            let partner = match PartnerCode::parse(key) {
                Ok(code) => state.store.get_partner(&code).await?,
                Err(_) => None,
            };
            partner.map_or_else(
                || key.to_owned(),
                |p| match (lang, p.name_uk) {
                    (Lang::Uk, Some(name)) => name,
                    _ => p.name,
                },
            )
        }
        PledgeGroup::Area => {
            let area = match AreaCode::parse(key) {
                Ok(code) => state.store.get_area(&code).await?,
                Err(_) => None,
            };
            area.map_or_else(
                || key.to_owned(),
                |a| match (lang, a.name_uk) {
                    (Lang::Uk, Some(name)) => name,
                    _ => a.name,
                },
            )
        }
        PledgeGroup::Kind => PledgeKind::parse(key)
            .map(|kind| lang.pledge_kind(kind).to_owned())
            .unwrap_or_else(|_| key.to_owned()),
        PledgeGroup::Year | PledgeGroup::Measure => key.to_owned(),
    })
}

/// The filters a chart was drawn with, as `name=value` for its subtitle.
fn filters_text(query: Option<&str>) -> String {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    parameter_names::<Filters>()
        .iter()
        .flat_map(|name| {
            pairs
                .iter()
                .filter(move |(given, _)| given == name)
                .map(move |(_, v)| format!("{name}={v}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn chart_svg_text(
    stats: &PledgeStats,
    subtitle: &str,
    group: PledgeGroup,
    currency: &str,
    bars: &[Bar],
    provenance: &Provenance,
    lang: Lang,
) -> Chart {
    let words = Words::of(lang);
    let converted = stats.body.get("converted");
    let title = match converted {
        Some(_) => format!(
            "{} {}, {} {currency}",
            words.chart_title,
            (words.by)(group),
            words.converted_to
        ),
        None if currency.is_empty() => format!("{} {}", words.chart_title, (words.by)(group)),
        None => format!("{} {}, {currency}", words.chart_title, (words.by)(group)),
    };
    let shown = &bars[..bars.len().min(MAX_BARS)];
    let hidden = bars.len() - shown.len();
    let max = shown.iter().map(|b| b.total).max().unwrap_or(Decimal::ZERO);
    const LEFT: i64 = 180;
    const BAR_AREA: i64 = CHART_WIDTH - LEFT - 110;
    const ROW: i64 = 26;
    let top: i64 = if subtitle.is_empty() { 52 } else { 70 };
    let mut notes: Vec<String> = Vec::new();
    if let Some(converted) = converted {
        let mut bases: Vec<String> = converted["rates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["rate_basis"].as_str().map(str::to_owned))
            .collect();
        bases.sort();
        bases.dedup();
        if !bases.is_empty() {
            notes.push(format!("{}: {}", words.rates, bases.join("; ")));
        }
        let unconverted: i64 = converted["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["unconverted_count"].as_i64())
            .sum();
        if unconverted > 0 {
            notes.push(format!("{unconverted} {}", words.not_converted));
        }
    }
    if hidden > 0 {
        notes.push(format!("+{hidden} {}", words.more_bars));
    }
    let as_of = provenance.as_of_text().unwrap_or_default();
    // Two lines, so that neither runs past the chart's width.
    let source_lines = [
        words.source_line.to_owned(),
        format!(
            "{} / {} · {} {as_of}",
            agreements_count(provenance.agreements, lang),
            sources_count(provenance.sources, lang),
            words.data_as_of,
        ),
    ];
    let source_line = source_lines.join(" · ");
    let rows = shown.len().max(1) as i64;
    let height = top + rows * ROW + 24 + (notes.len() as i64 + 2) * 16;
    let mut desc: Vec<String> = shown
        .iter()
        .map(|b| {
            format!(
                "{}: {currency} {} ({} {})",
                b.label,
                grouped(&b.exact),
                b.count,
                words.pledges_counted
            )
        })
        .collect();
    desc.extend(notes.iter().cloned());
    desc.push(source_line.clone());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {CHART_WIDTH} {height}\" width=\"{CHART_WIDTH}\" height=\"{height}\" \
         role=\"img\" aria-labelledby=\"chart-title chart-desc\" lang=\"{}\" font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\">",
        lang.as_str()
    );
    let _ = writeln!(
        out,
        "<title id=\"chart-title\">{}</title>",
        escape_markup(&title)
    );
    let _ = writeln!(
        out,
        "<desc id=\"chart-desc\">{}</desc>",
        escape_markup(&desc.join("; "))
    );
    let _ = writeln!(
        out,
        "<rect width=\"{CHART_WIDTH}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"16\" y=\"30\" font-size=\"18\" font-weight=\"600\" fill=\"#1a1a1a\">{}</text>",
        escape_markup(&title)
    );
    if !subtitle.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"16\" y=\"50\" font-size=\"12\" fill=\"#555555\">{}</text>",
            escape_markup(subtitle)
        );
    }
    if shown.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"16\" y=\"{}\" font-size=\"13\" fill=\"#1a1a1a\">{}</text>",
            top + 17,
            words.no_data
        );
    }
    for (i, bar) in shown.iter().enumerate() {
        let y = top + i as i64 * ROW;
        let width = if max > Decimal::ZERO {
            (bar.total * Decimal::from(BAR_AREA) / max)
                .round()
                .to_string()
                .parse::<i64>()
                .unwrap_or(0)
                .max(1)
        } else {
            0
        };
        let _ = writeln!(
            out,
            "<g class=\"bar\" data-group=\"{}\" data-total=\"{}\" data-currency=\"{currency}\">\
             <title>{}: {currency} {}</title>\
             <text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"end\" fill=\"#1a1a1a\">{}</text>\
             <rect x=\"{LEFT}\" y=\"{}\" width=\"{width}\" height=\"18\" fill=\"#1f4e8c\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#1a1a1a\">{}</text></g>",
            escape_markup(&bar.key),
            escape_markup(&bar.exact),
            escape_markup(&bar.label),
            grouped(&bar.exact),
            LEFT - 8,
            y + 14,
            escape_markup(&truncate_label(&bar.label)),
            y + 1,
            LEFT + width + 6,
            y + 14,
            escape_markup(&short_amount(currency, bar.total, lang)),
        );
    }
    let mut y = top + rows * ROW + 16;
    for note in &notes {
        let _ = writeln!(
            out,
            "<text x=\"16\" y=\"{y}\" font-size=\"11\" fill=\"#555555\">{}</text>",
            escape_markup(note)
        );
        y += 16;
    }
    for line in &source_lines {
        let _ = writeln!(
            out,
            "<text x=\"16\" y=\"{y}\" font-size=\"11\" fill=\"#555555\">{}</text>",
            escape_markup(line)
        );
        y += 16;
    }
    out.push_str("</svg>\n");
    Chart {
        svg: out,
        title,
        height,
    }
}

fn truncate_label(label: &str) -> String {
    const MAX: usize = 24;
    if label.chars().count() <= MAX {
        return label.to_owned();
    }
    let cut: String = label.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

fn agreements_count(n: i64, lang: Lang) -> String {
    match lang {
        Lang::En if n == 1 => "1 agreement".into(),
        Lang::En => format!("{n} agreements"),
        Lang::Uk => format!("угод: {n}"),
    }
}

fn sources_count(n: i64, lang: Lang) -> String {
    match lang {
        Lang::En if n == 1 => "1 source".into(),
        Lang::En => format!("{n} sources"),
        Lang::Uk => format!("джерел: {n}"),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OembedParams {
    /// An accords URL: /embed/agreements/{id}, /v1/agreements/{id}, /?open={id}, /embed/charts/pledges[.svg]?... or /v1/stats/pledges?...
    #[param(value_type = String)]
    url: Option<String>,
    /// json (the only format offered)
    format: Option<String>,
    /// The widest the embed may be, in pixels
    #[param(value_type = Option<i64>, minimum = 1, maximum = 10000)]
    maxwidth: Option<String>,
    /// The tallest the embed may be, in pixels
    #[param(value_type = Option<i64>, minimum = 1, maximum = 10000)]
    maxheight: Option<String>,
}

/// oEmbed (https://oembed.com): a pasted accords URL of an agreement (its
/// card, its API resource or the dashboard's `/?open=ID`) or of a pledge
/// chart (its embed or /v1/stats/pledges) becomes an iframe of the embed.
#[utoipa::path(get, path = "/oembed", tag = "embed",
    params(OembedParams),
    responses(
        (status = 200, description = "An oEmbed 1.0 `rich` answer with the iframe HTML", body = Object, content_type = "application/json"),
        (status = 404, description = "Not an embeddable URL of this service, or no such agreement (as oEmbed asks)",
            body = crate::http::openapi::Problem, content_type = "application/problem+json")))]
async fn oembed(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<OembedParams>,
) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let url = params.url.unwrap_or_default();
    if url.is_empty() {
        errors.push(FieldError::new(
            "url",
            "is required: an accords URL to embed",
        ));
    }
    match params.format.as_deref() {
        None | Some("json") => {}
        Some(_) => errors.push(FieldError::new("format", "only json is offered")),
    }
    let mut bound = |name: &str, value: Option<&str>| -> Option<i64> {
        let text = value?;
        match text.parse::<i64>() {
            Ok(n) if (1..=10_000).contains(&n) => Some(n),
            _ => {
                errors.push(FieldError::new(
                    name,
                    "must be a whole number of pixels from 1 to 10000",
                ));
                None
            }
        }
    };
    let max_width = bound("maxwidth", params.maxwidth.as_deref());
    let max_height = bound("maxheight", params.maxheight.as_deref());
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let target = embed_target(&url, host).ok_or_else(|| {
        ApiError::not_found(format!(
            "{url:?} is not an accords URL of this service ({host}) that can be embedded"
        ))
    })?;
    let (src, title, width, height) = match target {
        EmbedTarget::Agreement { origin, id } => {
            let agreement = super::agreements::load(state.store.as_ref(), &id).await?;
            (
                format!("{origin}/embed/agreements/{}", agreement.id),
                format!("{} — {}", agreement.partner.name, agreement.title),
                CARD_WIDTH,
                CARD_HEIGHT,
            )
        }
        EmbedTarget::Chart { origin, query } => {
            // The chart must be drawable: the same checks as the chart itself.
            let chart_uri: Uri = format!("/embed/charts/pledges?{query}")
                .parse()
                .map_err(|_| ApiError::not_found("the chart URL cannot be read"))?;
            let (chart_lang, stripped) = super::lang::requested(&HeaderMap::new(), &chart_uri)?;
            let drawn = chart(&state, &stripped.unwrap_or(chart_uri), chart_lang).await?;
            let separator = if query.is_empty() { "" } else { "?" };
            (
                format!("{origin}/embed/charts/pledges{separator}{query}"),
                drawn.title,
                CHART_WIDTH,
                drawn.height,
            )
        }
    };
    let width = max_width.map_or(width, |m| width.min(m));
    let height = max_height.map_or(height, |m| height.min(m));
    let html = format!(
        "<iframe src=\"{}\" width=\"{width}\" height=\"{height}\" title=\"{}\" style=\"border:0;max-width:100%\" loading=\"lazy\"></iframe>",
        escape_markup(&src),
        escape_markup(&title)
    );
    let origin = src.split("/embed/").next().unwrap_or_default().to_owned();
    Ok(axum::Json(json!({
        "version": "1.0",
        "type": "rich",
        "provider_name": "accords",
        "provider_url": format!("{origin}/"),
        "title": title,
        "html": html,
        "width": width,
        "height": height,
    }))
    .into_response())
}

enum EmbedTarget {
    Agreement { origin: String, id: String },
    Chart { origin: String, query: String },
}

/// What an accords URL shows, if it is one of this service's (its host
/// must be the one the request came to) and can be embedded.
fn embed_target(url: &str, host: &str) -> Option<EmbedTarget> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") || host.is_empty() {
        return None;
    }
    let (authority, path_and_query) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if !authority.eq_ignore_ascii_case(host) {
        return None;
    }
    let origin = format!("{scheme}://{authority}");
    let without_fragment = path_and_query.split('#').next().unwrap_or_default();
    let (path, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    let agreement = |id: &str| {
        crate::domain::agreement::agreement_id(id)
            .ok()
            .map(|id| EmbedTarget::Agreement {
                origin: origin.clone(),
                id,
            })
    };
    match path {
        "/embed/charts/pledges" | "/embed/charts/pledges.svg" | "/v1/stats/pledges" => {
            // Only what a chart takes: a `format=csv` of the stats is left behind.
            let chart_parameters = parameter_names::<PledgeTotalsParams>();
            let kept: Vec<&str> = query
                .split('&')
                .filter(|pair| {
                    let name = pair.split('=').next().unwrap_or_default();
                    chart_parameters.iter().any(|p| p == name) || name == "lang"
                })
                .collect();
            Some(EmbedTarget::Chart {
                origin,
                query: kept.join("&"),
            })
        }
        "/" | "" => form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "open")
            .and_then(|(_, id)| agreement(&id)),
        _ => path
            .strip_prefix("/embed/agreements/")
            .or_else(|| path.strip_prefix("/v1/agreements/"))
            .filter(|id| !id.contains('/'))
            .and_then(agreement),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accords_urls_of_this_host_are_embeddable() {
        let host = "accords.example.org";
        assert!(matches!(
            embed_target("https://accords.example.org/v1/agreements/ua-jp-2024", host),
            Some(EmbedTarget::Agreement { id, .. }) if id == "ua-jp-2024"
        ));
        assert!(matches!(
            embed_target("https://accords.example.org/?open=ua-de-2024", host),
            Some(EmbedTarget::Agreement { id, .. }) if id == "ua-de-2024"
        ));
        assert!(matches!(
            embed_target("https://accords.example.org/v1/stats/pledges?group_by=year&currency=EUR&format=csv", host),
            Some(EmbedTarget::Chart { query, .. }) if query == "group_by=year&currency=EUR"
        ));
        assert!(embed_target("https://elsewhere.example/v1/agreements/ua-jp-2024", host).is_none());
        assert!(embed_target("javascript:alert(1)", host).is_none());
        assert!(embed_target("https://accords.example.org/v1/partners", host).is_none());
    }

    #[test]
    fn text_is_escaped_for_markup() {
        assert_eq!(
            escape_markup("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
