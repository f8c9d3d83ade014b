//! Webhooks as the Standard Webhooks specification (standardwebhooks.com)
//! has them: event types named after the change feed, the receiver's URL
//! and which addresses it may reach, and the signing secret and signature.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a change did, as the last word of its event type
/// (`agreement.updated`); the history's ops, in the past tense. The outbox
/// trigger (migration 0013) maps the ops the same way.
pub const ACTIONS: [(&str, &str); 6] = [
    ("create", "created"),
    ("update", "updated"),
    ("delete", "deleted"),
    ("restore", "restored"),
    ("load", "loaded"),
    ("bulk_insert", "bulk_inserted"),
];

/// The event type of a test delivery (POST /v1/webhooks/{id}/test).
pub const PING_EVENT: &str = "webhook.ping";

/// The most event types, and filter values per field, one subscription may list.
pub const MAX_LIST: usize = 50;
/// The longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2000;
/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// An event type a subscription may ask for: `*` (everything),
/// `<entity>.*` (everything about one kind of record) or
/// `<entity>.<action>`, with entities as in the change feed.
pub fn parse_event(text: &str) -> Result<String, String> {
    let explain = || {
        format!(
            "must be `*`, `<entity>.*` or `<entity>.<action>`, with entity one of {} and action one of {}",
            super::ENTITIES.join(", "),
            ACTIONS.map(|(_, action)| action).join(", ")
        )
    };
    if text == "*" {
        return Ok(text.to_owned());
    }
    let (entity, action) = text.split_once('.').ok_or_else(explain)?;
    let entity_known = super::ENTITIES.contains(&entity);
    let action_known = action == "*" || ACTIONS.iter().any(|(_, a)| *a == action);
    if entity_known && action_known {
        Ok(text.to_owned())
    } else {
        Err(explain())
    }
}

/// A receiver's URL: absolute http or https, a host, no credentials, and
/// (unless private addresses are allowed) no address literal of a private,
/// loopback, link-local or metadata network. Host names are checked again
/// when a delivery resolves them.
pub fn parse_url(text: &str, allow_private: bool) -> Result<url::Url, String> {
    if text.len() > MAX_URL_BYTES {
        return Err(format!("must be at most {MAX_URL_BYTES} bytes"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("is not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be http or https, not {}", url.scheme()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; authenticate with the signature".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment (#...)".into());
    }
    match url.host() {
        None => return Err("must name a host".into()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if !allow_private
                && (name == "localhost"
                    || name.ends_with(".localhost")
                    || name == "metadata.google.internal")
            {
                return Err(format!(
                    "names a local or metadata host ({name}); set ACCORDS_WEBHOOK_ALLOW_PRIVATE=true to allow it"
                ));
            }
        }
        Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), allow_private)?,
        Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), allow_private)?,
    }
    Ok(url)
}

/// Refuses an address a webhook must not reach unless private addresses are allowed.
pub fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), String> {
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(format!(
            "reaches a private, loopback, link-local or metadata address ({ip}); set ACCORDS_WEBHOOK_ALLOW_PRIVATE=true to allow it"
        ))
    }
}

/// Whether an address is on the public internet: not loopback, private,
/// shared (CGNAT), link-local (where cloud metadata lives: 169.254.169.254,
/// fd00:ec2::254 is unique-local), unspecified, broadcast, multicast or
/// reserved. IPv4 inside IPv6 (mapped, NAT64) is judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., high, low] = segments;
                let v4 = std::net::Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
                return is_public(IpAddr::V4(v4));
            }
            let first = segments[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && segments[1] == 0x0db8)
                || segments[..5] == [0, 0, 0, 0, 0])
        }
    }
}

const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn generate_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(format!("{SECRET_PREFIX}{}", BASE64.encode(bytes)))
}

/// A new subscription id: `wh_` and 64 random bits in hex.
pub fn generate_id() -> Result<String, String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(format!(
        "wh_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// The `webhook-signature` header: `v1,` and the base64 HMAC-SHA256, keyed
/// with the secret's decoded bytes, of `{id}.{timestamp}.{body}`.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = BASE64
        .decode(encoded)
        .map_err(|e| format!("the stored secret is not base64: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signature() {
        // From the Standard Webhooks specification's reference tests.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn events_name_the_feeds_entities_and_actions() {
        for good in [
            "*",
            "agreement.*",
            "agreement.updated",
            "pledge.created",
            "rate.loaded",
        ] {
            assert_eq!(parse_event(good).unwrap(), good);
        }
        for bad in [
            "",
            "agreement",
            "treaty.updated",
            "agreement.update",
            "*.updated",
            "agreement.updated.x",
        ] {
            assert!(parse_event(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_and_metadata_addresses_are_refused() {
        for bad in [
            "http://127.0.0.1/hook",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[fd00:ec2::254]/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://localhost:8080/",
            "ftp://example.org/",
            "file:///etc/passwd",
            "https://user:pw@example.org/",
            "/relative",
        ] {
            assert!(parse_url(bad, false).is_err(), "{bad}");
        }
        assert!(parse_url("https://hooks.example.org/accords?x=1", false).is_ok());
        assert!(parse_url("http://8.8.8.8/", false).is_ok());
        assert!(parse_url("http://127.0.0.1:9/", true).is_ok());
        assert!(parse_url("ftp://127.0.0.1/", true).is_err());
    }

    #[test]
    fn secrets_and_ids_are_fresh() {
        let (a, b) = (generate_secret().unwrap(), generate_secret().unwrap());
        assert!(a.starts_with("whsec_") && a != b);
        assert_eq!(BASE64.decode(&a[6..]).unwrap().len(), 32);
        assert!(generate_id().unwrap().starts_with("wh_"));
    }
}
