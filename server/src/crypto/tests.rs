use super::cipher::{chunk_span, open_range, seal_stream};
use super::*;
use crate::storage::{BlobId, BlobStore, BodyStream, MemoryBlobStore};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// A body split into uneven pieces, as a network delivers it.
fn body(data: &[u8], piece: usize) -> BodyStream {
    let pieces: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(pieces).boxed()
}

async fn collect(stream: BodyStream) -> Result<Vec<u8>, std::io::Error> {
    let parts: Vec<Bytes> = stream.try_collect().await?;
    Ok(parts.concat())
}

async fn sealed(data: &[u8], key: &DataKey) -> Vec<u8> {
    collect(seal_stream(body(data, 10_007), key)).await.unwrap()
}

async fn open(
    sealed: &[u8],
    key: &DataKey,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, std::io::Error> {
    let span = chunk_span(offset, len, plain_len_of(sealed.len()));
    let from = span.sealed_offset as usize;
    let to = from + span.sealed_len as usize;
    collect(open_range(body(&sealed[from..to], 7_001), key, span, len)).await
}

/// Inverse of `sealed_len` for whole blobs.
fn plain_len_of(sealed: usize) -> u64 {
    let chunks = sealed.div_ceil(CHUNK_LEN + TAG_LEN);
    (sealed - chunks * TAG_LEN) as u64
}

#[tokio::test]
async fn round_trips_at_every_size_around_chunk_boundaries() {
    let key = DataKey::generate().unwrap();
    for len in [
        1,
        13,
        CHUNK_LEN - 1,
        CHUNK_LEN,
        CHUNK_LEN + 1,
        3 * CHUNK_LEN + 17,
    ] {
        let data = pattern(len);
        let s = sealed(&data, &key).await;
        assert_eq!(s.len() as u64, sealed_len(len as u64), "{len}");
        assert_ne!(
            &s[..len.min(64)],
            &data[..len.min(64)],
            "ciphertext is not plaintext"
        );
        assert_eq!(open(&s, &key, 0, len as u64).await.unwrap(), data, "{len}");
    }
    assert_eq!(sealed_len(0), 0);
}

#[tokio::test]
async fn ranges_decrypt_only_what_they_cover() {
    let key = DataKey::generate().unwrap();
    let len = 4 * CHUNK_LEN + 1000;
    let data = pattern(len);
    let s = sealed(&data, &key).await;
    let c = CHUNK_LEN as u64;
    for (offset, n) in [
        (0, 1),
        (c - 5, 10),
        (c, c),
        (c - 1, 2 * c + 2),
        (len as u64 - 1, 1),
        (3 * c + 10, 1990 - 1000 + c - 10),
        (17, len as u64 - 17),
    ] {
        let n = n.min(len as u64 - offset);
        let got = open(&s, &key, offset, n).await.unwrap();
        assert_eq!(
            got,
            &data[offset as usize..(offset + n) as usize],
            "{offset}+{n}"
        );
        let span = chunk_span(offset, n, len as u64);
        let chunks = span.sealed_len.div_ceil((CHUNK_LEN + TAG_LEN) as u64);
        assert!(
            chunks <= n.div_ceil(c) + 1,
            "reads no more chunks than it needs"
        );
    }
}

#[tokio::test]
async fn a_flipped_byte_is_detected_not_served() {
    let key = DataKey::generate().unwrap();
    let data = pattern(2 * CHUNK_LEN + 5);
    let mut s = sealed(&data, &key).await;
    s[CHUNK_LEN + TAG_LEN + 100] ^= 1;
    // The untouched first chunk still opens; the altered one fails.
    assert_eq!(open(&s, &key, 0, 10).await.unwrap(), &data[..10]);
    let err = open(&s, &key, 0, data.len() as u64).await.unwrap_err();
    assert!(err.to_string().contains("chunk 1"), "{err}");
    // Chunks cannot be swapped either: the index is the nonce.
    let mut swapped = sealed(&data, &key).await;
    let (a, b) = swapped.split_at_mut(CHUNK_LEN + TAG_LEN);
    a.swap_with_slice(&mut b[..CHUNK_LEN + TAG_LEN]);
    assert!(open(&swapped, &key, 0, 10).await.is_err());
}

#[tokio::test]
async fn truncation_and_the_wrong_data_key_fail() {
    let key = DataKey::generate().unwrap();
    let data = pattern(CHUNK_LEN + 50);
    let s = sealed(&data, &key).await;
    let other = DataKey::generate().unwrap();
    assert!(open(&s, &other, 0, 10).await.is_err());
    let span = chunk_span(0, data.len() as u64, data.len() as u64);
    let short = collect(open_range(
        body(&s[..CHUNK_LEN + TAG_LEN], 999),
        &key,
        span,
        data.len() as u64,
    ))
    .await;
    assert!(
        short.is_err(),
        "a blob missing its last chunk is an error, not a short body"
    );
}

#[tokio::test]
async fn input_errors_pass_through_sealing() {
    let key = DataKey::generate().unwrap();
    let failing: BodyStream = futures::stream::iter(vec![
        Ok(Bytes::from(pattern(CHUNK_LEN + 3))),
        Err(std::io::Error::other("client went away")),
    ])
    .boxed();
    let err = collect(seal_stream(failing, &key)).await.unwrap_err();
    assert!(err.to_string().contains("client went away"));
}

#[test]
fn data_keys_wrap_under_master_and_customer_keys() {
    let config = bleepstore_config::EncryptionConfig {
        keys: vec![bleepstore_config::MasterKeyConfig {
            id: "k1".into(),
            value: Some(bleepstore_config::Secret::new(
                "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
            )),
            file: None,
            env: None,
        }],
        ..Default::default()
    };
    let keyring = Keyring::from_config(&config).unwrap();
    assert_eq!(keyring.default_id(), Some("k1"));
    assert_eq!(
        keyring.resolve("arn:aws:kms:us-east-1:1234:key/k1"),
        Some("k1")
    );
    assert_eq!(keyring.resolve("alias/k1"), Some("k1"));
    assert_eq!(keyring.resolve("k2"), None);
    let key = DataKey::generate().unwrap();
    let seal = keyring.wrap(&key, "k1", 5).unwrap();
    assert_eq!(seal.kek, KekRef::Master("k1".into()));
    let opened = keyring.unwrap(&seal).unwrap();
    let resealed = Wrapping::Master("k1").wrap(&keyring, &opened, 5).unwrap();
    assert!(keyring.unwrap(&resealed).unwrap() == key);
    let digest = |w: Wrapping| w.etag_digest(&keyring, b"md5").unwrap();
    assert_eq!(
        digest(Wrapping::Master("k1")),
        digest(Wrapping::Master("k1")),
        "stable"
    );
    assert_ne!(
        digest(Wrapping::Master("k1")),
        *b"md5\0\0\0\0\0\0\0\0\0\0\0\0\0"
    );
    assert!(keyring.wrap(&key, "nope", 5).is_err());

    let customer = CustomerKey::new([7; KEY_LEN]);
    let other = CustomerKey::new([8; KEY_LEN]);
    let seal = Wrapping::Customer(&customer)
        .wrap(&keyring, &key, 5)
        .unwrap();
    let with = |c| KeySource {
        keyring: &keyring,
        customer: c,
    };
    assert!(with(Some(&customer)).unwrap(&seal).is_ok());
    assert!(matches!(
        with(Some(&other)).unwrap(&seal),
        Err(CryptoError::WrongKey)
    ));
    assert!(matches!(
        with(None).unwrap(&seal),
        Err(CryptoError::CustomerKeyRequired)
    ));
    // A wrapped key moved under another master id does not open.
    let mut forged = keyring.wrap(&key, "k1", 5).unwrap();
    forged.kek = KekRef::Customer;
    assert!(with(Some(&customer)).unwrap(&forged).is_err());

    assert_ne!(
        Wrapping::Customer(&customer)
            .etag_digest(&keyring, b"md5")
            .unwrap(),
        Wrapping::Customer(&other)
            .etag_digest(&keyring, b"md5")
            .unwrap()
    );
    let hash = customer.hash().unwrap();
    assert!(customer.matches(&hash));
    assert!(!other.matches(&hash));
    assert_ne!(customer.hash().unwrap(), hash, "salted");
    assert_eq!(customer.md5_base64().len(), 24);
}

#[tokio::test]
async fn sealed_blobs_store_only_ciphertext() {
    let store = MemoryBlobStore::new();
    let data = pattern(3 * CHUNK_LEN);
    let (stream, key) = seal_body(body(&data, 4096)).unwrap();
    let id = BlobId::random();
    let stored = store.put(&id, stream).await.unwrap();
    assert_eq!(stored, sealed_len(data.len() as u64));
    let raw = collect(store.get(&id, 0, stored).await.unwrap())
        .await
        .unwrap();
    assert!(
        raw.windows(64)
            .all(|w| !data.windows(64).take(8).any(|d| d == w))
    );
    let n = data.len() as u64;
    let got = collect(
        read_sealed(|o, l| store.get(&id, o, l), &key, n, 70_000, 100_000)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(got, &data[70_000..170_000]);
}
