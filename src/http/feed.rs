//! The change feed as Atom 1.0 (RFC 4287) for feed readers and chat
//! integrations: GET /v1/changes.atom, or GET /v1/changes with
//! `Accept: application/atom+xml`. The latest changes, newest first, each
//! with a stable tag URI (RFC 4151), a title a person reads, links to the
//! resource and its dashboard view, and the field-level change as content.

use crate::domain::text::escape_markup;
use std::fmt::Write as _;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::partner_lookup::find_one_partner;
use serde::Deserialize;
use utoipa::IntoParams;

use super::params::{
    And, EntityName, Text, area_code, integer, limit, one_of, read, value_schema, words,
};
use crate::domain::FieldError;
use crate::domain::Vocabulary;
use crate::domain::agreement::AgreementKind;
use crate::domain::area::AreaCode;
use crate::domain::lang::Lang;
use crate::domain::partner::PartnerCode;
use crate::error::{ApiError, ApiResult};
use crate::store::{ChangeDetail, LatestChangeFilter};

pub const ATOM: &str = "application/atom+xml";

value_schema!(AreaCodeValue, area_code());
value_schema!(AgreementKindValue, one_of(words::<AgreementKind>()));
value_schema!(EntryLimit, integer(1, i64::from(MAX_ENTRIES)));

/// The filters the change feed, the event stream and the Atom feed share.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangeFilters {
    /// Only changes of this kind of record
    #[param(value_type = Option<EntityName>, inline)]
    pub entity: Option<String>,
    /// Only changes of this partner's records (any partner reference)
    #[param(value_type = Option<Text>, inline)]
    pub partner: Option<String>,
}

/// What the Atom feed alone filters by, and how many entries it holds.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtomOptions {
    /// Only changes of agreements in this cooperation area (and their pledges and sources)
    #[param(value_type = Option<AreaCodeValue>, inline)]
    area: Option<String>,
    /// Only changes of agreements of this kind (and their pledges and sources)
    #[param(value_type = Option<AgreementKindValue>, inline)]
    kind: Option<String>,
    /// Entries (default 50)
    #[param(value_type = Option<EntryLimit>, inline)]
    limit: Option<String>,
}

type AtomParams = And<ChangeFilters, AtomOptions>;

const DEFAULT_ENTRIES: u32 = 50;
const MAX_ENTRIES: u32 = 200;
/// Fields every record has that say nothing about what changed.
const BOOKKEEPING: &[&str] = &["version", "created_at", "updated_at"];
/// The date in every tag URI (RFC 4151 wants one when the name was held).
const TAG_DATE: &str = "2024";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(changes_atom))
}

/// The latest changes as an Atom feed, newest first; filter with
/// `partner`, `area`, `kind` (of agreement) and `entity`.
#[utoipa::path(get, path = "/v1/changes.atom", tag = "live", params(AtomParams),
    responses((status = 200, description = "An Atom 1.0 feed of the latest changes, newest first", body = String, content_type = "application/atom+xml")))]
async fn changes_atom(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    atom_answer(&state, &headers, &uri, lang).await
}

/// The feed for a request to /v1/changes.atom (or /v1/changes asking for Atom).
pub async fn atom_answer(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    lang: Lang,
) -> ApiResult<Response> {
    let filter = feed_filter(state, &read::<AtomParams>(uri.query())?).await?;
    let changes = state.store.latest_changes(&filter).await?;
    let site = Site::of(headers);
    let mut partner_names: Vec<(String, String)> = Vec::new();
    for change in &changes {
        if let Some(code) = &change.entry.partner
            && !partner_names.iter().any(|(c, _)| c == code)
        {
            let partner = state
                .store
                .get_partner(&PartnerCode::from_trusted(code.clone()))
                .await?;
            let name = partner.map_or_else(
                || code.clone(),
                |p| match (lang, p.name_uk) {
                    (Lang::Uk, Some(name)) => name,
                    _ => p.name,
                },
            );
            partner_names.push((code.clone(), name));
        }
    }
    let body = feed_xml(&site, uri, &changes, &partner_names, lang);
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/atom+xml; charset=utf-8"),
    );
    Ok(response)
}

async fn feed_filter(
    state: &AppState,
    And(filters, options): &AtomParams,
) -> ApiResult<LatestChangeFilter> {
    let mut errors = Vec::new();
    let partner = match filters.partner.as_deref() {
        None => None,
        Some(reference) => match find_one_partner(state.store.as_ref(), reference).await? {
            Ok(code) => Some(code),
            Err(unresolved) => {
                errors.push(FieldError::new("partner", unresolved.pointing_at_matches()));
                None
            }
        },
    };
    let area = options
        .area
        .as_deref()
        .and_then(|text| match AreaCode::parse(text) {
            Ok(code) => Some(code),
            Err(message) => {
                errors.push(FieldError::new("area", message));
                None
            }
        });
    let agreement_kind =
        options
            .kind
            .as_deref()
            .and_then(|text| match AgreementKind::parse(text) {
                Ok(kind) => Some(kind),
                Err(message) => {
                    errors.push(FieldError::new("kind", message));
                    None
                }
            });
    let entity = filters.entity.clone();
    if let Some(entity) = &entity
        && !crate::store::ENTITIES.contains(&entity.as_str())
    {
        errors.push(FieldError::new(
            "entity",
            format!("must be one of: {}", crate::store::ENTITIES.join(", ")),
        ));
    }
    let limit = limit(
        options.limit.as_deref(),
        DEFAULT_ENTRIES,
        MAX_ENTRIES,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    Ok(LatestChangeFilter {
        entity,
        partner,
        area,
        agreement_kind,
        limit,
    })
}

/// Where the feed is read from: its links are absolute, its ids tag URIs
/// under the host's name.
struct Site {
    origin: String,
    host_name: String,
}

impl Site {
    fn of(headers: &HeaderMap) -> Self {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                    })
            })
            .unwrap_or("localhost");
        let https = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        let host_name = if host.starts_with('[') {
            host.split(']')
                .next()
                .unwrap_or(host)
                .trim_start_matches('[')
        } else {
            host.split(':').next().unwrap_or(host)
        };
        Self {
            origin: format!("{}://{host}", if https { "https" } else { "http" }),
            host_name: host_name.to_ascii_lowercase(),
        }
    }

    fn tag(&self, specific: &str) -> String {
        format!("tag:{},{TAG_DATE}:accords/{specific}", self.host_name)
    }
}

fn atom_time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A value as it reads in a title: text bare, anything else as compact JSON.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// The fields whose values differ between the record before and after.
fn field_of<'a>(record: &'a Option<Value>, name: &str) -> Option<&'a Value> {
    record.as_ref().and_then(|r| r.get(name))
}

type FieldChange<'a> = (&'a str, Option<&'a Value>, Option<&'a Value>);

fn changed_fields(change: &ChangeDetail) -> Vec<FieldChange<'_>> {
    let mut names: Vec<&str> = [&change.before, &change.after]
        .into_iter()
        .filter_map(|record| record.as_ref().and_then(Value::as_object))
        .flat_map(|object| object.keys().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter(|name| !BOOKKEEPING.contains(name))
        .map(|name| {
            (
                name,
                field_of(&change.before, name),
                field_of(&change.after, name),
            )
        })
        .filter(|(_, before, after)| before != after)
        .collect()
}

fn entity_word(entity: &str, lang: Lang) -> &str {
    match (lang, entity) {
        (Lang::Uk, "agreement") => "угода",
        (Lang::Uk, "pledge") => "зобов’язання",
        (Lang::Uk, "source") => "джерело",
        (Lang::Uk, "partner") => "партнер",
        (Lang::Uk, "area") => "сфера співпраці",
        (Lang::Uk, "rate") => "курс",
        (Lang::Uk, "dataset") => "набір даних",
        (_, other) => other,
    }
}

fn op_word(op: &str, lang: Lang) -> &str {
    match (lang, op) {
        (Lang::En, "create") => "added",
        (Lang::En, "delete") => "removed",
        (Lang::En, "restore") => "restored",
        (Lang::En, "load") => "loaded",
        (Lang::Uk, "create") => "додано",
        (Lang::Uk, "delete") => "вилучено",
        (Lang::Uk, "restore") => "відновлено",
        (Lang::Uk, "load") => "завантажено",
        (Lang::Uk, "update") => "змінено",
        (_, other) => other,
    }
}

/// "Japan — pledge ua-jp-2024-p1: amount 4500000000 → 4600000000 USD".
fn entry_title(change: &ChangeDetail, partner: Option<&str>, lang: Lang) -> String {
    let entry = &change.entry;
    let who = partner.map_or(String::new(), |name| format!("{name} — "));
    let what = format!("{who}{} {}", entity_word(&entry.entity, lang), entry.id);
    if entry.op != "update" {
        return format!("{what}: {}", op_word(&entry.op, lang));
    }
    let fields = changed_fields(change);
    let Some((name, before, after)) = fields.first() else {
        return format!("{what}: {}", op_word(&entry.op, lang));
    };
    // An amount reads with its currency.
    let currency = if *name == "amount" {
        change
            .after
            .as_ref()
            .and_then(|a| a.get("currency"))
            .and_then(Value::as_str)
            .map_or(String::new(), |c| format!(" {c}"))
    } else {
        String::new()
    };
    let mut before_text = shown(*before);
    let mut after_text = shown(*after);
    for text in [&mut before_text, &mut after_text] {
        if text.chars().count() > 80 {
            *text = format!("{}…", text.chars().take(79).collect::<String>());
        }
    }
    let more = match (fields.len() - 1, lang) {
        (0, _) => String::new(),
        (n, Lang::En) => format!(" (and {n} more)"),
        (n, Lang::Uk) => format!(" (і ще {n})"),
    };
    format!("{what}: {name} {before_text} → {after_text}{currency}{more}")
}

/// The field-level change, one line a field.
fn entry_content(change: &ChangeDetail, lang: Lang) -> String {
    let fields = changed_fields(change);
    if fields.is_empty() {
        return op_word(&change.entry.op, lang).to_owned();
    }
    fields
        .iter()
        .map(|(name, before, after)| match (before, after) {
            (None, Some(after)) => format!("{name}: {}", shown(Some(after))),
            (Some(before), None) => format!("{name}: {} → —", shown(Some(before))),
            _ => format!("{name}: {} → {}", shown(*before), shown(*after)),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn resource_path(entity: &str, id: &str) -> Option<String> {
    match entity {
        "agreement" => Some(format!("/v1/agreements/{id}")),
        "pledge" => Some(format!("/v1/pledges/{id}")),
        "source" => Some(format!("/v1/sources/{id}")),
        "partner" => Some(format!("/v1/partners/{id}")),
        "area" => Some(format!("/v1/areas/{id}")),
        _ => None,
    }
}

fn feed_xml(
    site: &Site,
    uri: &Uri,
    changes: &[ChangeDetail],
    partner_names: &[(String, String)],
    lang: Lang,
) -> String {
    let name_of = |code: &str| -> String {
        partner_names
            .iter()
            .find(|(c, _)| c == code)
            .map_or_else(|| code.to_owned(), |(_, name)| name.clone())
    };
    let query = uri.query().unwrap_or("");
    let self_link = if query.is_empty() {
        format!("{}/v1/changes.atom", site.origin)
    } else {
        format!("{}/v1/changes.atom?{query}", site.origin)
    };
    let feed_id = if query.is_empty() {
        site.tag("changes")
    } else {
        site.tag(&format!("changes?{query}"))
    };
    let (title, subtitle) = match lang {
        Lang::En => (
            "accords — latest changes",
            "Changes to Ukraine's bilateral security agreements, their pledges, areas and sources, newest first",
        ),
        Lang::Uk => (
            "accords — останні зміни",
            "Зміни у двосторонніх безпекових угодах України, їхніх зобов’язаннях, сферах і джерелах, від найновіших",
        ),
    };
    // An empty feed is as old as the epoch: it changes only when an entry appears.
    let updated = changes.iter().map(|c| c.entry.at).max().map_or_else(
        || "1970-01-01T00:00:00.000Z".to_owned(),
        |at| atom_time(&at),
    );
    let mut out = String::new();
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">\n\
         <id>{}</id>\n<title>{}</title>\n<subtitle>{}</subtitle>\n<updated>{updated}</updated>\n\
         <author><name>accords</name></author>\n<generator>accords</generator>\n\
         <link rel=\"self\" type=\"{ATOM}\" href=\"{}\"/>\n\
         <link rel=\"alternate\" type=\"text/html\" href=\"{}/\"/>\n",
        lang.as_str(),
        escape_markup(&feed_id),
        escape_markup(title),
        escape_markup(subtitle),
        escape_markup(&self_link),
        escape_markup(&site.origin),
    );
    for change in changes {
        let entry = &change.entry;
        let partner = entry.partner.as_deref().map(name_of);
        let partner = partner.as_deref();
        let _ = writeln!(out, "<entry>");
        let _ = writeln!(
            out,
            "<id>{}</id>",
            escape_markup(&site.tag(&format!("change/{}", entry.seq)))
        );
        let _ = writeln!(
            out,
            "<title>{}</title>",
            escape_markup(&entry_title(change, partner, lang))
        );
        let _ = writeln!(out, "<updated>{}</updated>", atom_time(&entry.at));
        if let Some(path) = resource_path(&entry.entity, &entry.id) {
            let _ = writeln!(
                out,
                "<link rel=\"alternate\" type=\"application/json\" href=\"{}{}\"/>",
                escape_markup(&site.origin),
                escape_markup(&path)
            );
        }
        let dashboard = match &entry.agreement_id {
            Some(id) => format!("{}/?open={id}", site.origin),
            None => format!("{}/", site.origin),
        };
        let _ = writeln!(
            out,
            "<link rel=\"related\" type=\"text/html\" href=\"{}\"/>",
            escape_markup(&dashboard)
        );
        let _ = writeln!(out, "<category term=\"{}\"/>", escape_markup(&entry.entity));
        let _ = writeln!(out, "<category term=\"{}\"/>", escape_markup(&entry.op));
        let _ = writeln!(
            out,
            "<content type=\"text\">{}</content>",
            escape_markup(&entry_content(change, lang))
        );
        let _ = writeln!(out, "</entry>");
    }
    out.push_str("</feed>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ChangeEntry;
    use serde_json::json;

    fn pledge_change() -> ChangeDetail {
        ChangeDetail {
            entry: ChangeEntry {
                seq: 7,
                at: chrono::DateTime::from_timestamp(1_718_000_000, 0).unwrap(),
                entity: "pledge".into(),
                id: "ua-jp-2024-p1".into(),
                agreement_id: Some("ua-jp-2024".into()),
                partner: Some("JP".into()),
                op: "update".into(),
                version: 2,
            },
            before: Some(json!({"amount": "4500000000", "currency": "USD", "version": 1})),
            after: Some(json!({"amount": "4600000000", "currency": "USD", "version": 2})),
        }
    }

    #[test]
    fn titles_say_who_what_and_how_it_changed() {
        assert_eq!(
            entry_title(&pledge_change(), Some("Japan"), Lang::En),
            "Japan — pledge ua-jp-2024-p1: amount 4500000000 → 4600000000 USD"
        );
        assert_eq!(
            entry_content(&pledge_change(), Lang::En),
            "amount: 4500000000 → 4600000000"
        );
    }

    #[test]
    fn tag_uris_name_the_host_without_its_port() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("News.Example:8080"));
        let site = Site::of(&headers);
        assert_eq!(
            site.tag("change/7"),
            "tag:news.example,2024:accords/change/7"
        );
        assert_eq!(site.origin, "http://News.Example:8080");
    }
}
