use super::model::*;
use super::*;
use crate::acl::{Acl, Owner};
use crate::storage::BlobId;

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
    })
}

fn object(bucket: &str, key: &str, blob: Option<BlobId>) -> NewObject {
    let extents: Vec<Extent> = blob
        .into_iter()
        .map(|blob| Extent {
            blob,
            blob_offset: 0,
            length: 3,
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
    let outcome = meta
        .execute(Command::DeleteObject {
            bucket: "b".into(),
            key: "k".into(),
            if_match: None,
        })
        .await
        .unwrap();
    assert_eq!(outcome.freed.len(), 1, "the object's blob is freed");
    meta.execute(Command::DeleteBucket { name: "b".into() })
        .await
        .unwrap();
    assert!(matches!(
        meta.execute(put("b", "k")).await,
        Err(MetaError::NoSuchBucket)
    ));
    assert!(meta.applied_index().await.unwrap() >= 4);
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
        })
        .await
        .unwrap();
    // A copy shares the blob.
    meta.execute(Command::PutObject {
        object: object("b", "copy", Some(blob.clone())),
        condition: WriteCondition::default(),
        source_id: first.object_id,
    })
    .await
    .unwrap();
    let over = meta.execute(put("b", "a")).await.unwrap();
    assert!(over.freed.is_empty(), "the copy still references the blob");
    let gone = meta
        .execute(Command::DeleteObject {
            bucket: "b".into(),
            key: "copy".into(),
            if_match: None,
        })
        .await
        .unwrap();
    assert_eq!(gone.freed, vec![blob]);
}

#[tokio::test]
async fn copy_of_a_vanished_source_is_refused() {
    let meta = store_with(&["src"]).await;
    let source = meta
        .read(|c| query::get_object(c, "b", "src"))
        .await
        .unwrap()
        .unwrap();
    meta.execute(Command::DeleteObject {
        bucket: "b".into(),
        key: "src".into(),
        if_match: None,
    })
    .await
    .unwrap();
    let result = meta
        .execute(Command::PutObject {
            object: object("b", "dst", Some(source.extents[0].blob.clone())),
            condition: WriteCondition::default(),
            source_id: Some(source.id),
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
    };
    assert!(matches!(
        meta.execute(if_match("\"wrong\"")).await,
        Err(MetaError::PreconditionFailed)
    ));
    meta.execute(if_match("\"etag-k\"")).await.unwrap();
    let delete = |etag: &str| Command::DeleteObject {
        bucket: "b".into(),
        key: "k".into(),
        if_match: Some(etag.into()),
    };
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
    let outcome = meta
        .execute(Command::DeleteObjects {
            bucket: "b".into(),
            keys: vec!["a".into(), "missing".into(), "b".into()],
        })
        .await
        .unwrap();
    assert_eq!(
        outcome.deleted,
        vec![
            ("a".to_string(), true),
            ("missing".to_string(), false),
            ("b".to_string(), true)
        ]
    );
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
    let found = meta.read(|c| query::get_object(c, "b", "k")).await.unwrap();
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
    }
}

fn rejected_code(result: Result<Outcome, MetaError>) -> crate::s3::error::S3ErrorCode {
    match result {
        Err(MetaError::Rejected(e)) => e.code,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn multipart_completion_rules() {
    use crate::s3::error::S3ErrorCode;
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
        S3ErrorCode::InvalidPartOrder
    );
    assert_eq!(
        rejected_code(meta.execute(complete("u1", &[1, 3], 1)).await),
        S3ErrorCode::InvalidPart
    );
    assert_eq!(
        rejected_code(meta.execute(complete("u1", &[1, 2], 11)).await),
        S3ErrorCode::EntityTooSmall
    );
    let mut wrong_etag = complete("u1", &[1], 1);
    if let Command::CompleteUpload { parts, .. } = &mut wrong_etag {
        parts[0].etag = "\"00\"".into();
    }
    assert_eq!(
        rejected_code(meta.execute(wrong_etag).await),
        S3ErrorCode::InvalidPart
    );

    // Completing with part 1 only: part 2's blob is freed, part 1's is the object.
    let done = meta.execute(complete("u1", &[1], 11)).await.unwrap();
    assert_eq!(done.freed, vec![b3]);
    let (etag, _) = done.completed.unwrap();
    assert!(etag.ends_with("-1\""), "{etag}");
    let object = meta
        .read(|c| query::get_object(c, "b", "k"))
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
    assert_eq!((expired.aborted, expired.freed), (1, vec![a]));
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
async fn replacing_an_object_with_a_copy_of_itself_keeps_its_blob() {
    let meta = store_with(&["k"]).await;
    let current = meta
        .read(|c| query::get_object(c, "b", "k"))
        .await
        .unwrap()
        .unwrap();
    let outcome = meta
        .execute(Command::PutObject {
            object: object("b", "k", Some(current.extents[0].blob.clone())),
            condition: WriteCondition::default(),
            source_id: Some(current.id),
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
