//! Listing cost with many versions: fills an in-memory metadata store with
//! `--keys` keys of `--versions` versions each (every tenth key's latest a
//! delete marker), then times ListObjectsV2 pages and ListObjectVersions
//! pages from the start, the middle and the end of the bucket.
//!
//!   cargo run --release -p bleepstore --example bench_listing -- --keys 100000 --versions 10
//!
//! Prints figures; asserts nothing about time.

use bleepstore::acl::{Acl, Owner};
use bleepstore::meta::command::NewMarker;
use bleepstore::meta::model::{
    BucketRecord, ListQuery, NewObject, ObjectMeta, VersionQuery, Versioning,
};
use bleepstore::meta::{Command, Metadata, WriteCondition, new_version_id, query};
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn owner() -> Owner {
    Owner {
        id: "bench".into(),
        display_name: "bench".into(),
    }
}

fn version_of(key: &str) -> Command {
    Command::PutObject {
        object: NewObject {
            bucket: "b".into(),
            key: key.into(),
            size: 0,
            etag: "\"d41d8cd98f00b204e9800998ecf8427e\"".into(),
            modified_ms: 1,
            meta: ObjectMeta {
                storage_class: "STANDARD".into(),
                owner: owner(),
                acl: Acl::private(&owner()),
                ..Default::default()
            },
            extents: Vec::new(),
        },
        condition: WriteCondition::default(),
        source_id: None,
        version_id: new_version_id(),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys = arg("--keys", 100_000);
    let versions = arg("--versions", 10);
    let pages = arg("--pages", 20);
    let meta = Metadata::in_memory()?;
    meta.execute(Command::CreateBucket(BucketRecord {
        name: "b".into(),
        owner: owner(),
        region: "us-east-1".into(),
        created_ms: 1,
        acl: Acl::private(&owner()),
        settings: Default::default(),
    }))
    .await?;
    meta.execute(Command::SetBucketVersioning {
        name: "b".into(),
        versioning: Versioning::Enabled,
    })
    .await?;
    let filling = Instant::now();
    for round in 0..versions {
        for k in 0..keys {
            let key = format!("dir-{:03}/key-{k:08}", k % 500);
            meta.execute(version_of(&key)).await?;
            if round + 1 == versions && k % 10 == 0 {
                meta.execute(Command::DeleteObject {
                    bucket: "b".into(),
                    key,
                    version_id: None,
                    if_match: None,
                    marker_version_id: new_version_id(),
                    marker: NewMarker {
                        owner: owner(),
                        modified_ms: 2,
                    },
                    bypass_governance: false,
                    if_match_modified_ms: None,
                    if_match_size: None,
                })
                .await?;
            }
        }
    }
    let rows = keys * versions + keys / 10;
    println!(
        "filled {rows} versions of {keys} keys in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    for (label, start) in [
        ("start", None),
        ("middle", Some("dir-250/".to_string())),
        ("end", Some("dir-499/key-9".to_string())),
    ] {
        let after = start.clone();
        let timed = Instant::now();
        for _ in 0..pages {
            let q = ListQuery {
                after: after.clone(),
                max_keys: 1000,
                ..Default::default()
            };
            meta.read(move |c| query::list_objects(c, "b", &q)).await?;
        }
        let objects = timed.elapsed().as_secs_f64() * 1000.0 / pages as f64;
        let timed = Instant::now();
        for _ in 0..pages {
            let q = VersionQuery {
                key_marker: start.clone(),
                max_keys: 1000,
                ..Default::default()
            };
            meta.read(move |c| query::list_versions(c, "b", &q)).await?;
        }
        let versions_ms = timed.elapsed().as_secs_f64() * 1000.0 / pages as f64;
        let timed = Instant::now();
        for _ in 0..pages {
            let q = ListQuery {
                after: after.clone(),
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            };
            meta.read(move |c| query::list_objects(c, "b", &q)).await?;
        }
        let rolled = timed.elapsed().as_secs_f64() * 1000.0 / pages as f64;
        println!(
            "{label:>6}: ListObjectsV2 page of 1000 {objects:7.2} ms | ListObjectVersions page of 1000 {versions_ms:7.2} ms | delimiter '/' page {rolled:7.2} ms"
        );
    }
    Ok(())
}
