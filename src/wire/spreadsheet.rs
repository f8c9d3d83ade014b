//! The agreements as CSV files a researcher can edit in a spreadsheet and
//! import back: one file per kind of row, joined by `agreement_id` (and a
//! source's `pledges`). Columns are fixed and named like the JSON fields,
//! so an error found while parsing names the file, line and column it came from.
//!
//! Partners and the area vocabulary are not part of it: they stay in the JSON
//! export. An empty cell is null.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::{Map, Value};

use super::agreement::AgreementBody;
use super::dataset::DatasetBody;
use crate::domain::agreement::AgreementDraft;
use crate::domain::dataset::Dataset;

/// One CSV file: its name, its columns in order, and for a child file the
/// agreement's list its rows fill and the column that identifies a row.
#[derive(Debug)]
pub struct Table {
    pub file: &'static str,
    pub columns: &'static [&'static str],
    list: Option<(&'static str, &'static str)>,
}

pub const AGREEMENTS: Table = Table {
    file: "agreements.csv",
    columns: &[
        "id",
        "partner",
        "title",
        "title_uk",
        "kind",
        "status",
        "signed_on",
        "signed_at",
        "signed_city",
        "signed_country",
        "signed_venue",
        "signed_event",
        "term_years",
        "expires_on",
        "legally_binding",
        "summary",
        "text_url",
        "markers",
    ],
    list: None,
};

pub const SIGNATORIES: Table = Table {
    file: "signatories.csv",
    columns: &["agreement_id", "name", "role", "side"],
    list: Some(("signatories", "name")),
};

pub const AREAS: Table = Table {
    file: "areas.csv",
    columns: &["agreement_id", "code", "detail"],
    list: Some(("areas", "code")),
};

pub const PLEDGES: Table = Table {
    file: "pledges.csv",
    columns: &[
        "agreement_id",
        "id",
        "amount",
        "currency",
        "year_from",
        "year_to",
        "kind",
        "measure",
        "basis",
        "part_of",
        "in_agreement_text",
        "description",
        "note",
        "markers",
    ],
    list: Some(("pledges", "id")),
};

pub const SOURCES: Table = Table {
    file: "sources.csv",
    columns: &[
        "agreement_id",
        "id",
        "url",
        "title",
        "publisher",
        "published_on",
        "pledges",
        "fields",
    ],
    list: Some(("sources", "id")),
};

/// Every file, agreements first.
pub const TABLES: [&Table; 5] = [&AGREEMENTS, &SIGNATORIES, &AREAS, &PLEDGES, &SOURCES];

/// The place of signing, one column per field (`signed_place.city`, ...).
const PLACE_COLUMNS: [(&str, &str); 4] = [
    ("signed_city", "city"),
    ("signed_country", "country"),
    ("signed_venue", "venue"),
    ("signed_event", "event"),
];
/// Lists in one cell, separated by `;` (ids and field names hold none).
const LIST_COLUMNS: [&str; 2] = ["pledges", "fields"];
/// Markers in one cell, as the JSON object the API shows.
const JSON_COLUMNS: [&str; 1] = ["markers"];

/// A record as the API shapes it, laid out for its CSV row: the place of
/// signing in its columns, lists joined, markers as JSON text; empty is null.
fn flattened(mut row: Map<String, Value>) -> Map<String, Value> {
    if let Some(Value::Object(place)) = row.remove("signed_place") {
        for (column, field) in PLACE_COLUMNS {
            row.insert(
                column.into(),
                place.get(field).cloned().unwrap_or(Value::Null),
            );
        }
    }
    for column in LIST_COLUMNS {
        // Only lists of ids or names: an agreement's `pledges` (objects) go
        // to their own file.
        if let Some(Value::Array(items)) = row.get(column)
            && items.iter().all(Value::is_string)
        {
            let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            let cell = (!joined.is_empty()).then(|| Value::String(joined.join(";")));
            row.insert(column.into(), cell.unwrap_or(Value::Null));
        }
    }
    for column in JSON_COLUMNS {
        if let Some(value) = row.get(column) {
            let cell = match value {
                Value::Object(members) if members.is_empty() => Value::Null,
                Value::Null => Value::Null,
                other => Value::String(other.to_string()),
            };
            row.insert(column.into(), cell);
        }
    }
    row
}

/// The reverse of [`flattened`] for an agreement record: its place columns
/// back into one `signed_place` object.
fn place_gathered(mut record: Map<String, Value>) -> Map<String, Value> {
    let mut place = Map::new();
    for (column, field) in PLACE_COLUMNS {
        if let Some(value) = record.remove(column) {
            place.insert(field.into(), value);
        }
    }
    if !place.is_empty() {
        record.insert("signed_place".into(), Value::Object(place));
    }
    record
}

/// Columns holding whole numbers and yes/no values; every other column is text.
const NUMBER_COLUMNS: [&str; 3] = ["term_years", "year_from", "year_to"];
const BOOLEAN_COLUMNS: [&str; 2] = ["legally_binding", "in_agreement_text"];

/// Writes the agreements as the five files, in the order of [`TABLES`]:
/// agreements in the order given, child rows in each agreement's order.
pub fn write(agreements: &[AgreementDraft]) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let mut files = Vec::new();
    for table in TABLES {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        writer
            .write_record(table.columns)
            .map_err(|e| e.to_string())?;
        for agreement in agreements {
            let Value::Object(record) =
                serde_json::to_value(agreement).map_err(|e| e.to_string())?
            else {
                return Err("an agreement is not a JSON object".into());
            };
            let id = record.get("id").cloned().unwrap_or(Value::Null);
            let record = flattened(record);
            let rows: Vec<Map<String, Value>> = match table.list {
                None => vec![record],
                Some((list, _)) => match record.get(list) {
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(|item| item.as_object().cloned())
                        .map(flattened)
                        .map(|mut row| {
                            row.insert("agreement_id".into(), id.clone());
                            row
                        })
                        .collect(),
                    _ => Vec::new(),
                },
            };
            for row in rows {
                let cells = table
                    .columns
                    .iter()
                    .map(|column| cell(row.get(*column).unwrap_or(&Value::Null)));
                writer.write_record(cells).map_err(|e| e.to_string())?;
            }
        }
        let bytes = writer.into_inner().map_err(|e| e.to_string())?;
        files.push((table.file, bytes));
    }
    Ok(files)
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => neutralised(text).into_owned(),
        other => other.to_string(),
    }
}

/// A text cell a spreadsheet would run as a formula (it begins with `=`,
/// `+`, `-`, `@`, a tab or a carriage return) is written with a leading `'`,
/// the OWASP convention, so opening an export never runs anything. A cell
/// that already begins with `'` gets one more, so that [`restored`] gives
/// back exactly what was written, whatever it was.
pub fn neutralised(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// The text a [`neutralised`] cell stands for: one leading `'` removed.
pub fn restored(text: &str) -> &str {
    text.strip_prefix('\'').unwrap_or(text)
}

/// Where a problem is: a file, and where known its line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetError {
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<String>,
    pub message: String,
}

impl SheetError {
    fn new(
        file: &str,
        line: Option<u64>,
        column: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_owned(),
            line,
            column: column.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl fmt::Display for SheetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Which line of which file each record of a parsed import came from, so
/// that errors addressed by JSON path (`agreements[3].pledges[1].amount`)
/// can name the file, line and column instead.
#[derive(Debug, Default)]
pub struct Locations {
    records: HashMap<String, (&'static str, u64)>,
}

impl Locations {
    /// The record a path falls in (the longest known prefix), and the column left over.
    pub fn locate(&self, path: &str, message: &str) -> SheetError {
        let mut prefix = path;
        loop {
            if let Some((file, line)) = self.records.get(prefix) {
                let rest = path[prefix.len()..].trim_start_matches('.');
                let column = (!rest.is_empty()).then_some(rest);
                return SheetError::new(file, Some(*line), column, message);
            }
            match prefix.rfind(['.', '[']) {
                Some(cut) => prefix = &prefix[..cut],
                None => return SheetError::new(AGREEMENTS.file, None, Some(path), message),
            }
        }
    }
}

/// One file's rows: (line, cells by column); only non-empty cells are kept.
type Rows = Vec<(u64, Map<String, Value>)>;

/// Reads the files of a CSV import and parses them into a dataset.
/// `agreements.csv` is required; a child file that is absent leaves those
/// children as they are in the store, while a present one replaces each listed
/// agreement's rows. Every problem in every file is reported at once, each
/// with its file, line and column; the locations are kept for the errors the
/// store may still find (unknown partners and areas).
pub fn parse(files: &[(String, Vec<u8>)]) -> Result<(Dataset, Locations), Vec<SheetError>> {
    let (body, locations, mut errors) = read(files);
    match body.parse() {
        Ok(dataset) if errors.is_empty() => return Ok((dataset, locations)),
        Ok(_) => {}
        Err(invalid) => {
            errors.extend(
                invalid
                    .iter()
                    .map(|e| locations.locate(&e.field, &e.message)),
            );
        }
    }
    // File by file, top to bottom, as an editor fixes them.
    let file_order = |file: &str| {
        TABLES
            .iter()
            .position(|t| t.file == file)
            .unwrap_or(TABLES.len())
    };
    errors.sort_by_key(|e| (file_order(&e.file), e.line));
    Err(errors)
}

/// Reads the files into the loose body the JSON import parses too, with the
/// problems found in the files themselves (shape, encoding, types, keys).
/// Rows with such problems are left out, so that parsing the rest adds only
/// new problems.
fn read(files: &[(String, Vec<u8>)]) -> (DatasetBody, Locations, Vec<SheetError>) {
    let mut errors = Vec::new();
    let mut tables: BTreeMap<&'static str, Rows> = BTreeMap::new();
    for (name, bytes) in files {
        match TABLES.iter().find(|t| t.file == name) {
            Some(table) => {
                let rows = read_table(table, bytes, &mut errors);
                tables.insert(table.file, rows);
            }
            None => errors.push(SheetError::new(
                name,
                None,
                None,
                format!(
                    "is not one of the import's files: {}",
                    TABLES.map(|t| t.file).join(", ")
                ),
            )),
        }
    }
    let Some(agreements) = tables.remove(AGREEMENTS.file) else {
        errors.push(SheetError::new(
            AGREEMENTS.file,
            None,
            None,
            "is missing: a CSV import needs it",
        ));
        return (DatasetBody::default(), Locations::default(), errors);
    };

    // Agreements by id, each id once.
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, (line, row)) in agreements.iter().enumerate() {
        let Some(id) = row.get("id").and_then(Value::as_str) else {
            errors.push(SheetError::new(
                AGREEMENTS.file,
                Some(*line),
                Some("id"),
                "is required",
            ));
            continue;
        };
        if let Some(&first) = index.get(id) {
            errors.push(SheetError::new(
                AGREEMENTS.file,
                Some(*line),
                Some("id"),
                format!("{id:?} is already on line {}", agreements[first].0),
            ));
        } else {
            index.insert(id.to_owned(), i);
        }
    }

    // Only the first row of each id goes on; `index` now maps ids to records.
    let mut locations = Locations::default();
    let mut records: Vec<Map<String, Value>> = Vec::with_capacity(index.len());
    let mut lines: Vec<u64> = Vec::with_capacity(index.len());
    for (i, (line, row)) in agreements.iter().enumerate() {
        let id = row.get("id").and_then(Value::as_str).unwrap_or_default();
        if index.get(id) != Some(&i) {
            continue;
        }
        index.insert(id.to_owned(), records.len());
        locations.records.insert(
            format!("agreements[{}]", records.len()),
            (AGREEMENTS.file, *line),
        );
        records.push(place_gathered(row.clone()));
        lines.push(*line);
    }
    for table in &TABLES[1..] {
        let Some(rows) = tables.remove(table.file) else {
            continue;
        };
        let Some((list, key)) = table.list else {
            continue;
        };
        for record in &mut records {
            record.insert(list.into(), Value::Array(Vec::new()));
        }
        // Pledge and source ids are unique in the whole store; an area or a
        // signatory only once per agreement.
        let unique_everywhere = key == "id";
        let mut seen: HashMap<(String, String), u64> = HashMap::new();
        for (line, mut row) in rows {
            let Some(agreement_id) = row.remove("agreement_id") else {
                errors.push(SheetError::new(
                    table.file,
                    Some(line),
                    Some("agreement_id"),
                    "is required",
                ));
                continue;
            };
            let agreement_id = agreement_id.as_str().unwrap_or_default().to_owned();
            let Some(&i) = index.get(&agreement_id) else {
                errors.push(SheetError::new(
                    table.file,
                    Some(line),
                    Some("agreement_id"),
                    format!(
                        "{agreement_id:?} is not an agreement in {}",
                        AGREEMENTS.file
                    ),
                ));
                continue;
            };
            if let Some(key_value) = row.get(key).and_then(Value::as_str) {
                let scope = if unique_everywhere {
                    String::new()
                } else {
                    agreement_id.clone()
                };
                if let Some(first) = seen.insert((scope, key_value.to_owned()), line) {
                    errors.push(SheetError::new(
                        table.file,
                        Some(line),
                        Some(key),
                        format!("{key_value:?} is already on line {first}"),
                    ));
                    continue;
                }
            } else if unique_everywhere {
                errors.push(SheetError::new(
                    table.file,
                    Some(line),
                    Some(key),
                    "is required",
                ));
                continue;
            }
            let Some(Value::Array(items)) = records[i].get_mut(list) else {
                continue;
            };
            locations.records.insert(
                format!("agreements[{i}].{list}[{}]", items.len()),
                (table.file, line),
            );
            items.push(Value::Object(row));
        }
    }

    let mut bodies = Vec::with_capacity(records.len());
    for (i, record) in records.into_iter().enumerate() {
        match serde_json::from_value::<AgreementBody>(Value::Object(record)) {
            Ok(body) => bodies.push(body),
            Err(e) => errors.push(SheetError::new(
                AGREEMENTS.file,
                Some(lines[i]),
                None,
                e.to_string(),
            )),
        }
    }
    let body = DatasetBody {
        partners: None,
        areas: None,
        agreements: Some(bodies),
    };
    (body, locations, errors)
}

/// Parses one file: its header must name exactly the table's columns (in
/// any order), and every cell must be UTF-8 and of its column's type.
fn read_table(table: &Table, bytes: &[u8], errors: &mut Vec<SheetError>) -> Rows {
    let file = table.file;
    // Spreadsheets often save UTF-8 with a byte-order mark.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        Some(Err(e)) => {
            errors.push(SheetError {
                line: Some(1),
                ..csv_error(file, &e)
            });
            return Vec::new();
        }
        None => {
            errors.push(SheetError::new(
                file,
                Some(1),
                None,
                "is empty: the first line must name the columns",
            ));
            return Vec::new();
        }
    };
    let mut columns: Vec<&'static str> = Vec::new();
    let mut header_ok = true;
    for name in header.iter() {
        let name = String::from_utf8_lossy(name);
        let name = name.trim();
        match table.columns.iter().find(|c| **c == name) {
            Some(column) if columns.contains(column) => {
                errors.push(SheetError::new(
                    file,
                    Some(1),
                    Some(column),
                    "appears twice in the header",
                ));
                header_ok = false;
            }
            Some(column) => columns.push(column),
            None => {
                errors.push(SheetError::new(
                    file,
                    Some(1),
                    Some(name),
                    format!(
                        "is not a column of {file}; its columns are: {}",
                        table.columns.join(", ")
                    ),
                ));
                header_ok = false;
            }
        }
    }
    for column in table.columns {
        if !columns.contains(column) {
            errors.push(SheetError::new(
                file,
                Some(1),
                Some(column),
                "is missing from the header",
            ));
            header_ok = false;
        }
    }
    if !header_ok {
        return Vec::new();
    }

    let mut rows = Vec::new();
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                // The rest of a file whose quoting or shape broke cannot be trusted.
                errors.push(csv_error(file, &e));
                break;
            }
        };
        // The reader counts a record's line from the end of the one before
        // (one short, after the header); the line it starts on is one more.
        let line = record.position().map_or(0, |p| p.line() + 1);
        if record
            .iter()
            .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
        {
            continue;
        }
        let mut row = Map::new();
        for (column, raw) in columns.iter().zip(record.iter()) {
            let Ok(text) = std::str::from_utf8(raw) else {
                errors.push(SheetError::new(
                    file,
                    Some(line),
                    Some(column),
                    "is not valid UTF-8: save the file as UTF-8",
                ));
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            match typed(column, text) {
                Ok(value) => {
                    row.insert((*column).to_owned(), value);
                }
                Err(message) => {
                    errors.push(SheetError::new(file, Some(line), Some(column), message))
                }
            }
        }
        rows.push((line, row));
    }
    rows
}

fn typed(column: &str, text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    if NUMBER_COLUMNS.contains(&column) {
        trimmed
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("must be a whole number, not {trimmed:?}"))
    } else if BOOLEAN_COLUMNS.contains(&column) {
        match trimmed.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("must be true, false or empty, not {trimmed:?}")),
        }
    } else if LIST_COLUMNS.contains(&column) {
        Ok(Value::Array(
            text.split(';')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        ))
    } else if JSON_COLUMNS.contains(&column) {
        serde_json::from_str::<Value>(restored(text))
            .map_err(|e| format!("must be a JSON object of markers: {e}"))
    } else {
        Ok(Value::String(restored(text).to_owned()))
    }
}

fn csv_error(file: &str, error: &csv::Error) -> SheetError {
    let line = error.position().map(|p| p.line() + 1);
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("has {len} cells where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8: save the file as UTF-8".into(),
        _ => error.to_string(),
    };
    SheetError::new(file, line, None, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_restored_exactly() {
        for text in [
            "=1+1", "+44", "-5", "@SUM(A1)", "\tx", "\rx", "'quoted", "''", "plain", "",
        ] {
            let written = neutralised(text);
            assert!(
                !written.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{written:?}"
            );
            assert_eq!(restored(&written), text);
        }
        assert_eq!(neutralised("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralised("Japan"), "Japan");
    }

    fn errors_of(file: &str, text: &[u8]) -> Vec<String> {
        let files = vec![(file.to_owned(), text.to_vec())];
        let (_, _, errors) = read(&files);
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn lines_count_from_the_header_and_across_quoted_new_lines() {
        let header = AGREEMENTS.columns.join(",");
        let text = format!(
            "{header}\r\nua-a,JP,\"two\nlines\",,other,signed,,,,,,,,,,,,\r\nua-b,JP,t,,other,signed,,,,,,,x,,,,,\r\nua-c,JP\r\n"
        );
        assert_eq!(
            errors_of("agreements.csv", text.as_bytes()),
            [
                "agreements.csv line 4, column term_years: must be a whole number, not \"x\"",
                "agreements.csv line 5: has 2 cells where the header has 18",
            ]
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_column() {
        let text = format!("\u{feff}{}\r\n", AGREEMENTS.columns.join(","));
        assert!(errors_of("agreements.csv", text.as_bytes()).is_empty());
    }
}
