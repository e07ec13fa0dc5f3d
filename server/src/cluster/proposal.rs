//! What travels through the Raft log: a metadata [`Command`] wrapped with
//! what makes it safe to replicate, and the answer every node computes.

use crate::meta::{Command, Outcome, Rejection};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The format of proposals this release writes. A node that finds a newer
/// format in its log stops applying rather than guess (DESIGN §3).
pub const FORMAT: u16 = 1;

/// How long a proposal's answer is remembered, so that a proposal resent
/// after a lost reply (leader change, timeout) is answered, not applied
/// again.
pub const ANSWER_RETENTION_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub format: u16,
    /// Chosen by the node that proposes; the same on every resend.
    pub id: String,
    /// Wall-clock time of the proposer when it was made (for retention only).
    pub issued_ms: i64,
    pub command: Command,
}

impl Proposal {
    pub fn new(command: Command) -> Self {
        Proposal {
            format: FORMAT,
            id: uuid::Uuid::new_v4().simple().to_string(),
            issued_ms: now_ms(),
            command,
        }
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "proposal {} (format {})", self.id, self.format)
    }
}

/// What applying a log entry produced: the command's result for normal
/// entries, nothing for the entries Raft writes itself (blank, membership).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer(pub Option<Result<Outcome, Rejection>>);

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The encoding of log entries, RPC bodies and stored raft values:
/// MessagePack with field names, so that fields added later with
/// `#[serde(default)]` still decode.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(value)
}

pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}
