//! The query string of agreement lists and statistics: every parameter from
//! an allow-list, every value parsed, every problem a 400 naming the
//! parameter. A typo never widens or empties a result silently.

use chrono::NaiveDate;

use super::extract::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, bounded_pairs};
use super::partner_lookup::{PartnerMatch, find_partner, unresolved_detail};
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

/// The filter parameters every agreement list and statistic accepts.
pub const FILTERS: &[&str] = &[
    "partner",
    "area",
    "status",
    "kind",
    "signed_from",
    "signed_to",
    "year",
    "pledge_kind",
    "currency",
    "min_amount",
    "max_amount",
    "legally_binding",
    "q",
];

/// A query string split into its pairs, checked against the parameters an
/// endpoint accepts.
pub struct QueryString {
    pairs: Vec<(String, String)>,
}

/// Values of one list parameter (`partner=a,b,c` and repeats together).
pub const MAX_LIST_VALUES: usize = 50;

impl QueryString {
    pub fn parse(raw: Option<&str>, accepted: &[&[&str]]) -> ApiResult<Self> {
        let pairs = bounded_pairs(raw.unwrap_or(""))?;
        let known = |name: &str| accepted.iter().any(|list| list.contains(&name));
        let unknown: Vec<FieldError> = pairs
            .iter()
            .filter(|(name, _)| !known(name))
            .map(|(name, _)| {
                let all: Vec<&str> = accepted.iter().flat_map(|l| l.iter().copied()).collect();
                FieldError::new(
                    name.clone(),
                    format!("is not a parameter here; known: {}", all.join(", ")),
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::InvalidQuery(unknown));
        }
        let parsed = Self { pairs };
        let too_long: Vec<FieldError> = accepted
            .iter()
            .flat_map(|list| list.iter())
            .filter(|name| **name != "q" && parsed.list(name).len() > MAX_LIST_VALUES)
            .map(|name| {
                FieldError::new(*name, format!("may list at most {MAX_LIST_VALUES} values"))
            })
            .collect();
        if too_long.is_empty() {
            Ok(parsed)
        } else {
            Err(ApiError::InvalidQuery(too_long))
        }
    }

    /// Every value of a parameter, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of a parameter that may appear once.
    pub fn one(&self, name: &str, errors: &mut Vec<FieldError>) -> Option<&str> {
        let values = self.all(name);
        if values.len() > 1 {
            errors.push(FieldError::new(name, "may be given only once"));
        }
        values.first().copied()
    }

    /// Comma-separated values of every occurrence, flattened, blanks dropped.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.all(name)
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    pub fn flag(&self, name: &str, errors: &mut Vec<FieldError>) -> bool {
        match self.one(name, errors) {
            None | Some("false") => false,
            Some("true") | Some("") => true,
            Some(_) => {
                errors.push(FieldError::new(name, "must be true or false"));
                false
            }
        }
    }
}

fn vocabulary_list<V: Vocabulary>(
    query: &QueryString,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<V> {
    query
        .list(name)
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

fn date_param(query: &QueryString, name: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let text = query.one(name, errors)?;
    match date(text) {
        Ok(d) => Some(d),
        Err(message) => {
            errors.push(FieldError::new(name, message));
            None
        }
    }
}

fn amount_param(query: &QueryString, name: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    let text = query.one(name, errors)?;
    match Amount::parse(text) {
        Ok(amount) => Some(amount.minor_units()),
        Err(message) => {
            errors.push(FieldError::new(name, message));
            None
        }
    }
}

/// Parses the filters, resolving partner references through the store.
pub async fn agreement_query(store: &dyn Store, query: &QueryString) -> ApiResult<AgreementQuery> {
    let mut errors = Vec::new();
    let mut parsed = AgreementQuery::default();
    // `partner=` with nothing in it is a typo, not "any partner".
    for name in ["partner", "area", "status", "kind", "pledge_kind"] {
        if !query.all(name).is_empty() && query.list(name).is_empty() {
            errors.push(FieldError::new(name, "needs at least one value"));
        }
    }

    for reference in query.list("partner") {
        match find_partner(store, reference).await? {
            PartnerMatch::One(code) => {
                if !parsed.partners.contains(&code) {
                    parsed.partners.push(code);
                }
            }
            unresolved => {
                let (detail, closest) = unresolved_detail(store, reference, unresolved).await;
                let named: Vec<String> = closest
                    .iter()
                    .map(|m| format!("{} ({})", m.code, m.name))
                    .collect();
                let hint = if named.is_empty() {
                    String::new()
                } else {
                    format!("; did you mean {}?", named.join(", "))
                };
                errors.push(
                    FieldError::new("partner", format!("{detail}{hint}")).with_matches(closest),
                );
            }
        }
    }
    // Comma-separated areas: any of them; repeated parameters: all of them.
    for occurrence in query.all("area") {
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
    parsed.statuses = vocabulary_list::<AgreementStatus>(query, "status", &mut errors);
    parsed.kinds = vocabulary_list::<AgreementKind>(query, "kind", &mut errors);
    parsed.signed_from = date_param(query, "signed_from", &mut errors);
    parsed.signed_to = date_param(query, "signed_to", &mut errors);
    if let Some(text) = query.one("year", &mut errors) {
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
    parsed.pledge.kinds = vocabulary_list::<PledgeKind>(query, "pledge_kind", &mut errors);
    parsed.pledge.currency =
        query
            .one("currency", &mut errors)
            .and_then(|text| match Currency::parse(text) {
                Ok(currency) => Some(currency),
                Err(message) => {
                    errors.push(FieldError::new("currency", message));
                    None
                }
            });
    parsed.pledge.min_minor = amount_param(query, "min_amount", &mut errors);
    parsed.pledge.max_minor = amount_param(query, "max_amount", &mut errors);
    for bound in ["min_amount", "max_amount"] {
        if !query.all(bound).is_empty() && query.all("currency").is_empty() {
            errors.push(FieldError::new(
                bound,
                "needs currency: amounts in different currencies cannot be compared",
            ));
        }
    }
    parsed.legally_binding = match query.one("legally_binding", &mut errors) {
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
    if let Some(text) = query.one("q", &mut errors) {
        match SearchTerms::parse(text) {
            Ok(terms) => parsed.search = Some(terms),
            Err(message) => errors.push(FieldError::new("q", message)),
        }
    }
    if let Some(text) = query.one("sort", &mut errors) {
        match Sort::parse(text) {
            Ok(sort) if sort.key == SortKey::Relevance && parsed.search.is_none() => {
                errors.push(FieldError::new("sort", "relevance needs q"));
            }
            Ok(sort) => parsed.sort = sort,
            Err(message) => errors.push(FieldError::new("sort", message)),
        }
    } else if parsed.search.is_some() {
        parsed.sort = Sort {
            key: SortKey::Relevance,
            descending: false,
        };
    }
    let include = query.all("include");
    if !include.is_empty() {
        let mut chosen = Include {
            areas: false,
            pledges: false,
            sources: false,
        };
        for part in query.list("include") {
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
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::InvalidQuery(errors))
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

/// `limit`: 1 to MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE when not given; and whether it was given.
pub fn page_limit(query: &QueryString, errors: &mut Vec<FieldError>) -> (u32, bool) {
    let given = query.one("limit", errors);
    let limit = match given {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                ));
                DEFAULT_PAGE_SIZE
            }
        },
    };
    (limit, given.is_some())
}

pub fn paging(query: &QueryString, sort: Sort, errors: &mut Vec<FieldError>) -> Paging {
    let (limit, explicit_limit) = page_limit(query, errors);
    let after =
        query
            .one("cursor", errors)
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
        explicit_limit,
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
