//! Master key rotation without rewriting data: the data keys wrapped by an
//! old master key are unwrapped and wrapped anew by the caller, then swapped
//! in by one command per batch. Each swap is a compare-and-set on the old
//! wrapped key, so a blob freed or re-keyed meanwhile is simply skipped.

use super::MetaError;
use super::model::ObjectEncryption;
use super::query::encode_json;
use crate::crypto::{KekRef, Seal};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which extents row holds a wrapped key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SealRow {
    Object {
        object_id: i64,
        seq: i64,
    },
    Part {
        upload_id: String,
        number: u32,
        seq: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealUpdate {
    pub row: SealRow,
    pub old: Seal,
    pub new: Seal,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RewrapBatch {
    pub updates: Vec<SealUpdate>,
}

fn decode(json: &str) -> Result<Seal, MetaError> {
    serde_json::from_str(json).map_err(|e| MetaError::Corrupt(format!("extent seal: {e}")))
}

/// Applies a batch; returns how many wrapped keys changed.
pub fn apply(tx: &Transaction, batch: &RewrapBatch) -> Result<usize, MetaError> {
    let mut changed = 0;
    let mut objects = BTreeSet::new();
    let mut uploads = BTreeSet::new();
    for update in &batch.updates {
        let current: Option<Option<String>> = match &update.row {
            SealRow::Object { object_id, seq } => tx
                .prepare_cached("SELECT seal FROM extents WHERE object_id = ?1 AND seq = ?2")?
                .query_row(
                    params![object_id, seq],
                    |r| r.get(0),
                )
                .optional()?,
            SealRow::Part {
                upload_id,
                number,
                seq,
            } => tx
                .prepare_cached("SELECT seal FROM part_extents WHERE upload_id = ?1 AND number = ?2 AND seq = ?3")?
                .query_row(
                    params![upload_id, number, seq],
                    |r| r.get(0),
                )
                .optional()?,
        };
        let Some(Some(current)) = current else {
            continue;
        };
        if decode(&current)? != update.old {
            continue;
        }
        let new = encode_json(&update.new)?;
        match &update.row {
            SealRow::Object { object_id, seq } => {
                tx.prepare_cached(
                    "UPDATE extents SET seal = ?3 WHERE object_id = ?1 AND seq = ?2",
                )?
                .execute(params![object_id, seq, new])?;
                objects.insert(*object_id);
            }
            SealRow::Part {
                upload_id,
                number,
                seq,
            } => {
                tx.prepare_cached("UPDATE part_extents SET seal = ?4 WHERE upload_id = ?1 AND number = ?2 AND seq = ?3")?.execute(
                    params![upload_id, number, seq, new],
                )?;
                uploads.insert(upload_id.clone());
            }
        }
        changed += 1;
    }
    for id in objects {
        report_kms_key(tx, "objects", "id", &id, batch)?;
    }
    for id in uploads {
        report_kms_key(tx, "uploads", "id", &id, batch)?;
    }
    Ok(changed)
}

/// An SSE-KMS object (or upload) reports the key that wraps its data keys:
/// when a batch moved them from one master key to another, so does its
/// reported key id.
fn report_kms_key(
    tx: &Transaction,
    table: &str,
    id_column: &str,
    id: &dyn rusqlite::ToSql,
    batch: &RewrapBatch,
) -> Result<(), MetaError> {
    let json: Option<String> = tx
        .query_row(
            &format!("SELECT meta FROM {table} WHERE {id_column} = ?1"),
            [id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(json) = json else {
        return Ok(());
    };
    let mut value: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| MetaError::Corrupt(format!("{table} meta: {e}")))?;
    // Uploads keep the object meta under "meta"; objects are the meta.
    let meta = if table == "uploads" {
        value.get_mut("meta")
    } else {
        Some(&mut value)
    };
    let Some(meta) = meta else {
        return Ok(());
    };
    let Some(encryption) = meta.get("encryption").cloned() else {
        return Ok(());
    };
    let Ok(ObjectEncryption::Kms {
        key_id,
        context,
        bucket_key,
    }) = serde_json::from_value::<ObjectEncryption>(encryption)
    else {
        return Ok(());
    };
    let moved = batch
        .updates
        .iter()
        .find_map(|u| match (&u.old.kek, &u.new.kek) {
            (KekRef::Master(from), KekRef::Master(to)) if *from == key_id => Some(to.clone()),
            _ => None,
        });
    if let Some(to) = moved {
        meta["encryption"] = serde_json::to_value(ObjectEncryption::Kms {
            key_id: to,
            context,
            bucket_key,
        })
        .map_err(|e| MetaError::Corrupt(e.to_string()))?;
        tx.execute(
            &format!("UPDATE {table} SET meta = ?2 WHERE {id_column} = ?1"),
            params![id, encode_json(&value)?],
        )?;
    }
    Ok(())
}

/// Up to `limit` wrapped keys held by a master key in `from`, after `after`
/// (object extents first, then parts), for the next rewrap batch.
pub fn seals_to_rewrap(
    conn: &Connection,
    from: &[String],
    after: Option<&SealRow>,
    limit: usize,
) -> Result<Vec<(SealRow, Seal)>, MetaError> {
    let wanted = |seal: &Seal| matches!(&seal.kek, KekRef::Master(id) if from.contains(id));
    let mut found = Vec::new();
    let (object_after, part_after) = match after {
        None => (Some((0i64, -1i64)), None),
        Some(SealRow::Object { object_id, seq }) => (Some((*object_id, *seq)), None),
        Some(SealRow::Part {
            upload_id,
            number,
            seq,
        }) => (None, Some((upload_id.clone(), *number, *seq))),
    };
    if let Some((object_id, seq)) = object_after {
        let mut stmt = conn.prepare_cached(
            "SELECT object_id, seq, seal FROM extents
             WHERE seal IS NOT NULL AND (object_id, seq) > (?1, ?2)
             ORDER BY object_id, seq LIMIT ?3",
        )?;
        let mut cursor = (object_id, seq);
        loop {
            let rows: Vec<(i64, i64, String)> = stmt
                .query_map(params![cursor.0, cursor.1, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            let done = rows.len() < limit;
            for (object_id, seq, json) in rows {
                cursor = (object_id, seq);
                let seal = decode(&json)?;
                if wanted(&seal) {
                    found.push((SealRow::Object { object_id, seq }, seal));
                    if found.len() == limit {
                        return Ok(found);
                    }
                }
            }
            if done {
                break;
            }
        }
    }
    let mut cursor = part_after.unwrap_or((String::new(), 0, -1));
    let mut stmt = conn.prepare_cached(
        "SELECT upload_id, number, seq, seal FROM part_extents
         WHERE seal IS NOT NULL AND (upload_id, number, seq) > (?1, ?2, ?3)
         ORDER BY upload_id, number, seq LIMIT ?4",
    )?;
    loop {
        let rows: Vec<(String, u32, i64, String)> = stmt
            .query_map(params![cursor.0, cursor.1, cursor.2, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        let done = rows.len() < limit;
        for (upload_id, number, seq, json) in rows {
            cursor = (upload_id.clone(), number, seq);
            let seal = decode(&json)?;
            if wanted(&seal) {
                found.push((
                    SealRow::Part {
                        upload_id,
                        number,
                        seq,
                    },
                    seal,
                ));
                if found.len() == limit {
                    return Ok(found);
                }
            }
        }
        if done {
            return Ok(found);
        }
    }
}

/// How many wrapped data keys each master key holds (customer-wrapped keys
/// are not counted), so an operator can tell when an old key is unused.
pub fn master_key_usage(conn: &Connection) -> Result<Vec<(String, u64)>, MetaError> {
    let mut usage = std::collections::BTreeMap::<String, u64>::new();
    for table in ["extents", "part_extents"] {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT json_extract(seal, '$.kek.master'), COUNT(*) FROM {table}
             WHERE seal IS NOT NULL GROUP BY 1"
        ))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (id, n) in rows {
            if let Some(id) = id {
                *usage.entry(id).or_default() += n as u64;
            }
        }
    }
    Ok(usage.into_iter().collect())
}
