//! Partners: the states and organisations Ukraine signs with.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::text::fold;
use super::vocabulary;

/// ISO 3166-1 alpha-2 for a country, or an organisation code such as `EU`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PartnerCode(String);

impl PartnerCode {
    pub fn parse(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        let mut chars = upper.chars();
        let well_formed = (2..=8).contains(&upper.len())
            && chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if well_formed {
            Ok(Self(upper))
        } else {
            Err("must be a partner code: ISO 3166-1 alpha-2 (e.g. JP) or an organisation code (e.g. EU)".into())
        }
    }

    /// For values the store wrote itself.
    pub fn from_trusted(code: String) -> Self {
        Self(code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

vocabulary!(
    /// Whether a partner is a state or an organisation.
    PartnerKind {
        Country => "country",
        Organization => "organization",
    }
);

/// A partner as stored and published.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Partner {
    pub code: PartnerCode,
    pub iso3: Option<String>,
    pub kind: PartnerKind,
    pub name: String,
    pub name_uk: Option<String>,
    pub aliases: Vec<String>,
    /// How many agreements name this partner, and the first and last signing dates.
    pub agreement_count: i64,
    pub first_signed_on: Option<chrono::NaiveDate>,
    pub last_signed_on: Option<chrono::NaiveDate>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The short form embedded in an agreement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PartnerSummary {
    pub code: PartnerCode,
    pub iso3: Option<String>,
    pub kind: PartnerKind,
    pub name: String,
    pub name_uk: Option<String>,
}

/// A partner as written: the body of POST/PUT and a row of the export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartnerDraft {
    pub code: PartnerCode,
    pub iso3: Option<String>,
    pub kind: PartnerKind,
    pub name: String,
    pub name_uk: Option<String>,
    pub aliases: Vec<String>,
}

/// How a lookup key matched, best first: a code beats a name beats an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyRank {
    Code = 0,
    Iso3 = 1,
    Name = 2,
    Alias = 3,
}

impl PartnerDraft {
    /// Every folded spelling this partner answers to, with how it matched.
    pub fn lookup_keys(&self) -> Vec<(String, KeyRank)> {
        let mut keys: Vec<(String, KeyRank)> = Vec::new();
        let mut push = |text: &str, rank: KeyRank| {
            let key = fold(text);
            if !key.is_empty() && !keys.iter().any(|(k, _)| *k == key) {
                keys.push((key, rank));
            }
        };
        push(self.code.as_str(), KeyRank::Code);
        if let Some(iso3) = &self.iso3 {
            push(iso3, KeyRank::Iso3);
        }
        push(&self.name, KeyRank::Name);
        if let Some(name_uk) = &self.name_uk {
            push(name_uk, KeyRank::Name);
        }
        for alias in &self.aliases {
            push(alias, KeyRank::Alias);
        }
        keys
    }
}

impl Partner {
    pub fn summary(&self) -> PartnerSummary {
        PartnerSummary {
            code: self.code.clone(),
            iso3: self.iso3.clone(),
            kind: self.kind,
            name: self.name.clone(),
            name_uk: self.name_uk.clone(),
        }
    }

    pub fn draft(&self) -> PartnerDraft {
        PartnerDraft {
            code: self.code.clone(),
            iso3: self.iso3.clone(),
            kind: self.kind,
            name: self.name.clone(),
            name_uk: self.name_uk.clone(),
            aliases: self.aliases.clone(),
        }
    }
}

/// The longest name, Ukrainian name or alias a partner may have.
pub const MAX_NAME_CHARS: usize = 200;
super::string_schema!(
    PartnerCode,
    "^[A-Z][A-Z0-9]{1,7}$",
    "ISO 3166-1 alpha-2 for a country (JP), or an organisation code (EU)",
    "JP"
);

/// What a partner reference names: one partner, several (an alias two
/// partners share), or none, with the partners whose names come closest.
/// The caller decides what each means for its answer.
#[derive(Debug, PartialEq)]
pub enum PartnerMatch {
    One(PartnerCode),
    Ambiguous(Vec<PartnerCode>),
    Unknown { closest: Vec<PartnerCode> },
}

/// Suggestions offered for a reference that names no partner.
const MAX_SUGGESTIONS: usize = 5;

/// Partners whose lookup keys are nearest to the folded reference `key`: a
/// key that starts with it, or one within a few edits; nearest first.
pub fn closest_partners<'a>(
    key: &str,
    candidates: impl IntoIterator<Item = (&'a str, &'a PartnerCode)>,
) -> Vec<PartnerCode> {
    let length = key.chars().count();
    let tolerance = (length / 4).max(1);
    let mut scored: Vec<(usize, &PartnerCode)> = Vec::new();
    for (candidate, partner) in candidates {
        let score = if length >= 2 && candidate.starts_with(key) {
            0
        } else if candidate.chars().count().abs_diff(length) > tolerance {
            // The distance (optimal string alignment: a swap of neighbours
            // is one edit, so "britian" is one from "britain") is at least
            // the difference in length.
            continue;
        } else {
            strsim::osa_distance(key, candidate)
        };
        if score > tolerance {
            continue;
        }
        match scored.iter_mut().find(|(_, code)| *code == partner) {
            Some(entry) => entry.0 = entry.0.min(score),
            None => scored.push((score, partner)),
        }
    }
    scored.sort();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, code)| code.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_partners_allow_a_swap_and_prefer_prefixes() {
        let (gb, jp, de) = (
            PartnerCode::from_trusted("GB".into()),
            PartnerCode::from_trusted("JP".into()),
            PartnerCode::from_trusted("DE".into()),
        );
        let keys = [
            ("britain".to_owned(), gb.clone()),
            ("japan".to_owned(), jp.clone()),
            ("germany".to_owned(), de),
        ];
        let candidates = || keys.iter().map(|(k, p)| (k.as_str(), p));
        assert_eq!(closest_partners("britian", candidates()), vec![gb]);
        assert_eq!(closest_partners("jap", candidates()), vec![jp]);
        assert!(closest_partners("zzzzzz", candidates()).is_empty());
    }
}
