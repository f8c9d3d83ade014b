//! The test harness: a fresh store per test — a new SQLite file, or a new
//! PostgreSQL database when TEST_POSTGRES_URL is set — seeded with the
//! bundled dataset, and the real router driven in-process.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use accords::auth::Scope;
use accords::http::HttpOptions;
use accords::store::{self, Store, StoreOptions};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "accords_test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A database made for one test and removed after it.
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    cleanup: Option<Cleanup>,
}

enum Cleanup {
    File(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match self.cleanup.take() {
            Some(Cleanup::File(path)) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = path.clone().into_os_string();
                    name.push(suffix);
                    let _ = std::fs::remove_file(name);
                }
            }
            Some(Cleanup::Postgres { admin_url, name }) => {
                // Drop runs outside any runtime we may block; use a thread of its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(runtime) = runtime {
                        runtime.block_on(async {
                            use sqlx::Connection;
                            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                                let _ = sqlx::query(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .execute(&mut conn)
                                .await;
                            }
                        });
                    }
                })
                .join();
            }
            None => {}
        }
    }
}

/// The PostgreSQL server to test against; None skips PostgreSQL runs, except
/// under CI=true, where a missing server is a failure.
pub fn postgres_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true requires TEST_POSTGRES_URL: the suite must run on PostgreSQL too");
            }
            eprintln!("TEST_POSTGRES_URL is not set: skipping the PostgreSQL run of this test");
            None
        }
    }
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{}.db", unique_name()));
                Some(Self {
                    backend,
                    url: format!("sqlite:{}", path.display()),
                    cleanup: Some(Cleanup::File(path)),
                })
            }
            Backend::Postgres => {
                let admin_url = postgres_url()?;
                let name = unique_name();
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("TEST_POSTGRES_URL must reach a PostgreSQL server");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create a test database");
                let base = admin_url.split('?').next().unwrap_or(&admin_url);
                let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
                Some(Self {
                    backend,
                    url: format!("{server}/{name}"),
                    cleanup: Some(Cleanup::Postgres { admin_url, name }),
                })
            }
        }
    }

    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            database_url: self.url.clone(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    pub async fn open(&self) -> Arc<dyn Store> {
        store::open(&self.options())
            .await
            .expect("open the test store")
    }

    /// Runs one statement on the database, from outside the service.
    pub async fn execute(&self, sql: &str) {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
        }
    }
}

/// The API on a fresh, seeded store, with a write key and an admin key.
pub struct TestApp {
    pub database: TestDatabase,
    pub store: Arc<dyn Store>,
    pub router: Router,
    /// Sent with every request unless a test says otherwise.
    pub write_key: String,
    pub admin_key: String,
}

/// Creates a key in the store; answers the full key.
pub async fn create_key(
    store: &dyn Store,
    name: &str,
    scope: Scope,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let (key, secret) = accords::auth::generate(name, scope, expires_at).expect("a key");
    store.create_api_key(&key).await.expect("store the key");
    secret
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status; returns the problem.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let problem = self.json();
        assert_eq!(problem["status"], status);
        assert!(
            problem["type"].is_string()
                && problem["title"].is_string()
                && problem["detail"].is_string()
        );
        problem
    }

    /// The fields named in a 422's errors list.
    pub fn error_fields(&self) -> Vec<String> {
        let problem = self.problem(422);
        problem["errors"]
            .as_array()
            .expect("a 422 lists its errors")
            .iter()
            .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl TestApp {
    pub async fn new(backend: Backend) -> Option<Self> {
        Some(Self::empty(backend).await?.seeded().await)
    }

    pub async fn empty(backend: Backend) -> Option<Self> {
        Self::with_options(backend, HttpOptions::default()).await
    }

    pub async fn with_options(backend: Backend, options: HttpOptions) -> Option<Self> {
        Some(Self::serving(TestDatabase::new(backend).await?, options).await)
    }

    /// The service on a database filled elsewhere (e.g. by the binary).
    pub async fn on(database: TestDatabase) -> Self {
        Self::serving(database, HttpOptions::default()).await
    }

    async fn serving(database: TestDatabase, options: HttpOptions) -> Self {
        let store = database.open().await;
        let router = accords::app(store.clone(), options).expect("valid settings");
        let write_key = create_key(store.as_ref(), "editor", Scope::Write, None).await;
        let admin_key = create_key(store.as_ref(), "chief", Scope::Admin, None).await;
        Self {
            database,
            store,
            router,
            write_key,
            admin_key,
        }
    }

    /// Loads the bundled dataset, as `accords serve` does into an empty store.
    pub async fn seeded(self) -> Self {
        accords::seed::seed_if_empty(self.store.as_ref())
            .await
            .expect("seed the test store");
        self
    }

    pub async fn request(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("read the body")
            .to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8(bytes.to_vec()).expect("UTF-8 body"),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> Reply {
        self.send_with(method, uri, &[], content_type, body).await
    }

    /// A request with extra headers; the write key goes along unless the
    /// headers carry their own Authorization (an empty value sends none).
    pub async fn send_with(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: &str,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let bearer = format!("Bearer {}", self.write_key);
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        {
            builder = builder.header(header::AUTHORIZATION, bearer.as_str());
        }
        for (name, value) in headers {
            if !value.is_empty() {
                builder = builder.header(*name, *value);
            }
        }
        self.request(
            builder
                .body(Body::from(body.to_owned()))
                .expect("a request"),
        )
        .await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send("GET", uri, None, "").await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.send("DELETE", uri, None, "").await
    }

    pub async fn post(&self, uri: &str, body: &Value) -> Reply {
        self.send("POST", uri, Some("application/json"), &body.to_string())
            .await
    }

    pub async fn put(&self, uri: &str, body: &Value) -> Reply {
        self.send("PUT", uri, Some("application/json"), &body.to_string())
            .await
    }

    pub async fn patch(&self, uri: &str, body: &Value) -> Reply {
        self.send(
            "PATCH",
            uri,
            Some("application/merge-patch+json"),
            &body.to_string(),
        )
        .await
    }

    /// A GET that must succeed; its JSON body.
    pub async fn get_ok(&self, uri: &str) -> Value {
        let reply = self.get(uri).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {uri}: {}", reply.text);
        reply.json()
    }

    /// Every item of a list, walking its pages.
    pub async fn all_items(&self, uri: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let separator = if uri.contains('?') { '&' } else { '?' };
        let mut next = uri.to_owned();
        loop {
            let page = self.get_ok(&next).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => next = format!("{uri}{separator}cursor={cursor}"),
                None => return items,
            }
        }
    }
}

/// Runs each named scenario as one test on SQLite and one on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let app = $crate::common::TestApp::new($crate::common::Backend::Sqlite).await.expect("SQLite is always there");
                    super::$scenario(app).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(app) = $crate::common::TestApp::new($crate::common::Backend::Postgres).await {
                        super::$scenario(app).await;
                    }
                }
            )+
        }
    };
}

/// Runs the accords binary against a database and waits for it.
pub fn run_cli(database_url: &str, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_accords"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}
