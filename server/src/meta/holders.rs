//! Which nodes hold each blob's copies, and which members are draining: the
//! replicated facts the blob repair works from (DESIGN §7). A blob's holders
//! live in the `place` of every extent row that references it (an object's
//! and an upload part's), so every change rewrites all of them together.

use super::MetaError;
use super::model::Placement;
use super::query::encode_json;
use crate::storage::BlobId;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Nodes gaining and losing a copy of one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderChange {
    pub blob: BlobId,
    /// Nodes that now hold a durable, checked copy.
    pub add: Vec<u64>,
    /// Nodes whose copy is surplus, lost or corrupt.
    pub remove: Vec<u64>,
}

/// A copy some node must delete because a command dropped it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedCopy {
    pub blob: BlobId,
    pub node: u64,
}

/// A blob stored outside the metadata, with where it is and what it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Holding {
    pub blob: BlobId,
    pub place: Placement,
}

/// The tables of extent rows, each with its `blob` index.
const TABLES: [&str; 2] = ["extents", "part_extents"];

fn decode_place(json: Option<String>) -> Result<Placement, MetaError> {
    json.map(|json| {
        serde_json::from_str(&json).map_err(|e| MetaError::Corrupt(format!("extent place: {e}")))
    })
    .transpose()
    .map(Option::unwrap_or_default)
}

/// The placement every extent row of `blob` shares, if any row references it.
fn current_place(conn: &Connection, blob: &BlobId) -> Result<Option<Placement>, MetaError> {
    for table in TABLES {
        let json: Option<Option<String>> = conn
            .prepare_cached(&format!(
                "SELECT place FROM {table} WHERE blob = ?1 LIMIT 1"
            ))?
            .query_row([blob.as_str()], |r| r.get(0))
            .optional()?;
        if let Some(json) = json {
            return decode_place(json).map(Some);
        }
    }
    Ok(None)
}

/// Applies `changes`. A change never removes a blob's last listed holder
/// (a lost blob stays listed where it was, so reads report it unavailable
/// rather than missing); copies added to a blob nothing references any
/// more (freed while it was being copied) are dropped at once.
pub fn apply_changes(
    tx: &Transaction,
    changes: &[HolderChange],
) -> Result<Vec<DroppedCopy>, MetaError> {
    let mut dropped = Vec::new();
    for change in changes {
        let drop = |node: u64| DroppedCopy {
            blob: change.blob.clone(),
            node,
        };
        let Some(mut place) = current_place(tx, &change.blob)? else {
            dropped.extend(change.add.iter().copied().map(drop));
            continue;
        };
        if place.inline {
            continue;
        }
        let mut nodes: BTreeSet<u64> = place.nodes.iter().copied().collect();
        nodes.extend(&change.add);
        let kept: BTreeSet<u64> = nodes
            .iter()
            .copied()
            .filter(|n| !change.remove.contains(n))
            .collect();
        if !kept.is_empty() {
            dropped.extend(nodes.difference(&kept).copied().map(drop));
            nodes = kept;
        }
        place.nodes = nodes.into_iter().collect();
        let json = encode_json(&place)?;
        for table in TABLES {
            tx.prepare_cached(&format!("UPDATE {table} SET place = ?2 WHERE blob = ?1"))?
                .execute(params![change.blob.as_str(), json])?;
        }
    }
    Ok(dropped)
}

/// Marks a member as draining (its copies move elsewhere before it leaves),
/// or clears the mark.
pub fn set_draining(tx: &Transaction, node: u64, draining: bool) -> Result<(), MetaError> {
    if draining {
        tx.prepare_cached("INSERT OR IGNORE INTO draining(node) VALUES (?1)")?
            .execute([node as i64])?;
    } else {
        tx.prepare_cached("DELETE FROM draining WHERE node = ?1")?
            .execute([node as i64])?;
    }
    Ok(())
}

/// The members being drained.
pub fn draining(conn: &Connection) -> Result<BTreeSet<u64>, MetaError> {
    let mut stmt = conn.prepare_cached("SELECT node FROM draining")?;
    let nodes = stmt
        .query_map([], |r| r.get::<_, i64>(0))?
        .map(|n| n.map(|n| n as u64))
        .collect::<Result<_, _>>()?;
    Ok(nodes)
}

/// Up to `limit` blobs kept in blob stores (not inline), in id order after
/// `after`, each with its placement: the repair's and the scrub's scan.
pub fn holdings(
    conn: &Connection,
    after: Option<&BlobId>,
    limit: usize,
) -> Result<Vec<Holding>, MetaError> {
    let after = after.map(BlobId::as_str).unwrap_or("");
    let mut found: std::collections::BTreeMap<BlobId, Placement> = Default::default();
    for table in TABLES {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT blob, place FROM {table} WHERE blob > ?1 GROUP BY blob ORDER BY blob LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        for row in rows {
            let (blob, json) = row?;
            let blob = BlobId::parse(&blob)
                .ok_or_else(|| MetaError::Corrupt(format!("bad blob id {blob:?}")))?;
            let place = decode_place(json)?;
            if !place.inline {
                found.entry(blob).or_insert(place);
            }
        }
    }
    // Each table gave its first `limit`; only the first `limit` of the
    // union are certainly complete.
    Ok(found
        .into_iter()
        .take(limit)
        .map(|(blob, place)| Holding { blob, place })
        .collect())
}

/// Whether metadata lists `blob` as kept on `node` (or references it with
/// no holders recorded: blobs written before placements were, which live
/// where they were written). Anything else on a node is an orphan there.
pub fn kept_on(conn: &Connection, blob: &BlobId, node: u64) -> Result<bool, MetaError> {
    for table in TABLES {
        let mut stmt =
            conn.prepare_cached(&format!("SELECT place FROM {table} WHERE blob = ?1"))?;
        let places = stmt.query_map([blob.as_str()], |r| r.get::<_, Option<String>>(0))?;
        for json in places {
            let place = decode_place(json?)?;
            if place.nodes.is_empty() || place.nodes.contains(&node) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
