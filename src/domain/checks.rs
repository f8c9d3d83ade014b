//! Data checks: what a careful editor would want to fix before publishing.
//! Errors break the promise that every published number carries its source
//! and every status is true; warnings flag figures a reader should be told
//! are uncertain.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::Vocabulary;
use super::agreement::{AgreementDraft, AgreementStatus, derived_expiry};
use super::partner::PartnerDraft;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

impl Level {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "error" => Ok(Self::Error),
            "warning" => Ok(Self::Warning),
            _ => Err("must be one of: error, warning".into()),
        }
    }
}

/// A check: its name (stable, for scripts), level and what it looks for.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Check {
    pub check: &'static str,
    pub level: Level,
    pub description: &'static str,
}

pub const PLEDGE_WITHOUT_SOURCE: Check = Check {
    check: "pledge_without_source",
    level: Level::Error,
    description: "a pledge no source supports (no source names it in pledge_id)",
};
pub const AGREEMENT_WITHOUT_SOURCE: Check = Check {
    check: "agreement_without_source",
    level: Level::Error,
    description: "an agreement with no source at all",
};
pub const EXPIRED_STILL_IN_FORCE: Check = Check {
    check: "expired_still_in_force",
    level: Level::Error,
    description: "an agreement whose term has ended (expires_on, given or signed_on + term_years, is past) but whose status is still signed, ratified or in_force",
};
pub const COLLIDING_PARTNER_NAMES: Check = Check {
    check: "colliding_partner_names",
    level: Level::Error,
    description: "two partners answering to the same name, alias or code (compared case- and accent-insensitively), so a lookup by it is ambiguous",
};
pub const DISPUTED_FIGURE: Check = Check {
    check: "disputed_figure",
    level: Level::Warning,
    description: "a pledge whose note says its figure is disputed",
};
pub const UNVERIFIED_FIGURE: Check = Check {
    check: "unverified_figure",
    level: Level::Warning,
    description: "a pledge whose note says its figure is unclear or unverified",
};
pub const UNVERIFIED_IN_TEXT: Check = Check {
    check: "unverified_in_agreement_text",
    level: Level::Warning,
    description: "a pledge for which it is unknown whether it is part of the agreement's text (in_agreement_text is null)",
};
pub const DUPLICATE_SOURCE: Check = Check {
    check: "duplicate_source",
    level: Level::Warning,
    description: "two sources of one agreement with the same URL for the same pledge (or both for the agreement as a whole)",
};

/// Every check, errors first.
pub const CHECKS: [Check; 8] = [
    PLEDGE_WITHOUT_SOURCE,
    AGREEMENT_WITHOUT_SOURCE,
    EXPIRED_STILL_IN_FORCE,
    COLLIDING_PARTNER_NAMES,
    DISPUTED_FIGURE,
    UNVERIFIED_FIGURE,
    UNVERIFIED_IN_TEXT,
    DUPLICATE_SOURCE,
];

/// One thing to fix, and the record it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    /// partner, agreement, pledge or source.
    pub entity: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement_id: Option<String>,
    pub message: String,
}

impl Finding {
    fn new(
        check: Check,
        entity: &'static str,
        id: &str,
        agreement_id: Option<&str>,
        message: String,
    ) -> Self {
        Self {
            check: check.check,
            level: check.level,
            entity,
            id: id.to_owned(),
            agreement_id: agreement_id.map(str::to_owned),
            message,
        }
    }
}

/// Runs every check over the whole dataset; `today` decides what has expired.
pub fn run(
    partners: &[PartnerDraft],
    agreements: &[AgreementDraft],
    today: NaiveDate,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for agreement in agreements {
        check_agreement(agreement, today, &mut findings);
    }
    colliding_partner_names(partners, &mut findings);
    findings.sort_by_key(|f| f.level);
    findings
}

fn check_agreement(agreement: &AgreementDraft, today: NaiveDate, findings: &mut Vec<Finding>) {
    let id = agreement.id.as_deref().unwrap_or_default();
    let sources = agreement.sources.as_deref().unwrap_or_default();
    let pledges = agreement.pledges.as_deref().unwrap_or_default();
    if sources.is_empty() {
        findings.push(Finding::new(
            AGREEMENT_WITHOUT_SOURCE,
            "agreement",
            id,
            None,
            format!("{:?} has no source", agreement.title),
        ));
    }
    let expires_on = agreement
        .expires_on
        .or_else(|| derived_expiry(agreement.signed_on, agreement.term_years));
    let still_running = matches!(
        agreement.status,
        AgreementStatus::Signed | AgreementStatus::Ratified | AgreementStatus::InForce
    );
    if let Some(ended) = expires_on.filter(|ended| *ended < today && still_running) {
        findings.push(Finding::new(
            EXPIRED_STILL_IN_FORCE,
            "agreement",
            id,
            None,
            format!(
                "its term ended on {ended} but its status is {:?}: expired, terminated, or a corrected end date?",
                agreement.status.as_str()
            ),
        ));
    }
    for pledge in pledges {
        let pledge_id = pledge.id.as_deref().unwrap_or_default();
        let figure = format!("{} {}", pledge.amount, pledge.currency.as_str());
        if !sources
            .iter()
            .any(|s| s.pledge_id.as_deref() == Some(pledge_id))
        {
            findings.push(Finding::new(
                PLEDGE_WITHOUT_SOURCE,
                "pledge",
                pledge_id,
                Some(id),
                format!("no source supports the figure {figure}"),
            ));
        }
        let note = pledge.note.as_deref().unwrap_or_default().to_lowercase();
        if note.contains("disputed") {
            findings.push(Finding::new(
                DISPUTED_FIGURE,
                "pledge",
                pledge_id,
                Some(id),
                format!(
                    "{figure} is disputed: {}",
                    pledge.note.as_deref().unwrap_or_default()
                ),
            ));
        } else if note.contains("unverified") || note.contains("unclear") {
            findings.push(Finding::new(
                UNVERIFIED_FIGURE,
                "pledge",
                pledge_id,
                Some(id),
                format!(
                    "{figure} is not verified: {}",
                    pledge.note.as_deref().unwrap_or_default()
                ),
            ));
        }
        if pledge.in_agreement_text.is_none() {
            findings.push(Finding::new(
                UNVERIFIED_IN_TEXT,
                "pledge",
                pledge_id,
                Some(id),
                format!("whether {figure} is in the agreement's text is unknown"),
            ));
        }
    }
    let mut seen: HashMap<(&str, Option<&str>), &str> = HashMap::new();
    for source in sources {
        let source_id = source.id.as_deref().unwrap_or_default();
        let key = (source.url.as_str(), source.pledge_id.as_deref());
        if let Some(first) = seen.insert(key, source_id) {
            let what = source
                .pledge_id
                .as_deref()
                .map_or("the agreement".to_owned(), |p| format!("pledge {p}"));
            findings.push(Finding::new(
                DUPLICATE_SOURCE,
                "source",
                source_id,
                Some(id),
                format!(
                    "same URL as source {first}, both for {what}: {}",
                    source.url
                ),
            ));
        }
    }
}

fn colliding_partner_names(partners: &[PartnerDraft], findings: &mut Vec<Finding>) {
    let mut owners: HashMap<String, &str> = HashMap::new();
    for partner in partners {
        for (key, _) in partner.lookup_keys() {
            match owners.get(&key) {
                Some(owner) if *owner != partner.code.as_str() => findings.push(Finding::new(
                    COLLIDING_PARTNER_NAMES,
                    "partner",
                    partner.code.as_str(),
                    None,
                    format!("answers to {key:?} like partner {owner}: a lookup by it is ambiguous"),
                )),
                Some(_) => {}
                None => {
                    owners.insert(key, partner.code.as_str());
                }
            }
        }
    }
}

/// The answer of `accords check` and GET /v1/checks: whether the data passes
/// (no finding at the error level), each check with its count, and the findings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub passed: bool,
    pub errors: usize,
    pub warnings: usize,
    pub checks: Vec<CheckCount>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckCount {
    #[serde(flatten)]
    pub check: Check,
    pub count: usize,
}

impl Report {
    /// Runs every check over a whole export.
    pub fn of(dataset: &super::dataset::Dataset, today: NaiveDate, level: Option<Level>) -> Self {
        Self::new(run(&dataset.partners, &dataset.agreements, today), level)
    }

    /// Counts every finding; lists only those at `level` or worse when given.
    pub fn new(findings: Vec<Finding>, level: Option<Level>) -> Self {
        let count = |level: Level| findings.iter().filter(|f| f.level == level).count();
        let (errors, warnings) = (count(Level::Error), count(Level::Warning));
        let checks = CHECKS
            .iter()
            .map(|check| CheckCount {
                check: *check,
                count: findings.iter().filter(|f| f.check == check.check).count(),
            })
            .collect();
        let findings = findings
            .into_iter()
            .filter(|f| level.is_none_or(|level| f.level <= level))
            .collect();
        Self {
            passed: errors == 0,
            errors,
            warnings,
            checks,
            findings,
        }
    }
}
