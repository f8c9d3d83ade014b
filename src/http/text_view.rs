//! One agreement as text a reporter can read in a terminal and cite: who,
//! when and where, each pledge in words and exact digits with its basis and
//! markers, and the sources as numbered links.

use std::fmt::Write as _;

use crate::domain::Vocabulary;
use crate::domain::agreement::Agreement;
use crate::domain::lang::Lang;
use crate::domain::marker::Markers;
use crate::domain::money::Amount;
use crate::domain::pledge::{Pledge, PledgeBasis};

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

/// A total as a chart label, rounded for reading ("€7.1 bn", in Ukrainian
/// "7,1 млрд €"); the exact figure is always shown beside it.
pub fn short_amount(currency: &str, value: rust_decimal::Decimal, lang: Lang) -> String {
    use rust_decimal::Decimal;
    let symbol = match currency {
        "EUR" => Some("€"),
        "USD" => Some("$"),
        "GBP" => Some("£"),
        _ => None,
    };
    let (number, unit) = if value >= Decimal::from(1_000_000_000_i64) {
        let short = (value / Decimal::from(1_000_000_000_i64))
            .round_dp(2)
            .normalize();
        (short.to_string(), Some(("bn", "млрд")))
    } else if value >= Decimal::from(1_000_000_i64) {
        let short = (value / Decimal::from(1_000_000_i64))
            .round_dp(2)
            .normalize();
        (short.to_string(), Some(("m", "млн")))
    } else {
        (grouped(&value.round_dp(0).to_string()), None)
    };
    match lang {
        Lang::En => {
            let unit = unit.map_or(String::new(), |(en, _)| format!(" {en}"));
            match symbol {
                Some(symbol) => format!("{symbol}{number}{unit}"),
                None => format!("{currency} {number}{unit}"),
            }
        }
        Lang::Uk => {
            // Ukrainian writes a decimal comma and groups thousands with spaces.
            let number = number.replace(',', "\u{a0}").replace('.', ",");
            let unit = unit.map_or(String::new(), |(_, uk)| format!(" {uk}"));
            format!("{number}{unit} {}", symbol.unwrap_or(currency))
        }
    }
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

    #[test]
    fn chart_labels_round_for_reading() {
        let d = |text: &str| text.parse::<rust_decimal::Decimal>().unwrap();
        assert_eq!(short_amount("EUR", d("7100000000.00"), Lang::En), "€7.1 bn");
        assert_eq!(short_amount("NOK", d("950000000"), Lang::En), "NOK 950 m");
        assert_eq!(short_amount("EUR", d("12500"), Lang::En), "€12,500");
        assert_eq!(short_amount("EUR", d("7100000000"), Lang::Uk), "7,1 млрд €");
        assert_eq!(short_amount("CAD", d("12500"), Lang::Uk), "12\u{a0}500 CAD");
    }
}
