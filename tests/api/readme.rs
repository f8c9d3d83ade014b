//! Every curl example in the README, run in order against a freshly seeded
//! live server on each backend: the README may not promise what the service
//! does not do.

use std::process::Command;

use accords::http::HttpOptions;

use crate::common::{Backend, TestDatabase};

/// A curl line of a ```sh block, and the status it promises (`# → 404`;
/// without one, any 2xx).
struct Example {
    command: String,
    expected: Option<u16>,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut in_shell_block = false;
    let mut found = Vec::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_shell_block = line.trim() == "```sh";
            continue;
        }
        if !in_shell_block || !line.starts_with("curl ") {
            continue;
        }
        let (command, comment) = match line.split_once(" # ") {
            Some((command, comment)) => (command.trim(), comment.trim()),
            None => (line.trim(), ""),
        };
        let expected = comment
            .strip_prefix("→ ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok());
        found.push(Example {
            command: command.to_owned(),
            expected,
        });
    }
    found
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

    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let examples = examples(&readme);
    assert!(
        examples.len() >= 35,
        "the README shows every endpoint: {} examples",
        examples.len()
    );
    for example in examples {
        let command = example.command.replace("http://localhost:8080", &base);
        let shell = format!("{command} -w '\\n%{{http_code}} %{{content_type}}'");
        let key = key.clone();
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
                assert!(
                    body.starts_with("id,")
                        || body.starts_with("agreement_id,")
                        || body.starts_with("partner,"),
                    "{}: {body}",
                    example.command
                )
            }
            // A list's table, or one agreement's text view (its id on the second line).
            "text/plain; charset=utf-8" => assert!(
                body.starts_with("PARTNER")
                    || body.lines().nth(1).is_some_and(|l| l.starts_with("ua-")),
                "{body}"
            ),
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
