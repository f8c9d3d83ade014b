//! Which kept answers a committed change retires.
//!
//! A handler says what its answer was computed from ([`Reads`], a response
//! extension); an answer that says nothing depends on everything. The
//! change feed says what each write touched ([`touch_of`]). The [`Ledger`]
//! holds, for each thing an answer can depend on, the revision at which it
//! last changed; a kept answer rendered at revision `r` stays good while
//! nothing it reads changed after `r`. Every instance reads the same change
//! feed, so a write through another instance retires the same answers here
//! (once this instance sees the new revision, within its revision TTL).

use std::collections::HashMap;

use crate::domain::query::{AgreementQuery, SortKey};
use crate::store::ChangeDetail;

/// The parts of agreements that decide which agreements a query picks, in
/// what order and how many: a page of agreements depends on some of them,
/// a change touches some of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aspects(u8);

impl Aspects {
    /// Which agreements exist and their own fields (partner, areas, kind,
    /// status, dates, title): every query of agreements reads them.
    pub const FIELDS: Self = Self(1);
    /// Pledge amounts, currencies and kinds (`pledge_kind=`, `min_amount=`).
    pub const PLEDGES: Self = Self(2);
    /// The indexed search text (`q=` and its relevance order).
    pub const TEXT: Self = Self(4);
    /// `updated_at` (`sort=updated_at`): every write to an agreement or a
    /// child of it moves it.
    pub const UPDATED: Self = Self(8);
    const ALL: Self = Self(15);
    const EACH: [Self; 4] = [Self::FIELDS, Self::PLEDGES, Self::TEXT, Self::UPDATED];

    /// What decides which agreements `query` picks, in what order and how
    /// many.
    pub fn picking(query: &AgreementQuery) -> Self {
        let mut aspects = Self::FIELDS;
        if !query.pledge.is_empty() {
            aspects = aspects.with(Self::PLEDGES);
        }
        if query.search.is_some() {
            aspects = aspects.with(Self::TEXT);
        }
        if query.sort.key == SortKey::UpdatedAt {
            aspects = aspects.with(Self::UPDATED);
        }
        aspects
    }

    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    const fn has(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

/// What a kept answer was computed from, declared by its handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reads {
    /// One agreement's document: the agreement, or a pledge or source of it.
    Agreement(String),
    /// Agreements: the documents of `ids` (a page's items), and what
    /// `picked_by` names of every agreement (which ones a query picks, their
    /// order, their totals).
    Agreements {
        ids: Vec<String>,
        picked_by: Aspects,
    },
}

/// What one committed change may have altered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Touch {
    /// One agreement's document, and the named aspects of it; no other
    /// agreement's document.
    Agreement { id: String, aspects: Aspects },
    /// Anything: partners and areas (named in every agreement that links
    /// them), rates (conversions), imports, links between agreements.
    Everything,
}

/// Whether a record before or after a change links a pledge into a pledge
/// of any agreement (`part_of`): then the whole's agreement changes too.
fn links_part_of(value: Option<&serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::Object(fields)) => fields.iter().any(|(name, value)| {
            (name == "part_of" && !value.is_null()) || links_part_of(Some(value))
        }),
        Some(serde_json::Value::Array(items)) => items.iter().any(|v| links_part_of(Some(v))),
        _ => false,
    }
}

/// What a change touched, from its entity, operation and records.
fn touch_of(change: &ChangeDetail) -> Touch {
    let entry = &change.entry;
    let Some(id) = entry
        .agreement_id
        .clone()
        .or_else(|| (entry.entity == "agreement").then(|| entry.id.clone()))
    else {
        return Touch::Everything;
    };
    if links_part_of(change.before.as_ref()) || links_part_of(change.after.as_ref()) {
        return Touch::Everything;
    }
    let field = |name: &str| {
        let of = |record: Option<&serde_json::Value>| record.and_then(|r| r.get(name)).cloned();
        (of(change.before.as_ref()), of(change.after.as_ref()))
    };
    let aspects = match (entry.entity.as_str(), entry.op.as_str()) {
        ("agreement", "update") => Aspects::ALL,
        // Created, deleted or restored: a deleted pledge may have been the
        // whole of another agreement's parts, which lose their link.
        ("agreement", _) => return Touch::Everything,
        ("pledge", "delete") => return Touch::Everything,
        ("pledge", _) => Aspects::PLEDGES.with(Aspects::TEXT).with(Aspects::UPDATED),
        // A source's title is search text; its other fields are only shown.
        ("source", "update") => {
            let (before, after) = field("title");
            if before.is_some() && before == after {
                Aspects::UPDATED
            } else {
                Aspects::UPDATED.with(Aspects::TEXT)
            }
        }
        ("source", _) => Aspects::UPDATED.with(Aspects::TEXT),
        _ => return Touch::Everything,
    };
    Touch::Agreement { id, aspects }
}

/// The most agreements the ledger remembers one by one; past it, the next
/// change retires everything and the ledger starts again.
const MAX_DOCUMENTS: usize = 100_000;
/// The most changes read at once to decide what they retire; more retire
/// everything (one instance far behind, an import).
pub const MAX_CHANGES: i64 = 1_000;

/// The revision at which each thing a kept answer may read last changed,
/// as far as this instance has read the change feed.
#[derive(Debug, Default)]
pub struct Ledger {
    /// The revision up to which changes are entered.
    applied: Option<i64>,
    /// The last change that touched everything.
    everything: i64,
    /// The last change of any kind.
    any: i64,
    /// The last change of each aspect, in [`Aspects::EACH`] order.
    aspects: [i64; 4],
    /// The last change of each agreement's document.
    documents: HashMap<String, i64>,
}

impl Ledger {
    pub fn applied(&self) -> Option<i64> {
        self.applied
    }

    /// Starts at `revision`. Changes before it were never entered, so an
    /// answer rendered at an older revision (by a request that read the
    /// revision before this one) is not good: as if everything changed at it.
    pub fn start(&mut self, revision: i64) {
        self.applied = Some(revision);
        self.everything = self.everything.max(revision);
    }

    /// Enters the changes after `applied` up to `upto`: each of them, or
    /// (None: they could not all be read) one that touched everything.
    pub fn enter(&mut self, upto: i64, changes: Option<&[ChangeDetail]>) {
        match changes {
            Some(changes) => {
                for change in changes {
                    self.touch(change.entry.seq, touch_of(change));
                }
            }
            None => self.touch(upto, Touch::Everything),
        }
        self.applied = Some(self.applied.map_or(upto, |a| a.max(upto)));
    }

    fn touch(&mut self, revision: i64, touch: Touch) {
        self.any = self.any.max(revision);
        match touch {
            Touch::Everything => {
                self.everything = self.everything.max(revision);
                // Everything before it is retired anyway.
                self.documents.clear();
            }
            Touch::Agreement { id, aspects } => {
                if self.documents.len() >= MAX_DOCUMENTS && !self.documents.contains_key(&id) {
                    self.touch(revision, Touch::Everything);
                    return;
                }
                for (last, aspect) in self.aspects.iter_mut().zip(Aspects::EACH) {
                    if aspects.has(aspect) {
                        *last = (*last).max(revision);
                    }
                }
                let last = self.documents.entry(id).or_default();
                *last = (*last).max(revision);
            }
        }
    }

    /// Whether an answer rendered at `rendered_at` from `reads` (None: from
    /// anything) is still the answer now.
    pub fn still_good(&self, reads: Option<&Reads>, rendered_at: i64) -> bool {
        let unchanged = |id: &String| self.documents.get(id).is_none_or(|&at| at <= rendered_at);
        self.everything <= rendered_at
            && match reads {
                None => self.any <= rendered_at,
                Some(Reads::Agreement(id)) => unchanged(id),
                Some(Reads::Agreements { ids, picked_by }) => {
                    self.aspects
                        .iter()
                        .zip(Aspects::EACH)
                        .all(|(&at, aspect)| !picked_by.has(aspect) || at <= rendered_at)
                        && ids.iter().all(unchanged)
                }
            }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::ChangeEntry;

    fn change(
        seq: i64,
        entity: &str,
        op: &str,
        before: serde_json::Value,
        after: serde_json::Value,
    ) -> ChangeDetail {
        ChangeDetail {
            entry: ChangeEntry {
                seq,
                at: chrono::Utc::now(),
                entity: entity.to_owned(),
                id: format!("{entity}-{seq}"),
                agreement_id: Some("ua-fr-2024".to_owned()),
                partner: Some("FR".to_owned()),
                op: op.to_owned(),
                version: 2,
            },
            before: Some(before),
            after: Some(after),
        }
    }

    fn page(ids: &[&str], picked_by: Aspects) -> Reads {
        Reads::Agreements {
            ids: ids.iter().map(|&id| id.to_owned()).collect(),
            picked_by,
        }
    }

    #[test]
    fn a_change_retires_what_read_it_and_nothing_else() {
        let mut ledger = Ledger::default();
        ledger.start(10);
        // A source's publisher: its agreement's document moves, no query's picking.
        let publisher = change(
            11,
            "source",
            "update",
            json!({"title": "T", "publisher": "A"}),
            json!({"title": "T", "publisher": "B"}),
        );
        ledger.enter(11, Some(&[publisher]));
        assert!(!ledger.still_good(Some(&Reads::Agreement("ua-fr-2024".into())), 10));
        assert!(ledger.still_good(Some(&Reads::Agreement("ua-fr-2024".into())), 11));
        assert!(ledger.still_good(Some(&Reads::Agreement("ua-jp-2024".into())), 10));
        assert!(!ledger.still_good(
            Some(&page(&["ua-jp-2024", "ua-fr-2024"], Aspects::FIELDS)),
            10
        ));
        assert!(ledger.still_good(Some(&page(&["ua-jp-2024"], Aspects::FIELDS)), 10));
        assert!(ledger.still_good(
            Some(&page(&["ua-jp-2024"], Aspects::FIELDS.with(Aspects::TEXT))),
            10
        ));
        assert!(!ledger.still_good(
            Some(&page(
                &["ua-jp-2024"],
                Aspects::FIELDS.with(Aspects::UPDATED)
            )),
            10
        ));
        assert!(
            !ledger.still_good(None, 10),
            "an answer that names nothing reads everything"
        );

        // Its title is search text: searches go, other pages stay.
        let title = change(
            12,
            "source",
            "update",
            json!({"title": "T"}),
            json!({"title": "U"}),
        );
        ledger.enter(12, Some(&[title]));
        assert!(!ledger.still_good(
            Some(&page(&["ua-jp-2024"], Aspects::FIELDS.with(Aspects::TEXT))),
            11
        ));
        assert!(ledger.still_good(Some(&page(&["ua-jp-2024"], Aspects::FIELDS)), 11));

        // A pledge: pages that pick by pledges go.
        let pledge = change(
            13,
            "pledge",
            "update",
            json!({"amount": "1"}),
            json!({"amount": "2"}),
        );
        ledger.enter(13, Some(&[pledge]));
        assert!(!ledger.still_good(Some(&page(&["ua-jp-2024"], Aspects::PLEDGES)), 12));
        assert!(ledger.still_good(Some(&page(&["ua-jp-2024"], Aspects::FIELDS)), 12));

        // The agreement's own fields: every page goes, other agreements stay.
        let mut fields = change(
            14,
            "agreement",
            "update",
            json!({"status": "signed"}),
            json!({"status": "in_force"}),
        );
        fields.entry.id = "ua-fr-2024".into();
        ledger.enter(14, Some(&[fields]));
        assert!(!ledger.still_good(Some(&page(&["ua-jp-2024"], Aspects::FIELDS)), 13));
        assert!(ledger.still_good(Some(&Reads::Agreement("ua-jp-2024".into())), 10));
    }

    #[test]
    fn links_between_agreements_partners_and_gaps_retire_everything() {
        let single = Reads::Agreement("ua-jp-2024".into());
        for (seq, everything) in [
            change(
                11,
                "pledge",
                "update",
                json!({"part_of": null}),
                json!({"part_of": "p-jp-1"}),
            ),
            change(
                11,
                "agreement",
                "create",
                json!(null),
                json!({"pledges": []}),
            ),
            change(
                11,
                "pledge",
                "delete",
                json!({"part_of": null}),
                json!(null),
            ),
            change(
                11,
                "partner",
                "update",
                json!({"name": "A"}),
                json!({"name": "B"}),
            ),
            change(11, "rate", "create", json!(null), json!({"rate": "1"})),
        ]
        .into_iter()
        .enumerate()
        {
            let mut ledger = Ledger::default();
            ledger.start(10);
            ledger.enter(11, Some(&[everything]));
            assert!(!ledger.still_good(Some(&single), 10), "case {seq}");
            assert!(ledger.still_good(Some(&single), 11), "case {seq}");
        }
        // An answer rendered before the ledger started may predate changes
        // it never entered.
        let mut ledger = Ledger::default();
        ledger.start(12);
        assert!(!ledger.still_good(Some(&single), 10));
        assert!(ledger.still_good(Some(&single), 12));
        // Changes that could not be read: everything.
        let mut ledger = Ledger::default();
        ledger.start(10);
        ledger.enter(20, None);
        assert!(!ledger.still_good(Some(&single), 19));
        assert_eq!(ledger.applied(), Some(20));
    }
}
