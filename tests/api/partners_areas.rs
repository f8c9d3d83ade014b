//! Partners, found by any name, and the cooperation areas.

use serde_json::json;

use crate::common::TestApp;

crate::on_both_backends!(
    partners_resolve_by_any_name,
    unknown_partner_gets_closest_matches,
    partners_crud,
    areas_crud_and_listing
);

async fn partners_resolve_by_any_name(app: TestApp) {
    for reference in [
        "uk",
        "gb",
        "GBR",
        "united%20kingdom",
        "Britain",
        "Great%20Britain",
        "%20United%20Kingdom%20",
    ] {
        let partner = app.get_ok(&format!("/v1/partners/{reference}")).await;
        assert_eq!(partner["code"], "GB", "{reference}");
    }
    let japan = app
        .get_ok("/v1/partners/%D0%AF%D0%BF%D0%BE%D0%BD%D1%96%D1%8F")
        .await; // Японія
    assert_eq!(japan["code"], "JP");
    assert_eq!(
        app.get_ok("/v1/partners/turkiye").await["code"],
        "TR",
        "accents do not matter"
    );
    assert_eq!(app.get_ok("/v1/partners/T%C3%BCrkiye").await["code"], "TR");
    assert_eq!(app.get_ok("/v1/partners/eu").await["kind"], "organization");

    let all = app.all_items("/v1/partners?limit=100").await;
    assert!(
        all.len() >= 250,
        "every ISO 3166-1 country plus the EU: {}",
        all.len()
    );
    assert!(all.iter().any(|p| p["code"] == "EU"));

    let japan_agreements = app.get_ok("/v1/partners/japan/agreements").await;
    let items = japan_agreements["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|a| a["partner"]["code"] == "JP"));
    assert!(items.iter().any(|a| a["id"] == "ua-jp-2024"));
}

async fn unknown_partner_gets_closest_matches(app: TestApp) {
    let problem = app.get("/v1/partners/japn").await.problem(404);
    assert_eq!(problem["closest_matches"][0]["code"], "JP", "{problem}");
    let problem = app.get("/v1/partners/Britian").await.problem(404);
    assert!(
        problem["closest_matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["code"] == "GB"),
        "{problem}"
    );
    app.get("/v1/partners/zzzzzzzz/agreements")
        .await
        .problem(404);
}

async fn partners_crud(app: TestApp) {
    let body = json!({"code": "nato", "kind": "organization", "name": "North Atlantic Treaty Organization",
                      "name_uk": "Організація Північноатлантичного договору", "aliases": ["НАТО", "OTAN"]});
    let reply = app.post("/v1/partners", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.header("location"), Some("/v1/partners/NATO"));
    assert_eq!(app.get_ok("/v1/partners/otan").await["code"], "NATO");
    app.post("/v1/partners", &body).await.problem(409);
    // An alpha-3 code belongs to one partner: another's is refused on its field.
    let taken = json!({"code": "xk", "kind": "country", "name": "Somewhere", "iso3": "GBR"});
    assert_eq!(
        app.post("/v1/partners", &taken).await.error_fields(),
        ["iso3"]
    );
    let reply = app
        .patch("/v1/partners/NATO", &json!({"iso3": "gbr"}))
        .await;
    assert_eq!(reply.error_fields(), ["iso3"]);

    let reply = app
        .patch("/v1/partners/NATO", &json!({"aliases": ["Alliance"]}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["version"], 2);
    assert_eq!(app.get_ok("/v1/partners/alliance").await["code"], "NATO");
    app.get("/v1/partners/otan").await.problem(404);

    let mut replaced = app.get_ok("/v1/partners/NATO").await;
    replaced["name"] = json!("NATO");
    let reply = app.put("/v1/partners/NATO", &replaced).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["name"], "NATO");
    let renamed = app
        .patch("/v1/partners/NATO", &json!({"code": "OTAN"}))
        .await;
    assert_eq!(renamed.error_fields(), ["code"]);

    // A partner that agreements name cannot go.
    let problem = app.delete("/v1/partners/GB").await.problem(409);
    assert!(problem["detail"].as_str().unwrap().contains("agreement"));
    assert_eq!(app.get_ok("/v1/partners/GB").await["code"], "GB");
    assert_eq!(app.delete("/v1/partners/NATO").await.status, 204);
    app.get("/v1/partners/NATO").await.problem(404);
}

async fn areas_crud_and_listing(app: TestApp) {
    let areas = app.all_items("/v1/areas").await;
    assert!(areas.iter().any(|a| a["code"] == "demining"));
    let demining = app.get_ok("/v1/areas/Demining").await;
    assert_eq!(demining["code"], "demining");
    let listed = app.all_items("/v1/areas/demining/agreements?limit=3").await;
    assert!(listed.iter().any(|a| a["id"] == "ua-jp-2024"));
    assert!(listed.iter().all(|a| {
        a["areas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["code"] == "demining")
    }));

    let problem = app.get("/v1/areas/deminig").await.problem(404);
    assert_eq!(
        problem["closest_matches"][0]["code"], "demining",
        "{problem}"
    );

    let body = json!({"code": "space", "name": "Space", "description": "Satellite imagery and launch services."});
    let reply = app.post("/v1/areas", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.header("location"), Some("/v1/areas/space"));
    app.post("/v1/areas", &body).await.problem(409);
    let reply = app
        .patch("/v1/areas/space", &json!({"description": null}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["description"], serde_json::Value::Null);
    let reply = app
        .put("/v1/areas/space", &json!({"name": "Space cooperation"}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["name"], "Space cooperation");
    assert_eq!(reply.json()["version"], 3);

    app.delete("/v1/areas/demining").await.problem(409);
    assert_eq!(app.delete("/v1/areas/space").await.status, 204);
    app.get("/v1/areas/space").await.problem(404);
}
