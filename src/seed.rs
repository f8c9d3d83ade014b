//! The bundled dataset: every ISO 3166-1 country plus the EU, the
//! cooperation-area vocabulary, and the curated agreements. Compiled into the
//! binary, so a new store needs nothing but the binary to be useful.

use crate::domain::dataset::Dataset;
use crate::store::{ImportSummary, Store, StoreError};
use crate::wire::dataset::DatasetBody;

/// The name history records for the bundled dataset.
pub const SEED_ACTOR: &str = "seed";

const PARTNERS: &str = include_str!("../data/partners.json");
const AREAS: &str = include_str!("../data/areas.json");
const AGREEMENTS: &str = include_str!("../data/agreements.json");

/// Parses the bundled files as one import; a failure here is a bug in the
/// data files, caught by the test suite before it ships.
pub fn bundled_dataset() -> Result<Dataset, String> {
    let mut dataset = Dataset::default();
    for (file, text) in [
        ("partners.json", PARTNERS),
        ("areas.json", AREAS),
        ("agreements.json", AGREEMENTS),
    ] {
        let body: DatasetBody =
            serde_json::from_str(text).map_err(|e| format!("data/{file}: {e}"))?;
        let part = body.parse().map_err(|errors| {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            format!("data/{file}: {}", lines.join("; "))
        })?;
        dataset.partners.extend(part.partners);
        dataset.areas.extend(part.areas);
        dataset.agreements.extend(part.agreements);
    }
    Ok(dataset)
}

/// Loads the bundled dataset into a store that holds nothing yet; a store
/// with data is left alone. Answers what was loaded, if anything.
pub async fn seed_if_empty(store: &dyn Store) -> Result<Option<ImportSummary>, StoreError> {
    if !store.is_empty().await? {
        return Ok(None);
    }
    let dataset = bundled_dataset().map_err(StoreError::Internal)?;
    store.seed(SEED_ACTOR, &dataset).await
}
