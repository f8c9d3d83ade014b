//! Synthetic agreements for benchmarks: `accords generate --agreements N`.
//! Deterministic for a seed, so two runs (and two backends) hold the same data.

use chrono::NaiveDate;

use crate::domain::FieldError;
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

    /// One of `items`, each as likely as its weight.
    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut left = self.below(total as usize) as u32;
        for (item, weight) in items {
            if left < *weight {
                return *item;
            }
            left -= weight;
        }
        items[items.len() - 1].0
    }

    /// A partner, the n-th largest with weight 1/n.
    fn partner(&mut self) -> &'static str {
        let total: f64 = (1..=PARTNERS.len()).map(|n| 1.0 / n as f64).sum();
        let mut left = (self.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        for (n, code) in PARTNERS.iter().enumerate() {
            left -= 1.0 / (n + 1) as f64;
            if left < 0.0 {
                return code;
            }
        }
        PARTNERS[PARTNERS.len() - 1]
    }
}

/// Partners by how much they sign, largest first: drawn with weights 1/rank
/// (Zipf), so a few partners hold most agreements and a long tail a few
/// each, like the real record (the United States alone about a quarter).
const PARTNERS: &[&str] = &[
    "US", "GB", "DE", "EU", "JP", "NO", "NL", "CA", "FR", "DK", "SE", "PL", "IT", "FI", "BE", "CZ",
    "LT", "EE", "LV", "ES", "PT", "RO", "IE", "IS", "LU", "GR", "SI", "AL", "MK", "ME", "BG", "AU",
    "KR", "CH", "AT", "NZ", "HR", "SK", "HU", "TR", "MT", "CY",
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
/// Cooperation areas with how many of the bundled agreements name each:
/// drawn with those weights.
const AREAS: &[(&str, u32)] = &[
    ("defence-assistance", 28),
    ("reconstruction", 28),
    ("eu-integration", 26),
    ("nato-integration", 26),
    ("defence-industry", 25),
    ("accountability", 24),
    ("sanctions", 24),
    ("cyber-security", 22),
    ("training", 21),
    ("peace-formula", 19),
    ("hybrid-threats", 19),
    ("energy", 19),
    ("consultations", 18),
    ("intelligence-sharing", 17),
    ("reforms", 17),
    ("demining", 15),
    ("humanitarian", 14),
    ("maritime-security", 14),
    ("combat-aircraft", 13),
    ("air-defence", 12),
    ("artillery", 12),
    ("economic-cooperation", 11),
    ("organised-crime", 10),
    ("drones", 8),
    ("financial-support", 7),
    ("medical", 7),
    ("armoured-vehicles", 6),
    ("cbrn-nuclear-safety", 5),
    ("military-it", 5),
    ("logistics", 5),
    ("children-return", 4),
    ("cultural-heritage", 4),
    ("civil-protection", 4),
    ("long-range-weapons", 4),
    ("development-cooperation", 3),
    ("education", 3),
    ("border-security", 2),
    ("electronic-warfare", 2),
    ("food-security", 2),
    ("veterans", 1),
    ("environmental-damage", 1),
    ("science-technology", 1),
    ("women-in-armed-forces", 1),
];
/// How many areas each bundled agreement names: a generated one draws one of these.
const AREA_COUNTS: &[usize] = &[
    0, 0, 0, 10, 12, 13, 13, 13, 14, 15, 15, 16, 16, 17, 17, 17, 17, 17, 18, 18, 18, 18, 20, 20,
    20, 20, 21, 22, 22, 23, 23, 24,
];
/// How many pledges each bundled agreement holds.
const PLEDGE_COUNTS: &[usize] = &[
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 5, 5,
];
/// The year of signing, weighted like the record: most in 2024, few before.
const YEARS: &[(i32, u32)] = &[
    (2014, 1),
    (2015, 1),
    (2016, 1),
    (2017, 1),
    (2018, 1),
    (2019, 1),
    (2020, 1),
    (2021, 2),
    (2022, 6),
    (2023, 8),
    (2024, 60),
    (2025, 15),
    (2026, 2),
];
const STATUSES: &[(AgreementStatus, u32)] = &[
    (AgreementStatus::Signed, 80),
    (AgreementStatus::Negotiating, 9),
    (AgreementStatus::InForce, 5),
    (AgreementStatus::Ratified, 3),
    (AgreementStatus::Expired, 2),
    (AgreementStatus::Terminated, 1),
];
const KINDS: &[(AgreementKind, u32)] = &[
    (AgreementKind::BilateralSecurity, 90),
    (AgreementKind::Partnership, 5),
    (AgreementKind::Declaration, 3),
    (AgreementKind::Other, 2),
];
const PLEDGE_KINDS: &[(PledgeKind, u32)] = &[
    (PledgeKind::Military, 63),
    (PledgeKind::Mixed, 22),
    (PledgeKind::Reconstruction, 8),
    (PledgeKind::Humanitarian, 6),
    (PledgeKind::Financial, 1),
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
        let partner = PartnerCode::parse(random.partner())
            .map_err(|m| vec![FieldError::new("partner", m)])?;
        let id = format!("ua-{}-gen-{n:07}", partner.as_str().to_ascii_lowercase());
        // One in eleven has no known date of signing, like three of the 32.
        let year = random.weighted(YEARS);
        let month = 1 + random.below(12) as u32;
        let day = 1 + random.below(28) as u32;
        let signed_on = if random.below(11) == 0 {
            None
        } else {
            NaiveDate::from_ymd_opt(year, month, day)
        };
        let mut summary = sentence(&mut random, 24);
        if n % BROAD_TERM_EVERY == 0 {
            summary.push_str(" cyber defence");
        }
        // A word of its own, so a search for one agreement has one answer.
        summary.push_str(&format!(" codename{n}"));
        let mut areas: Vec<AreaLinkDraft> = Vec::new();
        let wanted = *random.pick(AREA_COUNTS);
        // Distinct areas, drawn by weight; a bounded number of draws.
        for _ in 0..wanted * 4 {
            if areas.len() == wanted {
                break;
            }
            let code = AreaCode::parse(random.weighted(AREAS))
                .map_err(|m| vec![FieldError::new("areas", m)])?;
            if !areas.iter().any(|a| a.code == code) {
                areas.push(AreaLinkDraft {
                    code,
                    detail: Some(sentence(&mut random, 4)),
                });
            }
        }
        areas.sort_by(|a, b| a.code.cmp(&b.code));
        let pledge_count = *random.pick(PLEDGE_COUNTS);
        let pledges: Vec<PledgeDraft> = (1..=pledge_count)
            .map(|p| {
                // Pledged for the year of signing or one of the next two.
                let year_from = i64::from(year) + random.below(3) as i64;
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
                    kind: random.weighted(PLEDGE_KINDS),
                    measure: match random.below(12) {
                        0 => None,
                        1 | 2 => Some(PledgeMeasure::Commitment),
                        _ => Some(PledgeMeasure::Allocation),
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
                pledges: pledges
                    .first()
                    .and_then(|p| p.id.clone())
                    .into_iter()
                    .collect(),
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
            kind: random.weighted(KINDS),
            status: random.weighted(STATUSES),
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
            // Mostly not binding, a third unknown, like the record.
            legally_binding: match random.below(16) {
                0 => Some(true),
                1..=5 => None,
                _ => Some(false),
            },
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
                .all(|d| d.pledges.as_ref().unwrap().len() <= 5)
        );
    }

    #[test]
    fn a_few_partners_hold_most_agreements() {
        let set = agreements(7, 0, 2000).unwrap().agreements;
        let of = |code: &str| set.iter().filter(|d| d.partner.as_str() == code).count();
        assert!(of("US") > 350, "the largest partner holds about a quarter");
        assert!(of("CY") < 40, "the tail holds a few each");
        let undated = set.iter().filter(|d| d.signed_on.is_none()).count();
        assert!((100..300).contains(&undated), "{undated} without a date");
    }
}
