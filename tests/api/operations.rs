//! Operations: health, metrics, request ids, lifecycle, deployment files,
//! and faults — a cut database, a killed server, an exhausted pool, a locked
//! or full SQLite file, two instances on one PostgreSQL.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use accords::http::HttpOptions;
use accords::store::{PostgresStore, SqliteStore, Store, StoreOptions};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{Backend, TestApp, TestDatabase};

crate::on_both_backends!(health_metrics_and_request_ids, two_instances_lose_no_update);

async fn health_metrics_and_request_ids(app: TestApp) {
    assert_eq!(app.get_ok("/healthz").await["status"], "ok");
    assert_eq!(app.get_ok("/readyz").await["status"], "ready");

    let echoed = app
        .send_with(
            "GET",
            "/v1/agreements/ua-jp-2024",
            &[("X-Request-Id", "desk-42")],
            None,
            "",
        )
        .await;
    assert_eq!(echoed.header("x-request-id"), Some("desk-42"));
    let made = app.get("/v1/agreements/ua-zz-2024").await;
    let id = made.header("x-request-id").unwrap().to_owned();
    assert_eq!(id.len(), 32, "a generated id");
    assert_eq!(
        made.problem(404)["request_id"],
        id.as_str(),
        "a problem quotes its request id"
    );

    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    for needle in [
        "accords_http_requests_total{route=\"/v1/agreements/{id}\",method=\"GET\",status=\"200\"}",
        "accords_http_requests_total{route=\"/v1/agreements/{id}\",method=\"GET\",status=\"404\"}",
        "accords_http_request_duration_seconds_bucket{route=\"/v1/agreements/{id}\",le=\"+Inf\"}",
        "accords_http_requests_in_flight 1",
        "accords_db_pool_connections ",
        "accords_rate_limited_total 0",
        "accords_write_conflicts_total 0",
    ] {
        assert!(
            metrics.text.contains(needle),
            "{needle} missing from\n{}",
            metrics.text
        );
    }
    // SQLite's write-ahead log, measured by the checkpointer; PostgreSQL
    // keeps its own.
    let wal = metrics
        .text
        .lines()
        .find_map(|l| l.strip_prefix("accords_db_wal_bytes "));
    match app.database.backend {
        crate::common::Backend::Sqlite => {
            let bytes: u64 = wal.expect("the log's size on SQLite").parse().unwrap();
            assert!(bytes <= 16 * 1024 * 1024, "{bytes}");
        }
        crate::common::Backend::Postgres => assert_eq!(wal, None),
    }
    let stale = app
        .send_with(
            "DELETE",
            "/v1/pledges/ua-jp-2024-p1",
            &[("If-Match", "\"9\"")],
            None,
            "",
        )
        .await;
    stale.problem(412);
    assert!(
        app.get("/metrics")
            .await
            .text
            .contains("accords_write_conflicts_total 1")
    );

    // Once shutdown begins, /readyz turns away new traffic.
    let metrics = Arc::new(accords::http::observe::Metrics::default());
    let router =
        accords::http::router(app.store.clone(), HttpOptions::default(), metrics.clone()).unwrap();
    metrics.shutting_down.store(true, Ordering::Relaxed);
    let response = tower::ServiceExt::oneshot(
        router,
        axum::http::Request::get("/readyz")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 503);
}

/// Editors on two instances of one PostgreSQL (or one SQLite file).
async fn two_instances_lose_no_update(app: TestApp) {
    let other_store = app.database.open().await;
    let other = accords::app(other_store, HttpOptions::default()).unwrap();
    let key = format!("Bearer {}", app.write_key);
    let send = |router: axum::Router,
                method: &'static str,
                uri: &'static str,
                headers: Vec<(&'static str, String)>,
                body: String| {
        let key = key.clone();
        async move {
            let mut request = axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .header("authorization", key)
                .header("content-type", "application/json");
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = tower::ServiceExt::oneshot(
                router,
                request.body(axum::body::Body::from(body)).unwrap(),
            )
            .await
            .unwrap();
            response.status().as_u16()
        }
    };
    // Different fields through different instances, all at once: all kept.
    let fields = [
        ("summary", "from A"),
        ("signed_at", "from B"),
        ("text_url", "https://example.org/a"),
        ("title", "from B too"),
    ];
    let mut edits = Vec::new();
    for (n, (field, value)) in fields.iter().enumerate() {
        let router = if n % 2 == 0 {
            app.router.clone()
        } else {
            other.clone()
        };
        edits.push(tokio::spawn(send(
            router,
            "PATCH",
            "/v1/agreements/ua-se-2024",
            vec![],
            json!({ *field: value }).to_string(),
        )));
    }
    for edit in edits {
        assert_eq!(edit.await.unwrap(), 200);
    }
    let after = app.get_ok("/v1/agreements/ua-se-2024").await;
    for (field, value) in fields {
        assert_eq!(after[field], value, "{field} lost");
    }
    // The same version edited through both: exactly one wins.
    let etag = app
        .get("/v1/agreements/ua-se-2024")
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let a = tokio::spawn(send(
        app.router.clone(),
        "PATCH",
        "/v1/agreements/ua-se-2024",
        vec![("if-match", etag.clone())],
        json!({"summary": "A"}).to_string(),
    ));
    let b = tokio::spawn(send(
        other.clone(),
        "PATCH",
        "/v1/agreements/ua-se-2024",
        vec![("if-match", etag.clone())],
        json!({"summary": "B"}).to_string(),
    ));
    let mut statuses = [a.await.unwrap(), b.await.unwrap()];
    statuses.sort();
    assert_eq!(statuses, [200, 412]);
}

/// A TCP relay to PostgreSQL that can cut every connection and refuse new
/// ones, then come back.
struct Relay {
    address: SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (up_flag, list) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up_flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                list.lock().unwrap().push(task);
            }
        });
        Self {
            address,
            up,
            connections,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// (a) The database goes away while serving: 503 with Retry-After within
/// 5 s, never a hang; when it is back the service recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connection_cut_gives_503_then_recovers() {
    let Some(database) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let seeded = database.open().await;
    accords::seed::seed_if_empty(seeded.as_ref()).await.unwrap();
    seeded.close().await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let through_relay = database
        .url
        .replacen("127.0.0.1:5432", &relay.address.to_string(), 1);
    assert_ne!(
        through_relay, database.url,
        "TEST_POSTGRES_URL must name 127.0.0.1:5432"
    );
    let store = accords::store::open(&StoreOptions {
        database_url: through_relay,
        max_connections: 2,
        acquire_timeout: Duration::from_secs(1),
    })
    .await
    .unwrap();
    let router = accords::app(store, HttpOptions::default()).unwrap();
    let get = || async {
        let request = axum::http::Request::get("/v1/agreements/ua-jp-2024")
            .body(axum::body::Body::empty())
            .unwrap();
        tokio::time::timeout(
            Duration::from_secs(5),
            tower::ServiceExt::oneshot(router.clone(), request),
        )
        .await
        .expect("answered within 5 s, never a hang")
        .unwrap()
    };
    assert_eq!(get().await.status(), 200);
    relay.cut();
    // An answer rendered at the revision read last may be served from memory
    // for up to 100 ms; after that the revision is read again, and fails.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let response = get().await;
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    relay.restore();
    let started = Instant::now();
    loop {
        if get().await.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "did not recover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opens the concrete store with a pool of one, so a test can hold it.
async fn pool_of_one(database: &TestDatabase) -> (Arc<dyn Store>, Holder) {
    let options = StoreOptions {
        database_url: database.url.clone(),
        max_connections: 1,
        acquire_timeout: Duration::from_millis(500),
    };
    match database.backend {
        Backend::Sqlite => {
            let store = SqliteStore::connect(&options).await.unwrap();
            let pool = store.pool().clone();
            (Arc::new(store), Holder::Sqlite(pool))
        }
        Backend::Postgres => {
            let store = PostgresStore::connect(&options).await.unwrap();
            let pool = store.pool().clone();
            (Arc::new(store), Holder::Postgres(pool))
        }
    }
}

enum Holder {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

async fn pool_exhausted(backend: Backend) {
    let Some(database) = TestDatabase::new(backend).await else {
        return;
    };
    let (store, holder) = pool_of_one(&database).await;
    accords::seed::seed_if_empty(store.as_ref()).await.unwrap();
    let router = accords::app(store, HttpOptions::default()).unwrap();
    let get = || async {
        let request = axum::http::Request::get("/v1/agreements/ua-jp-2024")
            .body(axum::body::Body::empty())
            .unwrap();
        tokio::time::timeout(
            Duration::from_secs(3),
            tower::ServiceExt::oneshot(router.clone(), request),
        )
        .await
        .expect("no hang")
        .unwrap()
    };
    {
        let _held: Box<dyn std::any::Any + Send> = match &holder {
            Holder::Sqlite(pool) => Box::new(pool.acquire().await.unwrap()),
            Holder::Postgres(pool) => Box::new(pool.acquire().await.unwrap()),
        };
        let response = get().await;
        assert_eq!(response.status(), 503, "(c) an exhausted pool is a 503");
        assert!(response.headers().contains_key("retry-after"));
    }
    assert_eq!(
        get().await.status(),
        200,
        "served again once the connection is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_pool_exhausted_is_503() {
    pool_exhausted(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_exhausted_is_503() {
    pool_exhausted(Backend::Postgres).await;
}

/// (d) Another process holds SQLite's write lock: writes get a clean 503 and
/// change nothing, reads go on. Then the file is full: 507, rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_and_full() {
    let database = TestDatabase::new(Backend::Sqlite).await.unwrap();
    let (store, holder) = pool_of_one(&database).await;
    accords::seed::seed_if_empty(store.as_ref()).await.unwrap();
    let key =
        crate::common::create_key(store.as_ref(), "editor", accords::auth::Scope::Write, None)
            .await;
    let router = accords::app(store.clone(), HttpOptions::default()).unwrap();
    let call = |method: &'static str, uri: &'static str, body: String| {
        let (router, key) = (router.clone(), key.clone());
        async move {
            let request = axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            tokio::time::timeout(
                Duration::from_secs(5),
                tower::ServiceExt::oneshot(router, request),
            )
            .await
            .expect("no hang")
            .unwrap()
            .status()
            .as_u16()
        }
    };
    use sqlx::Connection;
    let mut other_writer = sqlx::SqliteConnection::connect(&database.url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other_writer)
        .await
        .unwrap();
    let area = json!({"code": "locked", "name": "Locked"}).to_string();
    assert_eq!(call("POST", "/v1/areas", area.clone()).await, 503);
    assert_eq!(
        call("GET", "/v1/agreements/ua-jp-2024", String::new()).await,
        200,
        "reads go on"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut other_writer)
        .await
        .unwrap();
    assert!(
        store
            .get_area(&accords::domain::area::AreaCode::parse("locked").unwrap())
            .await
            .unwrap()
            .is_none()
    );

    // Out of space: the file may not grow by a single page.
    let Holder::Sqlite(pool) = &holder else {
        unreachable!()
    };
    {
        let mut connection = pool.acquire().await.unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
        sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
            .execute(&mut *connection)
            .await
            .unwrap();
    }
    let big = json!({"partner": "NZ", "title": "Big", "kind": "other", "status": "signed", "summary": "x".repeat(9000),
                     "pledges": (0..50).map(|_| json!({"amount": "1", "currency": "NZD", "kind": "military", "note": "y".repeat(1500)})).collect::<Vec<_>>()});
    assert_eq!(call("POST", "/v1/agreements", big.to_string()).await, 507);
    assert_eq!(
        call("GET", "/v1/agreements/ua-jp-2024", String::new()).await,
        200,
        "reads go on"
    );
    let nz = store.get_agreement("ua-nz-2025").await.unwrap();
    assert!(nz.is_none(), "the transaction was rolled back");
}

/// Starts `accords serve` on a free port; answers the process and its address.
fn spawn_server(
    database_url: &str,
    extra_env: &[(&str, &str)],
) -> (std::process::Child, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_accords"));
    command
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("ACCORDS_BIND", address.to_string())
        .env("ACCORDS_READ_RATE", "0")
        .env("ACCORDS_WRITE_RATE", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    (command.spawn().unwrap(), address)
}

async fn http(address: SocketAddr, request: String) -> Option<u16> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw);
    text.split(' ').nth(1)?.parse().ok()
}

async fn wait_ready(address: SocketAddr) {
    let started = Instant::now();
    while http(
        address,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    )
    .await
        != Some(200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (b) The server is killed with SIGKILL in the middle of a stream of writes:
/// after a restart every write it acknowledged is there.
async fn killed_server_keeps_acknowledged_writes(backend: Backend) {
    let Some(database) = TestDatabase::new(backend).await else {
        return;
    };
    let store = database.open().await;
    let key =
        crate::common::create_key(store.as_ref(), "editor", accords::auth::Scope::Write, None)
            .await;
    store.close().await;
    let (mut server, address) = spawn_server(&database.url, &[]);
    wait_ready(address).await;
    let writer = {
        let key = key.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                let body = format!("{{\"code\":\"kill-{n}\",\"name\":\"Written {n}\"}}");
                let request = format!(
                    "POST /v1/areas HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                match http(address, request).await {
                    Some(201) => acknowledged.push(format!("kill-{n}")),
                    _ => return acknowledged,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let acknowledged = writer.await.unwrap();
    assert!(
        acknowledged.len() >= 5,
        "writes were acknowledged before the kill: {}",
        acknowledged.len()
    );
    let (mut restarted, address) = spawn_server(&database.url, &[]);
    wait_ready(address).await;
    let store = database.open().await;
    for code in &acknowledged {
        let code = accords::domain::area::AreaCode::parse(code).unwrap();
        assert!(
            store.get_area(&code).await.unwrap().is_some(),
            "{code:?} was acknowledged and lost"
        );
    }
    store.close().await;
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_server_keeps_acknowledged_writes() {
    killed_server_keeps_acknowledged_writes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_server_keeps_acknowledged_writes() {
    killed_server_keeps_acknowledged_writes(Backend::Postgres).await;
}

/// SIGTERM: the server stops taking connections and exits 0 in its grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_cleanly() {
    let database = TestDatabase::new(Backend::Sqlite).await.unwrap();
    let (server, address) = spawn_server(&database.url, &[("ACCORDS_SHUTDOWN_GRACE_SECS", "3")]);
    wait_ready(address).await;
    let started = Instant::now();
    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = server.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        TcpStream::connect(address).await.is_err(),
        "no new connections after shutdown"
    );
}

/// Startup fails fast, in one line, on a bad or unreachable database, unless
/// told to wait.
#[tokio::test]
async fn startup_fails_fast_and_clearly() {
    for (url, wait, says) in [
        ("mysql://x/y", "0", "DATABASE_URL"),
        ("postgres://nobody@127.0.0.1:1/none", "0", "PostgreSQL"),
        ("postgres://nobody@127.0.0.1:1/none", "2", "PostgreSQL"),
    ] {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_accords"))
            .arg("serve")
            .env("DATABASE_URL", url)
            .env("ACCORDS_WAIT_FOR_DB_SECS", wait)
            .env("ACCORDS_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(says), "{stderr}");
        let waited = wait.parse::<u64>().unwrap();
        assert!(
            elapsed >= Duration::from_secs(waited),
            "{url}: gave up after {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_secs(waited + 8),
            "{url}: took {elapsed:?}"
        );
    }
}

/// The deployment files name only settings, ports and routes the binary has.
#[test]
fn deployment_files_match_the_binary() {
    let help = Command::new(env!("CARGO_BIN_EXE_accords"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let compose = std::fs::read_to_string(format!("{root}/docker-compose.yml")).unwrap();
    let dockerfile = std::fs::read_to_string(format!("{root}/Dockerfile")).unwrap();
    let nginx = std::fs::read_to_string(format!("{root}/deploy/nginx.conf")).unwrap();
    let settings: Vec<&str> = compose
        .lines()
        .chain(dockerfile.lines())
        .flat_map(|line| line.split(|c: char| !(c.is_ascii_uppercase() || c == '_')))
        .filter(|word| {
            word.starts_with("ACCORDS_") || *word == "DATABASE_URL" || *word == "LOG_FORMAT"
        })
        .collect();
    assert!(settings.len() >= 6, "{settings:?}");
    for setting in settings {
        assert!(
            help.contains(&format!("[env: {setting}=")),
            "{setting} is not a setting of accords serve"
        );
    }
    assert!(
        compose.contains("ACCORDS_BIND: 0.0.0.0:8080")
            && nginx.contains("accords-1:8080")
            && nginx.contains("accords-2:8080")
    );
    assert!(compose.contains("\"8080:8080\"") && nginx.contains("listen 8080;"));
    assert!(
        compose.contains("GET /readyz")
            && dockerfile.contains("GET /healthz")
            && dockerfile.contains("EXPOSE 8080")
    );
    assert!(
        dockerfile.contains("USER accords"),
        "the runtime image runs as a non-root user"
    );
    assert!(
        compose.contains("accords-1: *accords") && compose.contains("accords-2: *accords"),
        "two replicas"
    );
    // When PyYAML is there, the compose file must parse and name what we expect.
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys, yaml, json; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(format!("{root}/docker-compose.yml"))
        .output();
    if let Ok(output) = parsed
        && output.status.success()
    {
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let services = document["services"].as_object().unwrap();
        assert!(services.contains_key("db") && services.contains_key("lb"));
        assert_eq!(services["accords-2"]["image"], "accords:latest");
        assert_eq!(
            services["accords-1"]["environment"]["DATABASE_URL"],
            "postgres://accords:accords@db:5432/accords"
        );
        assert_eq!(services["lb"]["ports"][0], "8080:8080");
    }
}

/// One JSON log line per request with its route, status and latency, and
/// never a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_and_no_secrets() {
    let database = TestDatabase::new(Backend::Sqlite).await.unwrap();
    let store = database.open().await;
    accords::seed::seed_if_empty(store.as_ref()).await.unwrap();
    let key =
        crate::common::create_key(store.as_ref(), "editor", accords::auth::Scope::Write, None)
            .await;
    store.close().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = Command::new(env!("CARGO_BIN_EXE_accords"))
        .arg("serve")
        .env("DATABASE_URL", &database.url)
        .env("ACCORDS_BIND", address.to_string())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(address).await;
    let request = format!(
        "GET /v1/agreements/ua-jp-2024 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nX-Request-Id: log-test-1\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(http(address, request).await, Some(200));
    assert!(
        Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let output = server.wait_with_output().unwrap();
    let logs = String::from_utf8(output.stderr).unwrap();
    assert!(
        !logs.contains(&key) && !logs.contains("Bearer"),
        "a key reached the logs"
    );
    let line = logs
        .lines()
        .find(|l| l.contains("log-test-1"))
        .unwrap_or_else(|| panic!("no line for the request in\n{logs}"));
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    // The span: who asked (on every line logged while it is answered);
    // the line itself: what was answered.
    let span = &entry["span"];
    assert_eq!(span["method"], "GET");
    assert_eq!(span["request_id"], "log-test-1");
    let fields = &entry["fields"];
    assert_eq!(fields["message"], "answered");
    assert_eq!(fields["route"], "/v1/agreements/{id}");
    assert_eq!(fields["status"], 200);
    assert!(fields["latency_ms"].is_number(), "{line}");
}

/// docs/configuration.md, which the README sends readers to, lists every
/// setting `accords serve` takes, and no other.
#[test]
fn the_settings_table_lists_every_setting() {
    let help = Command::new(env!("CARGO_BIN_EXE_accords"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let in_help: std::collections::BTreeSet<&str> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split('=').next())
        .collect();
    let table = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap();
    let in_table: std::collections::BTreeSet<&str> = table
        .lines()
        .filter(|line| line.starts_with("| `--"))
        .filter_map(|line| line.split('|').nth(2))
        .map(|cell| cell.trim().trim_matches('`'))
        .collect();
    assert!(in_help.len() >= 20, "{in_help:?}");
    assert_eq!(
        in_table, in_help,
        "docs/configuration.md against accords serve --help"
    );
}
