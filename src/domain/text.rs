//! Parsing of the plain values every resource shares: bounded text, slugs,
//! dates, URLs, and the folding that makes lookups case- and accent-insensitive.

use chrono::NaiveDate;
use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

/// Lower case, accents removed, apostrophes unified, whitespace collapsed:
/// `"  Côte d’Ivoire "` and `"cote d'ivoire"` fold to the same key. Cyrillic
/// keeps its letters (`"Японія"` -> `"японія"`), it only loses combining marks.
pub fn fold(text: &str) -> String {
    let stripped: String = text
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            '\u{2019}' | '\u{02BC}' | '\u{2018}' | '`' => '\'',
            other => other,
        })
        .flat_map(char::to_lowercase)
        .collect();
    stripped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text made safe for XML and HTML alike (the SVG charts, the cards, the
/// Atom feed): `&`, `<`, `>` and both quotes escaped, for text and
/// attribute values; control characters XML 1.0 cannot carry dropped.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Trimmed, non-empty text of at most `max` characters, without control characters.
pub fn bounded(text: &str, max: usize) -> Result<String, String> {
    // The limit counts what was sent, spaces included, as the contract says.
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    if let Some(c) = trimmed.chars().find(|c| is_deceptive(*c)) {
        return Err(format!(
            "must not contain invisible or direction-changing characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    Ok(trimmed.to_owned())
}

/// Characters that make text read differently from what it holds: the
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069) and marks (U+200E, U+200F, U+061C), zero-width characters
/// (U+200B–U+200D, U+2060) and the byte-order mark (U+FEFF). No name, title
/// or note needs them, and they can disguise a source or a figure.
pub fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200F}'
            | '\u{061C}'
            | '\u{2060}'
            | '\u{FEFF}'
    )
}

/// Optional text: absent, null and blank all mean "unknown".
pub fn optional_bounded(text: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match text {
        None => Ok(None),
        Some(t) if t.trim().is_empty() && t.chars().count() <= max => Ok(None),
        Some(t) => bounded(t, max).map(Some),
    }
}

/// A lower-case slug such as `ua-jp-2024` or `cyber-security`.
pub fn slug(text: &str, max: usize) -> Result<String, String> {
    let lower = text.trim().to_ascii_lowercase();
    // The limit counts what was sent, spaces included.
    let well_formed = !lower.is_empty()
        && text.chars().count() <= max
        && lower
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if well_formed {
        Ok(lower)
    } else {
        Err(format!(
            "must be a slug of lower-case letters, digits and single hyphens, at most {max} characters"
        ))
    }
}

/// The years a date may fall in: wide enough for any agreement, its
/// sources and its end (signed by 2100, running at most 100 years), narrow
/// enough that every date computed from one stays a date.
pub const FIRST_YEAR: i32 = 1900;
pub const LAST_YEAR: i32 = 2200;

/// The id of a pledge or a source: a slug such as `ua-jp-2024-p1`.
pub fn child_id(text: &str) -> Result<String, String> {
    slug(text, 120)
}

/// A calendar date in ISO 8601 form, from [`FIRST_YEAR`] to [`LAST_YEAR`];
/// impossible dates (2024-02-30) are refused.
pub fn date(text: &str) -> Result<NaiveDate, String> {
    let text = text.trim();
    if text.len() != 10 {
        return Err("must be a date in the form YYYY-MM-DD".into());
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a valid calendar date (YYYY-MM-DD)"))?;
    if !(FIRST_YEAR..=LAST_YEAR).contains(&chrono::Datelike::year(&date)) {
        return Err(format!(
            "must be a date from {FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31"
        ));
    }
    Ok(date)
}

pub fn optional_date(text: Option<&str>) -> Result<Option<NaiveDate>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => date(t).map(Some),
    }
}

/// An absolute http(s) URL with a host, at most 2048 characters.
pub fn web_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h)
            if h.contains('@') =>
        {
            Err("must not name a user before the host (`user@host`): a link such as https://www.gov.uk@evil.example/ leads to evil.example".into())
        }
        Some(h)
            if valid_authority(h)
                && text.chars().count() <= 2048
                && !text
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || is_deceptive(c)) =>
        {
            Ok(text.to_owned())
        }
        _ => Err(
            "must be an absolute http:// or https:// URL without spaces, at most 2048 characters"
                .into(),
        ),
    }
}

/// `host`, `host:port`, `[ipv6]:port`: a host a reader's browser could
/// reach, not just any text after the scheme.
fn valid_authority(authority: &str) -> bool {
    let host_port = authority;
    let valid_port =
        |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host_port.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        ip.parse::<std::net::Ipv6Addr>().is_ok()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(valid_port))
    } else {
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '~' | '%'))
            && port.is_none_or(valid_port)
    }
}

pub fn optional_web_url(text: Option<&str>) -> Result<Option<String>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => web_url(t).map(Some),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn markup_escapes_for_xml_and_html_and_drops_what_xml_cannot_hold() {
        assert_eq!(
            escape_markup("Tom & Jerry's <\"b\">\u{1}\tok"),
            "Tom &amp; Jerry&#39;s &lt;&quot;b&quot;&gt;\tok"
        );
    }

    use super::*;

    #[test]
    fn folding_ignores_case_accents_and_spacing() {
        assert_eq!(fold("  Côte  d’Ivoire "), "cote d'ivoire");
        assert_eq!(fold("Кот-д'Івуар"), fold("кот-дʼівуар"));
        assert_eq!(fold("TÜRKIYE"), "turkiye");
        assert_eq!(fold("Японія"), fold("японія"));
    }

    #[test]
    fn impossible_dates_are_refused() {
        assert!(date("2024-02-30").is_err());
        assert!(date("2024-2-3").is_err());
        assert_eq!(
            date("2024-02-29").ok(),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
    }

    #[test]
    fn slugs_are_lower_case_and_hyphenated() {
        assert_eq!(slug("UA-JP-2024", 100).as_deref(), Ok("ua-jp-2024"));
        assert!(slug("ua--jp", 100).is_err());
        assert!(slug("-ua", 100).is_err());
        assert!(slug("ua_jp", 100).is_err());
    }

    #[test]
    fn urls_need_a_scheme_and_host() {
        assert!(web_url("https://example.org/a b").is_err());
        assert!(web_url("ftp://example.org").is_err());
        assert!(web_url("https:///path").is_err());
        assert!(web_url("https://example.org/x?y=1").is_ok());
        assert!(web_url("http://[").is_err());
        assert!(web_url("http://[0]").is_err());
        assert!(web_url("http://[::1]:8080/a").is_ok());
        assert!(web_url("http://example.org:80x").is_err());
        assert!(web_url("https://user@example.org").is_err());
        assert!(web_url("https://www.gov.uk@evil.example/x").is_err());
        assert!(web_url("https://example.org/\u{202E}fdp.exe").is_err());
    }

    #[test]
    fn deceptive_characters_are_refused() {
        assert!(bounded("Japan\u{202E}", 10).is_err());
        assert!(bounded("Ja\u{200B}pan", 10).is_err());
        assert!(bounded("\u{FEFF}Japan", 10).is_err());
        assert!(bounded("Ja\u{2066}pan\u{2069}", 20).is_err());
        assert!(bounded("Японія", 10).is_ok());
        assert!(bounded("Côte d’Ivoire", 20).is_ok());
    }
}
