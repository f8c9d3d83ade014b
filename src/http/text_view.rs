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

/// The words of the text view, per language.
struct Words {
    years_not_stated: &'static str,
    for_: &'static str,
    against: &'static str,
    a_year: &'static str,
    years: &'static str,
    in_all: &'static str,
    part_of: &'static str,
    includes: &'static str,
    in_text: &'static str,
    alongside: &'static str,
    note: &'static str,
    sources_line: &'static str,
    no_source: &'static str,
    signed: &'static str,
    in_place: &'static str,
    not_signed: &'static str,
    by: &'static str,
    to: &'static str,
    not_stated: &'static str,
    term: &'static str,
    binding: &'static str,
    yes_no_unknown: [&'static str; 3],
    marked: &'static str,
    areas: &'static str,
    pledges: &'static str,
    no_amount: &'static str,
    sources: &'static str,
}

const EN: Words = Words {
    years_not_stated: "years not stated",
    for_: "for",
    against: "against",
    a_year: "a year",
    years: "years",
    in_all: "in all",
    part_of: "part of {whole}: counted in that total, not again here",
    includes: "includes",
    in_text: "in the agreement's text",
    alongside: "announced alongside, not in the agreement's text",
    note: "Note",
    sources_line: "Sources",
    no_source: "none (this figure has no source yet)",
    signed: "Signed",
    in_place: "in",
    not_signed: "Not signed",
    by: "by",
    to: "to",
    not_stated: "not stated",
    term: "Term",
    binding: "Legally binding",
    yes_no_unknown: ["yes", "no", "unknown"],
    marked: "Marked facts",
    areas: "Areas",
    pledges: "Pledges",
    no_amount: "no stated amount",
    sources: "Sources",
};

const UK: Words = Words {
    years_not_stated: "роки не вказано",
    for_: "за",
    against: "проти",
    a_year: "щороку",
    years: "років",
    in_all: "загалом",
    part_of: "частина {whole}: враховано в тій сумі, тут удруге не враховано",
    includes: "включає",
    in_text: "у тексті угоди",
    alongside: "оголошено разом з угодою, не в її тексті",
    note: "Примітка",
    sources_line: "Джерела",
    no_source: "немає (ця цифра ще не має джерела)",
    signed: "Підписано",
    in_place: "у",
    not_signed: "Не підписано",
    by: "підписали",
    to: "до",
    not_stated: "не вказано",
    term: "Строк",
    binding: "Юридично обов’язкова",
    yes_no_unknown: ["так", "ні", "невідомо"],
    marked: "Позначені факти",
    areas: "Сфери",
    pledges: "Зобов’язання",
    no_amount: "суму не вказано",
    sources: "Джерела",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Uk => &UK,
    }
}

fn years(from: Option<i64>, to: Option<i64>, w: &Words) -> String {
    match (from, to) {
        (Some(from), Some(to)) if from != to => format!("{from}–{to}"),
        (Some(year), _) | (None, Some(year)) => year.to_string(),
        (None, None) => w.years_not_stated.into(),
    }
}

/// The marker lines of a record, with its sources as their numbers.
fn marker_lines(
    out: &mut String,
    markers: &Markers,
    number_of: &dyn Fn(&str) -> String,
    lang: Lang,
) {
    let w = words(lang);
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
            lang.marker_status(marker.status).to_uppercase(),
            marker.note
        );
        if !marker.sources_for.is_empty() {
            let _ = write!(out, " ({}: {}", w.for_, list(&marker.sources_for));
            if !marker.sources_against.is_empty() {
                let _ = write!(out, "; {}: {}", w.against, list(&marker.sources_against));
            }
            out.push(')');
        } else if !marker.sources_against.is_empty() {
            let _ = write!(out, " ({}: {})", w.against, list(&marker.sources_against));
        }
        out.push('\n');
    }
}

fn pledge_line(
    out: &mut String,
    n: usize,
    pledge: &Pledge,
    number_of: &dyn Fn(&str) -> String,
    lang: Lang,
) {
    let w = words(lang);
    let currency = pledge.currency.as_str();
    let amount = readable(currency, &pledge.amount);
    let span = years(pledge.year_from, pledge.year_to, w);
    let head = match pledge.basis {
        PledgeBasis::PerYear => {
            let counted = pledge.years_counted();
            let total = pledge.amount.as_decimal() * rust_decimal::Decimal::from(counted);
            let total =
                Amount::from_decimal(total).map_or_else(|_| total.to_string(), |a| a.to_string());
            format!(
                "{amount} {}, {span} ({counted} {}: {currency} {} {})",
                w.a_year,
                w.years,
                grouped(&total),
                w.in_all
            )
        }
        PledgeBasis::Total => format!("{amount}, {span}"),
    };
    let _ = writeln!(
        out,
        "  {n}. {head} · {} [{}]",
        lang.pledge_kind(pledge.kind),
        pledge.id
    );
    if let Some(whole) = &pledge.part_of {
        let _ = writeln!(out, "     {}", w.part_of.replace("{whole}", whole));
    }
    if !pledge.parts.is_empty() {
        let _ = writeln!(out, "     {} {}", w.includes, pledge.parts.join(", "));
    }
    match pledge.in_agreement_text {
        Some(true) => {
            let _ = writeln!(out, "     {}", w.in_text);
        }
        Some(false) => {
            let _ = writeln!(out, "     {}", w.alongside);
        }
        None => {}
    }
    if let Some(description) = &pledge.description {
        let _ = writeln!(out, "     {description}");
    }
    if let Some(note) = &pledge.note {
        let _ = writeln!(out, "     {}: {note}", w.note);
    }
    marker_lines(out, &pledge.markers, number_of, lang);
    if !pledge.sources.is_empty() {
        let numbers: Vec<String> = pledge.sources.iter().map(|s| number_of(&s.id)).collect();
        let _ = writeln!(out, "     {}: {}", w.sources_line, numbers.join(" "));
    } else {
        let _ = writeln!(out, "     {}: {}", w.sources_line, w.no_source);
    }
}

/// The text view of one agreement, in `lang` (names from the data where it
/// has them in that language; the English otherwise).
pub fn agreement(agreement: &Agreement, lang: Lang) -> String {
    let w = words(lang);
    let uk = lang == Lang::Uk;
    let title = match (&agreement.title_uk, uk) {
        (Some(title), true) => title,
        _ => &agreement.title,
    };
    let partner = match (&agreement.partner.name_uk, uk) {
        (Some(name), true) => name,
        _ => &agreement.partner.name,
    };
    let number_of = |id: &str| {
        agreement
            .sources
            .iter()
            .position(|s| s.id == id)
            .map_or_else(|| format!("[{id}]"), |i| format!("[{}]", i + 1))
    };
    // A marked value says so where it is shown, not only below.
    let mark = |field: &str| {
        agreement.markers.get(field).map_or(String::new(), |m| {
            format!(" [{}]", lang.marker_status(m.status))
        })
    };
    let (kind, status) = match lang {
        Lang::En => (agreement.kind.as_str(), agreement.status.as_str()),
        Lang::Uk => (
            lang.agreement_kind(agreement.kind),
            lang.agreement_status(agreement.status),
        ),
    };
    let mut out = String::new();
    let _ = writeln!(out, "{title}{}", mark("title"));
    let _ = writeln!(
        out,
        "{} · {partner} ({}) · {kind} · {status}",
        agreement.id,
        agreement.partner.code.as_str(),
    );
    let signed = match (agreement.signed_on, &agreement.signed_at) {
        (Some(on), Some(at)) => format!(
            "{} {on}{} {} {at}{}",
            w.signed,
            mark("signed_on"),
            w.in_place,
            mark("signed_at")
        ),
        (Some(on), None) => format!("{} {on}{}", w.signed, mark("signed_on")),
        (None, _) => w.not_signed.into(),
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
        let _ = writeln!(out, "{signed}, {} {}", w.by, by.join(", "));
    }
    let term = match (agreement.term_years, agreement.expires_on) {
        (Some(years), Some(end)) => format!("{years} {}, {} {end}", w.years, w.to),
        (Some(years), None) => format!("{years} {}", w.years),
        (None, Some(end)) => format!("{} {end}", w.to),
        (None, None) => w.not_stated.into(),
    };
    let binding = match agreement.legally_binding {
        Some(true) => w.yes_no_unknown[0],
        Some(false) => w.yes_no_unknown[1],
        None => w.yes_no_unknown[2],
    };
    let _ = writeln!(
        out,
        "{}: {term}{} · {}: {binding}{}",
        w.term,
        mark("term_years"),
        w.binding,
        mark("legally_binding")
    );
    if !agreement.markers.is_empty() {
        let _ = writeln!(out, "\n{}", w.marked);
        marker_lines(&mut out, &agreement.markers, &number_of, lang);
    }
    if !agreement.areas.is_empty() {
        let names: Vec<&str> = agreement
            .areas
            .iter()
            .map(|a| match (&a.name_uk, uk) {
                (Some(name), true) => name.as_str(),
                _ => a.name.as_str(),
            })
            .collect();
        let _ = writeln!(out, "\n{}: {}", w.areas, names.join(", "));
    }
    let _ = writeln!(out, "\n{}", w.pledges);
    if agreement.pledges.is_empty() {
        let _ = writeln!(out, "  {}", w.no_amount);
    }
    for (i, pledge) in agreement.pledges.iter().enumerate() {
        pledge_line(&mut out, i + 1, pledge, &number_of, lang);
    }
    let _ = writeln!(out, "\n{}", w.sources);
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
