//! The real server over real TCP, and the binary's subcommands.

use accords::http::HttpOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Backend, TestDatabase};

/// One HTTP/1.1 exchange on a fresh connection: status line and body.
async fn exchange(address: std::net::SocketAddr, request: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

async fn serves_over_tcp(backend: Backend) {
    let Some(database) = TestDatabase::new(backend).await else {
        return;
    };
    let store = database.open().await;
    accords::seed::seed_if_empty(store.as_ref()).await.unwrap();
    let key =
        crate::common::create_key(store.as_ref(), "editor", accords::auth::Scope::Write, None)
            .await;
    let server = accords::Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        store,
        HttpOptions::default(),
    )
    .await
    .unwrap();
    let address = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(
        async {
            let _ = stopped.await;
        },
        std::time::Duration::from_secs(5),
    ));
    let (status, body) = exchange(
        address,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("ok"));
    let (status, body) = exchange(
        address,
        "GET /v1/partners/japan/agreements HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("ua-jp-2024"));
    let payload = r#"{"code":"space","name":"Space"}"#;
    let (status, _) = exchange(
        address,
        &format!(
            "POST /v1/areas HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
            payload.len()
        ),
    )
    .await;
    assert_eq!(status, "HTTP/1.1 201 Created");
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn sqlite_serves_over_tcp() {
    serves_over_tcp(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_serves_over_tcp() {
    serves_over_tcp(Backend::Postgres).await;
}

use crate::common::run_cli as accords;

/// `accords export` → `accords import` into an empty store → `accords export`
/// gives the same bytes; a bad file imports nothing and says where it is wrong.
async fn cli_round_trip(backend: Backend) {
    let Some(first) = TestDatabase::new(backend).await else {
        return;
    };
    let store = first.open().await;
    accords::seed::seed_if_empty(store.as_ref()).await.unwrap();
    store.close().await;
    let exported = accords(&first.url, &["export"], None);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let second = TestDatabase::new(backend).await.unwrap();
    let migrated = accords(&second.url, &["migrate"], None);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let imported = accords(&second.url, &["import", "-"], Some(&exported.stdout));
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let again = accords(&second.url, &["export"], None);
    assert!(again.status.success());
    assert!(exported.stdout == again.stdout, "the two exports differ");

    let bad = br#"{"agreements": [{"id": "ua-jp-2024", "partner": "JP", "title": "x", "kind": "other", "status": "signed", "signed_on": "2024-02-30"}]}"#;
    let refused = accords(&second.url, &["import", "-"], Some(bad));
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("agreements[0].signed_on"), "{message}");
    let unchanged = accords(&second.url, &["export"], None);
    assert!(
        unchanged.stdout == exported.stdout,
        "a refused import changed the store"
    );

    let unreachable = accords("postgres://nobody@127.0.0.1:1/none", &["migrate"], None);
    assert!(!unreachable.status.success());
    let nonsense = accords("mysql://x", &["migrate"], None);
    assert!(!nonsense.status.success());
    assert!(String::from_utf8_lossy(&nonsense.stderr).contains("DATABASE_URL"));
}

#[tokio::test]
async fn sqlite_cli_round_trip() {
    cli_round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_cli_round_trip() {
    cli_round_trip(Backend::Postgres).await;
}

/// `accords keys`: the key alone on the last line, listed without its secret,
/// revoked by name.
async fn cli_keys(backend: Backend) {
    let Some(database) = TestDatabase::new(backend).await else {
        return;
    };
    let created = accords(
        &database.url,
        &[
            "keys",
            "create",
            "--name",
            "desk",
            "--scope",
            "write",
            "--expires",
            "30",
        ],
        None,
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8(created.stdout).unwrap();
    let key = stdout.lines().last().unwrap().to_owned();
    assert!(accords::auth::split(&key).is_some(), "{key}");
    let again = accords(
        &database.url,
        &["keys", "create", "--name", "desk", "--scope", "admin"],
        None,
    );
    assert!(!again.status.success(), "names are unique");
    let listed = accords(&database.url, &["keys", "list"], None);
    let listing = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listing.contains("desk") && listing.contains("active"),
        "{listing}"
    );
    assert!(
        !listing.contains(&key[16..]),
        "a listing never shows a secret"
    );
    let store = database.open().await;
    let stored = store
        .find_api_key(accords::auth::split(&key).unwrap().0)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.expires_at.is_some());
    let revoked = accords(&database.url, &["keys", "revoke", "desk"], None);
    assert!(revoked.status.success());
    let listing =
        String::from_utf8(accords(&database.url, &["keys", "list"], None).stdout).unwrap();
    assert!(listing.contains("revoked"), "{listing}");
    assert!(
        !accords(&database.url, &["keys", "revoke", "nobody"], None)
            .status
            .success()
    );
    store.close().await;
}

#[tokio::test]
async fn sqlite_cli_keys() {
    cli_keys(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_cli_keys() {
    cli_keys(Backend::Postgres).await;
}

/// A fresh store filled by `accords generate --agreements 12 --seed SEED`,
/// and its export.
async fn generated(backend: Backend, seed: &str) -> Option<(TestDatabase, Vec<u8>)> {
    let database = TestDatabase::new(backend).await?;
    let run = accords(
        &database.url,
        &["generate", "--agreements", "12", "--seed", seed],
        None,
    );
    let said = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{said}");
    assert!(said.contains("generated 12/12"), "{said}");
    let export = accords(&database.url, &["export"], None);
    assert!(export.status.success());
    Some((database, export.stdout))
}

/// `accords generate`: N agreements of up to five pledges each, on top of the bundled
/// data; the same seed gives the same store, another seed another one; the
/// rollup the bulk load extends answers what the pledges add up to, and the
/// search index knows the new agreements.
async fn cli_generate(backend: Backend) {
    let Some((first, exported)) = generated(backend, "7").await else {
        return;
    };
    let (_, again) = generated(backend, "7").await.unwrap();
    assert!(exported == again, "the same seed gave different data");
    let (_, other) = generated(backend, "8").await.unwrap();
    assert!(exported != other, "another seed gave the same data");

    let dataset: serde_json::Value = serde_json::from_slice(&exported).unwrap();
    let agreements = dataset["agreements"].as_array().unwrap();
    let made: Vec<&serde_json::Value> = agreements
        .iter()
        .filter(|a| a["id"].as_str().unwrap().contains("-gen-"))
        .collect();
    assert_eq!(made.len(), 12);
    assert!(
        made.iter()
            .all(|a| a["pledges"].as_array().unwrap().len() <= 5)
    );

    // Totals per partner and currency, by hand from the export.
    let mut expected = std::collections::BTreeMap::new();
    for agreement in agreements {
        // Parts are never counted; per-year pledges once per year.
        for pledge in agreement["pledges"].as_array().unwrap() {
            if let (Some(amount), true) = (pledge["amount"].as_str(), pledge["part_of"].is_null()) {
                let key = (
                    agreement["partner"].as_str().unwrap().to_owned(),
                    pledge["currency"].as_str().unwrap().to_owned(),
                );
                let years = if pledge["basis"] == "per_year" {
                    pledge["year_to"].as_i64().unwrap() - pledge["year_from"].as_i64().unwrap() + 1
                } else {
                    1
                };
                let amount: rust_decimal::Decimal = amount.parse().unwrap();
                *expected.entry(key).or_insert(rust_decimal::Decimal::ZERO) +=
                    amount * rust_decimal::Decimal::from(years);
            }
        }
    }
    let app = crate::common::TestApp::on(first).await;
    let stats = app.get_ok("/v1/stats/pledges?group_by=partner").await;
    let mut answered = std::collections::BTreeMap::new();
    for item in stats["items"].as_array().unwrap() {
        let total: rust_decimal::Decimal = item["total"].as_str().unwrap().parse().unwrap();
        answered.insert(
            (
                item["partner"].as_str().unwrap().to_owned(),
                item["currency"].as_str().unwrap().to_owned(),
            ),
            total,
        );
    }
    assert_eq!(answered, expected);

    // Generated agreement 5 says "codename5" (no other of the twelve starts so).
    let fifth = made
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .find(|id| id.ends_with("-gen-0000005"))
        .unwrap();
    let found = app.get_ok("/v1/agreements?q=codename5&fields=id").await;
    assert_eq!(found["items"], serde_json::json!([{"id": fifth}]));
}

#[tokio::test]
async fn sqlite_cli_generate() {
    cli_generate(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_cli_generate() {
    cli_generate(Backend::Postgres).await;
}
