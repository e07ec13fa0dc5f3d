//! Replay determinism: the same log applied to fresh state machines gives
//! identical metadata, row for row, whatever the batching — including
//! refused commands, resent proposals, inline blobs and membership entries.

use super::state_machine::apply_entries;
use super::types::{Entry, LogId};
use crate::acl::{Acl, Owner};
use crate::cluster::proposal::Proposal;
use crate::meta::Metadata;
use crate::meta::command::{Command, InlineBlob, NewMarker, WriteCondition};
use crate::meta::model::{BucketRecord, Extent, NewObject, ObjectMeta, Placement, StoredBlob};
use crate::storage::BlobId;
use openraft::entry::RaftEntry;
use rusqlite::types::Value;

fn owner() -> Owner {
    Owner {
        id: "alice".into(),
        display_name: "alice".into(),
    }
}

fn put(key: &str, version: &str, condition: WriteCondition, inline: bool) -> Command {
    let blob = BlobId::random();
    let data = format!("bytes of {key}").into_bytes();
    let command = Command::PutObject {
        object: NewObject {
            bucket: "b".into(),
            key: key.into(),
            size: data.len() as u64,
            etag: format!("\"{key}-{version}\""),
            modified_ms: 5,
            meta: ObjectMeta {
                storage_class: "STANDARD".into(),
                owner: owner(),
                acl: Acl::private(&owner()),
                ..Default::default()
            },
            extents: vec![Extent {
                blob: blob.clone(),
                blob_offset: 0,
                length: data.len() as u64,
                seal: None,
                place: Placement {
                    nodes: if inline { vec![] } else { vec![1] },
                    inline,
                    stored: Some(StoredBlob {
                        len: data.len() as u64,
                        crc32c: 7,
                    }),
                },
            }],
        },
        condition,
        source_id: None,
        version_id: version.into(),
    };
    if inline {
        command.with_inline(vec![InlineBlob { blob, data }])
    } else {
        command
    }
}

/// A log with every kind of entry worth replaying.
fn log() -> Vec<Entry> {
    let create = |key: &str, version: &str| {
        put(
            key,
            version,
            WriteCondition {
                if_match: None,
                if_none_match: Some("*".into()),
            },
            true,
        )
    };
    let mut proposals = vec![
        Proposal::new(Command::CreateBucket(BucketRecord {
            name: "b".into(),
            owner: owner(),
            region: "us-east-1".into(),
            created_ms: 1,
            acl: Acl::private(&owner()),
            settings: Default::default(),
        })),
        Proposal::new(put("plain", "v1", WriteCondition::default(), false)),
        Proposal::new(create("small", "v2")),
        // Refused: the key exists. Applied as a rejection, changing nothing.
        Proposal::new(create("small", "v3")),
        Proposal::new(put("small", "v4", WriteCondition::default(), true)),
        Proposal::new(Command::DeleteObject {
            bucket: "b".into(),
            key: "plain".into(),
            version_id: None,
            if_match: None,
            marker_version_id: "m1".into(),
            marker: NewMarker {
                owner: owner(),
                modified_ms: 9,
            },
            bypass_governance: false,
            if_match_modified_ms: None,
            if_match_size: None,
        }),
        // Refused: no such bucket.
        Proposal::new(Command::DeleteBucket {
            name: "missing".into(),
        }),
    ];
    // A resend of an applied proposal (lost answer): applied once.
    proposals.push(proposals[2].clone());
    let mut entries = vec![Entry::new_blank(log_id(1))];
    entries.push(Entry::new_membership(
        log_id(2),
        openraft::Membership::new_with_defaults(vec![[1u64, 2, 3].into()], []),
    ));
    for (i, proposal) in proposals.into_iter().enumerate() {
        entries.push(Entry::new_normal(log_id(3 + i as u64), proposal));
    }
    entries
}

fn log_id(index: u64) -> LogId {
    LogId::new(
        openraft::vote::leader_id_adv::CommittedLeaderId {
            term: 1,
            node_id: 1,
        },
        index,
    )
}

/// Every row of every table, in a stable order.
async fn dump(meta: &Metadata) -> Vec<(String, Vec<Vec<Value>>)> {
    meta.read(|conn| {
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for table in tables {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\""))?;
            let columns = stmt.column_count();
            let mut rows: Vec<Vec<Value>> = stmt
                .query_map([], |r| (0..columns).map(|i| r.get::<_, Value>(i)).collect())?
                .collect::<Result<_, _>>()?;
            rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
            out.push((table, rows));
        }
        Ok(out)
    })
    .await
    .unwrap()
}

async fn replay(entries: &[Entry], batch: usize) -> Metadata {
    let meta = Metadata::in_memory().unwrap();
    for chunk in entries.chunks(batch) {
        let chunk = chunk.to_vec();
        meta.write(move |tx| apply_entries(tx, chunk))
            .await
            .unwrap();
    }
    meta
}

#[tokio::test]
async fn the_same_log_gives_the_same_metadata() {
    let entries = log();
    let one_by_one = dump(&replay(&entries, 1).await).await;
    let batched = dump(&replay(&entries, 4).await).await;
    let whole = dump(&replay(&entries, entries.len()).await).await;
    assert_eq!(one_by_one, batched);
    assert_eq!(one_by_one, whole);
    // And the log did something: objects, an inline blob, a delete marker,
    // the proposals remembered, the applied position recorded.
    let rows = |name: &str| {
        one_by_one
            .iter()
            .find(|(table, _)| table == name)
            .map(|(_, rows)| rows.len())
            .unwrap_or(0)
    };
    assert_eq!(rows("buckets"), 1);
    assert_eq!(
        rows("objects"),
        1,
        "plain deleted (unversioned bucket), small overwritten"
    );
    assert_eq!(
        rows("inline_blobs"),
        1,
        "the overwritten inline blob was freed"
    );
    assert_eq!(rows("proposals"), 7);
    assert!(rows("raft_state") >= 2);
}
