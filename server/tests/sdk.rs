//! The server in-process on free ports, driven by the Rust AWS SDK exactly as
//! an application would use it.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, Delete, MetadataDirective, ObjectAttributes, ObjectCannedAcl,
    ObjectIdentifier,
};
use bleepstore::RunningServer;
use bleepstore_config::{Backend, Config, Secret};

struct Harness {
    server: RunningServer,
    client: Client,
    _dir: tempfile::TempDir,
}

fn client_for(endpoint: &str, access: &str, secret: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access, secret, None, None, "test"))
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

async fn start(backend: Backend) -> Harness {
    start_with(backend, |_| {}).await
}

async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.s3_listen = "127.0.0.1:0".parse().unwrap();
    config.server.ops_listen = "127.0.0.1:0".parse().unwrap();
    config.storage.backend = backend;
    config.storage.data_dir = dir.path().to_path_buf();
    config.auth.access_key = Some(Secret::new("test-key"));
    config.auth.secret_key = Some(Secret::new("test-secret"));
    adjust(&mut config);
    let app = bleepstore::App::open(config).await.unwrap();
    let server = bleepstore::start(app).await.unwrap();
    let client = client_for(
        &format!("http://{}", server.s3_addr),
        "test-key",
        "test-secret",
    );
    Harness {
        server,
        client,
        _dir: dir,
    }
}

fn error_code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    match err {
        aws_sdk_s3::error::SdkError::ServiceError(e) => {
            e.err().code().unwrap_or("<none>").to_string()
        }
        _ => "not a service error".to_string(),
    }
}

async fn body_of(output: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    output.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test]
async fn bucket_lifecycle() {
    let h = start(Backend::Memory).await;
    let c = &h.client;
    c.create_bucket().bucket("alpha").send().await.unwrap();
    c.create_bucket().bucket("beta").send().await.unwrap();
    // In us-east-1 re-creating your own bucket with the same ACL is a no-op;
    // asking for a different ACL is a conflict.
    c.create_bucket().bucket("alpha").send().await.unwrap();
    let other_acl = c
        .create_bucket()
        .bucket("alpha")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&other_acl), "BucketAlreadyExists");
    let bad = c
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&bad), "InvalidBucketName");

    let names: Vec<String> = c
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    assert_eq!(names, vec!["alpha", "beta"]);
    c.head_bucket().bucket("alpha").send().await.unwrap();
    assert!(c.head_bucket().bucket("missing").send().await.is_err());
    let location = c
        .get_bucket_location()
        .bucket("alpha")
        .send()
        .await
        .unwrap();
    assert!(
        location
            .location_constraint()
            .is_none_or(|l| l.as_str().is_empty())
    );

    c.put_object()
        .bucket("alpha")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let not_empty = c.delete_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(error_code(&not_empty), "BucketNotEmpty");
    c.delete_object()
        .bucket("alpha")
        .key("k")
        .send()
        .await
        .unwrap();
    c.delete_bucket().bucket("alpha").send().await.unwrap();
    let gone = c
        .list_objects_v2()
        .bucket("alpha")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&gone), "NoSuchBucket");
    h.server.shutdown().await;
}

#[tokio::test]
async fn objects_round_trip_with_metadata_and_checksums() {
    let h = start(Backend::Local).await;
    let c = &h.client;
    c.create_bucket().bucket("data").send().await.unwrap();
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    // The SDK's default: a CRC32 trailer on an aws-chunked body.
    let put = c
        .put_object()
        .bucket("data")
        .key("dir/file.bin")
        .content_type("application/x-test")
        .cache_control("max-age=60")
        .metadata("color", "blue")
        .body(ByteStream::from(payload.clone()))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_string();
    assert_eq!(etag, format!("\"{:x}\"", md5_of(&payload)));

    let got = c
        .get_object()
        .bucket("data")
        .key("dir/file.bin")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(got.metadata().unwrap().get("color").unwrap(), "blue");
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(body_of(got).await, payload);

    // An explicit SHA-256 checksum is stored and returned.
    let put = c
        .put_object()
        .bucket("data")
        .key("sha")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await
        .unwrap();
    let sha = put.checksum_sha256().unwrap().to_string();
    assert_eq!(sha, "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
    let head = c
        .head_object()
        .bucket("data")
        .key("sha")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_sha256(), Some(sha.as_str()));
    assert_eq!(head.content_length(), Some(11));

    let attributes = c
        .get_object_attributes()
        .bucket("data")
        .key("sha")
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .unwrap();
    assert_eq!(attributes.object_size(), Some(11));
    assert_eq!(
        attributes.checksum().and_then(|c| c.checksum_sha256()),
        Some(sha.as_str())
    );

    let missing = c
        .get_object()
        .bucket("data")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&missing), "NoSuchKey");
    h.server.shutdown().await;
}

fn md5_of(data: &[u8]) -> u128 {
    use md5::Digest;
    u128::from_be_bytes(md5::Md5::digest(data).into())
}

#[tokio::test]
async fn ranges_and_conditional_reads() {
    let h = start(Backend::Memory).await;
    let c = &h.client;
    c.create_bucket().bucket("ranges").send().await.unwrap();
    c.put_object()
        .bucket("ranges")
        .key("digits")
        .body(ByteStream::from_static(b"0123456789"))
        .send()
        .await
        .unwrap();
    let get = |range: &'static str| {
        c.get_object()
            .bucket("ranges")
            .key("digits")
            .range(range)
            .send()
    };
    let part = get("bytes=2-5").await.unwrap();
    assert_eq!(part.content_range(), Some("bytes 2-5/10"));
    assert_eq!(body_of(part).await, b"2345");
    assert_eq!(body_of(get("bytes=-3").await.unwrap()).await, b"789");
    assert_eq!(body_of(get("bytes=7-").await.unwrap()).await, b"789");
    assert_eq!(
        error_code(&get("bytes=10-").await.unwrap_err()),
        "InvalidRange"
    );

    let head = c
        .head_object()
        .bucket("ranges")
        .key("digits")
        .send()
        .await
        .unwrap();
    let etag = head.e_tag().unwrap().to_string();
    let matched = c
        .get_object()
        .bucket("ranges")
        .key("digits")
        .if_match(&etag)
        .send()
        .await
        .unwrap();
    assert_eq!(matched.content_length(), Some(10));
    let failed = c
        .get_object()
        .bucket("ranges")
        .key("digits")
        .if_match("\"other\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&failed), "PreconditionFailed");
    let not_modified = c
        .get_object()
        .bucket("ranges")
        .key("digits")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        not_modified.raw_response().map(|r| r.status().as_u16()),
        Some(304)
    );

    // Conditional writes are checked atomically by the server.
    let exists = c
        .put_object()
        .bucket("ranges")
        .key("digits")
        .if_none_match("*")
        .body(ByteStream::from_static(b"new"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&exists), "PreconditionFailed");
    c.put_object()
        .bucket("ranges")
        .key("digits")
        .if_match(&etag)
        .body(ByteStream::from_static(b"replaced"))
        .send()
        .await
        .unwrap();
    h.server.shutdown().await;
}

#[tokio::test]
async fn listing_paginates_and_rolls_up_prefixes() {
    let h = start(Backend::Memory).await;
    let c = &h.client;
    c.create_bucket().bucket("listing").send().await.unwrap();
    let mut keys = Vec::new();
    for dir in ["a", "b", "c"] {
        for i in 0..7 {
            keys.push(format!("{dir}/{i:02}"));
        }
    }
    keys.push("top".into());
    for key in &keys {
        c.put_object()
            .bucket("listing")
            .key(key)
            .body(ByteStream::from_static(b"."))
            .send()
            .await
            .unwrap();
    }
    let mut listed = Vec::new();
    let mut pages = c
        .list_objects_v2()
        .bucket("listing")
        .max_keys(4)
        .into_paginator()
        .send();
    let mut page_count = 0;
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        page_count += 1;
        listed.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    assert_eq!(listed, keys);
    assert_eq!(page_count, 6);

    let rolled = c
        .list_objects_v2()
        .bucket("listing")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = rolled
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, vec!["a/", "b/", "c/"]);
    assert_eq!(rolled.contents().len(), 1);
    assert_eq!(rolled.key_count(), Some(4));

    let versions = c
        .list_object_versions()
        .bucket("listing")
        .prefix("b/")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 7);
    assert!(
        versions
            .versions()
            .iter()
            .all(|v| v.version_id() == Some("null"))
    );

    let v1 = c
        .list_objects()
        .bucket("listing")
        .prefix("c/")
        .marker("c/03")
        .send()
        .await
        .unwrap();
    let v1_keys: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(v1_keys, vec!["c/04", "c/05", "c/06"]);
    h.server.shutdown().await;
}

#[tokio::test]
async fn copy_delete_many_and_acls() {
    let h = start(Backend::Local).await;
    let c = &h.client;
    c.create_bucket().bucket("src").send().await.unwrap();
    c.create_bucket().bucket("dst").send().await.unwrap();
    c.put_object()
        .bucket("src")
        .key("original")
        .content_type("text/plain")
        .metadata("kept", "yes")
        .body(ByteStream::from_static(b"copy me"))
        .send()
        .await
        .unwrap();
    c.copy_object()
        .bucket("dst")
        .key("copied")
        .copy_source("src/original")
        .send()
        .await
        .unwrap();
    let copied = c
        .get_object()
        .bucket("dst")
        .key("copied")
        .send()
        .await
        .unwrap();
    assert_eq!(copied.metadata().unwrap().get("kept").unwrap(), "yes");
    assert_eq!(body_of(copied).await, b"copy me");

    c.copy_object()
        .bucket("src")
        .key("original")
        .copy_source("src/original")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/markdown")
        .send()
        .await
        .unwrap();
    let replaced = c
        .head_object()
        .bucket("src")
        .key("original")
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.content_type(), Some("text/markdown"));
    assert!(replaced.metadata().is_none_or(|m| m.is_empty()));
    let illegal = c
        .copy_object()
        .bucket("src")
        .key("original")
        .copy_source("src/original")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&illegal), "InvalidRequest");

    // Deleting the source leaves the copy intact (shared blobs are refcounted).
    c.delete_object()
        .bucket("src")
        .key("original")
        .send()
        .await
        .unwrap();
    let copied = c
        .get_object()
        .bucket("dst")
        .key("copied")
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(copied).await, b"copy me");

    let objects: Vec<ObjectIdentifier> = ["copied", "never-existed"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
        .collect();
    let deleted = c
        .delete_objects()
        .bucket("dst")
        .delete(
            Delete::builder()
                .set_objects(Some(objects))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.deleted().len(), 2);
    assert!(deleted.errors().is_empty());

    c.put_object()
        .bucket("dst")
        .key("public")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"everyone"))
        .send()
        .await
        .unwrap();
    let acl = c
        .get_object_acl()
        .bucket("dst")
        .key("public")
        .send()
        .await
        .unwrap();
    assert_eq!(acl.grants().len(), 2);
    // Anonymous reads follow the ACL.
    let public = raw_get(&h.server, "/dst/public").await;
    assert!(public.starts_with("HTTP/1.1 200"), "{public}");
    c.put_object()
        .bucket("dst")
        .key("private")
        .body(ByteStream::from_static(b"secret"))
        .send()
        .await
        .unwrap();
    let private = raw_get(&h.server, "/dst/private").await;
    assert!(private.starts_with("HTTP/1.1 403"), "{private}");
    assert!(private.contains("<Code>AccessDenied</Code>"));
    assert!(private.to_ascii_lowercase().contains("x-amz-request-id:"));
    h.server.shutdown().await;
}

/// A plain unsigned GET over a raw socket.
async fn raw_get(server: &RunningServer, path: &str) -> String {
    raw_get_host(server, path, &server.s3_addr.to_string()).await
}

async fn raw_get_host(server: &RunningServer, path: &str, host: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.s3_addr)
        .await
        .unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn wrong_credentials_are_refused() {
    let h = start(Backend::Memory).await;
    let endpoint = format!("http://{}", h.server.s3_addr);
    let stranger = client_for(&endpoint, "nobody", "whatever");
    let err = stranger.list_buckets().send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidAccessKeyId");
    let wrong_secret = client_for(&endpoint, "test-key", "not-the-secret");
    let err = wrong_secret.list_buckets().send().await.unwrap_err();
    assert_eq!(error_code(&err), "SignatureDoesNotMatch");
    h.server.shutdown().await;
}

#[tokio::test]
async fn presigned_urls_work_until_they_expire() {
    use aws_sdk_s3::presigning::PresigningConfig;
    let h = start(Backend::Memory).await;
    let c = &h.client;
    c.create_bucket().bucket("presign").send().await.unwrap();
    c.put_object()
        .bucket("presign")
        .key("file")
        .body(ByteStream::from_static(b"shared"))
        .send()
        .await
        .unwrap();
    let presigned = c
        .get_object()
        .bucket("presign")
        .key("file")
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let uri: http::Uri = presigned.uri().parse().unwrap();
    let response = raw_get(&h.server, uri.path_and_query().unwrap().as_str()).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("shared"));

    let expired = c
        .get_object()
        .bucket("presign")
        .key("file")
        .presigned(
            PresigningConfig::builder()
                .start_time(std::time::SystemTime::now() - std::time::Duration::from_secs(600))
                .expires_in(std::time::Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let uri: http::Uri = expired.uri().parse().unwrap();
    let response = raw_get(&h.server, uri.path_and_query().unwrap().as_str()).await;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains("expired"));
    h.server.shutdown().await;
}

#[tokio::test]
async fn multipart_upload_end_to_end() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let h = start(Backend::Local).await;
    let c = &h.client;
    c.create_bucket().bucket("multi").send().await.unwrap();
    let created = c
        .create_multipart_upload()
        .bucket("multi")
        .key("big.bin")
        .content_type("application/x-big")
        .metadata("origin", "parts")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id().unwrap().to_string();
    let part1: Vec<u8> = vec![b'a'; 5 * 1024 * 1024];
    let part2: Vec<u8> = b"the tail".to_vec();
    let mut completed = Vec::new();
    let mut md5s = Vec::new();
    // Upload part 2 first: order of upload does not matter, order of completion does.
    for (number, data) in [(2, &part2), (1, &part1)] {
        let out = c
            .upload_part()
            .bucket("multi")
            .key("big.bin")
            .upload_id(&upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        completed.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(out.e_tag().unwrap())
                .checksum_crc32(out.checksum_crc32().unwrap())
                .build(),
        );
    }
    completed.reverse();
    for data in [&part1, &part2] {
        md5s.extend_from_slice(&md5_of(data).to_be_bytes());
    }
    let listed = c
        .list_parts()
        .bucket("multi")
        .key("big.bin")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 2);
    let uploads = c
        .list_multipart_uploads()
        .bucket("multi")
        .send()
        .await
        .unwrap();
    assert_eq!(uploads.uploads().len(), 1);

    // Out of order is refused.
    let reversed: Vec<CompletedPart> = completed.iter().rev().cloned().collect();
    let err = c
        .complete_multipart_upload()
        .bucket("multi")
        .key("big.bin")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(reversed))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidPartOrder");

    let done = c
        .complete_multipart_upload()
        .bucket("multi")
        .key("big.bin")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let expected_etag = format!("\"{:x}-2\"", md5_of(&md5s));
    assert_eq!(done.e_tag(), Some(expected_etag.as_str()));

    let whole = c
        .get_object()
        .bucket("multi")
        .key("big.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(whole.content_type(), Some("application/x-big"));
    assert_eq!(whole.metadata().unwrap().get("origin").unwrap(), "parts");
    let bytes = body_of(whole).await;
    assert_eq!(bytes.len(), part1.len() + part2.len());
    assert!(bytes.ends_with(b"aaathe tail"));

    let second = c
        .get_object()
        .bucket("multi")
        .key("big.bin")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(second.parts_count(), Some(2));
    assert_eq!(body_of(second).await, part2);
    let across = c
        .get_object()
        .bucket("multi")
        .key("big.bin")
        .range(format!("bytes={}-{}", part1.len() - 2, part1.len() + 2))
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(across).await, b"aathe");

    // Aborting frees everything; the upload is gone.
    let second_upload = c
        .create_multipart_upload()
        .bucket("multi")
        .key("abandoned")
        .send()
        .await
        .unwrap();
    let id = second_upload.upload_id().unwrap();
    c.upload_part()
        .bucket("multi")
        .key("abandoned")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"bye"))
        .send()
        .await
        .unwrap();
    c.abort_multipart_upload()
        .bucket("multi")
        .key("abandoned")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    let err = c
        .list_parts()
        .bucket("multi")
        .key("abandoned")
        .upload_id(id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "NoSuchUpload");
    h.server.shutdown().await;
}

#[tokio::test]
async fn virtual_hosted_style_addressing() {
    let h = start_with(Backend::Memory, |c| {
        c.server.domains = vec!["s3.test".into()]
    })
    .await;
    let c = &h.client;
    c.create_bucket().bucket("vhost").send().await.unwrap();
    c.put_object()
        .bucket("vhost")
        .key("dir/page.html")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"<p>hi</p>"))
        .send()
        .await
        .unwrap();
    let port = h.server.s3_addr.port();
    let response = raw_get_host(
        &h.server,
        "/dir/page.html",
        &format!("vhost.s3.test:{port}"),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("<p>hi</p>"));
    // Hosts outside the configured domains are path-style.
    let response = raw_get_host(&h.server, "/vhost/dir/page.html", "elsewhere.example").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn versions_delete_markers_and_tags() {
    use aws_sdk_s3::types::{BucketVersioningStatus, Tag, Tagging, VersioningConfiguration};
    let h = start(Backend::Memory).await;
    let c = &h.client;
    c.create_bucket().bucket("versioned").send().await.unwrap();
    c.put_bucket_versioning()
        .bucket("versioned")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for body in ["one", "two"] {
        let put = c
            .put_object()
            .bucket("versioned")
            .key("k")
            .body(ByteStream::from_static(body.as_bytes()))
            .tagging(format!("n={body}"))
            .send()
            .await
            .unwrap();
        ids.push(put.version_id().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1]);
    let deleted = c
        .delete_object()
        .bucket("versioned")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.delete_marker(), Some(true));
    assert_eq!(
        error_code(
            &c.get_object()
                .bucket("versioned")
                .key("k")
                .send()
                .await
                .unwrap_err()
        ),
        "NoSuchKey"
    );
    let old = c
        .get_object()
        .bucket("versioned")
        .key("k")
        .version_id(&ids[0])
        .send()
        .await
        .unwrap();
    assert_eq!(old.tag_count(), Some(1));
    assert_eq!(body_of(old).await, b"one");
    let listed = c
        .list_object_versions()
        .bucket("versioned")
        .send()
        .await
        .unwrap();
    let versions: Vec<&str> = listed
        .versions()
        .iter()
        .filter_map(|v| v.version_id())
        .collect();
    assert_eq!(
        versions,
        vec![ids[1].as_str(), ids[0].as_str()],
        "newest first"
    );
    assert_eq!(listed.delete_markers().len(), 1);
    assert_eq!(listed.delete_markers()[0].is_latest(), Some(true));
    c.put_object_tagging()
        .bucket("versioned")
        .key("k")
        .version_id(&ids[1])
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("team").value("storage").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let tags = c
        .get_object_tagging()
        .bucket("versioned")
        .key("k")
        .version_id(&ids[1])
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set()[0].value(), "storage");
    // Removing the delete marker brings "two" back.
    let marker = listed.delete_markers()[0].version_id().unwrap();
    c.delete_object()
        .bucket("versioned")
        .key("k")
        .version_id(marker)
        .send()
        .await
        .unwrap();
    let current = c
        .get_object()
        .bucket("versioned")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(current.version_id(), Some(ids[1].as_str()));
    assert_eq!(body_of(current).await, b"two");
    h.server.shutdown().await;
}

#[tokio::test]
async fn server_side_encryption_round_trips() {
    use aws_sdk_s3::types::ServerSideEncryption;
    use base64::Engine;
    let h = start_with(Backend::Memory, |config| {
        config.encryption.keys = vec![bleepstore_config::MasterKeyConfig {
            id: "k1".into(),
            value: Some(Secret::new("MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=")),
            file: None,
            env: None,
        }];
        config.encryption.require_tls_for_sse_c = false;
    })
    .await;
    let c = &h.client;
    c.create_bucket().bucket("enc").send().await.unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let put = c
        .put_object()
        .bucket("enc")
        .key("s3")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let ranged = c
        .get_object()
        .bucket("enc")
        .key("s3")
        .range("bytes=65530-131080")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ranged.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert_eq!(body_of(ranged).await, &data[65530..=131080]);

    let key = [9u8; 32];
    let b64 = base64::engine::general_purpose::STANDARD;
    let key_b64 = b64.encode(key);
    let md5_b64 = b64.encode(<md5::Md5 as md5::Digest>::digest(key));
    c.put_object()
        .bucket("enc")
        .key("c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&md5_b64)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert!(
        c.get_object().bucket("enc").key("c").send().await.is_err(),
        "needs the key"
    );
    let got = c
        .get_object()
        .bucket("enc")
        .key("c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&md5_b64)
        .send()
        .await
        .unwrap();
    assert_eq!(got.sse_customer_key_md5(), Some(md5_b64.as_str()));
    assert_eq!(body_of(got).await, data);
    h.server.shutdown().await;
}
