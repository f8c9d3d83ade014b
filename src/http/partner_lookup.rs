//! Finding a partner by any name it goes by, with "did you mean"
//! suggestions for a reference that fits none (or several). Used wherever a
//! partner is named: paths, filters, bodies.

use serde_json::json;

use crate::domain::partner::PartnerCode;
use crate::domain::text::{edit_distance, fold};
use crate::error::{ApiError, ApiResult};
use crate::store::{KeyMatch, Store};

const MAX_SUGGESTIONS: usize = 5;

/// The longest partner reference looked up: the bound on names and aliases.
pub const MAX_PARTNER_REFERENCE_CHARS: usize = crate::domain::partner::MAX_NAME_CHARS;

/// Resolves a code, alpha-3, English or Ukrainian name, or alias, ignoring
/// case and accents. An unknown or ambiguous reference is a 404 listing the
/// closest matches.
pub async fn resolve_partner(store: &dyn Store, reference: &str) -> ApiResult<PartnerCode> {
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
    match best.as_slice() {
        [only] => Ok(only.partner.clone()),
        [] => {
            let keys = store.all_partner_keys().await?;
            // Edit distances over every key are CPU work: off the async workers.
            let suggestions = tokio::task::spawn_blocking(move || closest_partners(&key, &keys))
                .await
                .map_err(|e| ApiError::Internal(format!("suggestions failed: {e}")))?;
            Err(unknown_partner(store, reference, "no partner is known by", suggestions).await)
        }
        several => {
            let codes = several.iter().map(|m| m.partner.clone()).collect();
            Err(unknown_partner(store, reference, "several partners are known by", codes).await)
        }
    }
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
            // The distance is at least the difference in length.
            continue;
        } else {
            edit_distance(key, &candidate.key)
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

async fn unknown_partner(
    store: &dyn Store,
    reference: &str,
    what: &str,
    codes: Vec<PartnerCode>,
) -> ApiError {
    let mut closest = Vec::new();
    for code in codes {
        if let Ok(Some(partner)) = store.get_partner(&code).await {
            closest.push(
                json!({"code": partner.code, "name": partner.name, "name_uk": partner.name_uk}),
            );
        }
    }
    ApiError::NotFound {
        detail: format!("{what} {reference:?}; closest_matches lists the nearest partners"),
        extensions: Some(json!({ "closest_matches": closest })),
    }
}
