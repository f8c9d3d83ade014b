//! What keeps the service's cost from growing with the store: the counts and
//! totals the triggers keep (migration 0011) equal a recount after every kind
//! of write, and each query's plan reads an index or a rollup, never a whole
//! table, where it is selective or paged.

use std::collections::BTreeMap;

use accords::domain::Vocabulary;
use accords::domain::agreement::AgreementDraft;
use accords::domain::marker::Markers;
use accords::domain::pledge::PledgeBasis;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::common::{Reply, TestApp};

crate::on_both_backends!(counts_and_totals_equal_a_recount_after_every_kind_of_write);

fn created(reply: Reply, what: &str) -> Value {
    assert!(
        reply.status.is_success(),
        "{what}: {} {}",
        reply.status,
        reply.text
    );
    if reply.text.is_empty() {
        Value::Null
    } else {
        reply.json()
    }
}

/// Bulk-loads, creates, changes, moves, deletes, restores and imports
/// agreements, and writes their pledges, sources and area links.
async fn write_a_mix(app: &TestApp) {
    // A bulk load first: its statements insert many rows at once, which
    // PostgreSQL counts per statement (migration 0015).
    let generated = accords::generate::agreements(5, 0, 60).unwrap();
    app.store
        .bulk_insert_agreements(&generated.agreements)
        .await
        .unwrap();
    let agreement = json!({
        "partner": "NZ", "title": "Counted agreement", "kind": "bilateral_security", "status": "signed",
        "signed_on": "2025-03-01", "areas": ["demining", "training"],
        "pledges": [
            {"amount": "1000.50", "currency": "NZD", "year_from": 2025, "year_to": 2025, "kind": "military"},
            {"amount": "200", "currency": "NZD", "year_from": 2025, "year_to": 2027, "kind": "humanitarian",
             "basis": "per_year"}
        ]
    });
    let a = created(app.post("/v1/agreements", &agreement).await, "create");
    let id = a["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/agreements/{id}");
    created(
        app.patch(
            &path,
            &json!({"status": "in_force", "legally_binding": true}),
        )
        .await,
        "status",
    );
    created(
        app.patch(
            &path,
            &json!({"partner": "GB", "signed_on": "2023-05-05", "kind": "partnership"}),
        )
        .await,
        "move to another partner",
    );
    let mut replaced = agreement.clone();
    replaced["partner"] = json!("GB");
    replaced["areas"] = json!(["energy", "demining"]);
    replaced["legally_binding"] = Value::Null;
    replaced["pledges"][0]["amount"] = json!("3000");
    replaced["pledges"][0]["id"] = a["pledges"][0]["id"].clone();
    created(app.put(&path, &replaced).await, "replace");
    let pledge = created(
        app.post(
            &format!("{path}/pledges"),
            &json!({"amount": "70", "currency": "GBP", "year_from": 2024, "kind": "military", "measure": "allocation"}),
        )
        .await,
        "add a pledge",
    );
    let pledge_path = format!("/v1/pledges/{}", pledge["id"].as_str().unwrap());
    created(
        app.patch(
            &pledge_path,
            &json!({"amount": "90", "kind": "mixed", "year_from": 2026}),
        )
        .await,
        "change a pledge",
    );
    let part = created(
        app.post(
            &format!("{path}/pledges"),
            &json!({"amount": "10", "currency": "GBP", "year_from": 2026, "kind": "mixed",
                    "part_of": pledge["id"]}),
        )
        .await,
        "add a part",
    );
    created(
        app.patch(
            &format!("/v1/pledges/{}", part["id"].as_str().unwrap()),
            &json!({"part_of": null}),
        )
        .await,
        "a part becomes a pledge of its own",
    );
    let source = created(
        app.post(
            &format!("{path}/sources"),
            &json!({"url": "https://example.org/counted", "title": "Counted", "pledges": [pledge["id"]]}),
        )
        .await,
        "add a source",
    );
    created(
        app.delete(&format!("/v1/sources/{}", source["id"].as_str().unwrap()))
            .await,
        "delete a source",
    );
    created(app.delete(&pledge_path).await, "delete a pledge");

    created(app.delete("/v1/agreements/ua-jp-2024").await, "delete");
    created(
        app.post("/v1/agreements/ua-jp-2024/restore", &json!({}))
            .await,
        "restore",
    );
    created(app.delete("/v1/agreements/ua-de-2024").await, "delete");

    // An import that changes one agreement's partner, status and areas and
    // adds another.
    let dataset = app.store.export().await.unwrap();
    let mut changed = dataset
        .agreements
        .iter()
        .find(|d| d.id.as_deref() == Some("ua-fr-2024"))
        .unwrap()
        .clone();
    changed.status = accords::domain::agreement::AgreementStatus::Expired;
    changed.partner = accords::domain::partner::PartnerCode::parse("IT").unwrap();
    changed.areas.as_mut().unwrap().truncate(2);
    let mut added = changed.clone();
    added.id = Some("ua-it-2030".into());
    added.signed_on = None;
    added.markers = Markers::new();
    for (i, pledge) in added.pledges.iter_mut().flatten().enumerate() {
        pledge.id = Some(format!("ua-it-2030-p{}", i + 1));
        pledge.part_of = None;
        pledge.markers = Markers::new();
    }
    for (i, source) in added.sources.iter_mut().flatten().enumerate() {
        source.id = Some(format!("ua-it-2030-s{}", i + 1));
        source.pledges = source
            .pledges
            .iter()
            .map(|p| p.replace("ua-fr-2024", "ua-it-2030"))
            .collect();
    }
    let body = json!({"partners": [], "areas": [], "agreements": [changed, added]});
    let bearer = format!("Bearer {}", app.admin_key);
    let reply = app
        .send_with(
            "POST",
            "/v1/import",
            &[("authorization", &bearer)],
            Some("application/json"),
            &body.to_string(),
        )
        .await;
    created(reply, "import");
}

/// The values a draft is counted under, as the stats name them.
fn dimension(draft: &AgreementDraft, name: &str) -> Vec<Value> {
    match name {
        "partner" => vec![json!(draft.partner.as_str())],
        "status" => vec![json!(draft.status.as_str())],
        "kind" => vec![json!(draft.kind.as_str())],
        "year" => vec![json!(draft.signed_on.map(|d| chrono::Datelike::year(&d)))],
        "area" => draft
            .areas
            .iter()
            .flatten()
            .map(|l| json!(l.code.as_str()))
            .collect(),
        _ => unreachable!(),
    }
}

async fn counts_and_totals_equal_a_recount_after_every_kind_of_write(app: TestApp) {
    write_a_mix(&app).await;
    let drafts = app.store.export().await.unwrap().agreements;

    // Every grouping alone and in pairs.
    let dimensions = ["year", "status", "kind", "area", "partner"];
    let mut groupings: Vec<Vec<&str>> = dimensions.iter().map(|d| vec![*d]).collect();
    for (i, a) in dimensions.iter().enumerate() {
        for b in &dimensions[i + 1..] {
            groupings.push(vec![a, b]);
        }
    }
    for grouping in groupings {
        let mut want: BTreeMap<Vec<String>, i64> = BTreeMap::new();
        for draft in &drafts {
            let mut keys: Vec<Vec<Value>> = vec![Vec::new()];
            for name in &grouping {
                keys = keys
                    .into_iter()
                    .flat_map(|key| {
                        dimension(draft, name).into_iter().map(move |value| {
                            let mut key = key.clone();
                            key.push(value);
                            key
                        })
                    })
                    .collect();
            }
            for key in keys {
                *want
                    .entry(key.iter().map(Value::to_string).collect())
                    .or_default() += 1;
            }
        }
        let uri = format!("/v1/stats/agreements?group_by={}", grouping.join(","));
        let answer = app.get_ok(&uri).await;
        let got: BTreeMap<Vec<String>, i64> = answer["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                (
                    grouping.iter().map(|g| item[*g].to_string()).collect(),
                    item["count"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "{uri}");
    }

    // Counts under one or two conditions, every pair of dimensions.
    type Keep = fn(&AgreementDraft) -> bool;
    let conditions: [(&str, Keep); 7] = [
        ("partner=GB", |d| d.partner.as_str() == "GB"),
        ("status=signed,expired", |d| {
            matches!(d.status.as_str(), "signed" | "expired")
        }),
        ("kind=partnership", |d| d.kind.as_str() == "partnership"),
        ("year=2023", |d| {
            d.signed_on
                .is_some_and(|s| chrono::Datelike::year(&s) == 2023)
        }),
        ("legally_binding=false", |d| {
            d.legally_binding == Some(false)
        }),
        ("legally_binding=unknown", |d| d.legally_binding.is_none()),
        ("area=demining", |d| {
            d.areas
                .iter()
                .flatten()
                .any(|l| l.code.as_str() == "demining")
        }),
    ];
    for (i, (first, keep_first)) in conditions.iter().enumerate() {
        for (second, keep_second) in
            std::iter::once(&("", (|_| true) as Keep)).chain(conditions[i + 1..].iter())
        {
            let name = |condition: &str| condition.split('=').next().unwrap_or_default().to_owned();
            if name(first) == name(second) {
                continue;
            }
            let want = drafts
                .iter()
                .filter(|d| keep_first(d) && keep_second(d))
                .count() as i64;
            let uri = format!("/v1/agreements?count=true&limit=1&{first}&{second}");
            assert_eq!(app.get_ok(&uri).await["total"], json!(want), "{uri}");
        }
    }

    // The counts partners and areas carry.
    for partner in app.all_items("/v1/partners?limit=100").await {
        let code = partner["code"].as_str().unwrap();
        let want = drafts.iter().filter(|d| d.partner.as_str() == code).count() as i64;
        assert_eq!(partner["agreement_count"], json!(want), "{code}");
    }
    for area in app.all_items("/v1/areas?limit=100").await {
        let code = area["code"].as_str().unwrap();
        let want = drafts
            .iter()
            .filter(|d| d.areas.iter().flatten().any(|l| l.code.as_str() == code))
            .count() as i64;
        assert_eq!(area["agreement_count"], json!(want), "{code}");
    }

    // Pledge totals in every set of the pledge rollup.
    let every_pledge: KeepPledge = |_, _| true;
    for grouping in [
        "partner",
        "partner,year",
        "partner,measure",
        "kind",
        "year,measure",
        "area",
        "area,partner",
        "area,kind",
    ] {
        let uri = format!("/v1/stats/pledges?group_by={grouping}");
        let want = pledge_totals_recount(&drafts, grouping, every_pledge);
        assert_eq!(
            pledge_totals_answer(&app, &uri, grouping).await,
            want,
            "{uri}"
        );
    }

    // Pledge totals under conditions on their agreements (the condition
    // rollup of migration 0016: one condition with every set of the pledge
    // rollup, several with the pledge kind or none), and under conditions
    // no set keeps, which count the pledges.
    let agreement_conditions: [(&str, KeepPledge); 12] = [
        ("status=signed,expired", |d, _| {
            matches!(d.status.as_str(), "signed" | "expired")
        }),
        ("kind=partnership", |d, _| d.kind.as_str() == "partnership"),
        ("kind=bilateral_security", |d, _| {
            d.kind.as_str() == "bilateral_security"
        }),
        ("year=2024", |d, _| {
            d.signed_on
                .is_some_and(|s| chrono::Datelike::year(&s) == 2024)
        }),
        ("signed_from=2024-01-01", |d, _| {
            d.signed_on
                .is_some_and(|s| chrono::Datelike::year(&s) >= 2024)
        }),
        ("signed_to=2023-12-31", |d, _| {
            d.signed_on
                .is_some_and(|s| chrono::Datelike::year(&s) <= 2023)
        }),
        ("signed_from=2024-03-01", |d, _| {
            d.signed_on
                .is_some_and(|s| s >= chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap())
        }),
        ("legally_binding=true", |d, _| {
            d.legally_binding == Some(true)
        }),
        ("legally_binding=unknown", |d, _| {
            d.legally_binding.is_none()
        }),
        ("year=2024&kind=bilateral_security", |d, _| {
            d.kind.as_str() == "bilateral_security"
                && d.signed_on
                    .is_some_and(|s| chrono::Datelike::year(&s) == 2024)
        }),
        (
            "status=signed&legally_binding=false&pledge_kind=military",
            |d, p| {
                d.status.as_str() == "signed"
                    && d.legally_binding == Some(false)
                    && p.kind.as_str() == "military"
            },
        ),
        ("partner=GB&status=signed,in_force&currency=GBP", |d, p| {
            d.partner.as_str() == "GB"
                && matches!(d.status.as_str(), "signed" | "in_force")
                && p.currency.as_str() == "GBP"
        }),
    ];
    for (condition, keep) in agreement_conditions {
        for grouping in [
            "partner",
            "partner,year",
            "kind",
            "year,measure",
            "kind,measure",
        ] {
            let uri = format!("/v1/stats/pledges?group_by={grouping}&{condition}");
            let want = pledge_totals_recount(&drafts, grouping, keep);
            assert!(
                condition.contains("partner=") || condition.contains('&') || !want.is_empty(),
                "{uri}: the mix should have pledges under this condition"
            );
            assert_eq!(
                pledge_totals_answer(&app, &uri, grouping).await,
                want,
                "{uri}"
            );
        }
    }
}

/// Whether a pledge of an agreement is counted under a condition.
type KeepPledge = fn(&AgreementDraft, &accords::domain::pledge::PledgeDraft) -> bool;

/// The pledge totals a statistic grouped by `grouping` should answer,
/// recounted from the drafts: (groups…, currency) → (total, count).
fn pledge_totals_recount(
    drafts: &[AgreementDraft],
    grouping: &str,
    keep: KeepPledge,
) -> BTreeMap<Vec<String>, (Decimal, i64)> {
    let mut want: BTreeMap<Vec<String>, (Decimal, i64)> = BTreeMap::new();
    for draft in drafts {
        let areas: Vec<&str> = draft
            .areas
            .iter()
            .flatten()
            .map(|l| l.code.as_str())
            .collect();
        let counted = draft
            .pledges
            .iter()
            .flatten()
            .filter(|p| p.part_of.is_none() && keep(draft, p));
        // Grouped by area, a pledge counts under each area of its agreement.
        let under: Vec<Option<&str>> = if grouping.contains("area") {
            areas.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        for (pledge, area) in counted.flat_map(|p| under.iter().map(move |a| (p, *a))) {
            let mut key: Vec<Value> = grouping
                .split(',')
                .map(|g| match g {
                    "area" => json!(area),
                    "partner" => json!(draft.partner.as_str()),
                    "year" => json!(pledge.year_from),
                    "kind" => json!(pledge.kind.as_str()),
                    "measure" => json!(pledge.measure.map(|m| m.as_str())),
                    _ => unreachable!(),
                })
                .collect();
            key.push(json!(pledge.currency.as_str()));
            let years = match pledge.basis {
                PledgeBasis::PerYear => pledge.year_to.unwrap() - pledge.year_from.unwrap() + 1,
                _ => 1,
            };
            let entry = want
                .entry(key.iter().map(Value::to_string).collect())
                .or_default();
            entry.0 += pledge.amount.as_decimal() * Decimal::from(years);
            entry.1 += 1;
        }
    }
    want.into_iter()
        .map(|(k, (total, n))| (k, (total.normalize(), n)))
        .collect()
}

/// The pledge totals a statistic answered, keyed like [`pledge_totals_recount`].
async fn pledge_totals_answer(
    app: &TestApp,
    uri: &str,
    grouping: &str,
) -> BTreeMap<Vec<String>, (Decimal, i64)> {
    let answer = app.get_ok(uri).await;
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let mut key: Vec<String> = grouping.split(',').map(|g| item[g].to_string()).collect();
            key.push(item["currency"].to_string());
            let total: Decimal = item["total"].as_str().unwrap().parse().unwrap();
            (key, (total.normalize(), item["count"].as_i64().unwrap()))
        })
        .collect()
}
