//! One agreement as text a reporter can read in a terminal and cite: who,
//! when and where, each pledge in words and exact digits with its basis and
//! markers, and the sources as numbered links.

use std::fmt::Write as _;

use crate::domain::Vocabulary;
use crate::domain::agreement::Agreement;
use crate::domain::marker::Markers;
use crate::domain::money::Amount;
use crate::domain::pledge::{Pledge, PledgeBasis};
use crate::store::HistoryEntry;

/// "4500000000" → "4,500,000,000"; exact, only grouped for reading.
pub fn grouped(amount: &str) -> String {
    let (whole, fraction) = match amount.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (amount, None),
    };
    let digits: Vec<char> = whole.chars().collect();
    let mut out = String::new();
    for (i, digit) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(*digit);
    }
    match fraction {
        Some(f) => format!("{out}.{f}"),
        None => out,
    }
}

/// "USD 4.5 bn (4,500,000,000)": words for reading, the exact figure beside.
pub fn readable(currency: &str, amount: &Amount) -> String {
    let value = amount.as_decimal();
    let scaled = |divisor: i64, unit: &str| {
        let short = (value / rust_decimal::Decimal::from(divisor))
            .round_dp(2)
            .normalize();
        format!("{currency} {short} {unit}")
    };
    let words = if value >= rust_decimal::Decimal::from(1_000_000_000_i64) {
        scaled(1_000_000_000, "bn")
    } else if value >= rust_decimal::Decimal::from(1_000_000_i64) {
        scaled(1_000_000, "m")
    } else {
        return format!("{currency} {}", grouped(&amount.to_string()));
    };
    format!("{words} ({})", grouped(&amount.to_string()))
}

fn years(from: Option<i64>, to: Option<i64>) -> String {
    match (from, to) {
        (Some(from), Some(to)) if from != to => format!("{from}–{to}"),
        (Some(year), _) | (None, Some(year)) => year.to_string(),
        (None, None) => "years not stated".into(),
    }
}

/// The marker lines of a record, with its sources as their numbers.
fn marker_lines(out: &mut String, markers: &Markers, number_of: &dyn Fn(&str) -> String) {
    for (field, marker) in markers {
        let list = |ids: &[String]| {
            ids.iter()
                .map(|id| number_of(id))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = write!(
            out,
            "     {} {field}: {}",
            marker.status.as_str().to_uppercase(),
            marker.note
        );
        if !marker.sources_for.is_empty() {
            let _ = write!(out, " (for: {}", list(&marker.sources_for));
            if !marker.sources_against.is_empty() {
                let _ = write!(out, "; against: {}", list(&marker.sources_against));
            }
            out.push(')');
        } else if !marker.sources_against.is_empty() {
            let _ = write!(out, " (against: {})", list(&marker.sources_against));
        }
        out.push('\n');
    }
}

fn pledge_line(out: &mut String, n: usize, pledge: &Pledge, number_of: &dyn Fn(&str) -> String) {
    let currency = pledge.currency.as_str();
    let amount = readable(currency, &pledge.amount);
    let span = years(pledge.year_from, pledge.year_to);
    let head = match pledge.basis {
        PledgeBasis::PerYear => {
            let counted = pledge.years_counted();
            let total = pledge.amount.as_decimal() * rust_decimal::Decimal::from(counted);
            let total =
                Amount::from_decimal(total).map_or_else(|_| total.to_string(), |a| a.to_string());
            format!(
                "{amount} a year, {span} ({counted} years: {currency} {} in all)",
                grouped(&total)
            )
        }
        PledgeBasis::Total => format!("{amount}, {span}"),
    };
    let _ = writeln!(
        out,
        "  {n}. {head} · {} [{}]",
        pledge.kind.as_str(),
        pledge.id
    );
    if let Some(whole) = &pledge.part_of {
        let _ = writeln!(
            out,
            "     part of {whole}: counted in that total, not again here"
        );
    }
    if !pledge.parts.is_empty() {
        let _ = writeln!(out, "     includes {}", pledge.parts.join(", "));
    }
    match pledge.in_agreement_text {
        Some(true) => out.push_str("     in the agreement's text\n"),
        Some(false) => out.push_str("     announced alongside, not in the agreement's text\n"),
        None => {}
    }
    if let Some(description) = &pledge.description {
        let _ = writeln!(out, "     {description}");
    }
    if let Some(note) = &pledge.note {
        let _ = writeln!(out, "     Note: {note}");
    }
    marker_lines(out, &pledge.markers, number_of);
    if !pledge.sources.is_empty() {
        let numbers: Vec<String> = pledge.sources.iter().map(|s| number_of(&s.id)).collect();
        let _ = writeln!(out, "     Sources: {}", numbers.join(" "));
    } else {
        out.push_str("     Sources: none (this figure has no source yet)\n");
    }
}

/// The text view of one agreement.
pub fn agreement(agreement: &Agreement) -> String {
    let number_of = |id: &str| {
        agreement
            .sources
            .iter()
            .position(|s| s.id == id)
            .map_or_else(|| format!("[{id}]"), |i| format!("[{}]", i + 1))
    };
    // A marked value says so where it is shown, not only below.
    let mark = |field: &str| {
        agreement
            .markers
            .get(field)
            .map_or(String::new(), |m| format!(" [{}]", m.status.as_str()))
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}{}", agreement.title, mark("title"));
    let _ = writeln!(
        out,
        "{} · {} ({}) · {} · {}",
        agreement.id,
        agreement.partner.name,
        agreement.partner.code.as_str(),
        agreement.kind.as_str(),
        agreement.status.as_str()
    );
    let signed = match (agreement.signed_on, &agreement.signed_at) {
        (Some(on), Some(at)) => format!(
            "Signed {on}{} in {at}{}",
            mark("signed_on"),
            mark("signed_at")
        ),
        (Some(on), None) => format!("Signed {on}{}", mark("signed_on")),
        (None, _) => "Not signed".into(),
    };
    let by: Vec<String> = agreement
        .signatories
        .iter()
        .map(|s| match &s.role {
            Some(role) => format!("{} ({role})", s.name),
            None => s.name.clone(),
        })
        .collect();
    if by.is_empty() {
        let _ = writeln!(out, "{signed}");
    } else {
        let _ = writeln!(out, "{signed}, by {}", by.join(", "));
    }
    let term = match (agreement.term_years, agreement.expires_on) {
        (Some(years), Some(end)) => format!("{years} years, to {end}"),
        (Some(years), None) => format!("{years} years"),
        (None, Some(end)) => format!("to {end}"),
        (None, None) => "not stated".into(),
    };
    let binding = match agreement.legally_binding {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    let _ = writeln!(
        out,
        "Term: {term}{} · Legally binding: {binding}{}",
        mark("term_years"),
        mark("legally_binding")
    );
    if !agreement.markers.is_empty() {
        out.push('\n');
        out.push_str("Marked facts\n");
        marker_lines(&mut out, &agreement.markers, &number_of);
    }
    if !agreement.areas.is_empty() {
        let names: Vec<&str> = agreement.areas.iter().map(|a| a.name.as_str()).collect();
        let _ = writeln!(out, "\nAreas: {}", names.join(", "));
    }
    out.push_str("\nPledges\n");
    if agreement.pledges.is_empty() {
        out.push_str("  no stated amount\n");
    }
    for (i, pledge) in agreement.pledges.iter().enumerate() {
        pledge_line(&mut out, i + 1, pledge, &number_of);
    }
    out.push_str("\nSources\n");
    for (i, source) in agreement.sources.iter().enumerate() {
        let mut by = source.publisher.clone().unwrap_or_default();
        if let Some(on) = source.published_on {
            by = if by.is_empty() {
                on.to_string()
            } else {
                format!("{by}, {on}")
            };
        }
        let by = if by.is_empty() {
            String::new()
        } else {
            format!(" — {by}")
        };
        let _ = writeln!(out, "  [{}] {}{by}", i + 1, source.title);
        let _ = writeln!(out, "      {}", source.url);
    }
    out
}

/// The audit history as a reader follows it: one heading per change (when,
/// who, what) and one `field: before → after` line per field that moved.
pub fn history(entries: &[HistoryEntry], next_cursor: Option<&str>) -> String {
    let mut out = String::new();
    for entry in entries {
        let _ = writeln!(
            out,
            "#{} {} {} {} {} {} (version {})",
            entry.seq,
            entry.at.format("%Y-%m-%d %H:%M:%SZ"),
            entry.actor,
            entry.op,
            entry.entity,
            entry.entity_id,
            entry.version
        );
        for (field, before, after) in changed_fields(entry.before.as_ref(), entry.after.as_ref()) {
            let _ = writeln!(out, "    {field}: {before} → {after}");
        }
    }
    if entries.is_empty() {
        out.push_str("no changes match\n");
    }
    if let Some(cursor) = next_cursor {
        let _ = writeln!(out, "more: add &cursor={cursor}");
    }
    out
}

/// The members that differ between two versions of a record, each shown
/// short: text as it is, nothing as "—", lists and objects as compact JSON
/// cut to a line.
fn changed_fields(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Vec<(String, String, String)> {
    let empty = serde_json::Map::new();
    let members = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::Object(map)) => map.clone(),
        _ => empty.clone(),
    };
    let (before, after) = (members(before), members(after));
    let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter(|f| before.get(*f) != after.get(*f))
        .map(|f| (f.clone(), shown(before.get(f)), shown(after.get(f))))
        .collect()
}

fn shown(value: Option<&serde_json::Value>) -> String {
    const MAX_CHARS: usize = 120;
    let text = match value {
        None | Some(serde_json::Value::Null) => return "—".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_in_words_beside_their_exact_digits() {
        let amount = |text: &str| Amount::parse(text).unwrap();
        assert_eq!(
            readable("USD", &amount("4500000000")),
            "USD 4.5 bn (4,500,000,000)"
        );
        assert_eq!(
            readable("EUR", &amount("126000000")),
            "EUR 126 m (126,000,000)"
        );
        assert_eq!(
            readable("NZD", &amount("1000000.50")),
            "NZD 1 m (1,000,000.50)"
        );
        assert_eq!(readable("EUR", &amount("5000")), "EUR 5,000");
        assert_eq!(grouped("1234567.89"), "1,234,567.89");
    }
}
