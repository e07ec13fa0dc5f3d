use super::command::{DeleteEntry, NewMarker};
use super::model::*;
use super::*;
use crate::acl::{Acl, Owner};
use crate::storage::BlobId;

fn marker() -> NewMarker {
    NewMarker {
        owner: owner("alice"),
        modified_ms: 10,
    }
}

fn delete_cmd(key: &str, if_match: Option<String>) -> Command {
    Command::DeleteObject {
        bucket: "b".into(),
        key: key.into(),
        version_id: None,
        if_match,
        marker_version_id: new_version_id(),
        marker: marker(),
        bypass_governance: false,
        if_match_modified_ms: None,
        if_match_size: None,
    }
}

fn owner(id: &str) -> Owner {
    Owner {
        id: id.into(),
        display_name: id.into(),
    }
}

fn bucket(name: &str, who: &str) -> Command {
    Command::CreateBucket(BucketRecord {
        name: name.into(),
        owner: owner(who),
        region: "us-east-1".into(),
        created_ms: 1,
        acl: Acl::private(&owner(who)),
        settings: Default::default(),
    })
}

fn object(bucket: &str, key: &str, blob: Option<BlobId>) -> NewObject {
    let extents: Vec<Extent> = blob
        .into_iter()
        .map(|blob| Extent {
            blob,
            blob_offset: 0,
            length: 3,
            seal: None,
            place: Default::default(),
        })
        .collect();
    NewObject {
        bucket: bucket.into(),
        key: key.into(),
        size: if extents.is_empty() { 0 } else { 3 },
        etag: format!("\"etag-{key}\""),
        modified_ms: 2,
        meta: ObjectMeta {
            storage_class: "STANDARD".into(),
            owner: owner("alice"),
            acl: Acl::private(&owner("alice")),
            ..Default::default()
        },
        extents,
    }
}

fn put(bucket: &str, key: &str) -> Command {
    Command::PutObject {
        object: object(bucket, key, Some(BlobId::random())),
        condition: WriteCondition::default(),
        source_id: None,
        version_id: new_version_id(),
    }
}

async fn store_with(keys: &[&str]) -> Metadata {
    let meta = Metadata::in_memory().unwrap();
    meta.execute(bucket("b", "alice")).await.unwrap();
    for key in keys {
        meta.execute(put("b", key)).await.unwrap();
    }
    meta
}

async fn list(meta: &Metadata, query: ListQuery) -> ListPage {
    meta.read(move |c| query::list_objects(c, "b", &query))
        .await
        .unwrap()
}

fn positions(page: &ListPage) -> Vec<String> {
    page.entries
        .iter()
        .map(|e| e.position().to_string())
        .collect()
}

#[tokio::test]
async fn bucket_lifecycle_and_ownership() {
    let meta = Metadata::in_memory().unwrap();
    meta.execute(bucket("b", "alice")).await.unwrap();
    assert!(matches!(
        meta.execute(bucket("b", "alice")).await,
        Err(MetaError::BucketExists {
            owned_by_requester: true
        })
    ));
    assert!(matches!(
        meta.execute(bucket("b", "bob")).await,
        Err(MetaError::BucketExists {
            owned_by_requester: false
        })
    ));
    meta.execute(put("b", "k")).await.unwrap();
    assert!(matches!(
        meta.execute(Command::DeleteBucket { name: "b".into() })
            .await,
        Err(MetaError::BucketNotEmpty)
    ));
    let outcome = meta.execute(delete_cmd("k", None)).await.unwrap();
    assert_eq!(outcome.freed.len(), 1, "the object's blob is freed");
    meta.execute(Command::DeleteBucket { name: "b".into() })
        .await
        .unwrap();
    assert!(matches!(
        meta.execute(put("b", "k")).await,
        Err(MetaError::NoSuchBucket)
    ));
}

#[tokio::test]
async fn overwrite_frees_old_blob_but_not_shared_ones() {
    let meta = store_with(&[]).await;
    let blob = BlobId::random();
    let first = meta
        .execute(Command::PutObject {
            object: object("b", "a", Some(blob.clone())),
            condition: WriteCondition::default(),
            source_id: None,
            version_id: new_version_id(),
        })
        .await
        .unwrap();
    // A copy shares the blob.
    meta.execute(Command::PutObject {
        object: object("b", "copy", Some(blob.clone())),
        condition: WriteCondition::default(),
        source_id: first.object_id,
        version_id: new_version_id(),
    })
    .await
    .unwrap();
    let over = meta.execute(put("b", "a")).await.unwrap();
    assert!(over.freed.is_empty(), "the copy still references the blob");
    let gone = meta.execute(delete_cmd("copy", None)).await.unwrap();
    assert_eq!(gone.freed, vec![blob]);
}

#[tokio::test]
async fn copy_of_a_vanished_source_is_refused() {
    let meta = store_with(&["src"]).await;
    let source = meta
        .read(|c| query::get_object(c, "b", "src", None))
        .await
        .unwrap()
        .unwrap();
    meta.execute(delete_cmd("src", None)).await.unwrap();
    let result = meta
        .execute(Command::PutObject {
            object: object("b", "dst", Some(source.extents[0].blob.clone())),
            condition: WriteCondition::default(),
            source_id: Some(source.id),
            version_id: new_version_id(),
        })
        .await;
    assert!(matches!(result, Err(MetaError::SourceChanged)));
}

#[tokio::test]
async fn conditional_writes_are_checked_in_the_command() {
    let meta = store_with(&["k"]).await;
    let if_none = |key: &str| Command::PutObject {
        object: object("b", key, None),
        condition: WriteCondition {
            if_match: None,
            if_none_match: Some("*".into()),
        },
        source_id: None,
        version_id: new_version_id(),
    };
    assert!(matches!(
        meta.execute(if_none("k")).await,
        Err(MetaError::PreconditionFailed)
    ));
    meta.execute(if_none("new")).await.unwrap();
    let if_match = |etag: &str| Command::PutObject {
        object: object("b", "k", None),
        condition: WriteCondition {
            if_match: Some(etag.into()),
            if_none_match: None,
        },
        source_id: None,
        version_id: new_version_id(),
    };
    assert!(matches!(
        meta.execute(if_match("\"wrong\"")).await,
        Err(MetaError::PreconditionFailed)
    ));
    meta.execute(if_match("\"etag-k\"")).await.unwrap();
    let delete = |etag: &str| delete_cmd("k", Some(etag.into()));
    assert!(matches!(
        meta.execute(delete("\"nope\"")).await,
        Err(MetaError::PreconditionFailed)
    ));
    meta.execute(delete("*")).await.unwrap();
    assert!(matches!(
        meta.execute(delete("*")).await,
        Err(MetaError::NoSuchKey)
    ));
}

#[tokio::test]
async fn listing_orders_by_utf8_bytes_and_paginates() {
    let keys = ["b", "a", "ä", "Z", "a/b", "a0", "日本", "\u{10348}", "~"];
    let meta = store_with(&keys).await;
    let mut sorted: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = list(
            &meta,
            ListQuery {
                after: after.clone(),
                max_keys: 2,
                ..Default::default()
            },
        )
        .await;
        seen.extend(positions(&page));
        if !page.truncated {
            break;
        }
        after = seen.last().cloned();
    }
    assert_eq!(seen, sorted);
}

#[tokio::test]
async fn delimiter_rolls_up_common_prefixes() {
    let meta = store_with(&[
        "photos/2024/a.jpg",
        "photos/2024/b.jpg",
        "photos/2025/c.jpg",
        "photos/index.html",
        "readme",
        "videos/x.mp4",
    ])
    .await;
    let page = list(
        &meta,
        ListQuery {
            delimiter: Some("/".into()),
            max_keys: 1000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(positions(&page), vec!["photos/", "readme", "videos/"]);
    assert!(!page.truncated);

    let page = list(
        &meta,
        ListQuery {
            prefix: "photos/".into(),
            delimiter: Some("/".into()),
            max_keys: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(positions(&page), vec!["photos/2024/", "photos/2025/"]);
    assert!(page.truncated);
    let page = list(
        &meta,
        ListQuery {
            prefix: "photos/".into(),
            delimiter: Some("/".into()),
            max_keys: 2,
            after: Some("photos/2025/".into()),
        },
    )
    .await;
    assert_eq!(positions(&page), vec!["photos/index.html"]);
    assert!(!page.truncated);

    // A marker inside a rolled-up prefix skips the rest of it.
    let page = list(
        &meta,
        ListQuery {
            delimiter: Some("/".into()),
            max_keys: 10,
            after: Some("photos/2024/a.jpg".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(positions(&page), vec!["readme", "videos/"]);

    // Multi-character delimiters work too.
    let page = list(
        &meta,
        ListQuery {
            delimiter: Some("20".into()),
            prefix: "photos/".into(),
            max_keys: 10,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(positions(&page), vec!["photos/20", "photos/index.html"]);
}

#[tokio::test]
async fn max_keys_zero_returns_nothing() {
    let meta = store_with(&["a"]).await;
    let page = list(
        &meta,
        ListQuery {
            max_keys: 0,
            ..Default::default()
        },
    )
    .await;
    assert!(page.entries.is_empty());
    assert!(!page.truncated);
}

#[tokio::test]
async fn delete_objects_reports_each_key() {
    let meta = store_with(&["a", "b"]).await;
    let entry = |key: &str| DeleteEntry {
        key: key.into(),
        version_id: None,
        marker_version_id: new_version_id(),
        condition: Default::default(),
    };
    let outcome = meta
        .execute(Command::DeleteObjects {
            bucket: "b".into(),
            entries: vec![entry("a"), entry("missing"), entry("b")],
            marker: marker(),
            bypass_governance: false,
        })
        .await
        .unwrap();
    let keys: Vec<(&str, bool)> = outcome
        .deleted
        .iter()
        .map(|r| {
            (
                r.key.as_str(),
                r.outcome.as_ref().is_ok_and(|d| !d.delete_marker),
            )
        })
        .collect();
    assert_eq!(keys, vec![("a", true), ("missing", true), ("b", true)]);
    assert_eq!(outcome.freed.len(), 2);
    let stats = meta.read(query::stats).await.unwrap();
    assert_eq!((stats.buckets, stats.objects), (1, 0));
}

#[tokio::test]
async fn on_disk_database_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    {
        let meta = Metadata::open(&path).unwrap();
        meta.execute(bucket("b", "alice")).await.unwrap();
        meta.execute(put("b", "k")).await.unwrap();
    }
    let meta = Metadata::open(&path).unwrap();
    let found = meta
        .read(|c| query::get_object(c, "b", "k", None))
        .await
        .unwrap();
    assert_eq!(found.unwrap().size, 3);
}

fn upload_record(id: &str, key: &str, initiated_ms: i64) -> UploadRecord {
    UploadRecord {
        id: id.into(),
        bucket: "b".into(),
        key: key.into(),
        initiated_ms,
        meta: ObjectMeta {
            storage_class: "STANDARD".into(),
            owner: owner("alice"),
            acl: Acl::private(&owner("alice")),
            ..Default::default()
        },
        checksum_algorithm: None,
        checksum_type: None,
    }
}

fn md5_etag(n: u8) -> String {
    format!("\"{}\"", hex::encode([n; 16]))
}

fn part(upload: &str, number: u32, size: u64, blob: BlobId) -> Command {
    Command::PutPart {
        upload_id: upload.into(),
        number,
        size,
        etag: md5_etag(number as u8),
        modified_ms: 1,
        checksum: None,
        extents: vec![Extent {
            blob,
            blob_offset: 0,
            length: size,
            seal: None,
            place: Default::default(),
        }],
    }
}

fn complete(upload: &str, numbers: &[u32], min: u64) -> Command {
    Command::CompleteUpload {
        upload_id: upload.into(),
        bucket: "b".into(),
        key: "k".into(),
        parts: numbers
            .iter()
            .map(|n| CompletedPart {
                number: *n,
                etag: md5_etag(*n as u8),
                checksum: None,
            })
            .collect(),
        min_part_size: min,
        condition: WriteCondition::default(),
        modified_ms: 5,
        expected_checksum: None,
        version_id: new_version_id(),
        default_retention: None,
    }
}

fn rejected_code(result: Result<Outcome, MetaError>) -> Rule {
    match result {
        Err(MetaError::Rejected(e)) => e.rule,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn multipart_completion_rules() {
    let meta = store_with(&[]).await;
    meta.execute(Command::CreateUpload(upload_record("u1", "k", 1)))
        .await
        .unwrap();
    let (b1, b2, b3) = (BlobId::random(), BlobId::random(), BlobId::random());
    meta.execute(part("u1", 1, 10, b1.clone())).await.unwrap();
    meta.execute(part("u1", 2, 10, b2.clone())).await.unwrap();
    // Re-uploading part 2 replaces it and frees the old blob.
    let replaced = meta.execute(part("u1", 2, 4, b3.clone())).await.unwrap();
    assert_eq!(replaced.freed, vec![b2]);

    assert_eq!(
        rejected_code(meta.execute(complete("u1", &[2, 1], 1)).await),
        Rule::InvalidPartOrder
    );
    assert_eq!(
        rejected_code(meta.execute(complete("u1", &[1, 3], 1)).await),
        Rule::InvalidPart
    );
    assert_eq!(
        rejected_code(meta.execute(complete("u1", &[1, 2], 11)).await),
        Rule::EntityTooSmall
    );
    let mut wrong_etag = complete("u1", &[1], 1);
    if let Command::CompleteUpload { parts, .. } = &mut wrong_etag {
        parts[0].etag = "\"00\"".into();
    }
    assert_eq!(
        rejected_code(meta.execute(wrong_etag).await),
        Rule::InvalidPart
    );

    // Completing with part 1 only: part 2's blob is freed, part 1's is the object.
    let done = meta.execute(complete("u1", &[1], 11)).await.unwrap();
    assert_eq!(done.freed, vec![b3]);
    let (etag, _) = done.completed.unwrap();
    assert!(etag.ends_with("-1\""), "{etag}");
    let object = meta
        .read(|c| query::get_object(c, "b", "k", None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(object.size, 10);
    assert_eq!(object.extents[0].blob, b1);
    assert_eq!(object.meta.parts.len(), 1);
    // A retried completion answers with the same object.
    let retried = meta.execute(complete("u1", &[1], 1)).await.unwrap();
    assert_eq!(retried.completed.unwrap().0, etag);
    assert!(retried.freed.is_empty());
    // Once another write replaces it, the upload is simply gone.
    meta.execute(put("b", "k")).await.unwrap();
    assert!(matches!(
        meta.execute(complete("u1", &[1], 1)).await,
        Err(MetaError::NoSuchUpload)
    ));
    assert!(matches!(
        meta.execute(part("u1", 3, 1, BlobId::random())).await,
        Err(MetaError::NoSuchUpload)
    ));
}

#[tokio::test]
async fn abort_and_expiry_free_part_blobs() {
    let meta = store_with(&[]).await;
    meta.execute(Command::CreateUpload(upload_record("old", "k", 100)))
        .await
        .unwrap();
    meta.execute(Command::CreateUpload(upload_record("new", "k", 10_000)))
        .await
        .unwrap();
    let (a, b) = (BlobId::random(), BlobId::random());
    meta.execute(part("old", 1, 5, a.clone())).await.unwrap();
    meta.execute(part("new", 1, 5, b.clone())).await.unwrap();
    let expired = meta
        .execute(Command::AbortExpiredUploads {
            initiated_before_ms: 1000,
        })
        .await
        .unwrap();
    assert_eq!((expired.count, expired.freed), (1, vec![a]));
    assert!(matches!(
        meta.execute(Command::AbortUpload {
            upload_id: "new".into(),
            bucket: "b".into(),
            key: "other-key".into(),
        })
        .await,
        Err(MetaError::NoSuchUpload)
    ));
    let aborted = meta
        .execute(Command::AbortUpload {
            upload_id: "new".into(),
            bucket: "b".into(),
            key: "k".into(),
        })
        .await
        .unwrap();
    assert_eq!(aborted.freed, vec![b]);
}

#[tokio::test]
async fn upload_listing_rolls_up_and_paginates() {
    let meta = store_with(&[]).await;
    for (i, key) in ["a/1", "a/2", "b", "c"].iter().enumerate() {
        meta.execute(Command::CreateUpload(upload_record(
            &format!("id{i}"),
            key,
            i as i64,
        )))
        .await
        .unwrap();
    }
    let page = meta
        .read(|c| {
            query::list_uploads(
                c,
                "b",
                &UploadListQuery {
                    delimiter: Some("/".into()),
                    max_uploads: 2,
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    assert!(page.truncated);
    assert_eq!(page.entries.len(), 2);
    assert_eq!(page.entries[0], UploadEntry::Prefix("a/".into()));
    let page = meta
        .read(|c| {
            query::list_uploads(
                c,
                "b",
                &UploadListQuery {
                    key_marker: Some("b".into()),
                    upload_id_marker: Some("id2".into()),
                    max_uploads: 10,
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    let keys: Vec<&str> = page
        .entries
        .iter()
        .filter_map(|e| match e {
            UploadEntry::Upload(u) => Some(u.key.as_str()),
            UploadEntry::Prefix(_) => None,
        })
        .collect();
    assert_eq!(keys, vec!["c"]);
}

#[tokio::test]
async fn many_uploads_of_one_key_page_through_one_at_a_time() {
    let meta = store_with(&[]).await;
    for i in 0..5 {
        meta.execute(Command::CreateUpload(upload_record(
            &format!("id{i}"),
            "same",
            1,
        )))
        .await
        .unwrap();
    }
    meta.execute(Command::CreateUpload(upload_record("id9", "zz", 2)))
        .await
        .unwrap();
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    let mut seen = Vec::new();
    loop {
        let (k, u) = (key_marker.clone(), id_marker.clone());
        let page = meta
            .read(move |c| {
                query::list_uploads(
                    c,
                    "b",
                    &UploadListQuery {
                        key_marker: k,
                        upload_id_marker: u,
                        max_uploads: 1,
                        ..Default::default()
                    },
                )
            })
            .await
            .unwrap();
        for entry in &page.entries {
            if let UploadEntry::Upload(u) = entry {
                seen.push(u.id.clone());
                key_marker = Some(u.key.clone());
                id_marker = Some(u.id.clone());
            }
        }
        if !page.truncated {
            break;
        }
        assert!(seen.len() < 10, "the listing does not advance: {seen:?}");
    }
    assert_eq!(seen, vec!["id0", "id1", "id2", "id3", "id4", "id9"]);
}

#[tokio::test]
async fn replacing_an_object_with_a_copy_of_itself_keeps_its_blob() {
    let meta = store_with(&["k"]).await;
    let current = meta
        .read(|c| query::get_object(c, "b", "k", None))
        .await
        .unwrap()
        .unwrap();
    let outcome = meta
        .execute(Command::PutObject {
            object: object("b", "k", Some(current.extents[0].blob.clone())),
            condition: WriteCondition::default(),
            source_id: Some(current.id),
            version_id: new_version_id(),
        })
        .await
        .unwrap();
    assert!(outcome.freed.is_empty(), "{:?}", outcome.freed);
}

#[tokio::test]
async fn a_part_listed_twice_counts_once_as_its_last_entry() {
    let meta = store_with(&[]).await;
    meta.execute(Command::CreateUpload(upload_record("u", "k", 1)))
        .await
        .unwrap();
    meta.execute(part("u", 1, 10, BlobId::random()))
        .await
        .unwrap();
    let mut twice = complete("u", &[1, 1], 1);
    if let Command::CompleteUpload { parts, .. } = &mut twice {
        parts[0].etag = "\"stale\"".into();
    }
    let done = meta.execute(twice).await.unwrap();
    assert!(done.completed.unwrap().0.ends_with("-1\""));
}

async fn set_versioning(meta: &Metadata, versioning: Versioning) {
    meta.execute(Command::SetBucketVersioning {
        name: "b".into(),
        versioning,
    })
    .await
    .unwrap();
}

async fn versions_of(meta: &Metadata, key: &str) -> Vec<(String, bool, bool)> {
    let page = meta
        .read(|c| {
            query::list_versions(
                c,
                "b",
                &VersionQuery {
                    max_keys: 1000,
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    page.entries
        .into_iter()
        .filter_map(|e| match e {
            VersionEntry::Version(v) if v.object.key == key => {
                Some((v.version_id, v.is_latest, v.delete_marker))
            }
            _ => None,
        })
        .collect()
}

fn put_version(key: &str, version_id: &str) -> Command {
    Command::PutObject {
        object: object("b", key, Some(BlobId::random())),
        condition: WriteCondition::default(),
        source_id: None,
        version_id: version_id.into(),
    }
}

fn delete_version(key: &str, version_id: &str, bypass: bool) -> Command {
    Command::DeleteObject {
        bucket: "b".into(),
        key: key.into(),
        version_id: Some(version_id.into()),
        if_match: None,
        marker_version_id: new_version_id(),
        marker: marker(),
        bypass_governance: bypass,
        if_match_modified_ms: None,
        if_match_size: None,
    }
}

#[tokio::test]
async fn versions_stack_newest_first_and_null_versions_are_replaced() {
    let meta = store_with(&[]).await;
    // Unversioned: one null version, replaced in place.
    meta.execute(put_version("k", "unused-1")).await.unwrap();
    let again = meta.execute(put_version("k", "unused-2")).await.unwrap();
    assert_eq!(
        again.version_id, None,
        "unversioned buckets report no version"
    );
    assert_eq!(again.freed.len(), 1, "the old null version's blob is freed");
    assert_eq!(
        versions_of(&meta, "k").await,
        vec![("null".into(), true, false)]
    );

    set_versioning(&meta, Versioning::Enabled).await;
    let (v1, v2) = (new_version_id(), new_version_id());
    assert_eq!(
        meta.execute(put_version("k", &v1))
            .await
            .unwrap()
            .version_id
            .as_deref(),
        Some(v1.as_str())
    );
    let second = meta.execute(put_version("k", &v2)).await.unwrap();
    assert!(second.freed.is_empty(), "versions keep their blobs");
    assert_eq!(
        versions_of(&meta, "k").await,
        vec![
            (v2.clone(), true, false),
            (v1.clone(), false, false),
            ("null".into(), false, false)
        ]
    );

    // Suspended: writes replace the null version, wherever it is, and the
    // new null version is the newest.
    set_versioning(&meta, Versioning::Suspended).await;
    let suspended = meta.execute(put_version("k", "unused-3")).await.unwrap();
    assert_eq!(
        suspended.version_id, None,
        "suspended writes report no version id"
    );
    assert_eq!(suspended.freed.len(), 1);
    assert_eq!(
        versions_of(&meta, "k").await,
        vec![
            ("null".into(), true, false),
            (v2.clone(), false, false),
            (v1.clone(), false, false)
        ]
    );
    let latest = meta
        .read(|c| query::get_object(c, "b", "k", None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.version_id, "null");
    let old = meta
        .read(move |c| query::get_object(c, "b", "k", Some(&v1)))
        .await
        .unwrap()
        .unwrap();
    assert!(!old.is_latest && !old.delete_marker);
}

#[tokio::test]
async fn deletes_push_markers_or_remove_versions_for_good() {
    let meta = store_with(&[]).await;
    set_versioning(&meta, Versioning::Enabled).await;
    let (v1, v2) = (new_version_id(), new_version_id());
    meta.execute(put_version("k", &v1)).await.unwrap();
    meta.execute(put_version("k", &v2)).await.unwrap();

    let deleted = meta.execute(delete_cmd("k", None)).await.unwrap();
    let result = deleted.deleted[0].outcome.clone().unwrap();
    assert!(result.delete_marker);
    let marker_id = result.version_id.unwrap();
    assert!(deleted.freed.is_empty());
    let latest = meta
        .read(|c| query::get_object(c, "b", "k", None))
        .await
        .unwrap()
        .unwrap();
    assert!(latest.delete_marker && latest.is_latest);
    // Listing shows no key whose latest version is a delete marker.
    assert!(
        list(
            &meta,
            ListQuery {
                max_keys: 10,
                ..Default::default()
            }
        )
        .await
        .entries
        .is_empty()
    );
    // Conditional creates see no current object.
    let create = Command::PutObject {
        object: object("b", "k", None),
        condition: WriteCondition {
            if_match: None,
            if_none_match: Some("*".into()),
        },
        source_id: None,
        version_id: new_version_id(),
    };
    assert!(matches!(
        meta.execute(delete_cmd("k", Some("*".into()))).await,
        Err(MetaError::NoSuchKey)
    ));

    // Removing the marker brings v2 back.
    let removed = meta
        .execute(delete_version("k", &marker_id, false))
        .await
        .unwrap();
    assert!(removed.deleted[0].outcome.clone().unwrap().delete_marker);
    assert_eq!(versions_of(&meta, "k").await[0], (v2.clone(), true, false));
    // Removing the latest version promotes the previous one and frees blobs.
    let gone = meta.execute(delete_version("k", &v2, false)).await.unwrap();
    assert_eq!(gone.freed.len(), 1);
    assert_eq!(
        versions_of(&meta, "k").await,
        vec![(v1.clone(), true, false)]
    );
    // A version that is not there: success, nothing changes.
    let missing = meta
        .execute(delete_version("k", &new_version_id(), false))
        .await
        .unwrap();
    assert!(missing.freed.is_empty());
    assert!(matches!(
        meta.execute(create.clone()).await,
        Err(MetaError::PreconditionFailed)
    ));
    meta.execute(delete_cmd("k", None)).await.unwrap();
    meta.execute(create).await.unwrap();

    // A bucket holding only versions and markers is not empty.
    meta.execute(delete_cmd("k", None)).await.unwrap();
    assert!(matches!(
        meta.execute(Command::DeleteBucket { name: "b".into() })
            .await,
        Err(MetaError::BucketNotEmpty)
    ));
}

#[tokio::test]
async fn suspended_deletes_replace_the_null_version_with_a_null_marker() {
    let meta = store_with(&["k"]).await;
    set_versioning(&meta, Versioning::Enabled).await;
    let v1 = new_version_id();
    meta.execute(put_version("k", &v1)).await.unwrap();
    set_versioning(&meta, Versioning::Suspended).await;
    let deleted = meta.execute(delete_cmd("k", None)).await.unwrap();
    assert_eq!(deleted.freed.len(), 1, "the null version is gone for good");
    let result = deleted.deleted[0].outcome.clone().unwrap();
    assert_eq!(
        (result.delete_marker, result.version_id.as_deref()),
        (true, Some("null"))
    );
    assert_eq!(
        versions_of(&meta, "k").await,
        vec![("null".into(), true, true), (v1, false, false)]
    );
}

#[tokio::test]
async fn version_listing_pages_like_one_big_page() {
    let meta = store_with(&[]).await;
    set_versioning(&meta, Versioning::Enabled).await;
    for key in ["a", "b/1", "b/2", "c", "d/x/y"] {
        for _ in 0..3 {
            meta.execute(put_version(key, &new_version_id()))
                .await
                .unwrap();
        }
    }
    meta.execute(delete_cmd("c", None)).await.unwrap();
    for delimiter in [None, Some("/".to_string())] {
        let whole = meta
            .read({
                let delimiter = delimiter.clone();
                move |c| {
                    query::list_versions(
                        c,
                        "b",
                        &VersionQuery {
                            delimiter,
                            max_keys: 1000,
                            ..Default::default()
                        },
                    )
                }
            })
            .await
            .unwrap();
        assert!(!whole.truncated);
        for page_size in [1, 2, 3, 5] {
            let mut seen = Vec::new();
            let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
            loop {
                let query = VersionQuery {
                    delimiter: delimiter.clone(),
                    key_marker: key_marker.clone(),
                    version_id_marker: version_marker.clone(),
                    max_keys: page_size,
                    ..Default::default()
                };
                let page = meta
                    .read(move |c| query::list_versions(c, "b", &query))
                    .await
                    .unwrap();
                assert!(page.entries.len() <= page_size);
                match page.entries.last() {
                    Some(VersionEntry::Version(v)) => {
                        key_marker = Some(v.object.key.clone());
                        version_marker = Some(v.version_id.clone());
                    }
                    Some(VersionEntry::Prefix(p)) => {
                        key_marker = Some(p.clone());
                        version_marker = None;
                    }
                    None => {}
                }
                let truncated = page.truncated;
                seen.extend(page.entries);
                if !truncated {
                    break;
                }
            }
            assert_eq!(
                seen, whole.entries,
                "page size {page_size}, delimiter {delimiter:?}"
            );
        }
    }
    let flat = meta
        .read(|c| {
            query::list_versions(
                c,
                "b",
                &VersionQuery {
                    max_keys: 1000,
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
    // Keys in order, each key's versions newest first, one latest per key.
    assert_eq!(flat.entries.len(), 16);
    let latest: Vec<_> = flat
        .entries
        .iter()
        .filter_map(|e| match e {
            VersionEntry::Version(v) if v.is_latest => {
                Some((v.object.key.as_str(), v.delete_marker))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        latest,
        vec![
            ("a", false),
            ("b/1", false),
            ("b/2", false),
            ("c", true),
            ("d/x/y", false)
        ]
    );
    // A prefix page and a marker past the prefix.
    let query = VersionQuery {
        prefix: "b/".into(),
        key_marker: Some("c".into()),
        max_keys: 10,
        ..Default::default()
    };
    let past = meta
        .read(move |c| query::list_versions(c, "b", &query))
        .await
        .unwrap();
    assert!(past.entries.is_empty());
}

#[tokio::test]
async fn object_lock_refuses_removal_until_it_allows_it() {
    let meta = store_with(&[]).await;
    set_versioning(&meta, Versioning::Enabled).await;
    meta.execute(Command::SetObjectLockConfig {
        name: "b".into(),
        config: ObjectLockConfig::default(),
    })
    .await
    .unwrap();
    // Once locked, versioning cannot be suspended.
    assert!(matches!(
        meta.execute(Command::SetBucketVersioning {
            name: "b".into(),
            versioning: Versioning::Suspended
        })
        .await,
        Err(MetaError::Rejected(Refusal {
            rule: Rule::InvalidBucketState,
            ..
        }))
    ));
    let (gov, comp, held) = (new_version_id(), new_version_id(), new_version_id());
    for v in [&gov, &comp, &held] {
        meta.execute(put_version("k", v)).await.unwrap();
    }
    let retain = |version: &str, mode, until_ms, bypass| Command::SetObjectRetention {
        bucket: "b".into(),
        key: "k".into(),
        version_id: Some(version.into()),
        retention: Some(Retention { mode, until_ms }),
        bypass_governance: bypass,
        now_ms: 10,
    };
    meta.execute(retain(&gov, LockMode::Governance, 1_000, false))
        .await
        .unwrap();
    meta.execute(retain(&comp, LockMode::Compliance, 1_000, false))
        .await
        .unwrap();
    meta.execute(Command::SetObjectLegalHold {
        bucket: "b".into(),
        key: "k".into(),
        version_id: Some(held.clone()),
        on: true,
    })
    .await
    .unwrap();
    let locked = |r: Result<Outcome, MetaError>| {
        matches!(
            r,
            Err(MetaError::Rejected(Refusal {
                rule: Rule::Locked,
                ..
            }))
        )
    };
    assert!(locked(meta.execute(delete_version("k", &gov, false)).await));
    assert!(locked(meta.execute(delete_version("k", &comp, true)).await));
    assert!(locked(meta.execute(delete_version("k", &held, true)).await));
    assert!(locked(
        meta.execute(retain(&comp, LockMode::Compliance, 500, true))
            .await
    ));
    assert!(locked(
        meta.execute(retain(&gov, LockMode::Governance, 500, false))
            .await
    ));
    meta.execute(retain(&comp, LockMode::Compliance, 2_000, false))
        .await
        .unwrap();
    // A delete without a version only adds a marker, whatever the locks.
    meta.execute(delete_cmd("k", None)).await.unwrap();
    // DeleteObjects reports the refusal per key and goes on.
    let outcome = meta
        .execute(Command::DeleteObjects {
            bucket: "b".into(),
            entries: vec![
                DeleteEntry {
                    key: "k".into(),
                    version_id: Some(comp.clone()),
                    marker_version_id: new_version_id(),
                    condition: Default::default(),
                },
                DeleteEntry {
                    key: "other".into(),
                    version_id: None,
                    marker_version_id: new_version_id(),
                    condition: Default::default(),
                },
            ],
            marker: marker(),
            bypass_governance: true,
        })
        .await
        .unwrap();
    assert!(
        outcome.deleted[0]
            .outcome
            .as_ref()
            .is_err_and(|r| r.rule == Rule::Locked)
    );
    assert!(outcome.deleted[1].outcome.is_ok());
    // Bypass removes GOVERNANCE; lifting the hold allows deletion.
    meta.execute(delete_version("k", &gov, true)).await.unwrap();
    meta.execute(Command::SetObjectLegalHold {
        bucket: "b".into(),
        key: "k".into(),
        version_id: Some(held.clone()),
        on: false,
    })
    .await
    .unwrap();
    meta.execute(delete_version("k", &held, false))
        .await
        .unwrap();
    // Retention is only for lock-enabled buckets.
    let other = Metadata::in_memory().unwrap();
    other.execute(bucket("b", "alice")).await.unwrap();
    other.execute(put("b", "k")).await.unwrap();
    assert!(matches!(
        other
            .execute(retain("null", LockMode::Governance, 1_000, false))
            .await,
        Err(MetaError::Rejected(Refusal {
            rule: Rule::InvalidRequest,
            ..
        }))
    ));
    assert!(matches!(
        other
            .execute(Command::SetObjectLockConfig {
                name: "b".into(),
                config: ObjectLockConfig::default()
            })
            .await,
        Err(MetaError::Rejected(Refusal {
            rule: Rule::InvalidBucketState,
            ..
        }))
    ));
}

#[tokio::test]
async fn settings_of_a_delete_marker_or_missing_version_are_refused() {
    let meta = store_with(&["k"]).await;
    set_versioning(&meta, Versioning::Enabled).await;
    let marker_id = meta.execute(delete_cmd("k", None)).await.unwrap().deleted[0]
        .outcome
        .clone()
        .unwrap()
        .version_id
        .unwrap();
    let tag = |version: Option<String>| Command::SetObjectTags {
        bucket: "b".into(),
        key: "k".into(),
        version_id: version,
        tags: vec![Tag {
            key: "a".into(),
            value: "1".into(),
        }],
    };
    assert!(matches!(
        meta.execute(tag(Some(marker_id))).await,
        Err(MetaError::DeleteMarker { .. })
    ));
    assert!(matches!(
        meta.execute(tag(None)).await,
        Err(MetaError::NoSuchKey)
    ));
    assert!(matches!(
        meta.execute(tag(Some(new_version_id()))).await,
        Err(MetaError::NoSuchVersion)
    ));
    meta.execute(tag(Some("null".into()))).await.unwrap();
    let null = meta
        .read(|c| query::get_object(c, "b", "k", Some("null")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(null.meta.tags.len(), 1);
}

#[tokio::test]
async fn listings_use_their_indexes() {
    let meta = store_with(&["a"]).await;
    let plans = meta
        .read(|c| {
            let mut plans = Vec::new();
            for sql in [
                "SELECT key FROM objects INDEXED BY objects_visible WHERE bucket = 'b' AND key > x'00' AND is_latest = 1 AND delete_marker = 0 ORDER BY key",
                "SELECT key FROM objects WHERE bucket = 'b' AND key = x'61' ORDER BY id DESC LIMIT 1",
                "SELECT key FROM objects WHERE bucket = 'b' AND key = x'61' AND version_id = 'null'",
            ] {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows: Vec<String> = stmt
                    .query_map([], |r| r.get::<_, String>(3))?
                    .collect::<Result<_, _>>()?;
                plans.push(rows.join(" | "));
            }
            Ok(plans)
        })
        .await
        .unwrap();
    assert!(plans[0].contains("objects_visible"), "{}", plans[0]);
    assert!(plans[1].contains("objects_by_age"), "{}", plans[1]);
    assert!(plans[2].contains("objects_by_version"), "{}", plans[2]);
    assert!(
        plans.iter().all(|p| !p.contains("TEMP B-TREE")),
        "{plans:?}"
    );
}
