//! Data checks: what a careful editor would want to fix before publishing.
//! Errors break the promise that every published number carries its source
//! and every status is true; warnings flag figures a reader should be told
//! are uncertain.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::Vocabulary;
use super::agreement::{AgreementDraft, AgreementStatus, derived_expiry};
use super::area::AreaDraft;
use super::marker::{Marker, MarkerStatus};
use super::partner::PartnerDraft;
use super::pledge::{PledgeDraft, PledgeKind};

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
    description: "a pledge no source supports (no source names it in its pledges)",
};
pub const DANGLING_PART_OF: Check = Check {
    check: "dangling_part_of",
    level: Level::Error,
    description: "a pledge whose part_of names no existing pledge: its money is counted nowhere",
};
pub const CURRENCY_EXPONENT: Check = Check {
    check: "currency_exponent",
    level: Level::Error,
    description: "an amount with more decimals than its currency's minor unit (ISO 4217: none for JPY or ISK)",
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
pub const UNLINKED_OVERLAP: Check = Check {
    check: "unlinked_overlap",
    level: Level::Warning,
    description: "two counted pledges of one partner in one currency, of the same kind (or one mixed), whose years nest (one range inside the other) but neither is part_of the other: totals may count the same money twice",
};
pub const LATE_SOURCE: Check = Check {
    check: "late_source",
    level: Level::Warning,
    description: "a source published more than two years after the agreement was signed: does it support this agreement, or a later one?",
};
pub const AREA_NAMED_NOT_LINKED: Check = Check {
    check: "area_named_not_linked",
    level: Level::Warning,
    description: "a source's title names a cooperation area (by its full name) that the agreement does not list",
};
pub const CONTESTED_FACT: Check = Check {
    check: "contested_fact",
    level: Level::Warning,
    description: "a field marked contested: sources disagree (each side is named in the marker)",
};
pub const UNVERIFIED_FACT: Check = Check {
    check: "unverified_fact",
    level: Level::Warning,
    description: "a field marked unverified: shown with its marker, never as plain fact",
};

/// Every check, errors first.
pub const CHECKS: [Check; 14] = [
    PLEDGE_WITHOUT_SOURCE,
    AGREEMENT_WITHOUT_SOURCE,
    EXPIRED_STILL_IN_FORCE,
    COLLIDING_PARTNER_NAMES,
    DANGLING_PART_OF,
    CURRENCY_EXPONENT,
    DISPUTED_FIGURE,
    UNVERIFIED_FIGURE,
    UNVERIFIED_IN_TEXT,
    UNLINKED_OVERLAP,
    LATE_SOURCE,
    AREA_NAMED_NOT_LINKED,
    CONTESTED_FACT,
    UNVERIFIED_FACT,
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
    areas: &[AreaDraft],
    agreements: &[AgreementDraft],
    today: NaiveDate,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for agreement in agreements {
        check_agreement(agreement, today, &mut findings);
        check_markers(agreement, &mut findings);
        area_named_not_linked(agreement, areas, &mut findings);
    }
    part_of_links(agreements, &mut findings);
    colliding_partner_names(partners, &mut findings);
    findings.sort_by_key(|f| f.level);
    findings
}

/// Every contested and unverified field, agreement and pledge alike.
fn check_markers(agreement: &AgreementDraft, findings: &mut Vec<Finding>) {
    let id = agreement.id.as_deref().unwrap_or_default();
    let mut report = |entity: &'static str, record: &str, field: &str, marker: &Marker| {
        let check = match marker.status {
            MarkerStatus::Contested => CONTESTED_FACT,
            MarkerStatus::Unverified => UNVERIFIED_FACT,
        };
        findings.push(Finding::new(
            check,
            entity,
            record,
            Some(id),
            format!("{field} is {}: {}", marker.status.as_str(), marker.note),
        ));
    };
    for (field, marker) in &agreement.markers {
        report("agreement", id, field, marker);
    }
    for pledge in agreement.pledges.iter().flatten() {
        for (field, marker) in &pledge.markers {
            report(
                "pledge",
                pledge.id.as_deref().unwrap_or_default(),
                field,
                marker,
            );
        }
    }
}

/// A source title that names an area by its full name ("demining",
/// "cyber security"), when the agreement does not list that area.
fn area_named_not_linked(
    agreement: &AgreementDraft,
    areas: &[AreaDraft],
    findings: &mut Vec<Finding>,
) {
    let id = agreement.id.as_deref().unwrap_or_default();
    let linked: Vec<&str> = agreement
        .areas
        .iter()
        .flatten()
        .map(|a| a.code.as_str())
        .collect();
    for source in agreement.sources.iter().flatten() {
        let title = format!(" {} ", words(&source.title));
        for area in areas {
            let name = words(&area.name);
            if name.len() >= 5
                && title.contains(&format!(" {name} "))
                && !linked.contains(&area.code.as_str())
            {
                findings.push(Finding::new(
                    AREA_NAMED_NOT_LINKED,
                    "source",
                    source.id.as_deref().unwrap_or_default(),
                    Some(id),
                    format!(
                        "its title names {:?} but the agreement does not list the area {}",
                        area.name,
                        area.code.as_str()
                    ),
                ));
            }
        }
    }
}

/// Folded text as single-spaced words, for whole-phrase matching.
fn words(text: &str) -> String {
    super::text::fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// part_of must name a pledge; pledges of one partner and currency whose
/// years nest should be linked, or they may be the same money twice.
fn part_of_links(agreements: &[AgreementDraft], findings: &mut Vec<Finding>) {
    let pledges: Vec<(&AgreementDraft, &PledgeDraft)> = agreements
        .iter()
        .flat_map(|a| a.pledges.iter().flatten().map(move |p| (a, p)))
        .collect();
    let by_id: HashMap<&str, &PledgeDraft> = pledges
        .iter()
        .filter_map(|(_, p)| Some((p.id.as_deref()?, *p)))
        .collect();
    for (agreement, pledge) in &pledges {
        let agreement_id = agreement.id.as_deref().unwrap_or_default();
        let pledge_id = pledge.id.as_deref().unwrap_or_default();
        if let Some(whole) = pledge.part_of.as_deref()
            && !by_id.contains_key(whole)
        {
            findings.push(Finding::new(
                DANGLING_PART_OF,
                "pledge",
                pledge_id,
                Some(agreement_id),
                format!("part_of names {whole:?}, which is not a pledge"),
            ));
        }
    }
    for (i, (a, p)) in pledges.iter().enumerate() {
        for (b, q) in &pledges[i + 1..] {
            let (Some(p_id), Some(q_id)) = (p.id.as_deref(), q.id.as_deref()) else {
                continue;
            };
            // Only two counted pledges can count the same money twice (a
            // part is never counted), and only of a kind that can hold both.
            let kinds_meet =
                p.kind == q.kind || p.kind == PledgeKind::Mixed || q.kind == PledgeKind::Mixed;
            if a.partner != b.partner
                || p.currency != q.currency
                || p.part_of.is_some()
                || q.part_of.is_some()
                || !kinds_meet
            {
                continue;
            }
            let (Some(p_from), Some(q_from)) = (p.year_from, q.year_from) else {
                continue;
            };
            let p_to = p.year_to.unwrap_or(p_from);
            let q_to = q.year_to.unwrap_or(q_from);
            let nested = (p_from >= q_from && p_to <= q_to) || (q_from >= p_from && q_to <= p_to);
            if !nested {
                continue;
            }
            findings.push(Finding::new(
                UNLINKED_OVERLAP,
                "pledge",
                q_id,
                b.id.as_deref(),
                format!(
                    "{} {} ({}) and {p_id}, {} {} ({}), nest in years but neither is part_of the other: the same money twice?",
                    q.amount,
                    q.currency.as_str(),
                    span(q_from, q_to),
                    p.amount,
                    p.currency.as_str(),
                    span(p_from, p_to),
                ),
            ));
        }
    }
}

fn span(from: i64, to: i64) -> String {
    if from == to {
        from.to_string()
    } else {
        format!("{from}–{to}")
    }
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
    for source in sources {
        if let (Some(published), Some(signed)) = (source.published_on, agreement.signed_on)
            && (published - signed).num_days() > 2 * 366
        {
            findings.push(Finding::new(
                LATE_SOURCE,
                "source",
                source.id.as_deref().unwrap_or_default(),
                Some(id),
                format!(
                    "published on {published}, more than two years after the signing on {signed}: {}",
                    source.title
                ),
            ));
        }
    }
    for pledge in pledges {
        let pledge_id = pledge.id.as_deref().unwrap_or_default();
        let figure = format!("{} {}", pledge.amount, pledge.currency.as_str());
        if let Err(message) = pledge.currency.check(&pledge.amount) {
            findings.push(Finding::new(
                CURRENCY_EXPONENT,
                "pledge",
                pledge_id,
                Some(id),
                format!("{figure}: {message}"),
            ));
        }
        if !sources
            .iter()
            .any(|s| s.pledges.iter().any(|p| p == pledge_id))
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
        Self::new(
            run(
                &dataset.partners,
                &dataset.areas,
                &dataset.agreements,
                today,
            ),
            level,
        )
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
