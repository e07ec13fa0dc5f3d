//! The metadata store: SQLite in WAL mode, one writer applying `Command`s,
//! pooled read-only connections for queries (DESIGN.md §3). The store does
//! not know how commands reach it: in the server they arrive through the
//! Raft log (`crate::cluster`), which also makes them durable.

pub mod command;
pub mod holders;
pub mod lifecycle;
pub mod lock;
pub mod model;
mod multipart;
pub mod query;
pub mod raft_state;
pub mod rewrap;
mod schema;
mod store;
mod versions;

pub use command::{Command, DeleteResult, Outcome, WriteCondition};
pub use store::{Metadata, apply_entry};
pub use versions::{is_valid_version_id, new_version_id};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketExists { owned_by_requester: bool },
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such version")]
    NoSuchVersion,
    /// The version named is a delete marker, which has no data or settings.
    #[error("the version is a delete marker")]
    DeleteMarker { version_id: String },
    #[error("no such upload")]
    NoSuchUpload,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("copy source changed while copying")]
    SourceChanged,
    /// A rule the command itself broke (multipart completion rules, object
    /// lock, bucket state, …).
    #[error("{0}")]
    Rejected(Refusal),
    #[error("metadata is corrupt: {0}")]
    Corrupt(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("metadata task failed: {0}")]
    Task(String),
    /// The write could not be committed, or a consistent read not served,
    /// right now (no leader, no quorum, shutting down); nothing changed, or
    /// the caller cannot know and must retry.
    #[error("metadata unavailable: {0}")]
    Unavailable(String),
}

/// The rules a command can break, each of which the S3 layer answers with
/// its own error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    InvalidPart,
    InvalidPartOrder,
    EntityTooSmall,
    MalformedXml,
    InvalidRequest,
    BadDigest,
    /// The bucket's state forbids the change (object lock needs versioning).
    InvalidBucketState,
    /// Object lock (retention or legal hold) forbids removing or changing a version.
    Locked,
    /// One key of a multi-object delete: its conditions (ETag, time, size)
    /// did not hold, or it has no current version to check them against.
    PreconditionFailed,
    NoSuchKey,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub rule: Rule,
    /// What to tell the client; empty for the rule's standard message.
    pub message: String,
    /// Extra elements of the error document (`PartNumber`, …).
    pub details: Vec<(String, String)>,
}

impl Refusal {
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Refusal {
            rule,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn detail(mut self, name: &str, value: impl Into<String>) -> Self {
        self.details.push((name.to_string(), value.into()));
        self
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.rule, self.message)
    }
}

impl From<Refusal> for MetaError {
    fn from(refusal: Refusal) -> Self {
        MetaError::Rejected(refusal)
    }
}

/// A command that was applied but changed nothing because a precondition
/// or rule refused it: the part of [`MetaError`] that is a deterministic
/// answer of `apply`, the same on every node, and so can travel as the
/// result of a replicated command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Rejection {
    NoSuchBucket,
    BucketExists { owned_by_requester: bool },
    BucketNotEmpty,
    NoSuchKey,
    NoSuchVersion,
    DeleteMarker { version_id: String },
    NoSuchUpload,
    PreconditionFailed,
    SourceChanged,
    Rejected(Refusal),
}

impl From<Rejection> for MetaError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::NoSuchBucket => MetaError::NoSuchBucket,
            Rejection::BucketExists { owned_by_requester } => {
                MetaError::BucketExists { owned_by_requester }
            }
            Rejection::BucketNotEmpty => MetaError::BucketNotEmpty,
            Rejection::NoSuchKey => MetaError::NoSuchKey,
            Rejection::NoSuchVersion => MetaError::NoSuchVersion,
            Rejection::DeleteMarker { version_id } => MetaError::DeleteMarker { version_id },
            Rejection::NoSuchUpload => MetaError::NoSuchUpload,
            Rejection::PreconditionFailed => MetaError::PreconditionFailed,
            Rejection::SourceChanged => MetaError::SourceChanged,
            Rejection::Rejected(refusal) => MetaError::Rejected(refusal),
        }
    }
}

impl MetaError {
    /// Whether the command was refused (so it certainly changed nothing),
    /// rather than lost in a failure that leaves its outcome unknown.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            MetaError::NoSuchBucket
                | MetaError::BucketExists { .. }
                | MetaError::BucketNotEmpty
                | MetaError::NoSuchKey
                | MetaError::NoSuchVersion
                | MetaError::DeleteMarker { .. }
                | MetaError::NoSuchUpload
                | MetaError::PreconditionFailed
                | MetaError::SourceChanged
                | MetaError::Rejected(_)
        )
    }

    /// Splits a deterministic refusal from a failure of the store itself.
    pub fn into_rejection(self) -> Result<Rejection, MetaError> {
        Ok(match self {
            MetaError::NoSuchBucket => Rejection::NoSuchBucket,
            MetaError::BucketExists { owned_by_requester } => {
                Rejection::BucketExists { owned_by_requester }
            }
            MetaError::BucketNotEmpty => Rejection::BucketNotEmpty,
            MetaError::NoSuchKey => Rejection::NoSuchKey,
            MetaError::NoSuchVersion => Rejection::NoSuchVersion,
            MetaError::DeleteMarker { version_id } => Rejection::DeleteMarker { version_id },
            MetaError::NoSuchUpload => Rejection::NoSuchUpload,
            MetaError::PreconditionFailed => Rejection::PreconditionFailed,
            MetaError::SourceChanged => Rejection::SourceChanged,
            MetaError::Rejected(refusal) => Rejection::Rejected(refusal),
            other => return Err(other),
        })
    }
}

#[cfg(test)]
mod tests;
