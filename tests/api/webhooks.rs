//! Webhooks end to end: a real receiver on loopback, the dispatcher (in
//! process, and the real binary killed mid-delivery), signatures checked by
//! the Standard Webhooks reference library for Python, on both backends.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accords::http::HttpOptions;
use accords::webhooks::{DeliverySettings, Dispatcher};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::common::{Reply, TestApp};

/// What the receiver answers to one request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answers (the sender times out, or is killed).
    Hang,
}

/// One request the receiver got, and what it answered (0: nothing).
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: String,
    answered: u16,
    at: Instant,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

struct ReceiverState {
    received: Vec<Received>,
    script: VecDeque<Answer>,
    otherwise: Answer,
}

/// A webhook receiver on 127.0.0.1 that records every request.
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let answer = {
        let mut state = state.lock().unwrap();
        let answer = state.script.pop_front().unwrap_or(state.otherwise);
        state.received.push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            content_type: header("content-type"),
            body,
            answered: match answer {
                Answer::Status(code) => code,
                Answer::Hang => 0,
            },
            at: Instant::now(),
        });
        answer
    };
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
    }
}

impl Receiver {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState {
            received: Vec::new(),
            script: VecDeque::new(),
            otherwise: Answer::Status(204),
        }));
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { url, state, task }
    }

    /// The next requests get these answers, in order; later ones the default.
    fn then(&self, answers: &[Answer]) {
        self.state.lock().unwrap().script.extend(answers);
    }

    fn otherwise(&self, answer: Answer) {
        self.state.lock().unwrap().otherwise = answer;
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The requests answered 2xx.
    fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "waited 30 s for {what}; received: {received:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Retries in milliseconds, loopback allowed. The timeout (and so the
/// claim, twice as long) leaves room for a loaded machine: a claim that
/// expired mid-send would be a (legitimate) duplicate.
fn quick() -> DeliverySettings {
    DeliverySettings {
        timeout: Duration::from_secs(2),
        retry_for: Duration::from_secs(60),
        retry_base: Duration::from_millis(20),
        poll: Duration::from_millis(50),
        allow_private: true,
    }
}

/// The app with loopback receivers allowed (as ACCORDS_WEBHOOK_ALLOW_PRIVATE=true).
fn allowing_private(mut app: TestApp) -> TestApp {
    let options = HttpOptions {
        webhook_allow_private: true,
        ..HttpOptions::default()
    };
    app.router = accords::app(app.store.clone(), options).unwrap();
    app
}

async fn as_admin(app: &TestApp, method: &str, uri: &str, body: Option<&Value>) -> Reply {
    let bearer = format!("Bearer {}", app.admin_key);
    let content_type = match method {
        "PATCH" => "application/merge-patch+json",
        _ => "application/json",
    };
    app.send_with(
        method,
        uri,
        &[("authorization", &bearer)],
        body.map(|_| content_type),
        &body.map(Value::to_string).unwrap_or_default(),
    )
    .await
}

/// Creates a subscription; answers it as created (with its secret).
async fn subscribe(app: &TestApp, body: Value) -> Value {
    let reply = as_admin(app, "POST", "/v1/webhooks", Some(&body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.json()
}

async fn deliveries(app: &TestApp, id: &str, query: &str) -> Vec<Value> {
    let reply = as_admin(
        app,
        "GET",
        &format!("/v1/webhooks/{id}/deliveries{query}"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["items"].as_array().unwrap().clone()
}

/// Waits until the subscription's deliveries satisfy `done`.
async fn wait_deliveries(
    app: &TestApp,
    id: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let items = deliveries(app, id, "").await;
        if done(&items) {
            return items;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}; deliveries: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn edit_title(app: &TestApp, agreement: &str, title: &str) {
    let reply = app
        .patch(
            &format!("/v1/agreements/{agreement}"),
            &json!({ "title": title }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// The Python of the venv with the Standard Webhooks library (.ci/run makes
/// it); None skips the check, except under CI=true.
fn verifier_python() -> Option<std::path::PathBuf> {
    let python = std::env::var_os("ACCORDS_WEBHOOK_VERIFY_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-webhooks/bin/python")
        });
    if python.exists() {
        return Some(python);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true needs {} (python3 -m venv .venv-webhooks && .venv-webhooks/bin/pip install -r tests/webhooks/requirements.txt)",
            python.display()
        );
    }
    eprintln!(
        "no {}: skipping the independent signature check",
        python.display()
    );
    None
}

/// Verifies deliveries with the reference implementation: the payloads it
/// accepted, or why it refused them; None when it is not installed.
fn verify_independently(secret: &str, received: &[Received]) -> Option<Result<Vec<Value>, String>> {
    use std::io::Write;
    let python = verifier_python()?;
    let request = json!({
        "secret": secret,
        "deliveries": received.iter().map(|r| json!({
            "headers": {
                "webhook-id": r.id,
                "webhook-timestamp": r.timestamp,
                "webhook-signature": r.signature,
            },
            "body": r.body,
        })).collect::<Vec<_>>(),
    });
    let mut child = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/webhooks/verify.py"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Some(if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    })
}

/// Created with 201 and the secret, once; never shown again, not even in
/// the history or the feed; admin keys only; changed and deleted.
async fn subscriptions_show_their_secret_once(app: TestApp) {
    let app = allowing_private(app);
    let created = subscribe(
        &app,
        json!({"url": "https://hooks.example.org/accords", "events": ["agreement.*", "pledge.created"],
               "filters": {"partner": ["japan"]}, "description": "Desk"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(id.starts_with("wh_"), "{created}");
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{created}"
    );
    assert_eq!(created["filters"]["partner"], json!(["JP"]));
    assert_eq!(created["enabled"], true);
    assert_eq!(created["disabled_reason"], Value::Null);

    assert_eq!(created["version"], 1);
    assert_eq!(created["url"], "https://hooks.example.org/accords");

    let shown = as_admin(&app, "GET", &format!("/v1/webhooks/{id}"), None).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.json().get("secret").is_none());
    assert!(!shown.text.contains(&secret[6..]));
    assert_eq!(shown.header("etag"), Some("\"1\""));
    assert_eq!(shown.header("cache-control"), Some("no-store"));
    let bearer = format!("Bearer {}", app.admin_key);
    let unchanged = app
        .send_with(
            "GET",
            &format!("/v1/webhooks/{id}"),
            &[("authorization", &bearer), ("if-none-match", "\"1\"")],
            None,
            "",
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    let listed = as_admin(&app, "GET", "/v1/webhooks", None).await;
    assert_eq!(listed.json()["items"].as_array().unwrap().len(), 1);
    assert!(!listed.text.contains(&secret[6..]));

    // Write keys and anonymous callers see nothing.
    app.get(&format!("/v1/webhooks/{id}")).await.problem(403);
    app.send_with("GET", "/v1/webhooks", &[("authorization", "")], None, "")
        .await
        .problem(401);
    app.post(
        "/v1/webhooks",
        &json!({"url": "https://x.example", "events": ["*"]}),
    )
    .await
    .problem(403);

    let patched = as_admin(
        &app,
        "PATCH",
        &format!("/v1/webhooks/{id}"),
        Some(&json!({"description": "Renamed", "filters": {"partner": null}})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let patched = patched.json();
    assert_eq!(patched["description"], "Renamed");
    assert_eq!(patched["filters"]["partner"], json!([]));
    assert_eq!(patched["events"], json!(["agreement.*", "pledge.created"]));
    assert!(patched.get("secret").is_none());
    assert_eq!(patched["version"], 2);

    // A stale If-Match changes nothing (412), for a change and a deletion.
    let uri = format!("/v1/webhooks/{id}");
    for (method, body) in [("PATCH", r#"{"description":"Stale"}"#), ("DELETE", "")] {
        let content_type = (!body.is_empty()).then_some("application/merge-patch+json");
        app.send_with(
            method,
            &uri,
            &[("authorization", &bearer), ("if-match", "\"1\"")],
            content_type,
            body,
        )
        .await
        .problem(412);
    }
    let unchanged = as_admin(&app, "GET", &uri, None).await.json();
    assert_eq!(unchanged["description"], "Renamed");

    for uri in ["/v1/history?limit=200", "/v1/changes?since=0&limit=1000"] {
        let text = app.get(uri).await.text;
        assert!(!text.contains(&secret[6..]), "{uri} shows the secret");
    }
    let stored: Vec<Value> = app.get_ok("/v1/history?limit=5").await["items"]
        .as_array()
        .unwrap()
        .clone();
    assert!(stored.iter().all(|e| e["entity"] != "webhook"));

    let removed = as_admin(&app, "DELETE", &format!("/v1/webhooks/{id}"), None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    as_admin(&app, "GET", &format!("/v1/webhooks/{id}"), None)
        .await
        .problem(404);
}

/// Bad input is a 422 naming the field, and creates nothing.
async fn bad_subscriptions_are_refused(app: TestApp) {
    let cases = [
        (
            json!({"url": "ftp://hooks.example.org/", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "http://127.0.0.1:9000/hook", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "http://[fd00:ec2::254]/", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "http://localhost/", "events": ["*"]}), "url"),
        (
            json!({"url": "https://hooks.example.org/", "events": ["agreement.renamed"]}),
            "events[0]",
        ),
        (
            json!({"url": "https://hooks.example.org/", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://hooks.example.org/", "events": ["*"], "filters": {"partner": ["Atlantis"]}}),
            "filters.partner[0]",
        ),
        (
            json!({"url": "https://hooks.example.org/", "events": ["*"], "filters": {"country": ["JP"]}}),
            "filters.country",
        ),
    ];
    for (body, field) in cases {
        let reply = as_admin(&app, "POST", "/v1/webhooks", Some(&body)).await;
        let fields = reply.error_fields();
        assert!(
            fields.iter().any(|f| f.starts_with(field)),
            "{body}: {fields:?}"
        );
    }
    let missing = as_admin(
        &app,
        "POST",
        "/v1/webhooks",
        Some(&json!({"events": ["*"]})),
    )
    .await;
    assert!(
        missing
            .error_fields()
            .iter()
            .any(|f| f.is_empty() || f == "url")
    );
    let listed = as_admin(&app, "GET", "/v1/webhooks", None).await;
    assert_eq!(listed.json()["items"], json!([]));
}

/// A change to a matching agreement is delivered, signed as the Standard
/// Webhooks library verifies, with the change feed's entry as data; other
/// partners' changes are not; a test ping arrives too.
async fn changes_are_delivered_signed(app: TestApp) {
    let app = allowing_private(app);
    let receiver = Receiver::start().await;
    let _dispatcher = Dispatcher::start(app.store.clone(), quick()).unwrap();
    // Made before the subscription: never delivered to it.
    edit_title(&app, "ua-jp-2024", "Before the hook").await;
    let created = subscribe(
        &app,
        json!({"url": receiver.url, "events": ["agreement.updated"], "filters": {"partner": ["JP"]}}),
    )
    .await;
    let (id, secret) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    edit_title(&app, "ua-de-2024", "Not for this hook").await;
    let writing = Instant::now();
    edit_title(&app, "ua-jp-2024", "Edited for the hook").await;
    let received = receiver.wait_for("the delivery", |r| !r.is_empty()).await;
    println!(
        "delivered {:?} after the PATCH was sent",
        received[0].at.duration_since(writing)
    );
    assert_eq!(
        received.len(),
        1,
        "only Japan's later change: {received:#?}"
    );
    let delivery = &received[0];
    assert_eq!(delivery.content_type, "application/json");
    let body = delivery.json();
    assert_eq!(body["type"], "agreement.updated");
    assert_eq!(body["data"]["entity"], "agreement");
    assert_eq!(body["data"]["id"], "ua-jp-2024");
    assert_eq!(body["data"]["op"], "update");
    assert_eq!(body["data"]["partner"], "JP");
    // The same entry as the change feed's.
    let seq = body["data"]["seq"].as_i64().unwrap();
    let feed = app.get_ok(&format!("/v1/changes?since={}", seq - 1)).await;
    assert_eq!(feed["items"][0], body["data"]);
    let instant = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let late = instant(&feed["items"][0]["at"]) - instant(&body["timestamp"]);
    assert!(late >= chrono::TimeDelta::zero() && late < chrono::TimeDelta::milliseconds(1));
    assert_eq!(delivery.id, format!("msg_{seq}_{id}"));
    let timestamp: i64 = delivery.timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    assert!(delivery.signature.starts_with("v1,"));

    // A ping, on request.
    let ping = as_admin(&app, "POST", &format!("/v1/webhooks/{id}/test"), None).await;
    assert_eq!(ping.status, StatusCode::ACCEPTED, "{}", ping.text);
    assert_eq!(ping.json()["event"], "webhook.ping");
    let received = receiver.wait_for("the ping", |r| r.len() == 2).await;
    assert_eq!(received[1].json()["type"], "webhook.ping");
    assert_eq!(received[1].json()["data"]["webhook"], id);

    if let Some(verified) = verify_independently(secret, &received) {
        let verified = verified.expect("the reference library verifies both");
        assert_eq!(verified[0], body);
        assert_eq!(verified[1]["type"], "webhook.ping");
        // The same library refuses them under another secret, or altered.
        let other = verify_independently("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &received);
        assert!(other.unwrap().is_err());
        let mut altered = received[0].clone();
        altered.body = altered.body.replace("ua-jp-2024", "ua-de-2024");
        assert!(verify_independently(secret, &[altered]).unwrap().is_err());
    }

    let items = wait_deliveries(&app, id, "both delivered", |items| {
        items.len() == 2 && items.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(items[1]["message_id"], delivery.id.as_str());
    assert_eq!(items[1]["seq"], seq);
    assert_eq!(items[1]["attempts"], 1);
    assert_eq!(items[1]["last_status"], 204);
}

/// 500s and a receiver that never answers are retried (the same
/// webhook-id each time) until it takes the delivery.
async fn failures_and_timeouts_are_retried(app: TestApp) {
    let app = allowing_private(app);
    let receiver = Receiver::start().await;
    receiver.then(&[Answer::Status(500), Answer::Hang, Answer::Status(503)]);
    let settings = DeliverySettings {
        timeout: Duration::from_millis(500),
        ..quick()
    };
    let _dispatcher = Dispatcher::start(app.store.clone(), settings).unwrap();
    let created = subscribe(&app, json!({"url": receiver.url, "events": ["*"]})).await;
    let id = created["id"].as_str().unwrap();
    let started = Instant::now();
    edit_title(&app, "ua-jp-2024", "Retried").await;
    let received = receiver
        .wait_for("the fourth attempt", |r| r.len() == 4)
        .await;
    let elapsed = started.elapsed();
    assert!(
        received.iter().all(|r| r.id == received[0].id),
        "{received:#?}"
    );
    assert_eq!(
        received.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 0, 503, 204]
    );
    // The timeout (500 ms) and three backoffs (20, 40, 80 ms at most).
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    let items = wait_deliveries(&app, id, "delivered", |items| {
        items.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(items[0]["attempts"], 4);
    assert_eq!(items[0]["last_status"], 204);
    assert_eq!(items[0]["last_error"], Value::Null);
    println!("four attempts (one timing out at 500 ms) took {elapsed:?}");
}

/// A subscription's deliveries arrive in feed order, even when the first
/// needs retries: the later ones wait.
async fn deliveries_keep_feed_order(app: TestApp) {
    let app = allowing_private(app);
    let receiver = Receiver::start().await;
    receiver.then(&[
        Answer::Status(500),
        Answer::Status(500),
        Answer::Status(500),
    ]);
    let _dispatcher = Dispatcher::start(app.store.clone(), quick()).unwrap();
    subscribe(
        &app,
        json!({"url": receiver.url, "events": ["agreement.updated"]}),
    )
    .await;
    for n in 0..5 {
        edit_title(&app, "ua-jp-2024", &format!("Edit {n}")).await;
    }
    receiver
        .wait_for("five deliveries", |r| {
            r.iter().filter(|r| r.answered == 204).count() == 5
        })
        .await;
    let seqs: Vec<i64> = receiver
        .received()
        .iter()
        .map(|r| r.json()["data"]["seq"].as_i64().unwrap())
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(seqs, sorted, "attempts in feed order");
    assert_eq!(
        seqs.len(),
        8,
        "three failures, then five deliveries: {seqs:?}"
    );
    assert!(seqs[..4].iter().all(|s| *s == seqs[0]), "{seqs:?}");
}

/// Failing for the whole retry window: the delivery is marked failed and
/// the subscription disabled with a reason; listed, retried by hand once
/// the receiver is back and the subscription enabled again.
async fn failing_receivers_are_disabled(app: TestApp) {
    let app = allowing_private(app);
    let receiver = Receiver::start().await;
    receiver.otherwise(Answer::Status(500));
    let settings = DeliverySettings {
        retry_for: Duration::from_millis(600),
        ..quick()
    };
    let _dispatcher = Dispatcher::start(app.store.clone(), settings).unwrap();
    let created = subscribe(
        &app,
        json!({"url": receiver.url, "events": ["agreement.*"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    edit_title(&app, "ua-jp-2024", "Never delivered").await;
    let items = wait_deliveries(&app, id, "failed", |items| {
        items.first().is_some_and(|d| d["status"] == "failed")
    })
    .await;
    let failed = &items[0];
    assert!(failed["attempts"].as_i64().unwrap() >= 3, "{failed}");
    assert_eq!(failed["last_status"], 500);
    assert!(failed["last_error"].as_str().unwrap().contains("500"));
    assert_eq!(failed["next_attempt_at"], Value::Null);
    let attempts = receiver.received().len();
    assert_eq!(attempts as i64, failed["attempts"].as_i64().unwrap());

    let subscription = as_admin(&app, "GET", &format!("/v1/webhooks/{id}"), None)
        .await
        .json();
    assert_eq!(subscription["enabled"], false);
    let reason = subscription["disabled_reason"].as_str().unwrap();
    assert!(
        reason.contains("retry window") && reason.contains("500"),
        "{reason}"
    );

    // Disabled: new changes queue nothing.
    edit_title(&app, "ua-jp-2024", "While disabled").await;
    assert_eq!(deliveries(&app, id, "").await.len(), 1);
    assert_eq!(deliveries(&app, id, "?status=failed").await.len(), 1);
    assert_eq!(deliveries(&app, id, "?status=delivered").await.len(), 0);
    as_admin(
        &app,
        "GET",
        &format!("/v1/webhooks/{id}/deliveries?status=lost"),
        None,
    )
    .await
    .problem(400);

    receiver.otherwise(Answer::Status(200));
    let enabled = as_admin(
        &app,
        "PATCH",
        &format!("/v1/webhooks/{id}"),
        Some(&json!({"enabled": true})),
    )
    .await
    .json();
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled_reason"], Value::Null);
    let delivery_id = failed["id"].as_i64().unwrap();
    let retried = as_admin(
        &app,
        "POST",
        &format!("/v1/webhooks/{id}/deliveries/{delivery_id}/retry"),
        None,
    )
    .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.text);
    assert_eq!(retried.json()["status"], "pending");
    let items = wait_deliveries(&app, id, "delivered by hand", |items| {
        items.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(
        items[0]["attempts"],
        failed["attempts"].as_i64().unwrap() + 1
    );
    assert_eq!(receiver.delivered().len(), 1);
    as_admin(
        &app,
        "POST",
        &format!("/v1/webhooks/{id}/deliveries/999999/retry"),
        None,
    )
    .await
    .problem(404);
}

/// Two instances on one database: every event reaches the receiver once.
async fn two_instances_deliver_each_event_once(app: TestApp) {
    let app = allowing_private(app);
    let receiver = Receiver::start().await;
    let first = app.database.open().await;
    let second = app.database.open().await;
    let _one = Dispatcher::start(first.clone(), quick()).unwrap();
    let _two = Dispatcher::start(second.clone(), quick()).unwrap();
    for n in 0..3 {
        subscribe(
            &app,
            json!({"url": format!("{}?n={n}", receiver.url), "events": ["*"]}),
        )
        .await;
    }
    let agreements = ["ua-jp-2024", "ua-de-2024", "ua-gb-2024", "ua-ca-2024"];
    let writes = 10;
    for n in 0..writes {
        edit_title(&app, agreements[n % agreements.len()], &format!("Race {n}")).await;
    }
    let expected = writes * 3;
    receiver
        .wait_for("every delivery", |r| r.len() >= expected)
        .await;
    // Time for a duplicate to show up, were there one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for r in receiver.received() {
        *by_id.entry(r.id).or_default() += 1;
    }
    assert_eq!(by_id.len(), expected);
    assert!(by_id.values().all(|n| *n == 1), "{by_id:?}");
}

crate::on_both_backends!(
    subscriptions_show_their_secret_once,
    bad_subscriptions_are_refused,
    changes_are_delivered_signed,
    failures_and_timeouts_are_retried,
    deliveries_keep_feed_order,
    failing_receivers_are_disabled,
    two_instances_deliver_each_event_once,
);

/// The real binary killed (SIGKILL) while a delivery is in flight: after a
/// restart the event still arrives, with the same webhook-id.
async fn killed_server_delivers_after_restart(backend: crate::common::Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let app = allowing_private(app);
    let receiver = Receiver::start().await;
    receiver.then(&[Answer::Hang]);
    let created = subscribe(
        &app,
        json!({"url": receiver.url, "events": ["agreement.updated"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let serve = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_accords"))
            .arg("serve")
            .env("DATABASE_URL", url)
            .env("ACCORDS_BIND", "127.0.0.1:0")
            .env("ACCORDS_NO_SEED", "true")
            .env("ACCORDS_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("ACCORDS_WEBHOOK_TIMEOUT_MS", "1000")
            .env("ACCORDS_WEBHOOK_RETRY_BASE_MS", "20")
            .env("ACCORDS_WEBHOOK_POLL_MS", "50")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut server = serve(&app.database.url);
    edit_title(&app, "ua-jp-2024", "Delivered despite a crash").await;
    let first = receiver
        .wait_for("the first attempt", |r| r.len() == 1)
        .await;
    server.kill().unwrap(); // SIGKILL, mid-delivery
    server.wait().unwrap();
    let in_flight = deliveries(&app, id, "").await;
    assert_eq!(in_flight[0]["status"], "pending", "{in_flight:#?}");
    assert_eq!(in_flight[0]["attempts"], 0);

    let restarted_at = Instant::now();
    let mut server = serve(&app.database.url);
    let received = receiver
        .wait_for("the delivery after the restart", |r| {
            r.iter().any(|r| r.answered == 204)
        })
        .await;
    let waited = restarted_at.elapsed();
    // The restarted server records the attempt once the receiver answered.
    let items = wait_deliveries(&app, id, "the delivery recorded", |items| {
        items[0]["status"] == "delivered"
    })
    .await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(received.len(), 2, "{received:#?}");
    assert_eq!(received[1].id, first[0].id);
    assert_eq!(items[0]["attempts"], 1);
    println!("redelivered {waited:?} after the restart (the claim lasts 2 s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_server_delivers_after_restart() {
    killed_server_delivers_after_restart(crate::common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_server_delivers_after_restart() {
    killed_server_delivers_after_restart(crate::common::Backend::Postgres).await;
}
