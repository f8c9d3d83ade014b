//! Query parameters as types: each endpoint's parameters are one
//! `#[derive(Deserialize, IntoParams)]` struct, which both documents them
//! (the OpenAPI parameters come from it) and names the parameters the
//! endpoint accepts. [`Params`] reads a query string into it: an unknown
//! parameter, one given twice that may be given once, or a list too long is
//! a 400 naming it, before any value is looked at. The values arrive as the
//! client wrote them, and each endpoint parses them into domain types,
//! collecting every problem into one answer.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use utoipa::IntoParams;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};

use crate::domain::{FieldError, Vocabulary};
use crate::error::{ApiError, ApiResult};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

/// Bounds on what a query string may hold, so parsing, matching and
/// suggesting cost a bounded amount per request whatever is sent.
pub const MAX_QUERY_PAIRS: usize = 64;
pub const MAX_QUERY_VALUE_CHARS: usize = 1_000;

/// The pairs of a query string, within [`MAX_QUERY_PAIRS`] and
/// [`MAX_QUERY_VALUE_CHARS`]: what every endpoint reads its parameters from.
pub fn bounded_pairs(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs = Vec::new();
    for (index, (name, value)) in form_urlencoded::parse(raw.as_bytes()).enumerate() {
        if index >= MAX_QUERY_PAIRS {
            return Err(ApiError::BadRequest(format!(
                "the query string has more than {MAX_QUERY_PAIRS} parameters"
            )));
        }
        if value.chars().count() > MAX_QUERY_VALUE_CHARS {
            return Err(ApiError::InvalidQuery(vec![FieldError::new(
                name.into_owned(),
                format!("must be at most {MAX_QUERY_VALUE_CHARS} characters"),
            )]));
        }
        pairs.push((name.into_owned(), value.into_owned()));
    }
    Ok(pairs)
}

/// Values of one list parameter (`partner=a,b,c` and repeats together).
pub const MAX_LIST_VALUES: usize = 50;

/// An endpoint's query parameters, read by [`read`].
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: FromPairs + IntoParams> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        read(parts.uri.query()).map(Params)
    }
}

/// The parameters of both `A` and `B`, read from the same query string:
/// how parameter groups shared by several endpoints are combined (IntoParams
/// does not follow `#[serde(flatten)]`).
#[derive(Debug, Default)]
pub struct And<A, B>(pub A, pub B);

impl<A: IntoParams, B: IntoParams> IntoParams for And<A, B> {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut parameters = A::into_params(&parameter_in);
        parameters.extend(B::into_params(parameter_in));
        parameters
    }
}

/// No parameters at all: any is a 400.
#[derive(Debug, Default, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoParams {}

/// What every JSON answer takes: taken off the query by the layer that
/// indents answers (pretty.rs) before any endpoint reads its own, and
/// documented on every read (the layer reads it with [`flag`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct JsonLayout {
    /// Indented JSON (`pretty` alone means true); other formats are sent as they are
    #[param(value_type = Option<Flag>, inline)]
    pretty: Option<String>,
}

/// The query string's pairs, by name, in the order first given.
pub struct Pairs(Vec<(String, Vec<String>)>);

/// A parameter type read from the pairs of a query string.
pub trait FromPairs: Sized {
    fn from_pairs(pairs: &Pairs) -> ApiResult<Self>;
}

impl<T: DeserializeOwned> FromPairs for T {
    fn from_pairs(pairs: &Pairs) -> ApiResult<Self> {
        serde_path_to_error::deserialize(PairsDeserializer(&pairs.0)).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "query".to_owned()
            } else {
                path
            };
            ApiError::InvalidQuery(vec![FieldError::new(field, e.into_inner().to_string())])
        })
    }
}

impl<A: FromPairs, B: FromPairs> FromPairs for And<A, B> {
    fn from_pairs(pairs: &Pairs) -> ApiResult<Self> {
        Ok(And(A::from_pairs(pairs)?, B::from_pairs(pairs)?))
    }
}

/// Reads a query string into `T`: only the parameters `T` documents, each
/// at most once unless it is a list, a list of at most [`MAX_LIST_VALUES`].
pub fn read<T: FromPairs + IntoParams>(raw: Option<&str>) -> ApiResult<T> {
    let documented = T::into_params(|| Some(ParameterIn::Query));
    let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
    let mut unknown = Vec::new();
    for (name, value) in bounded_pairs(raw.unwrap_or(""))? {
        if !documented.iter().any(|p| p.name == name) {
            unknown.push(unknown_parameter(&name, &documented));
            continue;
        }
        match pairs.iter_mut().find(|(given, _)| *given == name) {
            Some((_, values)) => values.push(value),
            None => pairs.push((name, vec![value])),
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::InvalidQuery(unknown));
    }
    let mut errors = Vec::new();
    for (name, values) in &pairs {
        let is_list = documented
            .iter()
            .any(|p| p.name == *name && matches!(p.schema, Some(RefOr::T(Schema::Array(_)))));
        if !is_list && values.len() > 1 {
            errors.push(FieldError::new(name.clone(), "may be given only once"));
        } else if is_list && split_list(values).len() > MAX_LIST_VALUES {
            errors.push(FieldError::new(
                name.clone(),
                format!("may list at most {MAX_LIST_VALUES} values"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    T::from_pairs(&Pairs(pairs))
}

/// The names of the parameters `T` documents, in order.
pub fn parameter_names<T: IntoParams>() -> Vec<String> {
    T::into_params(|| Some(ParameterIn::Query))
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// The 400 for a parameter the endpoint does not take, suggesting the
/// parameter it may have meant.
fn unknown_parameter(name: &str, documented: &[Parameter]) -> FieldError {
    let known: Vec<&str> = documented.iter().map(|p| p.name.as_str()).collect();
    let nearest = known
        .iter()
        .map(|k| (strsim::osa_distance(name, k), *k))
        .filter(|(distance, k)| *distance <= (k.len() / 4).max(1))
        .min();
    let hint = nearest.map_or(String::new(), |(_, k)| format!("did you mean {k}? "));
    FieldError::new(
        name,
        format!("is not a parameter here; {hint}known: {}", known.join(", ")),
    )
}

/// Comma-separated values of every occurrence, flattened, blanks dropped.
pub fn split_list(values: &[String]) -> Vec<&str> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// A yes/no switch: `true`, `false`, or the bare name for true.
pub fn flag(name: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> bool {
    match value {
        None | Some("false") => false,
        Some("true") | Some("") => true,
        Some(_) => {
            errors.push(FieldError::new(name, "must be true or false"));
            false
        }
    }
}

/// `limit`: a whole number from 1 to `max`, `default` when not given; the
/// one reading of a page size for the whole API.
pub fn limit(value: Option<&str>, default: u32, max: u32, errors: &mut Vec<FieldError>) -> u32 {
    match value {
        None => default,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {max}"),
                ));
                default
            }
        },
    }
}

/// [`limit`] of an ordinary page: 1 to [`MAX_PAGE_SIZE`], [`DEFAULT_PAGE_SIZE`] by default.
pub fn page_limit(value: Option<&str>, errors: &mut Vec<FieldError>) -> u32 {
    limit(value, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, errors)
}

/// Each value as given, in order; the query string's own form.
struct PairsDeserializer<'a>(&'a [(String, Vec<String>)]);

type Error = de::value::Error;

impl<'de> de::Deserializer<'de> for PairsDeserializer<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(MapDeserializer::new(
            self.0
                .iter()
                .map(|(name, values)| (name.as_str(), Values(values))),
        ))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The values of one parameter: a `Vec<String>` takes them all, a `bool`
/// reads `true`, `false` or nothing (true), anything else the value as text.
struct Values<'a>(&'a [String]);

impl<'de> IntoDeserializer<'de, Error> for Values<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for Values<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(self.0.first().map_or("", String::as_str))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.0.is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(SeqDeserializer::new(self.0.iter().map(String::as_str)))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.first().map(String::as_str) {
            None | Some("false") => visitor.visit_bool(false),
            Some("true") | Some("") => visitor.visit_bool(true),
            Some(_) => Err(de::Error::custom("must be true or false")),
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

// ---- schemas of parameter values ----------------------------------------
//
// What the derive cannot say from a field's Rust type (the values arrive as
// text): a type per kind of value, named in `#[param(value_type = ..,
// inline)]`.

pub(super) fn words<V: Vocabulary>() -> Vec<&'static str> {
    V::ALL.iter().map(|v| v.as_str()).collect()
}

pub(super) fn text() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

pub(super) fn one_of(values: Vec<&'static str>) -> Schema {
    text().enum_values(Some(values)).build().into()
}

/// A comma-separated list (`status=signed,ratified`).
pub(super) fn list_of(item: Schema) -> Schema {
    ArrayBuilder::new()
        .items(RefOr::T(item))
        .min_items(Some(1))
        .build()
        .into()
}

pub(super) fn integer(min: i64, max: i64) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
        .build()
        .into()
}

pub(super) fn pattern(regex: &str, example: &str) -> Schema {
    text()
        .pattern(Some(regex))
        .examples([serde_json::json!(example)])
        .build()
        .into()
}

/// A cooperation area's code.
pub(super) fn area_code() -> Schema {
    pattern("^[a-z0-9]+(-[a-z0-9]+)*$", "demining")
}

/// Declares the schema of a kind of parameter value.
macro_rules! value_schema {
    ($(#[$meta:meta])* $name:ident, $build:expr) => {
        $(#[$meta])*
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::RefOr::T($build)
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}
pub(super) use value_schema;

value_schema!(
    /// A yes/no switch: `true`, `false`, or the bare name for true.
    Flag,
    one_of(vec!["true", "false", ""])
);
value_schema!(
    /// Non-empty text.
    Text,
    text().min_length(Some(1)).build().into()
);
value_schema!(
    /// An ISO 4217 currency code.
    CurrencyCode,
    pattern("^[A-Za-z]{3}$", "EUR")
);
value_schema!(
    /// Currency codes, comma-separated.
    CurrencyList,
    list_of(pattern("^[A-Za-z]{3}$", "USD"))
);
value_schema!(
    /// A kind of record in the history and the change feed.
    EntityName,
    one_of(crate::store::ENTITIES.to_vec())
);
value_schema!(
    /// An answer as JSON or as text to read.
    JsonOrText,
    one_of(vec!["json", "text"])
);
value_schema!(
    /// Items per page of an ordinary list.
    PageLimit,
    integer(1, i64::from(MAX_PAGE_SIZE))
);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, IntoParams)]
    #[into_params(parameter_in = Query)]
    struct Sample {
        /// One value.
        one: Option<String>,
        /// Many.
        #[param(value_type = Option<CurrencyList>, inline)]
        #[serde(default)]
        many: Vec<String>,
        #[serde(default)]
        switch: bool,
    }

    #[derive(Debug, serde::Deserialize, IntoParams)]
    #[into_params(parameter_in = Query)]
    struct Other {
        other: Option<String>,
    }

    fn fields(result: ApiResult<impl std::fmt::Debug>) -> Vec<(String, String)> {
        match result {
            Err(ApiError::InvalidQuery(errors)) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_values_lists_and_switches() {
        let sample: Sample = read(Some("one=a&many=x,y&many=z&switch")).unwrap();
        assert_eq!(sample.one.as_deref(), Some("a"));
        assert_eq!(sample.many, ["x,y", "z"]);
        assert!(sample.switch);
        let both: And<Sample, Other> = read(Some("other=b&one=a")).unwrap();
        assert_eq!(both.1.other.as_deref(), Some("b"));
        assert_eq!(And::<Sample, Other>::into_params(|| None).len(), 4);
    }

    #[test]
    fn names_what_it_refuses() {
        let errors = fields(read::<Sample>(Some("onw=1&x=2")));
        assert_eq!(errors[0].0, "onw");
        assert!(errors[0].1.contains("did you mean one?"), "{errors:?}");
        assert!(!errors[1].1.contains("did you mean"), "{errors:?}");
        let errors = fields(read::<Sample>(Some("one=a&one=b")));
        assert_eq!(errors, [("one".into(), "may be given only once".into())]);
        let long = format!("many={}", ["a"; 51].join(","));
        assert_eq!(fields(read::<Sample>(Some(&long)))[0].0, "many");
        assert_eq!(fields(read::<Sample>(Some("switch=maybe")))[0].0, "switch");
    }
}
