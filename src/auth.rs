//! API keys: `acc_<id>_<secret>`. The id (48 bits) finds the key's row; the
//! secret (256 bits) is only ever stored as its SHA-256 and compared in
//! constant time. Keys are shown once, when created.

use chrono::{DateTime, Utc};

use crate::domain::api_key::hex;
pub use crate::domain::api_key::{ApiKey, Scope, hash_secret};

/// Who is making a request: the name of the key it presented, and its scope.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

const PREFIX: &str = "acc_";

/// A new key: its stored form, and the full key to show once.
pub fn generate(
    name: &str,
    scope: Scope,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(ApiKey, String), String> {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).map_err(|e| format!("no randomness available: {e}"))?;
    getrandom::fill(&mut secret).map_err(|e| format!("no randomness available: {e}"))?;
    let (id, secret) = (hex(&id), hex(&secret));
    let key = ApiKey {
        id: id.clone(),
        name: name.to_owned(),
        scope,
        secret_hash: hash_secret(&secret),
        created_at: crate::domain::clock::now(),
        expires_at,
        revoked_at: None,
    };
    Ok((key, format!("{PREFIX}{id}_{secret}")))
}

/// Splits a presented key into its id and secret; None when it cannot be one of ours.
pub fn split(presented: &str) -> Option<(&str, &str)> {
    let (id, secret) = presented.strip_prefix(PREFIX)?.split_once('_')?;
    let hex_of = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, 12) && hex_of(secret, 64)).then_some((id, secret))
}

/// A key name: what history records as "who".
pub fn key_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(name.to_owned())
    } else {
        Err("a key name is 1 to 64 letters, digits, '-', '_', '.' or '@'".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_verify_and_others_do_not() {
        let (stored, key) = generate("desk", Scope::Write, None).unwrap();
        let (id, secret) = split(&key).unwrap();
        assert_eq!(id, stored.id);
        assert!(stored.matches(secret));
        assert!(
            !stored.matches(
                &secret.replace(&secret[..1], if &secret[..1] == "a" { "b" } else { "a" })
            )
        );
        assert!(
            !key.contains(&stored.secret_hash),
            "the key is not its hash"
        );
        assert!(split("acc_zz_12").is_none());
        assert!(split("Bearer x").is_none());
    }

    #[test]
    fn expired_and_revoked_keys_are_inactive() {
        let now = Utc::now();
        let (mut key, _) = generate(
            "desk",
            Scope::Admin,
            Some(now - chrono::Duration::seconds(1)),
        )
        .unwrap();
        assert!(!key.is_active(now));
        key.expires_at = None;
        assert!(key.is_active(now));
        key.revoked_at = Some(now);
        assert!(!key.is_active(now));
    }
}
