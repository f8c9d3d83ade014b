//! API keys as stored: a name, a scope and the hash of a secret (see
//! `auth` for the key format and how keys are made and checked).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::vocabulary;

vocabulary!(
    /// What a key may do: `write` edits data; `admin` also runs bulk operations.
    Scope {
        Write => "write",
        Admin => "admin",
    }
);

/// A key as stored: everything but the secret.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    #[serde(skip)]
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Usable now: not revoked, not expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expires| now < expires)
    }

    /// Whether `secret` is this key's, in time independent of where they differ.
    pub fn matches(&self, secret: &str) -> bool {
        let presented = hash_secret(secret);
        presented.len() == self.secret_hash.len()
            && presented
                .bytes()
                .zip(self.secret_hash.bytes())
                .fold(0u8, |difference, (a, b)| difference | (a ^ b))
                == 0
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}
