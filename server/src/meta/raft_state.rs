//! What the replication layer keeps inside the metadata database, written in
//! the same transactions as the commands it applies, so the data and the
//! position in the log can never disagree after a crash. The values are
//! opaque bytes here: their meaning belongs to `crate::cluster`.

use super::MetaError;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

/// A named value (`applied` log id, `membership`, …).
pub fn value(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>, MetaError> {
    Ok(conn
        .prepare_cached("SELECT value FROM raft_state WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

pub fn set_value(tx: &Transaction, name: &str, value: &[u8]) -> Result<(), MetaError> {
    tx.prepare_cached(
        "INSERT INTO raft_state(name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![name, value])?;
    Ok(())
}

/// The answer recorded for an already applied proposal, so that a proposal
/// retried after a lost reply is answered again instead of applied twice.
pub fn proposal_answer(tx: &Transaction, id: &str) -> Result<Option<Vec<u8>>, MetaError> {
    Ok(tx
        .prepare_cached("SELECT answer FROM proposals WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

pub fn record_proposal(
    tx: &Transaction,
    id: &str,
    issued_ms: i64,
    answer: &[u8],
) -> Result<(), MetaError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO proposals(id, issued_ms, answer) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id, issued_ms, answer])?;
    Ok(())
}

/// Forgets proposals issued before `before_ms`: a retry never comes that late.
pub fn forget_proposals(tx: &Transaction, before_ms: i64) -> Result<usize, MetaError> {
    Ok(tx
        .prepare_cached("DELETE FROM proposals WHERE issued_ms < ?1")?
        .execute([before_ms])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Metadata;

    #[tokio::test]
    async fn values_and_proposals_round_trip() {
        let meta = Metadata::in_memory().unwrap();
        meta.write(|tx| {
            set_value(tx, "applied", b"one")?;
            set_value(tx, "applied", b"two")?;
            record_proposal(tx, "p1", 10, b"answer-1")?;
            record_proposal(tx, "p2", 20, b"answer-2")?;
            assert_eq!(proposal_answer(tx, "p1")?, Some(b"answer-1".to_vec()));
            assert_eq!(forget_proposals(tx, 15)?, 1);
            assert_eq!(proposal_answer(tx, "p1")?, None);
            Ok(())
        })
        .await
        .unwrap();
        let applied = meta.read(|c| value(c, "applied")).await.unwrap();
        assert_eq!(applied, Some(b"two".to_vec()));
        assert_eq!(meta.read(|c| value(c, "missing")).await.unwrap(), None);
    }
}
