//! Finding a partner by any name it goes by, and what an unresolved
//! reference means in an answer: a 404 for a path, a field error (with
//! "did you mean" suggestions) for a filter or a body.

use serde_json::json;

use crate::domain::Suggestion;
use crate::domain::partner::{PartnerCode, PartnerMatch, closest_partners};
use crate::domain::text::fold;
use crate::error::{ApiError, ApiResult};
use crate::store::{KeyMatch, Store};

/// The longest partner reference looked up: the bound on names and aliases.
pub const MAX_PARTNER_REFERENCE_CHARS: usize = crate::domain::partner::MAX_NAME_CHARS;

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
            let closest = tokio::task::spawn_blocking(move || {
                closest_partners(&key, keys.iter().map(|k| (k.key.as_str(), &k.partner)))
            })
            .await
            .map_err(|e| ApiError::Internal(format!("suggestions failed: {e}")))?;
            PartnerMatch::Unknown { closest }
        }
        several => PartnerMatch::Ambiguous(several.iter().map(|m| m.partner.clone()).collect()),
    })
}

/// A reference that named no single partner: why, and the partners it may
/// have meant (code and names), for a problem's `closest_matches`.
pub struct Unresolved {
    pub detail: String,
    pub closest: Vec<Suggestion>,
}

impl Unresolved {
    /// The detail, pointing at `closest_matches` beside it.
    pub fn pointing_at_matches(&self) -> String {
        format!(
            "{}; closest_matches lists the nearest partners",
            self.detail
        )
    }

    /// The detail with the partners it may have meant named in it.
    pub fn with_hint(&self) -> String {
        let named: Vec<String> = self
            .closest
            .iter()
            .map(|m| format!("{} ({})", m.code, m.name))
            .collect();
        if named.is_empty() {
            self.detail.clone()
        } else {
            format!("{}; did you mean {}?", self.detail, named.join(", "))
        }
    }
}

/// One partner, or why the reference named none (or several).
pub async fn find_one_partner(
    store: &dyn Store,
    reference: &str,
) -> ApiResult<Result<PartnerCode, Unresolved>> {
    let (what, codes) = match find_partner(store, reference).await? {
        PartnerMatch::One(code) => return Ok(Ok(code)),
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
    Ok(Err(Unresolved {
        detail: format!("{what} {reference:?}"),
        closest,
    }))
}

/// A partner reference in a path: one partner, or a 404 whose
/// `closest_matches` lists the nearest partners.
pub async fn resolve_partner(store: &dyn Store, reference: &str) -> ApiResult<PartnerCode> {
    find_one_partner(store, reference)
        .await?
        .map_err(|unresolved| ApiError::NotFound {
            detail: unresolved.pointing_at_matches(),
            extensions: Some(json!({ "closest_matches": unresolved.closest })),
        })
}
