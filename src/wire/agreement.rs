//! The wire shape of an agreement and its parsing into an [`AgreementDraft`].

use serde::Deserialize;
use serde_json::Value;

use super::pledge::PledgeBody;
use super::source::SourceBody;
use crate::domain::agreement::{
    AgreementDraft, AgreementKind, AgreementStatus, AreaLinkDraft, LAST_SIGNING_YEAR, Side,
    Signatory, agreement_id,
};
use crate::domain::area::AreaCode;
use crate::domain::marker::{AGREEMENT_FIELDS, Marker, Markers, parse_markers, parse_place};
use crate::domain::partner::PartnerCode;
use crate::domain::pledge::PledgeDraft;
use crate::domain::source::SourceDraft;
use crate::domain::text::{bounded, optional_bounded, optional_date, optional_web_url};
use crate::domain::{FieldError, Problems, Vocabulary};

/// The loose shape of an agreement in a request body. Everything is optional
/// here so that every missing field is reported at once.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementBody {
    #[schema(
        pattern = r"^\s*[A-Za-z0-9]+(-[A-Za-z0-9]+)*\s*$",
        max_length = 100,
        example = "ua-jp-2024"
    )]
    pub id: Option<String>,
    /// A partner code or any partner reference, or a partner object from a GET.
    #[schema(value_type = String, required = true, nullable = false, min_length = 1, example = "JP")]
    pub partner: Option<Value>,
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    )]
    pub title: Option<String>,
    /// The official Ukrainian title, as a source gives it (cite the source).
    #[schema(max_length = 500, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub title_uk: Option<String>,
    #[schema(value_type = AgreementKind, required = true, nullable = false)]
    pub kind: Option<String>,
    #[schema(value_type = AgreementStatus, required = true, nullable = false)]
    pub status: Option<String>,
    #[schema(value_type = Option<String>, pattern = r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2})?\s*$")]
    pub signed_on: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub signed_at: Option<String>,
    /// `{"city", "country" (ISO 3166-1 alpha-2), "venue", "event"}`.
    #[schema(value_type = Option<Object>)]
    pub signed_place: Option<Value>,
    #[schema(max_items = 20)]
    pub signatories: Option<Vec<SignatoryBody>>,
    #[schema(minimum = 1, maximum = 100)]
    pub term_years: Option<i64>,
    #[schema(value_type = Option<String>, pattern = r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2})?\s*$")]
    pub expires_on: Option<String>,
    pub legally_binding: Option<bool>,
    #[schema(max_length = 10000, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub summary: Option<String>,
    #[schema(
        max_length = 2048,
        pattern = r"^\s*(https?://(\[[0-9A-Fa-f:.]+\]|[^\s/?#\[\]:@]+)(:[0-9]{1,5})?([/?#][^\s]*)?)?\s*$"
    )]
    pub text_url: Option<String>,
    /// Contested or unverified fields: `{"legally_binding": {"status": "contested", "note": "...", "sources_for": [...], "sources_against": [...]}}`.
    #[schema(value_type = Option<Object>)]
    pub markers: Option<Value>,
    #[schema(value_type = Option<Vec<AreaLinkBody>>, max_items = 200)]
    pub areas: Option<Vec<Value>>,
    #[schema(max_items = 200)]
    pub pledges: Option<Vec<PledgeBody>>,
    #[schema(max_items = 200)]
    pub sources: Option<Vec<SourceBody>>,
    /// The version you edited (as in its ETag): a precondition exactly
    /// like If-Match; a stale one is a 412.
    #[serde(default)]
    pub version: Option<i64>,
    #[schema(ignore)]
    #[serde(default)]
    pub created_at: Option<serde::de::IgnoredAny>,
    #[schema(ignore)]
    #[serde(default)]
    pub updated_at: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatoryBody {
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub role: Option<String>,
    #[schema(value_type = Side, required = true, nullable = false)]
    pub side: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaLinkBody {
    #[schema(
        required = true,
        nullable = false,
        pattern = r"^\s*[A-Za-z0-9]+(-[A-Za-z0-9]+)*\s*$",
        max_length = 64
    )]
    pub code: Option<String>,
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")]
    pub detail: Option<String>,
    // Echoed from a GET; the vocabulary's name wins.
    #[schema(ignore)]
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<serde::de::IgnoredAny>,
    #[schema(ignore)]
    #[serde(default)]
    #[allow(dead_code)]
    name_uk: Option<serde::de::IgnoredAny>,
}

const MAX_SIGNATORIES: usize = 20;
const MAX_CHILDREN: usize = 200;

impl AgreementBody {
    /// The partner reference the client wrote, to be resolved before parsing.
    pub fn partner_ref(&self) -> Result<Option<String>, String> {
        let reference = match &self.partner {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(text)) => text,
            Some(Value::Object(object)) => match object.get("code") {
                Some(Value::String(code)) => code,
                _ => return Err("a partner object needs its \"code\"".into()),
            },
            Some(_) => {
                return Err(
                    "must be a partner code such as \"JP\", or a partner object with a code".into(),
                );
            }
        };
        // No name has control characters, and PostgreSQL cannot even hold a NUL.
        if reference.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Some(reference.clone()))
    }

    /// Parses the body; `partner` is the outcome of resolving [`partner_ref`].
    pub fn parse(
        self,
        partner: Result<Option<PartnerCode>, String>,
    ) -> Result<AgreementDraft, Vec<FieldError>> {
        let mut problems = Problems::new();
        let id = self
            .id
            .and_then(|id| problems.check("id", agreement_id(&id)));
        let partner = problems
            .check("partner", partner)
            .and_then(|p| problems.required("partner", p));
        let title = problems
            .required("title", self.title)
            .and_then(|t| problems.check("title", bounded(&t, 500)));
        let title_uk = problems
            .check("title_uk", optional_bounded(self.title_uk.as_deref(), 500))
            .flatten();
        let kind = problems
            .required("kind", self.kind)
            .and_then(|k| problems.check("kind", AgreementKind::parse(&k)));
        let status = problems
            .required("status", self.status)
            .and_then(|s| problems.check("status", AgreementStatus::parse(&s)));
        let signed_on = problems
            .check("signed_on", optional_date(self.signed_on.as_deref()))
            .flatten();
        if signed_on.is_some_and(|d| chrono::Datelike::year(&d) > LAST_SIGNING_YEAR) {
            problems.add(
                "signed_on",
                format!("must be no later than {LAST_SIGNING_YEAR}-12-31, so that its end date stays a date"),
            );
        }
        if status == Some(AgreementStatus::Negotiating) && signed_on.is_some() {
            problems.add(
                "signed_on",
                "an agreement still being negotiated has no signing date",
            );
        }
        let signed_at = problems
            .check(
                "signed_at",
                optional_bounded(self.signed_at.as_deref(), 200),
            )
            .flatten();
        let signatories = parse_signatories(&mut problems, self.signatories.unwrap_or_default());
        let term_years = self.term_years.filter(|years| {
            let ok = (1..=100).contains(years);
            if !ok {
                problems.add(
                    "term_years",
                    "must be a whole number of years from 1 to 100",
                );
            }
            ok
        });
        let expires_on = problems
            .check("expires_on", optional_date(self.expires_on.as_deref()))
            .flatten();
        if let (Some(signed), Some(expires)) = (signed_on, expires_on)
            && expires <= signed
        {
            problems.add("expires_on", "must be after signed_on");
        }
        let summary = problems
            .check("summary", optional_bounded(self.summary.as_deref(), 10_000))
            .flatten();
        let text_url = problems
            .check("text_url", optional_web_url(self.text_url.as_deref()))
            .flatten();
        let areas = self
            .areas
            .map(|areas| parse_area_links(&mut problems, areas));
        let pledges = self
            .pledges
            .map(|bodies| problems.each("pledges", bodies, MAX_CHILDREN, PledgeBody::parse_into));
        let sources = self
            .sources
            .map(|bodies| problems.each("sources", bodies, MAX_CHILDREN, SourceBody::parse_into));
        let signed_place = parse_place(&mut problems, self.signed_place);
        let markers = parse_markers(&mut problems, self.markers, AGREEMENT_FIELDS);
        check_child_ids(&mut problems, pledges.as_deref(), sources.as_deref());
        check_marker_sources(
            &mut problems,
            &markers,
            pledges.as_deref(),
            sources.as_deref(),
        );
        match (partner, title, kind, status) {
            (Some(partner), Some(title), Some(kind), Some(status)) if problems.is_empty() => {
                Ok(AgreementDraft {
                    id,
                    partner,
                    title,
                    title_uk,
                    kind,
                    status,
                    signed_on,
                    signed_at,
                    signed_place,
                    signatories,
                    term_years,
                    expires_on,
                    legally_binding: self.legally_binding,
                    summary,
                    text_url,
                    markers,
                    areas,
                    pledges,
                    sources,
                })
            }
            _ => Err(problems.into_errors()),
        }
    }
}

fn parse_signatories(problems: &mut Problems, bodies: Vec<SignatoryBody>) -> Vec<Signatory> {
    if bodies.len() > MAX_SIGNATORIES {
        problems.add(
            "signatories",
            format!("must have at most {MAX_SIGNATORIES} entries"),
        );
    }
    bodies
        .into_iter()
        .enumerate()
        .filter_map(|(i, body)| {
            let at = |field: &str| format!("signatories[{i}].{field}");
            let name = problems
                .required(&at("name"), body.name)
                .and_then(|n| problems.check(&at("name"), bounded(&n, 200)));
            let role = problems
                .check(&at("role"), optional_bounded(body.role.as_deref(), 200))
                .flatten();
            let side = problems
                .required(&at("side"), body.side)
                .and_then(|s| problems.check(&at("side"), Side::parse(&s)));
            Some(Signatory {
                name: name?,
                role,
                side: side?,
            })
        })
        .collect()
}

fn parse_area_links(problems: &mut Problems, values: Vec<Value>) -> Vec<AreaLinkDraft> {
    if values.len() > MAX_CHILDREN {
        problems.add("areas", format!("must have at most {MAX_CHILDREN} entries"));
    }
    let mut links: Vec<AreaLinkDraft> = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let at = |field: &str| format!("areas[{i}]{field}");
        let body = match value {
            Value::String(code) => AreaLinkBody {
                code: Some(code),
                detail: None,
                name: None,
                name_uk: None,
            },
            other => match serde_json::from_value::<AreaLinkBody>(other) {
                Ok(body) => body,
                Err(e) => {
                    problems.add(&at(""), format!("must be an area code or an object with a code and an optional detail: {e}"));
                    continue;
                }
            },
        };
        let code = problems
            .required(&at(".code"), body.code)
            .and_then(|c| problems.check(&at(".code"), AreaCode::parse(&c)));
        let detail = problems
            .check(
                &at(".detail"),
                optional_bounded(body.detail.as_deref(), 2000),
            )
            .flatten();
        if let Some(code) = code {
            if links.iter().any(|l| l.code == code) {
                problems.add(&at(".code"), "is listed twice");
            } else {
                links.push(AreaLinkDraft { code, detail });
            }
        }
    }
    links.sort_by(|a, b| a.code.cmp(&b.code));
    links
}

/// Ids within one body must be unique, and a source may only point at a
/// pledge of the same body.
fn check_child_ids(
    problems: &mut Problems,
    pledges: Option<&[PledgeDraft]>,
    sources: Option<&[SourceDraft]>,
) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, id) in pledges
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.id.as_deref()?)))
    {
        if seen.contains(&id) {
            problems.add(&format!("pledges[{i}].id"), "is used twice");
        }
        seen.push(id);
    }
    let pledge_ids = seen.clone();
    for (i, source) in sources.unwrap_or_default().iter().enumerate() {
        if let Some(id) = source.id.as_deref() {
            if seen.contains(&id) {
                problems.add(&format!("sources[{i}].id"), "is used twice");
            }
            seen.push(id);
        }
        if pledges.is_some() {
            for (j, pledge_id) in source.pledges.iter().enumerate() {
                if !pledge_ids.contains(&pledge_id.as_str()) {
                    problems.add(
                        &format!("sources[{i}].pledges[{j}]"),
                        "must be the id of a pledge of this agreement",
                    );
                }
            }
        }
    }
    // A source is stored once per agreement and linked to what it supports.
    let mut urls: Vec<&str> = Vec::new();
    for (i, source) in sources.unwrap_or_default().iter().enumerate() {
        if urls.contains(&source.url.as_str()) {
            problems.add(
                &format!("sources[{i}].url"),
                "is listed twice: list a source once and name every pledge and field it supports",
            );
        }
        urls.push(&source.url);
    }
}

/// The sources a marker names must be sources of the same agreement.
fn check_marker_sources(
    problems: &mut Problems,
    markers: &Markers,
    pledges: Option<&[PledgeDraft]>,
    sources: Option<&[SourceDraft]>,
) {
    let Some(sources) = sources else { return };
    let known: Vec<&str> = sources.iter().filter_map(|s| s.id.as_deref()).collect();
    let mut check = |path: String, marker: &Marker| {
        for (side, ids) in [
            ("sources_for", &marker.sources_for),
            ("sources_against", &marker.sources_against),
        ] {
            for (k, id) in ids.iter().enumerate() {
                if !known.contains(&id.as_str()) {
                    problems.add(
                        &format!("{path}.{side}[{k}]"),
                        "must be the id of a source of this agreement",
                    );
                }
            }
        }
    };
    for (field, marker) in markers {
        check(format!("markers.{field}"), marker);
    }
    for (i, pledge) in pledges.unwrap_or_default().iter().enumerate() {
        for (field, marker) in &pledge.markers {
            check(format!("pledges[{i}].markers.{field}"), marker);
        }
    }
}
