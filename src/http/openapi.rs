//! The API's contract: OpenAPI 3.1 built from the handlers' own annotations
//! and route table (utoipa and utoipa-axum: a route is added together with
//! its documentation), then completed with what the shared layers add to
//! every operation — keys, preconditions, retries, limits, and the problems
//! they answer with. Served at /openapi.json; /docs is Swagger UI, compiled
//! into the binary.

use axum::response::Response;
use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required};
use utoipa_swagger_ui::SwaggerUi;

use crate::domain::FieldError;
use crate::error::PROBLEM_JSON;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "accords",
        description = "Ukraine's bilateral security agreements with its partners: who signed what, \
                       when and where, what each partner pledged (exact amounts, currencies, years, \
                       kinds of aid), which areas they cooperate in, and where every fact comes from.",
        license(name = "MIT OR Apache-2.0")
    ),
    tags(
        (name = "agreements", description = "The agreements, each embedding its partner, areas, pledges and sources"),
        (name = "pledges and sources", description = "An agreement's pledges and sources, one at a time"),
        (name = "partners", description = "The states and organisations Ukraine signs with"),
        (name = "areas", description = "The vocabulary of cooperation areas"),
        (name = "stats", description = "Aggregates for charts"),
        (name = "rates", description = "Exchange rates against EUR, and converted amounts"),
        (name = "live", description = "The change feed and live events"),
        (name = "data desk", description = "History, bulk import and data checks"),
        (name = "operations", description = "Health, readiness, metrics and this contract"),
        (name = "webhooks", description = "Changes pushed to your URL as signed POSTs (Standard Webhooks); admin keys only"),
    ),
    components(schemas(Problem, FieldError))
)]
pub struct ApiDoc;

/// The body of every error: RFC 9457 problem details.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Problem {
    /// A stable URN per kind of problem, e.g. `urn:accords:problem:validation`.
    #[schema(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// Each invalid field or parameter, for validation and query problems.
    errors: Option<Vec<FieldError>>,
    /// The version a stale precondition missed (412, 409).
    current_version: Option<i64>,
    /// The id of the request, also in the X-Request-Id header.
    request_id: Option<String>,
}

/// Every error status an operation can answer with, and why.
const PROBLEMS: &[(&str, &str)] = &[
    (
        "400",
        "A malformed or unknown query parameter, header or body",
    ),
    ("401", "A key is missing, unknown, revoked or expired"),
    ("403", "The key's scope does not allow this"),
    ("404", "No such resource"),
    ("406", "None of the accepted media types can be produced"),
    ("408", "The request took longer than the server allows"),
    (
        "409",
        "The resource exists already, or the change conflicts with another",
    ),
    ("412", "If-Match names a version that is no longer current"),
    ("413", "The body is larger than the limit"),
    ("415", "The body is not in a supported media type"),
    (
        "422",
        "The body is well-formed but not valid; every invalid field is listed",
    ),
    ("428", "This server requires If-Match on changes"),
    ("429", "Too many requests; retry after Retry-After seconds"),
    (
        "503",
        "The store cannot be reached right now, or the server holds as many connections or event streams as it may; retry after Retry-After seconds",
    ),
    ("507", "The store has no room left for this write"),
];

/// The statuses each kind of operation may answer with, beyond its own.
fn problem_statuses(method: &HttpMethod, path: &str, has_body: bool) -> Vec<&'static str> {
    let mut statuses = vec!["400", "406", "408", "429", "503"];
    if path.contains('{') {
        statuses.push("404");
    }
    if !matches!(method, HttpMethod::Get | HttpMethod::Head) {
        // A write without a body (a restore, say) can still be refused by
        // the store's rules with 422.
        statuses.extend(["401", "403", "409", "422", "507"]);
    } else {
        statuses.push("401");
    }
    // Webhooks take admin keys only, reads too: a write key gets 403.
    if path.starts_with("/v1/webhooks") && matches!(method, HttpMethod::Get | HttpMethod::Head) {
        statuses.push("403");
    }
    if matches!(
        method,
        HttpMethod::Put | HttpMethod::Patch | HttpMethod::Delete
    ) {
        statuses.extend(["412", "428"]);
    }
    if has_body {
        statuses.extend(["413", "415"]);
        if !statuses.contains(&"422") {
            statuses.push("422");
        }
    }
    statuses
}

fn problem_response(status: &str) -> RefOr<utoipa::openapi::Response> {
    let (_, description) = PROBLEMS
        .iter()
        .find(|(s, _)| *s == status)
        .copied()
        .unwrap_or((status, "A problem"));
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .header(
            "X-Request-Id",
            string_header("The request's id, also in the problem"),
        );
    if status == "429" || status == "503" {
        response = response.header(
            "Retry-After",
            string_header("Seconds to wait before retrying"),
        );
    }
    if status == "401" {
        response = response.header("WWW-Authenticate", string_header("Bearer"));
    }
    response.build().into()
}

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(description))
        .build()
}

fn header_parameter(name: &str, description: &str) -> RefOr<utoipa::openapi::path::Parameter> {
    RefOr::T(
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build(),
    )
}

/// Idempotency-Key: 1 to 255 visible ASCII characters.
fn idempotency_key_parameter(
    name: &str,
    description: &str,
) -> RefOr<utoipa::openapi::path::Parameter> {
    RefOr::T(
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[!-~]{1,255}$")),
            ))
            .build(),
    )
}

/// Adds what the shared layers do to one operation.
fn complete_operation(method: &HttpMethod, path: &str, operation: &mut Operation) {
    let has_body = operation.request_body.is_some();
    // The embeds and oEmbed answer like the API's reads (conditional GET,
    // problems, keys when reads need them).
    let api = path.starts_with("/v1/") || path.starts_with("/embed/") || path == "/oembed";
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    let writes = !matches!(method, HttpMethod::Get | HttpMethod::Head);
    // Webhooks: admin keys only, even to read.
    let admin_only = path.starts_with("/v1/webhooks");
    if api && (writes || admin_only) {
        operation.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
    if api && !writes && !admin_only {
        // Reads are open unless ACCORDS_READ_AUTH=true; then they need a key too.
        operation.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
    }
    match method {
        HttpMethod::Post if api => parameters.push(idempotency_key_parameter(
            "Idempotency-Key",
            "Makes a retried POST safe: the same key and body within 24 hours replays the first answer; \
             another body with the same key is a 422",
        )),
        HttpMethod::Put | HttpMethod::Patch | HttpMethod::Delete if api => parameters.push(header_parameter(
            "If-Match",
            "The ETag (version) this change is based on; a stale one is a 412 and changes nothing",
        )),
        HttpMethod::Get if api && path != "/v1/events" => parameters.push(header_parameter(
            "If-None-Match",
            "An ETag from an earlier answer; unchanged data is a 304 without a body",
        )),
        _ => {}
    }
    if api && matches!(method, HttpMethod::Get) {
        parameters.push(RefOr::T(
            ParameterBuilder::new()
                .name("lang")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(
                    "en (default) or uk: names, kinds, statuses and problems in Ukrainian; where no \
                     Ukrainian name exists the English one is shown and named in `untranslated`",
                ))
                .schema(Some(super::params::one_of(vec!["en", "uk"])))
                .build(),
        ));
        parameters.push(header_parameter(
            "Accept-Language",
            "Used when `lang` is not given: `uk` answers in Ukrainian",
        ));
        parameters.extend(
            <super::params::JsonLayout as utoipa::IntoParams>::into_params(|| {
                Some(ParameterIn::Query)
            })
            .into_iter()
            .map(RefOr::T),
        );
        if has_past(path) {
            for (name, description) in [
                (
                    "revision",
                    "The answer exactly as it was at this store revision (the Accords-Revision of an \
                     earlier answer); cached for good. Before the history began or after the latest: 400",
                ),
                (
                    "as_of",
                    "The answer as it was at this time (RFC 3339): at the last revision committed at \
                     or before it",
                ),
            ] {
                parameters.push(RefOr::T(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Query)
                        .required(Required::False)
                        .description(Some(description))
                        .schema(Some(
                            utoipa::openapi::ObjectBuilder::new()
                                .schema_type(utoipa::openapi::Type::String)
                                .min_length(Some(1)),
                        ))
                        .build(),
                ));
            }
        }
    }
    let responses = &mut operation.responses.responses;
    if !api {
        return;
    }
    if matches!(method, HttpMethod::Get) && path != "/v1/events" {
        responses.entry("304".into()).or_insert_with(|| {
            ResponseBuilder::new()
                .description("Not modified: the If-None-Match tag is current")
                .header("ETag", string_header("The current tag"))
                .build()
                .into()
        });
    }
    for status in problem_statuses(method, path, has_body) {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(status));
    }
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.starts_with('2')
        {
            for (name, description) in [
                ("X-Request-Id", "The request's id, as logged"),
                (
                    "RateLimit-Limit",
                    "Requests allowed per second for this client (when limits are on)",
                ),
                ("RateLimit-Remaining", "Requests left in the current second"),
                ("RateLimit-Reset", "Seconds until the allowance refills"),
            ] {
                response
                    .headers
                    .entry(name.to_owned())
                    .or_insert_with(|| RefOr::T(string_header(description)));
            }
            // Webhook subscriptions are not store data: no revision.
            if !writes && path != "/v1/events" && !path.starts_with("/v1/webhooks") {
                response
                    .headers
                    .entry("Accords-Revision".to_owned())
                    .or_insert_with(|| {
                        RefOr::T(string_header(
                            "The store revision the answer reflects: cite it; ?revision= asks again",
                        ))
                    });
            }
        }
    }
}

/// The reads a revision can be asked of (paths starting so).
pub const PAST_READS: [&str; 8] = [
    "/v1/agreements",
    "/v1/pledges",
    "/v1/sources",
    "/v1/partners",
    "/v1/areas",
    "/v1/rates",
    "/v1/stats",
    "/v1/timeline",
];

/// Whether `path` can be read at a past revision.
pub fn has_past(path: &str) -> bool {
    PAST_READS
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
        && !path.ends_with("/diff")
}

/// The spec of the router's operations, completed with the shared layers'
/// parameters, responses and the bearer scheme.
pub fn complete(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for (path, item) in api.paths.paths.iter_mut() {
        for (method, operation) in [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
        ] {
            if let Some(operation) = operation {
                complete_operation(&method, path, operation);
            }
        }
    }
    amounts_may_be_whole_numbers(&mut api);
    replacements_may_leave_out_their_key(&mut api);
    patches_are_partial_bodies(&mut api);
    name_operations(&mut api);
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A key from `accords keys create`: write keys edit data, admin keys also import",
                ))
                .build(),
        ),
    );
    api
}

/// A PUT names its record in the path, so its body may leave out the key
/// (`code`) that a POST must carry: PUT bodies get their own schema,
/// `<Body>Replacement`, the same but for that one requirement.
fn replacements_may_leave_out_their_key(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::Schema;
    let mut replacements = Vec::new();
    for item in api.paths.paths.values_mut() {
        let Some(put) = item.put.as_mut() else {
            continue;
        };
        let Some(RefOr::T(body)) = put.request_body.as_mut() else {
            continue;
        };
        for content in body.content.values_mut() {
            let RefOr::T(content) = content else { continue };
            let Some(RefOr::Ref(reference)) = content.schema.as_ref() else {
                continue;
            };
            let Some(name) = reference.ref_location.strip_prefix("#/components/schemas/") else {
                continue;
            };
            let Some(RefOr::T(Schema::Object(object))) =
                api.components.as_ref().and_then(|c| c.schemas.get(name))
            else {
                continue;
            };
            if !object.required.iter().any(|r| r == "code") {
                continue;
            }
            let mut replacement = object.clone();
            replacement.required.retain(|r| r != "code");
            // Left out or null: the path names the record.
            if let Some(RefOr::T(Schema::Object(code))) = replacement.properties.get_mut("code") {
                code.schema_type =
                    utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]);
            }
            let replacement_name = format!("{name}Replacement");
            content.schema = Some(RefOr::Ref(Ref::from_schema_name(&replacement_name)));
            replacements.push((replacement_name, replacement));
        }
    }
    let components = api.components.get_or_insert_with(Default::default);
    for (name, schema) in replacements {
        components
            .schemas
            .insert(name, RefOr::T(Schema::Object(schema)));
    }
}

/// A pledge's amount is a decimal string; a whole JSON number is exact too
/// and accepted (a fraction is not: it may already have been a float).
fn amounts_may_be_whole_numbers(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{OneOfBuilder, Schema};
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let Some(RefOr::T(Schema::Object(pledge))) = components.schemas.get_mut("PledgeBody") else {
        return;
    };
    let Some(RefOr::T(text)) = pledge.properties.get("amount").cloned() else {
        return;
    };
    let whole = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(9_999_999_999_999_999_i64));
    let either = OneOfBuilder::new().item(text).item(whole).build();
    pledge
        .properties
        .insert("amount".into(), RefOr::T(Schema::OneOf(either)));
}

/// Every operation gets a unique id from its method and path
/// (`get /v1/agreements/{id}` → `getV1AgreementsId`): handlers in different
/// modules share names such as `list`, and client generators and link
/// inference need ids that tell operations apart.
fn name_operations(api: &mut utoipa::openapi::OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        let words: String = path
            .split(['/', '{', '}', '-', '.'])
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        let words = if words.is_empty() {
            "Root".to_owned()
        } else {
            words
        };
        for (method, operation) in [
            ("get", item.get.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
            ("patch", item.patch.as_mut()),
        ] {
            if let Some(operation) = operation {
                operation.operation_id = Some(format!("{method}{words}"));
            }
        }
    }
}

/// A PATCH body is a JSON merge patch of what the PUT on the same path takes:
/// the same fields, none required (`<Body>Patch`).
fn patches_are_partial_bodies(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::Schema;
    let mut patches = Vec::new();
    for item in api.paths.paths.values_mut() {
        let put_body = item
            .put
            .as_ref()
            .and_then(|put| put.request_body.as_ref())
            .and_then(|body| match body {
                RefOr::T(body) => body.content.get("application/json").cloned(),
                RefOr::Ref(_) => None,
            });
        let Some(RefOr::T(put_content)) = put_body else {
            continue;
        };
        let Some(RefOr::Ref(reference)) = put_content.schema.as_ref() else {
            continue;
        };
        let Some(name) = reference.ref_location.strip_prefix("#/components/schemas/") else {
            continue;
        };
        let name = name.trim_end_matches("Replacement").to_owned();
        let Some(RefOr::T(Schema::Object(object))) =
            api.components.as_ref().and_then(|c| c.schemas.get(&name))
        else {
            continue;
        };
        let mut patch = object.clone();
        patch.required.clear();
        let patch_name = format!("{name}Patch");
        if let Some(RefOr::T(body)) = item.patch.as_mut().and_then(|p| p.request_body.as_mut()) {
            for content in body.content.values_mut() {
                if let RefOr::T(content) = content {
                    content.schema = Some(RefOr::Ref(Ref::from_schema_name(&patch_name)));
                }
            }
        }
        patches.push((patch_name, patch));
    }
    let components = api.components.get_or_insert_with(Default::default);
    for (name, schema) in patches {
        components
            .schemas
            .insert(name, RefOr::T(Schema::Object(schema)));
    }
}

/// GET /openapi.json, and the Swagger UI at /docs: its assets are compiled
/// into the binary (the `vendored` build), so the docs work offline.
pub fn docs_router<S: Clone + Send + Sync + 'static>(
    spec: utoipa::openapi::OpenApi,
) -> axum::Router<S> {
    let swagger: axum::Router<S> = SwaggerUi::new("/docs").url("/openapi.json", spec).into();
    swagger.layer(axum::middleware::map_response(docs_policy))
}

/// Swagger UI styles itself inline and loads only its own files.
async fn docs_policy(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    response
}

// ---- response bodies built by hand in the handlers -------------------------
//
// Lists and aggregates are streamed or assembled as JSON by their handlers;
// these types document those shapes.

use crate::domain::area::Area;
use crate::domain::partner::Partner;
use crate::domain::pledge::Pledge;
use crate::domain::rates::{AnnualRate, DailyRate};
use crate::domain::source::Source;

/// A page of agreements. Each item has every field of an Agreement unless
/// `fields` or `include` leave some out.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AgreementPage {
    #[schema(value_type = Vec<Object>)]
    items: Vec<serde_json::Value>,
    /// The cursor of the next page; null on the last.
    next_cursor: Option<String>,
    /// The store revision the page reflects (cite it: `?revision=N` gives this page again).
    revision: i64,
    /// With `count=true`: how many agreements match.
    #[schema(nullable = false)]
    total: Option<i64>,
}

macro_rules! page {
    ($(#[$meta:meta])* $name:ident, $item:ty) => {
        $(#[$meta])*
        #[derive(utoipa::ToSchema)]
        #[allow(dead_code)]
        pub struct $name {
            items: Vec<$item>,
            /// The cursor of the next page; null on the last.
            next_cursor: Option<String>,
            /// The store revision the page reflects (cite it: `?revision=N` gives this page again).
            revision: i64,
        }
    };
}

page!(PartnerPage, Partner);
page!(AreaPage, Area);
page!(
    /// An agreement's pledges (one page: an agreement has at most 200).
    PledgeList,
    Pledge
);
page!(
    /// An agreement's sources (one page).
    SourceList,
    Source
);
page!(RatePage, DailyRate);
page!(AnnualRatePage, AnnualRate);
page!(HistoryPage, HistoryEntry);
page!(TimelinePage, TimelineEvent);

/// One change in the audit history.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct HistoryEntry {
    seq: i64,
    at: chrono::DateTime<chrono::Utc>,
    /// The name of the key (or `cli`, `seed`) that made the change.
    key: String,
    /// agreement, pledge, source, partner, area or rate.
    entity: String,
    id: String,
    agreement_id: Option<String>,
    /// create, update, delete or restore.
    op: String,
    version: i64,
    /// The record before the change (null for a creation).
    #[schema(value_type = Option<Object>)]
    before: Option<serde_json::Value>,
    /// The record after the change (null for a deletion).
    #[schema(value_type = Option<Object>)]
    after: Option<serde_json::Value>,
}

/// The change feed: what changed since a sequence number, oldest first.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ChangePage {
    items: Vec<ChangeItem>,
    /// Pass as `since` to get what follows.
    next_since: i64,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ChangeItem {
    seq: i64,
    at: chrono::DateTime<chrono::Utc>,
    entity: String,
    id: String,
    agreement_id: Option<String>,
    partner: Option<String>,
    op: String,
    version: i64,
}

/// A dated event: an agreement signed (with its title and status), or a
/// pledge made (with its figure).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TimelineEvent {
    /// `signed` or `pledge`.
    #[schema(rename = "type")]
    kind: String,
    date: chrono::NaiveDate,
    agreement_id: String,
    #[schema(value_type = Object)]
    partner: serde_json::Value,
    /// The URLs of the event's sources.
    sources: Vec<String>,
    #[schema(nullable = false)]
    title: Option<String>,
    /// The official Ukrainian title, where known (signings only).
    title_uk: Option<String>,
    #[schema(value_type = Option<crate::domain::agreement::AgreementStatus>, nullable = false)]
    status: Option<String>,
    #[schema(nullable = false)]
    pledge_id: Option<String>,
    #[schema(value_type = Option<crate::domain::money::Amount>, nullable = false)]
    amount: Option<String>,
    #[schema(value_type = Option<crate::domain::money::Currency>, nullable = false)]
    currency: Option<String>,
    /// The pledge's kind.
    #[schema(rename = "kind", value_type = Option<crate::domain::pledge::PledgeKind>, nullable = false)]
    pledge_kind: Option<String>,
    year_from: Option<i64>,
    year_to: Option<i64>,
    /// `total` or `per_year`.
    #[schema(value_type = Option<crate::domain::pledge::PledgeBasis>, nullable = false)]
    basis: Option<String>,
    /// The years the amount counts for (1 for a total).
    #[schema(nullable = false)]
    years: Option<i64>,
    /// The pledge it is part of (not counted in totals).
    part_of: Option<String>,
    note: Option<String>,
}

/// One Server-Sent Event of /v1/events: `id` is the change number, `data`
/// a change (the shape of a /v1/changes item) as JSON text.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ChangeEvent {
    id: String,
    #[schema(nullable = false)]
    event: Option<String>,
    /// A change as JSON; heartbeats are comments, not events.
    data: String,
    #[schema(nullable = false)]
    retry: Option<u64>,
}

/// Aggregates: one item per group (and currency for pledges).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StatsItems {
    /// For pledges: the group keys, `currency`, `total` (an exact decimal
    /// string: per-year pledges once per year of their range, parts of other
    /// pledges never), `count`, and `years` when per-year pledges were
    /// counted; for agreements: the group keys and `count`.
    #[schema(value_type = Vec<Object>)]
    items: Vec<serde_json::Value>,
    /// With `convert`: totals across currencies in the target currency only.
    #[schema(value_type = Option<Object>, nullable = false)]
    converted: Option<serde_json::Value>,
}

/// The body of PUT /v1/rates/{currency}/{date}.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RateBody {
    rate: crate::domain::rates::Rate,
    /// May repeat the path's currency.
    #[schema(nullable = false)]
    currency: Option<String>,
    /// May repeat the path's date.
    #[schema(nullable = false)]
    date: Option<String>,
}

/// The JSON body of POST /v1/rates.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RateItems {
    items: Vec<RateItem>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RateItem {
    #[schema(format = Date)]
    date: String,
    #[schema(pattern = "^[A-Za-z]{3}$")]
    currency: String,
    rate: crate::domain::rates::Rate,
}
