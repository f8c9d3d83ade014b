//! What a list of agreements, or a statistic over them, asks for: filters,
//! search terms, order and what to embed. Built from the query string by the
//! HTTP layer; the store turns it into SQL with bound parameters only.

use chrono::NaiveDate;

use super::agreement::{AgreementKind, AgreementStatus};
use super::area::AreaCode;
use super::money::Currency;
use super::partner::PartnerCode;
use super::pledge::PledgeKind;
use super::text::fold;
use super::{Vocabulary, vocabulary};

/// Conditions on one pledge of an agreement: an agreement matches when one of
/// its pledges meets them all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PledgeCondition {
    pub kinds: Vec<PledgeKind>,
    pub currency: Option<Currency>,
    /// Inclusive bounds in minor units (cents) of `currency`.
    pub min_minor: Option<i64>,
    pub max_minor: Option<i64>,
}

impl PledgeCondition {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Search words, folded like the indexed text; each must occur (as a word or
/// the start of one).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchTerms(Vec<String>);

const MAX_SEARCH_TERMS: usize = 16;

impl SearchTerms {
    pub fn parse(text: &str) -> Result<Self, String> {
        let folded = fold(text);
        let words: Vec<String> = folded
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        // Every word counts or the search is refused: never a silent cut.
        if words.len() > MAX_SEARCH_TERMS {
            return Err(format!(
                "may hold at most {MAX_SEARCH_TERMS} words, not {}",
                words.len()
            ));
        }
        if words.is_empty() {
            Err("needs at least one word to search for".into())
        } else {
            Ok(Self(words))
        }
    }

    pub fn words(&self) -> &[String] {
        &self.0
    }
}

vocabulary!(
    /// What a list can be ordered by.
    SortKey {
        Id => "id",
        SignedOn => "signed_on",
        Partner => "partner",
        Title => "title",
        UpdatedAt => "updated_at",
        Relevance => "relevance",
    }
);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    /// `title`, `-signed_on`, ...: a `-` prefix sorts descending.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (descending, name) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let key = SortKey::parse(name).map_err(|e| format!("{name:?}: {e}"))?;
        Ok(Self { key, descending })
    }
}

/// Which children an agreement embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Include {
    pub areas: bool,
    pub pledges: bool,
    pub sources: bool,
}

impl Include {
    pub const ALL: Include = Include {
        areas: true,
        pledges: true,
        sources: true,
    };
}

/// A filtered, ordered selection of agreements.
#[derive(Debug, Clone)]
pub struct AgreementQuery {
    /// Any of these partners.
    pub partners: Vec<PartnerCode>,
    /// Every group must match, each by any of its areas.
    pub areas: Vec<Vec<AreaCode>>,
    pub statuses: Vec<AgreementStatus>,
    pub kinds: Vec<AgreementKind>,
    pub signed_from: Option<NaiveDate>,
    pub signed_to: Option<NaiveDate>,
    /// `Some(None)` asks for agreements whose legal nature is unknown.
    pub legally_binding: Option<Option<bool>>,
    pub pledge: PledgeCondition,
    pub search: Option<SearchTerms>,
    pub sort: Sort,
    pub include: Include,
}

impl AgreementQuery {
    /// Whether both select the same agreements apart from search, order and
    /// embedding: used to spot a query that filters by nothing but `q`.
    pub fn filters_equal(&self, other: &AgreementQuery) -> bool {
        self.partners == other.partners
            && self.areas == other.areas
            && self.statuses == other.statuses
            && self.kinds == other.kinds
            && self.signed_from == other.signed_from
            && self.signed_to == other.signed_to
            && self.legally_binding == other.legally_binding
            && self.pledge == other.pledge
    }
}

impl Default for AgreementQuery {
    fn default() -> Self {
        Self {
            partners: Vec::new(),
            areas: Vec::new(),
            statuses: Vec::new(),
            kinds: Vec::new(),
            signed_from: None,
            signed_to: None,
            legally_binding: None,
            pledge: PledgeCondition::default(),
            search: None,
            sort: Sort {
                key: SortKey::Id,
                descending: false,
            },
            include: Include::ALL,
        }
    }
}

vocabulary!(
    /// How pledge totals can be grouped.
    PledgeGroup {
        Partner => "partner",
        Year => "year",
        Kind => "kind",
        Measure => "measure",
        Area => "area",
    }
);

vocabulary!(
    /// How agreement counts can be grouped.
    AgreementGroup {
        Year => "year",
        Status => "status",
        Kind => "kind",
        Area => "area",
        Partner => "partner",
    }
);

/// One group of a statistic: its key values in `group_by` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupValue {
    Text(Option<String>),
    Year(Option<i64>),
}

/// Groups are listed in value order, an unknown value (None) after every
/// known one; text in byte order, as the PostgreSQL "C" collation and SQLite
/// compare it.
impl Ord for GroupValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        fn known_first<T: Ord>(a: &Option<T>, b: &Option<T>) -> std::cmp::Ordering {
            match (a, b) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        }
        match (self, other) {
            (Self::Text(a), Self::Text(b)) => known_first(a, b),
            (Self::Year(a), Self::Year(b)) => known_first(a, b),
            // Never compared: one position of a group key holds one kind.
            (Self::Text(_), Self::Year(_)) => std::cmp::Ordering::Less,
            (Self::Year(_), Self::Text(_)) => std::cmp::Ordering::Greater,
        }
    }
}

impl PartialOrd for GroupValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PledgeTotal {
    pub groups: Vec<GroupValue>,
    pub currency: Currency,
    /// The exact sum, in minor units: per-year pledges once per year of
    /// their range, parts of other pledges never (their wholes are counted).
    pub total_minor: i64,
    pub count: i64,
    /// The years counted for the per-year pledges among them (0: none).
    pub years: i64,
}

/// Pledge sums of one group and currency in one conversion year (the
/// pledge's year_from, else its agreement's signing year; None: neither).
#[derive(Debug, Clone, PartialEq)]
pub struct PledgeYearTotal {
    pub groups: Vec<GroupValue>,
    pub currency: Currency,
    pub year: Option<i64>,
    /// The exact sum, in minor units.
    pub total_minor: i64,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgreementCount {
    pub groups: Vec<GroupValue>,
    pub count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms_are_folded_words() {
        let terms = SearchTerms::parse("  Cyber-Security, DÉMINING!! ").unwrap();
        assert_eq!(terms.words(), ["cyber", "security", "demining"]);
        assert!(SearchTerms::parse(" ,;- ").is_err());
        assert!(
            SearchTerms::parse("\"*:&|'").is_err(),
            "query syntax never reaches the engine"
        );
    }

    #[test]
    fn sorts_parse_with_direction() {
        assert_eq!(
            Sort::parse("-signed_on").unwrap(),
            Sort {
                key: SortKey::SignedOn,
                descending: true
            }
        );
        assert!(Sort::parse("colour").is_err());
    }
}
