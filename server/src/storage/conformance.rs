//! The behaviour every `BlobStore` must show. Each backend's tests call
//! [`run`]; later backends (sqlite, cloud gateways) reuse it unchanged.

use super::{BlobId, BlobStore, BodyStream, StorageError};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

fn body(chunks: Vec<&'static [u8]>) -> BodyStream {
    futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed()
}

/// `data` as a body arriving in 100 KB pieces.
fn in_pieces(data: &[u8]) -> BodyStream {
    let pieces: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(100_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(pieces).boxed()
}

fn failing_body() -> BodyStream {
    futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial data")),
        Err(std::io::Error::other("client went away")),
    ])
    .boxed()
}

async fn read(store: &dyn BlobStore, id: &BlobId, offset: u64, length: u64) -> Vec<u8> {
    let chunks: Vec<Bytes> = store
        .get(id, offset, length)
        .await
        .expect("get")
        .try_collect()
        .await
        .expect("read");
    chunks.concat()
}

async fn list(store: &dyn BlobStore) -> Vec<super::BlobInfo> {
    store.list().try_collect().await.expect("list")
}

/// Runs every check against `store`; panics with a description on failure.
pub async fn run(store: &dyn BlobStore) {
    store
        .check()
        .await
        .expect("a working store passes its check");
    round_trip(store).await;
    ranges(store).await;
    large_blob(store).await;
    empty_blob(store).await;
    failed_write_leaves_nothing(store).await;
    delete_is_idempotent(store).await;
    list_sees_blobs(store).await;
    missing_blob_is_not_found(store).await;
}

async fn round_trip(store: &dyn BlobStore) {
    let id = BlobId::random();
    let n = store
        .put(&id, body(vec![b"hello ", b"world"]))
        .await
        .expect("put");
    assert_eq!(n, 11, "put returns the stored length");
    assert_eq!(read(store, &id, 0, 11).await, b"hello world");
    store.delete(&id).await.expect("delete");
}

async fn ranges(store: &dyn BlobStore) {
    let id = BlobId::random();
    store
        .put(&id, body(vec![b"0123456789"]))
        .await
        .expect("put");
    assert_eq!(read(store, &id, 3, 4).await, b"3456");
    assert_eq!(read(store, &id, 9, 1).await, b"9");
    assert_eq!(read(store, &id, 0, 0).await, b"");
    store.delete(&id).await.expect("delete");
}

async fn large_blob(store: &dyn BlobStore) {
    let id = BlobId::random();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let n = store.put(&id, in_pieces(&data)).await.expect("put large");
    assert_eq!(n, data.len() as u64);
    assert_eq!(read(store, &id, 0, n).await, data);
    assert_eq!(
        read(store, &id, 1_234_567, 1_000_000).await,
        &data[1_234_567..2_234_567]
    );
    store.delete(&id).await.expect("delete");
}

async fn empty_blob(store: &dyn BlobStore) {
    let id = BlobId::random();
    assert_eq!(store.put(&id, body(vec![])).await.expect("put"), 0);
    assert_eq!(read(store, &id, 0, 0).await, b"");
    store.delete(&id).await.expect("delete");
}

async fn failed_write_leaves_nothing(store: &dyn BlobStore) {
    let id = BlobId::random();
    match store.put(&id, failing_body()).await {
        Err(StorageError::Body(e)) => assert_eq!(e.to_string(), "client went away"),
        other => panic!("a failing body must fail the put with Body(_), got {other:?}"),
    }
    assert!(
        matches!(store.get(&id, 0, 1).await, Err(StorageError::NotFound(_))),
        "a failed put must leave no blob"
    );
    let listed = list(store).await;
    assert!(!listed.iter().any(|b| b.id == id));
    store.recover().await.expect("recover");
}

async fn delete_is_idempotent(store: &dyn BlobStore) {
    let id = BlobId::random();
    store.put(&id, body(vec![b"x"])).await.expect("put");
    store.delete(&id).await.expect("first delete");
    store.delete(&id).await.expect("second delete");
    assert!(matches!(
        store.get(&id, 0, 1).await,
        Err(StorageError::NotFound(_))
    ));
}

async fn list_sees_blobs(store: &dyn BlobStore) {
    let a = BlobId::random();
    let b = BlobId::random();
    store.put(&a, body(vec![b"a"])).await.expect("put a");
    store.put(&b, body(vec![b"b"])).await.expect("put b");
    let listed = list(store).await;
    assert!(listed.iter().any(|i| i.id == a));
    assert!(listed.iter().any(|i| i.id == b));
    store.delete(&a).await.expect("delete");
    store.delete(&b).await.expect("delete");
    let listed = list(store).await;
    assert!(!listed.iter().any(|i| i.id == a || i.id == b));
}

async fn missing_blob_is_not_found(store: &dyn BlobStore) {
    assert!(matches!(
        store.get(&BlobId::random(), 0, 1).await,
        Err(StorageError::NotFound(_))
    ));
}

/// A blob of `size` bytes sent in 100 KB pieces, read back whole and in
/// ranges that cross `boundary` (a cloud backend's part size): it goes up
/// as an upstream multipart upload.
pub async fn large_upload(store: &dyn BlobStore, size: usize, boundary: usize) {
    let id = BlobId::random();
    let data: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_mul(7) % 251) as u8)
        .collect();
    let n = store.put(&id, in_pieces(&data)).await.expect("put large");
    assert_eq!(n, size as u64);
    assert!(read(store, &id, 0, n).await == data, "whole read differs");
    let from = boundary - 1000;
    assert_eq!(
        read(store, &id, from as u64, 5000).await,
        &data[from..from + 5000],
        "a range across a part boundary differs"
    );
    store.delete(&id).await.expect("delete");
}

/// A body that fails after more than one part leaves no blob behind.
pub async fn failed_large_upload_leaves_nothing(store: &dyn BlobStore, part: usize) {
    let id = BlobId::random();
    let piece = Bytes::from(vec![7u8; part]);
    let body = futures::stream::iter(vec![
        Ok(piece.clone()),
        Ok(piece),
        Err(std::io::Error::other("client went away")),
    ])
    .boxed();
    assert!(matches!(
        store.put(&id, body).await,
        Err(StorageError::Body(_))
    ));
    assert!(matches!(
        store.get(&id, 0, 1).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(!list(store).await.iter().any(|b| b.id == id));
}
