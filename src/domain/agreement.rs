//! Agreements: who signed what, when and where, with their areas, pledges and sources.

use chrono::{DateTime, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::area::AreaCode;
use super::marker::{Markers, Place};
use super::partner::{PartnerCode, PartnerSummary};
use super::pledge::{Pledge, PledgeDraft};
use super::source::{Source, SourceDraft};
use super::text::slug;
use super::{Vocabulary, vocabulary};

vocabulary!(
    AgreementKind {
        BilateralSecurity => "bilateral_security",
        Partnership => "partnership",
        Declaration => "declaration",
        Other => "other",
    }
);

vocabulary!(
    AgreementStatus {
        Negotiating => "negotiating",
        Signed => "signed",
        Ratified => "ratified",
        InForce => "in_force",
        Expired => "expired",
        Terminated => "terminated",
    }
);

vocabulary!(
    /// Which side of the table a signatory sat on.
    Side {
        Ukraine => "ukraine",
        Partner => "partner",
    }
);

/// An agreement id: a slug such as `ua-jp-2024`.
pub fn agreement_id(text: &str) -> Result<String, String> {
    slug(text, 100)
}

/// The id a new agreement gets when its creator gives none: `ua-jp-2024`,
/// or `ua-me` while no signing date is known.
pub fn generated_agreement_id(partner: &PartnerCode, signed_on: Option<NaiveDate>) -> String {
    let code = partner.as_str().to_ascii_lowercase();
    match signed_on {
        Some(date) => format!("ua-{code}-{}", date.format("%Y")),
        None => format!("ua-{code}"),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Signatory {
    pub name: String,
    pub role: Option<String>,
    pub side: Side,
}

impl<'de> Deserialize<'de> for Side {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Side::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaLinkDraft {
    pub code: AreaCode,
    pub detail: Option<String>,
}

/// An area as embedded in an agreement: the vocabulary entry plus this agreement's detail.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AreaLink {
    pub code: AreaCode,
    pub name: String,
    pub name_uk: Option<String>,
    pub detail: Option<String>,
}

/// An agreement as written: the body of POST/PUT, the base of a PATCH, and a
/// record of the export. Child lists that are `None` are left as they are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgreementDraft {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub partner: PartnerCode,
    pub title: String,
    pub title_uk: Option<String>,
    pub kind: AgreementKind,
    pub status: AgreementStatus,
    pub signed_on: Option<NaiveDate>,
    pub signed_at: Option<String>,
    pub signed_place: Option<Place>,
    pub signatories: Vec<Signatory>,
    pub term_years: Option<i64>,
    /// Only an explicitly given end date; a derived one is not stored.
    pub expires_on: Option<NaiveDate>,
    pub legally_binding: Option<bool>,
    pub summary: Option<String>,
    pub text_url: Option<String>,
    pub markers: Markers,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub areas: Option<Vec<AreaLinkDraft>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pledges: Option<Vec<PledgeDraft>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<SourceDraft>>,
}

/// The latest year of signing: with a term of at most 100 years, every end
/// date stays within the dates the service accepts (and so can be PUT back).
pub const LAST_SIGNING_YEAR: i32 = crate::domain::text::LAST_YEAR - 100;

/// signed_on + term_years, when both are known.
pub fn derived_expiry(signed_on: Option<NaiveDate>, term_years: Option<i64>) -> Option<NaiveDate> {
    let months = u32::try_from(term_years?.checked_mul(12)?).ok()?;
    signed_on?.checked_add_months(Months::new(months))
}

impl AgreementDraft {
    /// The words a search finds this agreement by, folded: title (and
    /// Ukrainian title), summary, area details, pledge descriptions and
    /// notes, signatories, source titles, and `names` (its partner's and
    /// areas' names in English and Ukrainian, which the draft holds only as
    /// codes).
    pub fn search_text(&self, names: &[&str]) -> String {
        let mut parts: Vec<&str> = vec![self.title.as_str()];
        parts.extend(self.title_uk.as_deref());
        parts.extend(names);
        parts.extend(self.summary.as_deref());
        parts.extend(
            self.areas
                .iter()
                .flatten()
                .filter_map(|a| a.detail.as_deref()),
        );
        for pledge in self.pledges.iter().flatten() {
            parts.extend(pledge.description.as_deref());
            parts.extend(pledge.note.as_deref());
        }
        parts.extend(self.signatories.iter().map(|s| s.name.as_str()));
        parts.extend(self.sources.iter().flatten().map(|s| s.title.as_str()));
        super::text::fold(&parts.join("\n"))
    }

    /// An end date equal to the one signed_on + term_years gives is not
    /// "given": it is dropped so it follows later edits of the term. The same
    /// holds for the derived date a client read from `current` and sent back.
    pub fn settle_expiry(&mut self, current: Option<&Agreement>) {
        let Some(given) = self.expires_on else { return };
        let echoes_derived =
            current.is_some_and(|c| c.expires_on_given.is_none() && c.expires_on == Some(given));
        if echoes_derived || derived_expiry(self.signed_on, self.term_years) == Some(given) {
            self.expires_on = None;
        }
    }
}

/// An agreement as published, embedding everything a lookup needs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Agreement {
    pub id: String,
    pub partner: PartnerSummary,
    pub title: String,
    /// The official Ukrainian title where a source gives one; null otherwise
    /// (never a machine translation).
    pub title_uk: Option<String>,
    pub kind: AgreementKind,
    pub status: AgreementStatus,
    pub signed_on: Option<NaiveDate>,
    /// Where it was signed, as text to display.
    pub signed_at: Option<String>,
    /// Where it was signed, as fields (city, country, venue, event).
    pub signed_place: Option<Place>,
    pub signatories: Vec<Signatory>,
    pub term_years: Option<i64>,
    /// Given, or derived from signed_on + term_years.
    pub expires_on: Option<NaiveDate>,
    #[serde(skip)]
    pub expires_on_given: Option<NaiveDate>,
    pub legally_binding: Option<bool>,
    pub summary: Option<String>,
    pub text_url: Option<String>,
    /// Contested or unverified fields, by name, each with its note and the
    /// sources on each side.
    #[schema(value_type = Object)]
    pub markers: Markers,
    pub areas: Vec<AreaLink>,
    pub pledges: Vec<Pledge>,
    pub sources: Vec<Source>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Agreement {
    /// The text full-text search looks in; see [`AgreementDraft::search_text`];
    /// also the Ukrainian names of its areas.
    pub fn search_text(&self) -> String {
        let mut names = vec![self.partner.name.as_str()];
        names.extend(self.partner.name_uk.as_deref());
        for area in &self.areas {
            names.push(area.name.as_str());
            names.extend(area.name_uk.as_deref());
        }
        self.draft().search_text(&names)
    }

    pub fn draft(&self) -> AgreementDraft {
        AgreementDraft {
            id: Some(self.id.clone()),
            partner: self.partner.code.clone(),
            title: self.title.clone(),
            title_uk: self.title_uk.clone(),
            kind: self.kind,
            status: self.status,
            signed_on: self.signed_on,
            signed_at: self.signed_at.clone(),
            signed_place: self.signed_place.clone(),
            signatories: self.signatories.clone(),
            term_years: self.term_years,
            expires_on: self.expires_on_given,
            legally_binding: self.legally_binding,
            summary: self.summary.clone(),
            text_url: self.text_url.clone(),
            markers: self.markers.clone(),
            areas: Some(
                self.areas
                    .iter()
                    .map(|a| AreaLinkDraft {
                        code: a.code.clone(),
                        detail: a.detail.clone(),
                    })
                    .collect(),
            ),
            pledges: Some(self.pledges.iter().map(Pledge::draft).collect()),
            sources: Some(self.sources.iter().map(Source::draft).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_derived_from_signing_and_term() {
        let signed = NaiveDate::from_ymd_opt(2024, 2, 29);
        assert_eq!(
            derived_expiry(signed, Some(10)),
            NaiveDate::from_ymd_opt(2034, 2, 28)
        );
        assert_eq!(derived_expiry(signed, None), None);
        assert_eq!(derived_expiry(None, Some(10)), None);
    }

    #[test]
    fn generated_ids_follow_partner_and_year() {
        let jp = PartnerCode::parse("jp").unwrap();
        assert_eq!(
            generated_agreement_id(&jp, NaiveDate::from_ymd_opt(2024, 6, 13)),
            "ua-jp-2024"
        );
        assert_eq!(generated_agreement_id(&jp, None), "ua-jp");
    }
}
