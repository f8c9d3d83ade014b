//! Finding a partner by any name it goes by, with "did you mean"
//! suggestions for a reference that fits none (or several). Used wherever a
//! partner is named: paths, filters, bodies.

use serde_json::json;

use crate::domain::Suggestion;
use crate::domain::partner::PartnerCode;
use crate::domain::text::fold;
use crate::error::{ApiError, ApiResult};
use crate::store::{KeyMatch, Store};

const MAX_SUGGESTIONS: usize = 5;

/// The longest partner reference looked up: the bound on names and aliases.
pub const MAX_PARTNER_REFERENCE_CHARS: usize = crate::domain::partner::MAX_NAME_CHARS;

/// What a partner reference names: one partner, several (an alias two
/// partners share), or none, with the partners whose names come closest.
#[derive(Debug)]
pub enum PartnerMatch {
    One(PartnerCode),
    Ambiguous(Vec<PartnerCode>),
    Unknown { closest: Vec<PartnerCode> },
}

/// Finds a partner by code, alpha-3, English or Ukrainian name, alias or
/// endonym, ignoring case and accents. Only a reference too long to be a
/// name, or a store failure, is an error; the caller decides what an
/// unknown or ambiguous reference means for its answer.
pub async fn find_partner(store: &dyn Store, reference: &str) -> ApiResult<PartnerMatch> {
    // Names and aliases are at most this long, so a longer reference cannot
    // match: said at once, without searching or computing suggestions.
    if reference.chars().count() > MAX_PARTNER_REFERENCE_CHARS {
        return Err(ApiError::BadRequest(format!(
            "a partner reference is at most {MAX_PARTNER_REFERENCE_CHARS} characters: no partner's code, name or alias is longer"
        )));
    }
    let key = fold(reference);
    let matches = if key.is_empty() {
        Vec::new()
    } else {
        store.find_partner_keys(&key).await?
    };
    let best: Vec<&KeyMatch> = matches
        .iter()
        .filter(|m| matches.first().is_some_and(|first| first.rank == m.rank))
        .collect();
    Ok(match best.as_slice() {
        [only] => PartnerMatch::One(only.partner.clone()),
        [] => {
            let keys = store.all_partner_keys().await?;
            // Edit distances over every key are CPU work: off the async workers.
            let closest = tokio::task::spawn_blocking(move || closest_partners(&key, &keys))
                .await
                .map_err(|e| ApiError::Internal(format!("suggestions failed: {e}")))?;
            PartnerMatch::Unknown { closest }
        }
        several => PartnerMatch::Ambiguous(several.iter().map(|m| m.partner.clone()).collect()),
    })
}

/// A partner reference in a path or a filter: one partner, or a 404 whose
/// `closest_matches` lists the nearest partners.
pub async fn resolve_partner(store: &dyn Store, reference: &str) -> ApiResult<PartnerCode> {
    match find_partner(store, reference).await? {
        PartnerMatch::One(code) => Ok(code),
        unresolved => {
            let (detail, closest) = unresolved_detail(store, reference, unresolved).await;
            Err(ApiError::NotFound {
                detail: format!("{detail}; closest_matches lists the nearest partners"),
                extensions: Some(json!({ "closest_matches": closest })),
            })
        }
    }
}

/// Why a reference named no single partner, and the partners it may have
/// meant (code and names), for a problem's `closest_matches`.
pub async fn unresolved_detail(
    store: &dyn Store,
    reference: &str,
    unresolved: PartnerMatch,
) -> (String, Vec<Suggestion>) {
    let (what, codes) = match unresolved {
        PartnerMatch::One(code) => ("the partner", vec![code]),
        PartnerMatch::Ambiguous(codes) => ("several partners are known by", codes),
        PartnerMatch::Unknown { closest } => ("no partner is known by", closest),
    };
    let mut closest = Vec::new();
    for code in codes {
        if let Ok(Some(partner)) = store.get_partner(&code).await {
            closest.push(Suggestion {
                code: partner.code.as_str().to_owned(),
                name: partner.name,
                name_uk: partner.name_uk,
            });
        }
    }
    (format!("{what} {reference:?}"), closest)
}

/// Partners whose keys are nearest to `key`: a key that starts with it, or
/// one within a few edits.
fn closest_partners(key: &str, keys: &[KeyMatch]) -> Vec<PartnerCode> {
    let length = key.chars().count();
    let tolerance = (length / 4).max(1);
    let mut scored: Vec<(usize, &PartnerCode)> = Vec::new();
    for candidate in keys {
        let score = if length >= 2 && candidate.key.starts_with(key) {
            0
        } else if candidate.key.chars().count().abs_diff(length) > tolerance {
            // The distance (optimal string alignment: a swap of neighbours
            // is one edit, so "britian" is one from "britain") is at least
            // the difference in length.
            continue;
        } else {
            strsim::osa_distance(key, &candidate.key)
        };
        if score > tolerance {
            continue;
        }
        match scored
            .iter_mut()
            .find(|(_, code)| **code == candidate.partner)
        {
            Some(entry) => entry.0 = entry.0.min(score),
            None => scored.push((score, &candidate.partner)),
        }
    }
    scored.sort();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, code)| code.clone())
        .collect()
}
