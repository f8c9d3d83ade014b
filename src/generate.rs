//! Synthetic agreements for benchmarks: `accords generate --agreements N`.
//! Deterministic for a seed, so two runs (and two backends) hold the same data.

use chrono::NaiveDate;

use crate::domain::agreement::{
    AgreementDraft, AgreementKind, AgreementStatus, AreaLinkDraft, Side, Signatory,
};
use crate::domain::area::AreaCode;
use crate::domain::dataset::Dataset;
use crate::domain::marker::{Markers, Place};
use crate::domain::money::{Amount, Currency};
use crate::domain::partner::PartnerCode;
use crate::domain::pledge::{PledgeBasis, PledgeDraft, PledgeKind, PledgeMeasure};
use crate::domain::source::SourceDraft;
use crate::domain::{FieldError, Vocabulary};

/// SplitMix64: tiny, fast and the same everywhere.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const PARTNERS: &[&str] = &[
    "AL", "AT", "AU", "BE", "BG", "CA", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "EU", "FI", "FR",
    "GB", "GR", "HR", "HU", "IE", "IS", "IT", "JP", "KR", "LT", "LU", "LV", "ME", "MK", "MT", "NL",
    "NO", "NZ", "PL", "PT", "RO", "SE", "SI", "SK", "TR", "US",
];
/// Partners pledge in their own currency, now and then in dollars.
fn currency_of(partner: &str) -> &'static str {
    match partner {
        "US" | "KR" => "USD",
        "GB" => "GBP",
        "JP" => "JPY",
        "CA" => "CAD",
        "AU" => "AUD",
        "NZ" => "NZD",
        "NO" => "NOK",
        "SE" => "SEK",
        "DK" => "DKK",
        "CH" => "CHF",
        "PL" => "PLN",
        "CZ" => "CZK",
        "HU" => "HUF",
        "IS" => "ISK",
        "TR" => "TRY",
        _ => "EUR",
    }
}
const AREAS: &[&str] = &[
    "air-defence",
    "cyber-security",
    "defence-industry",
    "demining",
    "energy",
    "humanitarian",
    "intelligence-sharing",
    "maritime-security",
    "medical",
    "reconstruction",
    "sanctions",
    "training",
];
const WORDS: &[&str] = &[
    "support",
    "cooperation",
    "long-term",
    "security",
    "assistance",
    "capabilities",
    "resilience",
    "recovery",
    "equipment",
    "training",
    "logistics",
    "partnership",
    "commitment",
    "delivery",
    "programme",
    "fund",
    "industry",
    "coordination",
    "protection",
    "infrastructure",
];
/// One agreement in fifty mentions cyber defence: a broad search term.
const BROAD_TERM_EVERY: usize = 50;

fn amount(random: &mut Random) -> Amount {
    let units = 1 + random.below(999_999_999);
    let cents = random.below(100);
    Amount::parse(&format!("{units}.{cents:02}"))
        .unwrap_or_else(|_| Amount::parse("1").expect("a valid literal"))
}

fn sentence(random: &mut Random, words: usize) -> String {
    (0..words)
        .map(|_| *random.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Agreements `first..first + count` of the generated set.
pub fn agreements(seed: u64, first: usize, count: usize) -> Result<Dataset, Vec<FieldError>> {
    let mut agreements = Vec::with_capacity(count);
    for n in first..first + count {
        let mut random = Random(seed ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let partner = PartnerCode::parse(random.pick::<&str>(PARTNERS))
            .map_err(|m| vec![FieldError::new("partner", m)])?;
        let id = format!("ua-{}-gen-{n:07}", partner.as_str().to_ascii_lowercase());
        let signed_on = NaiveDate::from_ymd_opt(
            2014 + random.below(12) as i32,
            1 + random.below(12) as u32,
            1 + random.below(28) as u32,
        );
        let mut summary = sentence(&mut random, 24);
        if n % BROAD_TERM_EVERY == 0 {
            summary.push_str(" cyber defence");
        }
        // A word of its own, so a search for one agreement has one answer.
        summary.push_str(&format!(" codename{n}"));
        let mut areas: Vec<AreaLinkDraft> = Vec::new();
        for _ in 0..3 {
            let code = AreaCode::parse(random.pick::<&str>(AREAS))
                .map_err(|m| vec![FieldError::new("areas", m)])?;
            if !areas.iter().any(|a| a.code == code) {
                areas.push(AreaLinkDraft {
                    code,
                    detail: Some(sentence(&mut random, 4)),
                });
            }
        }
        areas.sort_by(|a, b| a.code.cmp(&b.code));
        let pledges: Vec<PledgeDraft> = (1..=10)
            .map(|p| {
                let year_from = 2014 + random.below(16) as i64;
                let drawn = amount(&mut random);
                let currency = Currency::parse(if random.below(10) == 0 {
                    "USD"
                } else {
                    currency_of(partner.as_str())
                })
                .map_err(|m| vec![FieldError::new("currency", m)])?;
                // Whole units in a currency without a minor unit (yen, króna).
                let amount = if currency.minor_unit() == 0 {
                    Amount::from_decimal(drawn.as_decimal().trunc()).unwrap_or(drawn)
                } else {
                    drawn
                };
                Ok(PledgeDraft {
                    id: Some(format!("{id}-p{p}")),
                    amount,
                    currency,
                    year_from: Some(year_from),
                    year_to: Some(year_from + random.below(3) as i64),
                    kind: *random.pick(PledgeKind::ALL),
                    measure: if random.below(3) == 0 {
                        None
                    } else {
                        Some(*random.pick(PledgeMeasure::ALL))
                    },
                    basis: PledgeBasis::Total,
                    part_of: None,
                    in_agreement_text: Some(random.below(2) == 0),
                    description: Some(sentence(&mut random, 6)),
                    note: None,
                    markers: Markers::new(),
                })
            })
            .collect::<Result<_, Vec<FieldError>>>()?;
        let sources = vec![
            SourceDraft {
                id: Some(format!("{id}-s1")),
                url: format!("https://example.org/generated/{n}"),
                title: format!("Generated announcement {n}"),
                publisher: Some("Generator".into()),
                published_on: signed_on,
                pledges: vec![format!("{id}-p1")],
                fields: vec!["signed_on".into()],
            },
            SourceDraft {
                id: Some(format!("{id}-s2")),
                url: format!("https://example.org/generated/{n}/text"),
                title: format!("Generated text {n}"),
                publisher: None,
                published_on: None,
                pledges: Vec::new(),
                fields: Vec::new(),
            },
        ];
        agreements.push(AgreementDraft {
            id: Some(id),
            partner,
            title: format!("Generated agreement {n}: {}", sentence(&mut random, 5)),
            title_uk: None,
            kind: *random.pick(AgreementKind::ALL),
            status: *random.pick(&[
                AgreementStatus::Signed,
                AgreementStatus::InForce,
                AgreementStatus::Ratified,
            ]),
            signed_on,
            signed_at: Some("Kyiv, Ukraine".into()),
            signed_place: Some(Place {
                city: Some("Kyiv".into()),
                country: Some("UA".into()),
                venue: None,
                event: None,
            }),
            signatories: vec![Signatory {
                name: "Generated Signatory".into(),
                role: None,
                side: Side::Partner,
            }],
            term_years: Some(10),
            expires_on: None,
            legally_binding: Some(random.below(2) == 0),
            summary: Some(summary),
            text_url: None,
            markers: Markers::new(),
            areas: Some(areas),
            pledges: Some(pledges),
            sources: Some(sources),
        });
    }
    Ok(Dataset {
        partners: Vec::new(),
        areas: Vec::new(),
        agreements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let a = agreements(7, 0, 20).unwrap();
        let b = agreements(7, 0, 20).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, agreements(8, 0, 20).unwrap());
        assert_eq!(
            a.agreements[5],
            agreements(7, 5, 1).unwrap().agreements[0],
            "chunks line up"
        );
        assert!(
            a.agreements
                .iter()
                .all(|d| d.pledges.as_ref().unwrap().len() == 10)
        );
    }
}
