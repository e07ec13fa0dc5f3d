//! The BlobStore conformance suite against real emulators of the cloud
//! backends: moto (S3), Azurite (Azure Blob) and fake-gcs-server (GCS).
//! `scripts/test.sh` starts them (tests/backends/emulators.py) and exports
//! their endpoints; without them these tests say so and pass, unless
//! BLEEPSTORE_REQUIRE_EMULATORS is set (as the test script does).

use bleepstore::storage::{
    AwsBlobStore, BlobStore, ObjectStoreBlobStore, StorageError, conformance,
};
use bleepstore_config::{
    AwsBackendConfig, AzureBackendConfig, ByteSize, GcsBackendConfig, Secret, SecretSource,
};

const PART: usize = 5 * 1024 * 1024;

fn endpoint(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) => Some(value),
        Err(_) if std::env::var_os("BLEEPSTORE_REQUIRE_EMULATORS").is_some() => {
            panic!("{var} is not set, and BLEEPSTORE_REQUIRE_EMULATORS says the emulators run")
        }
        Err(_) => {
            eprintln!("skipped: {var} is not set (scripts/test.sh starts the emulators)");
            None
        }
    }
}

fn bucket() -> String {
    std::env::var("BLEEPSTORE_TEST_BUCKET").unwrap_or_else(|_| "bleepstore-blobs".into())
}

fn secret(value: &str) -> Option<SecretSource> {
    Some(SecretSource {
        value: Some(Secret::new(value)),
        ..Default::default()
    })
}

/// A prefix of its own per test, so tests sharing an emulator never meet.
fn prefix() -> String {
    format!("test-{}/", uuid::Uuid::new_v4().simple())
}

fn aws(endpoint: String) -> AwsBackendConfig {
    AwsBackendConfig {
        bucket: bucket(),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint),
        prefix: prefix(),
        force_path_style: true,
        access_key_id: secret("testing"),
        secret_access_key: secret("testing"),
        part_size: ByteSize(PART as u64),
        max_attempts: 2,
        ..Default::default()
    }
}

fn azure(endpoint: String) -> AzureBackendConfig {
    AzureBackendConfig {
        container: bucket(),
        account: Some("devstoreaccount1".into()),
        access_key: secret(
            &std::env::var("BLEEPSTORE_TEST_AZURE_KEY").unwrap_or_else(|_| {
                "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==".into()
            }),
        ),
        endpoint: Some(endpoint),
        prefix: prefix(),
        part_size: ByteSize(PART as u64),
        max_attempts: 2,
        ..Default::default()
    }
}

fn gcs(endpoint: String) -> GcsBackendConfig {
    GcsBackendConfig {
        bucket: bucket(),
        endpoint: Some(endpoint),
        prefix: prefix(),
        part_size: ByteSize(PART as u64),
        max_attempts: 2,
        ..Default::default()
    }
}

async fn full_suite(store: &dyn BlobStore) {
    store
        .check()
        .await
        .expect("the emulator's bucket is usable");
    conformance::run(store).await;
    conformance::large_upload(store, 2 * PART + 123_457, PART).await;
    conformance::failed_large_upload_leaves_nothing(store, PART).await;
    assert!(store.is_shared(), "a cloud bucket is shared by every node");
}

#[tokio::test]
async fn aws_backend_passes_the_conformance_suite() {
    let Some(endpoint) = endpoint("BLEEPSTORE_TEST_S3_ENDPOINT") else {
        return;
    };
    full_suite(&AwsBlobStore::connect("test", &aws(endpoint)).await).await;
}

#[tokio::test]
async fn azure_backend_passes_the_conformance_suite() {
    let Some(endpoint) = endpoint("BLEEPSTORE_TEST_AZURE_ENDPOINT") else {
        return;
    };
    full_suite(&ObjectStoreBlobStore::azure("test", &azure(endpoint)).unwrap()).await;
}

#[tokio::test]
async fn gcs_backend_passes_the_conformance_suite() {
    let Some(endpoint) = endpoint("BLEEPSTORE_TEST_GCS_ENDPOINT") else {
        return;
    };
    full_suite(&ObjectStoreBlobStore::gcs("test", &gcs(endpoint)).unwrap()).await;
}

fn refused(result: Result<(), StorageError>) -> String {
    match result {
        Err(StorageError::Upstream { backend, reason }) => {
            assert_eq!(backend, "test");
            reason
        }
        other => panic!("expected the backend to refuse, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_bucket_fails_the_check() {
    if let Some(endpoint) = endpoint("BLEEPSTORE_TEST_S3_ENDPOINT") {
        let mut c = aws(endpoint);
        c.bucket = "no-such-bucket-here".into();
        let reason = refused(AwsBlobStore::connect("test", &c).await.check().await);
        assert!(reason.contains("does not exist"), "{reason}");
    }
    if let Some(endpoint) = endpoint("BLEEPSTORE_TEST_AZURE_ENDPOINT") {
        let mut c = azure(endpoint);
        c.container = "no-such-container-here".into();
        refused(
            ObjectStoreBlobStore::azure("test", &c)
                .unwrap()
                .check()
                .await,
        );
    }
}

#[tokio::test]
async fn wrong_credentials_fail_the_check() {
    let Some(endpoint) = endpoint("BLEEPSTORE_TEST_AZURE_ENDPOINT") else {
        return;
    };
    let mut c = azure(endpoint);
    c.access_key = secret("d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkgd3Jvbmcga2V5IQ==");
    let store = ObjectStoreBlobStore::azure("test", &c).unwrap();
    let reason = refused(store.check().await);
    assert!(reason.contains("credentials"), "{reason}");
}

#[tokio::test]
async fn an_unreachable_upstream_is_busy_not_refused() {
    // Nothing listens on this port: a connection failure is worth a retry.
    let dead = format!("http://127.0.0.1:{}", bleepstore_testkit::free_port());
    let store = AwsBlobStore::connect("test", &aws(dead.clone())).await;
    assert!(matches!(
        store.check().await,
        Err(StorageError::Busy { .. })
    ));
    let store = ObjectStoreBlobStore::gcs("test", &gcs(dead)).unwrap();
    assert!(matches!(
        store.check().await,
        Err(StorageError::Busy { .. })
    ));
}
