//! The bundled dataset, import and export.

use accords::domain::Vocabulary;
use accords::store::StoreError;
use accords::wire::dataset::DatasetBody;

use crate::common::{TestApp, TestDatabase};

crate::on_both_backends!(
    seed_keeps_every_source_and_dispute,
    export_import_export_is_identical,
    import_is_all_or_nothing
);

async fn seed_keeps_every_source_and_dispute(app: TestApp) {
    let dataset = app.store.export().await.unwrap();
    let bundled = accords::seed::bundled_dataset().unwrap();
    assert_eq!(dataset.agreements.len(), bundled.agreements.len());
    for agreement in &dataset.agreements {
        let sources = agreement.sources.as_deref().unwrap_or_default();
        assert!(!sources.is_empty(), "{:?} has no source", agreement.id);
        for pledge in agreement.pledges.as_deref().unwrap_or_default() {
            assert!(
                sources
                    .iter()
                    .any(|s| pledge.id.as_ref().is_some_and(|id| s.pledges.contains(id))),
                "pledge {:?} has no source",
                pledge.id
            );
        }
    }
    let japan = dataset
        .agreements
        .iter()
        .find(|a| a.id.as_deref() == Some("ua-jp-2024"))
        .unwrap();
    // Japan's amount: dollars in most reports, yen in one: contested, with
    // the sources on each side.
    let amount = &japan.pledges.as_ref().unwrap()[0].markers["amount"];
    assert_eq!(amount.status.as_str(), "contested");
    assert!(!amount.sources_for.is_empty() && !amount.sources_against.is_empty());
    // The later UK agreement is there too.
    assert!(
        dataset
            .agreements
            .iter()
            .any(|a| a.id.as_deref() == Some("ua-gb-2025"))
    );
    // Seeding again does nothing: the store is no longer empty.
    assert!(
        accords::seed::seed_if_empty(app.store.as_ref())
            .await
            .unwrap()
            .is_none()
    );
}

async fn export_import_export_is_identical(app: TestApp) {
    let patched = app
        .patch(
            "/v1/agreements/ua-gb-2024",
            &serde_json::json!({"expires_on": "2030-01-01"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let first = serde_json::to_string_pretty(&app.store.export().await.unwrap()).unwrap();
    let backend = app.database.backend;
    let other = TestDatabase::new(backend).await.unwrap();
    let store = other.open().await;
    let body: DatasetBody = serde_json::from_str(&first).unwrap();
    let dataset = body.parse().unwrap();
    let summary = store.import("test", &dataset, false).await.unwrap();
    assert_eq!(summary.updated, 0);
    assert!(summary.created > 250);
    let second = serde_json::to_string_pretty(&store.export().await.unwrap()).unwrap();
    assert!(
        first == second,
        "export → import → export must be byte-identical"
    );
    // Importing the same again changes nothing.
    let again = store.import("test", &dataset, false).await.unwrap();
    assert_eq!((again.created, again.updated), (0, 0));
    store.close().await;
}

async fn import_is_all_or_nothing(app: TestApp) {
    let before = app.store.export().await.unwrap();
    let text = r#"{"areas": [{"code": "space", "name": "Space"}],
                   "agreements": [
                     {"id": "ua-nz-2025", "partner": "NZ", "title": "Fine", "kind": "other", "status": "signed"},
                     {"id": "ua-jp-2024", "partner": "JP", "title": "Edited", "kind": "other", "status": "signed",
                      "areas": [{"code": "no-such-area"}]}
                   ]}"#;
    let body: DatasetBody = serde_json::from_str(text).unwrap();
    let dataset = body.parse().unwrap();
    match app.store.import("test", &dataset, false).await {
        Err(StoreError::Invalid(errors)) => {
            assert_eq!(errors[0].field, "agreements[1].areas[0].code", "{errors:?}");
        }
        other => panic!("expected a rejected import, got {other:?}"),
    }
    assert_eq!(
        app.store.export().await.unwrap(),
        before,
        "nothing of a failed import stays"
    );

    let bad: DatasetBody = serde_json::from_str(
        r#"{"agreements": [{"partner": "JP", "title": "No id", "kind": "other", "status": "signed",
             "pledges": [{"amount": "1e9", "currency": "USD", "kind": "military"}]}]}"#,
    )
    .unwrap();
    let errors = bad.parse().unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert!(
        fields.contains(&"agreements[0].id") && fields.contains(&"agreements[0].pledges[0].amount"),
        "{fields:?}"
    );
}
