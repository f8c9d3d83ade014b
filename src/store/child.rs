//! The kinds of an agreement's children, as the one child writer in
//! children.rs takes and answers them.

use crate::domain::pledge::{Pledge, PledgeDraft};
use crate::domain::source::{Source, SourceDraft};
use crate::store::{StoreError, StoreResult};

/// The two kinds of an agreement's children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChildKind {
    Pledge,
    Source,
}

impl ChildKind {
    pub(super) fn entity(self) -> &'static str {
        match self {
            Self::Pledge => "pledge",
            Self::Source => "source",
        }
    }

    pub(super) fn table(self) -> &'static str {
        match self {
            Self::Pledge => "pledges",
            Self::Source => "sources",
        }
    }

    /// Whether a write of this kind moves the pledge totals.
    pub(super) fn moves_totals(self) -> bool {
        self == Self::Pledge
    }
}

/// A child as written: the child writer takes either kind, and differs
/// only where the kinds do.
#[derive(Clone, Copy)]
pub(super) enum ChildDraft<'a> {
    Pledge(&'a PledgeDraft),
    Source(&'a SourceDraft),
}

impl ChildDraft<'_> {
    pub(super) fn kind(self) -> ChildKind {
        match self {
            Self::Pledge(_) => ChildKind::Pledge,
            Self::Source(_) => ChildKind::Source,
        }
    }
}

/// A child as stored.
pub(super) enum StoredChild {
    Pledge(Box<Pledge>),
    Source(Source),
}

/// A stored child's draft, as the change feed records it.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub(super) enum StoredDraft {
    Pledge(PledgeDraft),
    Source(SourceDraft),
}

impl StoredChild {
    pub(super) fn version(&self) -> i64 {
        match self {
            Self::Pledge(p) => p.version,
            Self::Source(s) => s.version,
        }
    }

    pub(super) fn draft(&self) -> StoredDraft {
        match self {
            Self::Pledge(p) => StoredDraft::Pledge(p.draft()),
            Self::Source(s) => StoredDraft::Source(s.draft()),
        }
    }

    /// The pledge a pledge write answered with.
    pub(super) fn pledge(self) -> StoreResult<Pledge> {
        match self {
            Self::Pledge(p) => Ok(*p),
            Self::Source(s) => Err(StoreError::Internal(format!(
                "a pledge write answered with source {}",
                s.id
            ))),
        }
    }

    /// The source a source write answered with.
    pub(super) fn source(self) -> StoreResult<Source> {
        match self {
            Self::Source(s) => Ok(s),
            Self::Pledge(p) => Err(StoreError::Internal(format!(
                "a source write answered with pledge {}",
                p.id
            ))),
        }
    }
}
