//! The API contract: the OpenAPI document the service serves is the one
//! reviewed in tests/snapshots/openapi.json, covers every operation with the
//! problems the shared layers answer with, and its docs page works offline.

use serde_json::Value;

use crate::common::{Backend, TestApp};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");

async fn app() -> TestApp {
    TestApp::new(Backend::Sqlite).await.unwrap()
}

/// A change to the spec shows in review as a change to the snapshot.
/// `ACCORDS_UPDATE_SNAPSHOTS=1 cargo nextest run contract` rewrites it.
#[tokio::test]
async fn the_spec_matches_its_reviewed_snapshot() {
    let app = app().await;
    let reply = app.get("/openapi.json").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let spec = reply.json();
    let pretty = serde_json::to_string_pretty(&spec).unwrap() + "\n";
    if std::env::var("ACCORDS_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(SNAPSHOT, &pretty).unwrap();
    }
    let reviewed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        reviewed == pretty,
        "the OpenAPI document changed: review it and run \
         ACCORDS_UPDATE_SNAPSHOTS=1 cargo nextest run contract"
    );
}

fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    found
}

#[tokio::test]
async fn every_operation_states_its_problems_keys_and_preconditions() {
    let app = app().await;
    let spec = app.get("/openapi.json").await.json();
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let all = operations(&spec);
    assert!(all.len() >= 50, "{} operations", all.len());
    for (method, path, operation) in &all {
        let responses = operation["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success response"
        );
        assert!(operation["tags"].is_array(), "{method} {path}: no tag");
        if !path.starts_with("/v1/") {
            continue;
        }
        for status in ["400", "429", "503"] {
            assert!(has(status), "{method} {path}: no {status}");
        }
        assert_eq!(
            responses["400"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        let parameters: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|list| list.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        match method.as_str() {
            "get" => {
                if path != "/v1/events" {
                    assert!(
                        has("304") && parameters.contains(&"If-None-Match"),
                        "{method} {path}"
                    );
                }
            }
            "post" => {
                assert!(has("401") && has("403"), "{method} {path}");
                assert!(parameters.contains(&"Idempotency-Key"), "{method} {path}");
                assert_eq!(operation["security"][0]["bearer"], serde_json::json!([]));
            }
            _ => {
                assert!(has("401") && has("412") && has("428"), "{method} {path}");
                assert!(parameters.contains(&"If-Match"), "{method} {path}");
            }
        }
        if path.contains('{') {
            assert!(has("404"), "{method} {path}: no 404");
        }
    }
    // Lists name their filters with allowed values, from the parser's allow-lists.
    let list = &spec["paths"]["/v1/agreements"]["get"]["parameters"];
    let status = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "status")
        .unwrap();
    assert_eq!(status["schema"]["items"]["enum"][0], "negotiating");
    assert_eq!(status["explode"], false);
}

/// Swagger UI's files are in the binary: the page loads nothing from elsewhere.
#[tokio::test]
async fn the_docs_work_offline() {
    let app = app().await;
    let page = app.get("/docs/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in page.text.split(attribute).skip(1) {
            let target = part.split('"').next().unwrap();
            assert!(
                !target.contains("//"),
                "the docs page loads {target} from elsewhere"
            );
            assets.push(target.trim_start_matches("./").to_owned());
        }
    }
    assert!(
        assets.iter().any(|a| a == "swagger-ui-bundle.js"),
        "{assets:?}"
    );
    // The icons are binary; the pages and scripts are what must load.
    for asset in assets.iter().filter(|a| !a.ends_with(".png")) {
        let reply = app.get(&format!("/docs/{asset}")).await;
        assert_eq!(reply.status, 200, "/docs/{asset}");
    }
    let initializer = app.get("/docs/swagger-initializer.js").await;
    assert!(
        initializer.text.contains("/openapi.json"),
        "{}",
        initializer.text
    );
}
