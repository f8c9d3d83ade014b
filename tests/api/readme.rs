//! Every curl example in the README and then in docs/api.md (the API by
//! example, which the README sends readers to), run in order against a
//! freshly seeded live server on each backend, and every answer they show
//! checked against what the service said: neither may promise what the
//! service does not do.

use std::process::Command;

use accords::http::HttpOptions;

use crate::common::{Backend, TestDatabase};

/// A curl line of a ```sh block, and the status it promises (`# → 404`;
/// without one, any 2xx).
struct Example {
    command: String,
    expected: Option<u16>,
}

/// A ```sh block's examples, and the ```json or ```text blocks right after
/// it that show (part of) their answers.
struct Group {
    examples: Vec<Example>,
    shown: Vec<(String, String)>,
}

fn groups(readme: &str) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    // The open block's info string and text; whether the last closed block
    // was an example block or output shown after one.
    let mut open: Option<(String, String)> = None;
    let mut follows_examples = false;
    for line in readme.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match open.take() {
                None => open = Some((info.trim().to_owned(), String::new())),
                Some((info, text)) => match info.as_str() {
                    "sh" => {
                        let examples: Vec<Example> = text.lines().filter_map(example).collect();
                        follows_examples = !examples.is_empty();
                        if follows_examples {
                            groups.push(Group {
                                examples,
                                shown: Vec::new(),
                            });
                        }
                    }
                    "json" | "text" if follows_examples => {
                        if let Some(group) = groups.last_mut() {
                            group.shown.push((info, text));
                        }
                    }
                    _ => follows_examples = false,
                },
            }
            continue;
        }
        if let Some((_, text)) = open.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    groups
}

fn example(line: &str) -> Option<Example> {
    if !line.starts_with("curl ") {
        return None;
    }
    let (command, comment) = match line.split_once(" # ") {
        Some((command, comment)) => (command.trim(), comment.trim()),
        None => (line.trim(), ""),
    };
    let expected = comment
        .strip_prefix("→ ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    Some(Example {
        command: command.to_owned(),
        expected,
    })
}

/// What a README block after an example shows of its answer: JSON in which
/// `...` stands for what is left out (members, items, or a string's end), or
/// lines of text (`...` again for the rest of a line).
#[derive(Debug)]
enum Shown {
    Any,
    Prefix(String),
    Scalar(serde_json::Value),
    Object(Vec<(String, Shown)>),
    /// Items in order; `open` when `...` says more may come between or after.
    Array(Vec<Shown>, bool),
}

struct ShownParser<'a> {
    text: &'a [u8],
    at: usize,
}

impl ShownParser<'_> {
    fn skip_space(&mut self) {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn ellipsis(&mut self) -> bool {
        self.skip_space();
        for mark in ["...", "…"] {
            if self.text[self.at..].starts_with(mark.as_bytes()) {
                self.at += mark.len();
                return true;
            }
        }
        false
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_space();
        if self.text.get(self.at) == Some(&byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", byte as char, self.at))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.skip_space();
        let start = self.at;
        self.expect(b'"')?;
        while self.at < self.text.len() {
            match self.text[self.at] {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    let literal = std::str::from_utf8(&self.text[start..self.at]).unwrap();
                    return serde_json::from_str(literal).map_err(|e| e.to_string());
                }
                _ => self.at += 1,
            }
        }
        Err("unterminated string".into())
    }

    fn value(&mut self) -> Result<Shown, String> {
        if self.ellipsis() {
            return Ok(Shown::Any);
        }
        match self.text.get(self.at) {
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                loop {
                    self.skip_space();
                    if self.text.get(self.at) == Some(&b'}') {
                        self.at += 1;
                        return Ok(Shown::Object(members));
                    }
                    if !self.ellipsis() {
                        let key = self.string()?;
                        self.expect(b':')?;
                        members.push((key, self.value()?));
                    }
                    self.skip_space();
                    if self.text.get(self.at) == Some(&b',') {
                        self.at += 1;
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let (mut items, mut open) = (Vec::new(), false);
                loop {
                    self.skip_space();
                    if self.text.get(self.at) == Some(&b']') {
                        self.at += 1;
                        return Ok(Shown::Array(items, open));
                    }
                    if self.ellipsis() {
                        open = true;
                    } else {
                        items.push(self.value()?);
                    }
                    self.skip_space();
                    if self.text.get(self.at) == Some(&b',') {
                        self.at += 1;
                    }
                }
            }
            Some(b'"') => {
                let text = self.string()?;
                Ok(match text.strip_suffix("...") {
                    Some("") => Shown::Any,
                    Some(prefix) => Shown::Prefix(prefix.trim_end().to_owned()),
                    None => Shown::Scalar(serde_json::Value::String(text)),
                })
            }
            Some(_) => {
                let start = self.at;
                while self.at < self.text.len() && !b",]}\n ".contains(&self.text[self.at]) {
                    self.at += 1;
                }
                let literal = std::str::from_utf8(&self.text[start..self.at]).unwrap();
                serde_json::from_str(literal)
                    .map(Shown::Scalar)
                    .map_err(|e| format!("{literal:?}: {e}"))
            }
            None => Err("unexpected end".into()),
        }
    }

    /// Every JSON document of a block.
    fn documents(block: &str) -> Result<Vec<Shown>, String> {
        let mut parser = ShownParser {
            text: block.as_bytes(),
            at: 0,
        };
        let mut documents = Vec::new();
        loop {
            parser.skip_space();
            if parser.at >= parser.text.len() {
                return Ok(documents);
            }
            documents.push(parser.value()?);
        }
    }
}

impl Shown {
    fn matches(&self, actual: &serde_json::Value) -> bool {
        self.mismatch(actual, "").is_none()
    }

    /// Where the answer differs from what is shown, if it does.
    fn mismatch(&self, actual: &serde_json::Value, path: &str) -> Option<String> {
        let differs = || Some(format!("{path}: shown {self:?}, answered {actual}"));
        match self {
            Shown::Any => None,
            Shown::Prefix(prefix) => match actual.as_str() {
                Some(a) if a.starts_with(prefix.as_str()) => None,
                _ => differs(),
            },
            Shown::Scalar(value) => (value != actual).then(differs).flatten(),
            Shown::Object(members) => {
                members
                    .iter()
                    .find_map(|(key, shown)| match actual.get(key) {
                        Some(a) => shown.mismatch(a, &format!("{path}.{key}")),
                        None => Some(format!("{path}.{key}: shown, but not in the answer")),
                    })
            }
            Shown::Array(items, open) => {
                let Some(actual) = actual.as_array() else {
                    return differs();
                };
                if !open {
                    if items.len() != actual.len() {
                        return Some(format!(
                            "{path}: {} items shown, {} answered (add ... if some are left out)",
                            items.len(),
                            actual.len()
                        ));
                    }
                    return items
                        .iter()
                        .zip(actual)
                        .enumerate()
                        .find_map(|(i, (s, a))| s.mismatch(a, &format!("{path}[{i}]")));
                }
                // In order, with anything between: each shown item matches a later actual one.
                let mut rest = actual.iter();
                items.iter().enumerate().find_map(|(i, shown)| {
                    (!rest.any(|a| shown.matches(a)))
                        .then(|| format!("{path}[{i}]: no answered item matches {shown:?}"))
                })
            }
        }
    }
}

/// Why no part of the answer matches: the mismatch of the answer itself.
fn explain(document: &Shown, body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(value) => document.mismatch(&value, "").unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// A line of shown text is found in the answer: whole, or its parts around
/// `...` in order within one line.
fn text_line_shown(line: &str, body: &str) -> bool {
    let parts: Vec<&str> = line.trim().split("...").filter(|p| !p.is_empty()).collect();
    body.lines().any(|candidate| {
        let mut from = 0;
        parts
            .iter()
            .all(|part| match candidate[from..].find(part.trim()) {
                Some(at) => {
                    from += at + part.trim().len();
                    true
                }
                None => false,
            })
    })
}

/// Checks a block shown after an example against the answers of its
/// commands: every JSON document, or all the text lines, match one of them.
fn check_shown(info: &str, block: &str, answers: &[(String, String)]) {
    match info {
        "json" => {
            let documents = ShownParser::documents(block)
                .unwrap_or_else(|e| panic!("README json block does not parse ({e}):\n{block}"));
            for document in documents {
                let found = answers.iter().any(|(_, body)| {
                    let values: Vec<serde_json::Value> = match serde_json::from_str(body) {
                        Ok(value) => vec![value],
                        // NDJSON: each line a value.
                        Err(_) => body
                            .lines()
                            .filter_map(|l| serde_json::from_str(l).ok())
                            .collect(),
                    };
                    values
                        .iter()
                        .any(|value| matches_somewhere(&document, value))
                });
                assert!(
                    found,
                    "README shows an answer none of its examples gave:\n{block}\n{}",
                    answers
                        .iter()
                        .map(|(c, b)| format!("{c}\n  {}", explain(&document, b)))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
        "text" => {
            let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
            let found = answers.iter().any(|(_, body)| {
                let body = body.trim_start_matches('\u{FEFF}');
                lines.iter().all(|line| text_line_shown(line, body))
            });
            assert!(
                found,
                "README shows\n{block}\nbut the answers of its examples were:\n{}",
                answers
                    .iter()
                    .map(|(c, b)| format!("{c}\n{b}"))
                    .collect::<Vec<_>>()
                    .join("\n\n")
            );
        }
        _ => {}
    }
}

/// The shown JSON is the answer, or part of it (one agreement's pledge,
/// one item of a list): it matches the answer or a value nested in it.
fn matches_somewhere(document: &Shown, value: &serde_json::Value) -> bool {
    document.matches(value)
        || match value {
            serde_json::Value::Object(members) => {
                members.values().any(|v| matches_somewhere(document, v))
            }
            serde_json::Value::Array(items) => items.iter().any(|v| matches_somewhere(document, v)),
            _ => false,
        }
}

/// Runs one example with curl; checks its status and that its answer is
/// what its Content-Type says; returns the body.
async fn run_example(example: &Example, base: &str, key: &str) -> String {
    let command = example.command.replace("http://localhost:8080", base);
    let shell = format!("{command} -w '\\n%{{http_code}} %{{content_type}}'");
    let key = key.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .arg("-c")
            .arg(shell)
            .env("ACCORDS_KEY", key)
            .output()
    })
    .await
    .unwrap()
    .expect("curl runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, trailer) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
    let (status, content_type) = trailer
        .trim()
        .split_once(' ')
        .unwrap_or((trailer.trim(), ""));
    let status: u16 = status
        .parse()
        .unwrap_or_else(|_| panic!("{}: no status in {stdout:?}", example.command));
    match example.expected {
        Some(expected) => assert_eq!(status, expected, "{}\n{body}", example.command),
        None => assert!(
            (200..300).contains(&status),
            "{} answered {status}\n{body}",
            example.command
        ),
    }
    // Every answer is what its Content-Type says.
    match content_type {
        "application/json" | "application/problem+json" => assert!(
            serde_json::from_str::<serde_json::Value>(body).is_ok(),
            "{}: not JSON: {body}",
            example.command
        ),
        "application/x-ndjson" => assert!(
            body.lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
            "{}: not NDJSON",
            example.command
        ),
        "text/csv; charset=utf-8" => {
            let body = body.trim_start_matches('\u{FEFF}');
            assert!(
                body.starts_with("id,")
                    || body.starts_with("agreement_id,")
                    || body.starts_with("partner,"),
                "{}: {body}",
                example.command
            )
        }
        // A table, one agreement's text view, a history: for reading.
        "text/plain; charset=utf-8" => assert!(!body.trim().is_empty(), "{}", example.command),
        html if html.starts_with("text/html") => {
            assert!(
                body.to_ascii_lowercase().contains("<html"),
                "{}",
                example.command
            )
        }
        "image/svg+xml; charset=utf-8" => assert!(
            body.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{}",
            example.command
        ),
        "application/atom+xml; charset=utf-8" => assert!(
            body.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\""),
            "{}",
            example.command
        ),
        "text/plain; version=0.0.4; charset=utf-8" => {
            assert!(body.contains("accords_http_requests_total"))
        }
        "" => assert_eq!(status, 204, "{}: no Content-Type", example.command),
        other => panic!("{}: unexpected Content-Type {other}", example.command),
    }
    body.to_owned()
}

async fn readme_examples_work(backend: Backend) {
    let Some(database) = TestDatabase::new(backend).await else {
        return;
    };
    let store = database.open().await;
    accords::seed::seed_if_empty(store.as_ref()).await.unwrap();
    // The README's examples write with $ACCORDS_KEY, made as the README says.
    let key =
        crate::common::create_key(store.as_ref(), "me", accords::auth::Scope::Admin, None).await;
    let server = accords::Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        store,
        HttpOptions::default(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(
        async {
            let _ = stopped.await;
        },
        std::time::Duration::from_secs(5),
    ));

    let read = |path: &str| {
        std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let (readme, api) = (read("README.md"), read("docs/api.md"));
    // The README's first screen is the reporter's cheat sheet; the rest of
    // the API is shown in docs/api.md. Neither may lose its examples.
    let in_readme: usize = groups(&readme).iter().map(|g| g.examples.len()).sum();
    assert!(
        in_readme >= 10,
        "the README's cheat sheet: {in_readme} examples"
    );
    let groups = groups(&format!("{readme}\n{api}"));
    let examples: usize = groups.iter().map(|g| g.examples.len()).sum();
    assert!(
        examples >= 35 + in_readme,
        "docs/api.md shows every endpoint: {} examples",
        examples - in_readme
    );
    let shown: usize = groups.iter().map(|g| g.shown.len()).sum();
    assert!(
        shown >= 10,
        "the README and docs/api.md show answers: {shown} blocks"
    );
    for group in groups {
        let mut answers = Vec::new();
        for example in &group.examples {
            let body = run_example(example, &base, &key).await;
            answers.push((example.command.clone(), body));
        }
        for (info, block) in &group.shown {
            check_shown(info, block, &answers);
        }
    }
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_readme_examples_work() {
    readme_examples_work(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_readme_examples_work() {
    readme_examples_work(Backend::Postgres).await;
}
