//! The query string of agreement lists and statistics: the filters they
//! share, every value parsed, every problem a 400 naming the parameter. A
//! typo never widens or empties a result silently.

use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use super::params::{
    And, PageLimit, Text, area_code, list_of, one_of, page_limit, pattern, split_list, text,
    value_schema, words,
};
use super::partner_lookup::find_one_partner;
use crate::domain::FieldError;
use crate::domain::Vocabulary;
use crate::domain::agreement::{AgreementKind, AgreementStatus};
use crate::domain::area::AreaCode;
use crate::domain::money::{Amount, Currency};
use crate::domain::pledge::PledgeKind;
use crate::domain::query::{AgreementQuery, Include, SearchTerms, Sort, SortKey};
use crate::domain::text::date;
use crate::error::{ApiError, ApiResult};
use crate::store::Store;

value_schema!(
    PartnerList,
    list_of(text().min_length(Some(1)).build().into())
);
value_schema!(AreaList, list_of(area_code()));
value_schema!(StatusList, list_of(one_of(words::<AgreementStatus>())));
value_schema!(KindList, list_of(one_of(words::<AgreementKind>())));
value_schema!(PledgeKindList, list_of(one_of(words::<PledgeKind>())));
value_schema!(
    SigningDate,
    text()
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Date,
        )))
        .build()
        .into()
);
value_schema!(Year, super::params::integer(1900, 2200));
value_schema!(FilterCurrency, pattern("^[A-Za-z]{3}$", "USD"));
value_schema!(
    AmountValue,
    pattern(r"^[0-9]{1,16}(\.[0-9]{1,2})?$", "1000000")
);
value_schema!(
    LegalNature,
    one_of(vec!["true", "false", "unknown", "null"])
);
value_schema!(
    SortOrder,
    one_of(
        words::<SortKey>()
            .into_iter()
            .flat_map(|k| [k, &*Box::leak(format!("-{k}").into_boxed_str())])
            .collect()
    )
);
value_schema!(
    IncludeList,
    list_of(one_of(vec!["pledges", "areas", "sources", "none"]))
);

/// `partner`: the filter of every agreement list and statistic but a
/// partner's own list (its path names the partner).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartnerFilter {
    /// Partners, any of them: codes (JP), ISO alpha-3 (JPN), names or aliases in English or Ukrainian; comma-separated or repeated. An unknown one is a 400
    #[param(value_type = Option<PartnerList>, inline, style = Form, explode = false)]
    #[serde(default)]
    pub partner: Vec<String>,
}

/// The filters every agreement list and statistic accepts, as given.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgreementFilters {
    /// Cooperation areas: comma-separated means any of them; repeating the parameter means all of them
    #[param(value_type = Option<AreaList>, inline, style = Form, explode = false)]
    #[serde(default)]
    pub area: Vec<String>,
    /// Statuses, any of them
    #[param(value_type = Option<StatusList>, inline, style = Form, explode = false)]
    #[serde(default)]
    pub status: Vec<String>,
    /// Kinds, any of them
    #[param(value_type = Option<KindList>, inline, style = Form, explode = false)]
    #[serde(default)]
    pub kind: Vec<String>,
    /// Signed on or after this date (inclusive)
    #[param(value_type = Option<SigningDate>, inline)]
    pub signed_from: Option<String>,
    /// Signed on or before this date (inclusive)
    #[param(value_type = Option<SigningDate>, inline)]
    pub signed_to: Option<String>,
    /// Signed in this year
    #[param(value_type = Option<Year>, inline)]
    pub year: Option<String>,
    /// Agreements with a pledge of any of these kinds
    #[param(value_type = Option<PledgeKindList>, inline, style = Form, explode = false)]
    #[serde(default)]
    pub pledge_kind: Vec<String>,
    /// Agreements with a pledge in this ISO 4217 currency
    #[param(value_type = Option<FilterCurrency>, inline)]
    pub currency: Option<String>,
    /// With a pledge of at least this amount (needs currency)
    #[param(value_type = Option<AmountValue>, inline)]
    pub min_amount: Option<String>,
    /// With a pledge of at most this amount (needs currency)
    #[param(value_type = Option<AmountValue>, inline)]
    pub max_amount: Option<String>,
    /// Legally binding (true), not (false), or not known (unknown, null)
    #[param(value_type = Option<LegalNature>, inline)]
    pub legally_binding: Option<String>,
    /// Full-text search over titles, summaries, area details, pledge descriptions and notes, signatories and source titles; case- and accent-insensitive; ranked
    #[param(value_type = Option<Text>, inline)]
    pub q: Option<String>,
}

/// Every filter of agreement lists and statistics.
pub type Filters = And<PartnerFilter, AgreementFilters>;

/// The order of a list of agreements and the children each embeds.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListOrder {
    /// Order: a `-` prefix is descending; ties break on id. Default: relevance with q, else id
    #[param(value_type = Option<SortOrder>, inline)]
    pub sort: Option<String>,
    /// The children to embed (default all)
    #[param(value_type = Option<IncludeList>, inline, style = Form, explode = false)]
    #[serde(default)]
    pub include: Vec<String>,
}

/// `limit` and `cursor` of a page of agreements.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page (default 50)
    #[param(value_type = Option<PageLimit>, inline)]
    pub limit: Option<String>,
    /// The next_cursor of the previous page (also in the Link header)
    #[param(value_type = Option<Text>, inline)]
    pub cursor: Option<String>,
}

fn vocabulary_list<V: Vocabulary>(
    name: &str,
    values: &[String],
    errors: &mut Vec<FieldError>,
) -> Vec<V> {
    split_list(values)
        .into_iter()
        .filter_map(|text| match V::parse(text) {
            Ok(value) => Some(value),
            Err(message) => {
                errors.push(FieldError::new(name, format!("{text:?} {message}")));
                None
            }
        })
        .collect()
}

fn date_param(name: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    match date(value?) {
        Ok(d) => Some(d),
        Err(message) => {
            errors.push(FieldError::new(name, message));
            None
        }
    }
}

fn amount_param(name: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<i64> {
    match Amount::parse(value?) {
        Ok(amount) => Some(amount.minor_units()),
        Err(message) => {
            errors.push(FieldError::new(name, message));
            None
        }
    }
}

/// Parses the filters (and, for a list, its order), resolving partner
/// references through the store.
pub async fn agreement_query(
    store: &dyn Store,
    And(PartnerFilter { partner }, filters): &Filters,
    order: Option<&ListOrder>,
) -> ApiResult<AgreementQuery> {
    let mut errors = Vec::new();
    let mut parsed = AgreementQuery::default();
    // `partner=` with nothing in it is a typo, not "any partner".
    for (name, values) in [
        ("partner", partner),
        ("area", &filters.area),
        ("status", &filters.status),
        ("kind", &filters.kind),
        ("pledge_kind", &filters.pledge_kind),
    ] {
        if !values.is_empty() && split_list(values).is_empty() {
            errors.push(FieldError::new(name, "needs at least one value"));
        }
    }

    for reference in split_list(partner) {
        match find_one_partner(store, reference).await? {
            Ok(code) => {
                if !parsed.partners.contains(&code) {
                    parsed.partners.push(code);
                }
            }
            Err(unresolved) => errors.push(
                FieldError::new("partner", unresolved.with_hint()).with_matches(unresolved.closest),
            ),
        }
    }
    // Comma-separated areas: any of them; repeated parameters: all of them.
    for occurrence in &filters.area {
        let mut any_of = Vec::new();
        for code in occurrence
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            match AreaCode::parse(code) {
                Ok(parsed_code) => match store.area_exists(&parsed_code).await? {
                    true => any_of.push(parsed_code),
                    false => errors.push(FieldError::new(
                        "area",
                        format!("{code:?} is not a known cooperation area; see /v1/areas"),
                    )),
                },
                Err(message) => errors.push(FieldError::new("area", format!("{code:?} {message}"))),
            }
        }
        if !any_of.is_empty() {
            parsed.areas.push(any_of);
        }
    }
    parsed.statuses = vocabulary_list::<AgreementStatus>("status", &filters.status, &mut errors);
    parsed.kinds = vocabulary_list::<AgreementKind>("kind", &filters.kind, &mut errors);
    parsed.signed_from = date_param("signed_from", filters.signed_from.as_deref(), &mut errors);
    parsed.signed_to = date_param("signed_to", filters.signed_to.as_deref(), &mut errors);
    if let Some(text) = &filters.year {
        let bounds = text
            .parse::<i32>()
            .ok()
            .filter(|year| (1900..=2200).contains(year))
            .and_then(|year| {
                Some((
                    NaiveDate::from_ymd_opt(year, 1, 1)?,
                    NaiveDate::from_ymd_opt(year, 12, 31)?,
                ))
            });
        match bounds {
            Some((first, last)) => {
                parsed.signed_from = parsed.signed_from.max(Some(first));
                parsed.signed_to = Some(parsed.signed_to.map_or(last, |to| to.min(last)));
            }
            None => errors.push(FieldError::new("year", "must be a year such as 2024")),
        }
    }
    parsed.pledge.kinds =
        vocabulary_list::<PledgeKind>("pledge_kind", &filters.pledge_kind, &mut errors);
    parsed.pledge.currency =
        filters
            .currency
            .as_deref()
            .and_then(|text| match Currency::parse(text) {
                Ok(currency) => Some(currency),
                Err(message) => {
                    errors.push(FieldError::new("currency", message));
                    None
                }
            });
    parsed.pledge.min_minor =
        amount_param("min_amount", filters.min_amount.as_deref(), &mut errors);
    parsed.pledge.max_minor =
        amount_param("max_amount", filters.max_amount.as_deref(), &mut errors);
    for (bound, value) in [
        ("min_amount", &filters.min_amount),
        ("max_amount", &filters.max_amount),
    ] {
        if value.is_some() && filters.currency.is_none() {
            errors.push(FieldError::new(
                bound,
                "needs currency: amounts in different currencies cannot be compared",
            ));
        }
    }
    parsed.legally_binding = match filters.legally_binding.as_deref() {
        None => None,
        Some("true") => Some(Some(true)),
        Some("false") => Some(Some(false)),
        Some("null") | Some("unknown") => Some(None),
        Some(_) => {
            errors.push(FieldError::new(
                "legally_binding",
                "must be true, false or unknown",
            ));
            None
        }
    };
    if let Some(text) = &filters.q {
        match SearchTerms::parse(text) {
            Ok(terms) => parsed.search = Some(terms),
            Err(message) => errors.push(FieldError::new("q", message)),
        }
    }
    if let Some(order) = order {
        list_order(&mut parsed, order, &mut errors);
    } else if parsed.search.is_some() {
        parsed.sort = RELEVANCE;
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::InvalidQuery(errors))
    }
}

const RELEVANCE: Sort = Sort {
    key: SortKey::Relevance,
    descending: false,
};

/// `sort` (relevance by default with `q`) and `include`.
fn list_order(parsed: &mut AgreementQuery, order: &ListOrder, errors: &mut Vec<FieldError>) {
    if let Some(text) = &order.sort {
        match Sort::parse(text) {
            Ok(sort) if sort.key == SortKey::Relevance && parsed.search.is_none() => {
                errors.push(FieldError::new("sort", "relevance needs q"));
            }
            Ok(sort) => parsed.sort = sort,
            Err(message) => errors.push(FieldError::new("sort", message)),
        }
    } else if parsed.search.is_some() {
        parsed.sort = RELEVANCE;
    }
    if !order.include.is_empty() {
        let mut chosen = Include {
            areas: false,
            pledges: false,
            sources: false,
        };
        for part in split_list(&order.include) {
            match part {
                "areas" => chosen.areas = true,
                "pledges" => chosen.pledges = true,
                "sources" => chosen.sources = true,
                // Listed in the spec: the agreements alone, no children.
                "none" => {}
                other => errors.push(FieldError::new(
                    "include",
                    format!("{other:?} must be one of: areas, pledges, sources, none"),
                )),
            }
        }
        parsed.include = chosen;
    }
}

/// `limit` and `cursor` of a paged list; a cursor names the order it was
/// made for, so it cannot be replayed against another.
pub struct Paging {
    pub limit: u32,
    pub after: Option<String>,
    /// Whether the client chose the limit (an export without one streams everything).
    pub explicit_limit: bool,
}

pub fn paging(page: &PageParams, sort: Sort, errors: &mut Vec<FieldError>) -> Paging {
    let limit = page_limit(page.limit.as_deref(), errors);
    let after = page
        .cursor
        .as_deref()
        .and_then(|cursor| match decode_list_cursor(cursor, sort) {
            Some(key) => Some(key),
            None => {
                errors.push(FieldError::new(
                    "cursor",
                    "is not one this service gave out for this sort; start again without it",
                ));
                None
            }
        });
    Paging {
        limit,
        after,
        explicit_limit: page.limit.is_some(),
    }
}

fn sort_tag(sort: Sort) -> String {
    format!(
        "{}{}",
        if sort.descending { "-" } else { "" },
        sort.key.as_str()
    )
}

pub fn encode_list_cursor(key: &str, sort: Sort) -> String {
    super::extract::encode_cursor(&format!("{}|{key}", sort_tag(sort)))
}

fn decode_list_cursor(cursor: &str, sort: Sort) -> Option<String> {
    let text = super::extract::decode_cursor(cursor).ok()?;
    let (tag, key) = text.split_once('|')?;
    (tag == sort_tag(sort)).then(|| key.to_owned())
}
