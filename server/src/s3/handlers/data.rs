//! Object bytes on their way to and from the blob store: request bodies
//! become blobs (sealed under a fresh data key when the write is
//! encrypted), and an object's extents become one plaintext stream
//! (opening sealed blobs chunk by chunk). Reads pin the blobs they stream.

use crate::app::App;
use crate::checksum::etag_of_md5;
use crate::cluster::blobs::{CrcTap, Replicas};
use crate::crypto::{CryptoError, DataKey, KeySource, Seal, read_sealed, seal_body};
use crate::meta::command::InlineBlob;
use crate::meta::model::{Extent, ObjectRecord, Placement, StoredBlob};
use crate::meta::query;
use crate::s3::body::{BodyDigest, DigestSlot, body_error};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::sse::WriteEncryption;
use crate::storage::{BlobId, BodyStream, PinGuard, StorageError};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::sync::Arc;

/// A body written as a blob.
pub struct StoredBody {
    /// None for an empty body, which needs no blob.
    pub blob: Option<BlobId>,
    /// What the plaintext was (length, MD5, checksum).
    pub digest: BodyDigest,
    pub seal: Option<Seal>,
    pub etag: String,
    /// Where the blob is kept and what its stored bytes look like.
    pub place: Placement,
    /// The stored bytes of a blob small enough to travel in the command
    /// (`storage.inline_max`); no blob store holds them.
    pub inline: Option<Vec<u8>>,
}

impl StoredBody {
    /// The extents of an object (or part) made of this one blob.
    pub fn extents(&self) -> Vec<Extent> {
        self.blob
            .iter()
            .map(|blob| Extent {
                blob: blob.clone(),
                blob_offset: 0,
                length: self.digest.len,
                seal: self.seal.clone(),
                place: self.place.clone(),
            })
            .collect()
    }

    /// The bytes the command that records this body must carry.
    pub fn inline_blobs(&self) -> Vec<InlineBlob> {
        match (&self.blob, &self.inline) {
            (Some(blob), Some(data)) => vec![InlineBlob {
                blob: blob.clone(),
                data: data.clone(),
            }],
            _ => Vec::new(),
        }
    }
}

/// A body read up to a limit: whole if it fits, else the stream again.
enum Peeked {
    Small(Vec<u8>),
    Large(BodyStream),
}

/// Reads `stream` into memory if it ends within `limit` bytes.
async fn peek_small(mut stream: BodyStream, limit: u64) -> std::io::Result<Peeked> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        total += chunk.len() as u64;
        chunks.push(chunk);
        if total > limit {
            let head = futures::stream::iter(chunks.into_iter().map(Ok));
            return Ok(Peeked::Large(head.chain(stream).boxed()));
        }
    }
    Ok(Peeked::Small(chunks.concat()))
}

pub fn crypto_error(e: CryptoError) -> S3Error {
    match e {
        CryptoError::WrongKey => S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "The provided customer encryption key does not match the key the object was stored with.",
        ),
        CryptoError::CustomerKeyRequired => S3Error::invalid_request(
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        ),
        CryptoError::UnknownMasterKey(id) => {
            tracing::error!(key = %id, "an object's data key is wrapped by a master key missing from the keyring");
            S3Error::with_message(
                S3ErrorCode::InternalError,
                "The object's encryption key is not available on this server.",
            )
        }
        other => S3Error::internal(other),
    }
}

/// Writes a digesting stream (already verified as it flows) to a new blob,
/// encrypted as `encryption` says; an empty stream stores no blob.
pub async fn store_stream(
    app: &App,
    stream: BodyStream,
    slot: DigestSlot,
    encryption: &WriteEncryption,
    class: &str,
) -> S3Result<StoredBody> {
    // The storage class picks the backend; the id records which it was.
    let blob = BlobId::random_on(app.backends.backend_for_class(class));
    let (stream, data_key) = match encryption.wrapping() {
        None => (stream, None),
        Some(_) => {
            let (sealed, key) = seal_body(stream).map_err(crypto_error)?;
            (sealed, Some(key))
        }
    };
    let crc = CrcTap::default();
    let stream = crc.tap(stream);
    let limit = app.config.storage.inline_max.0;
    let peeked = if limit == 0 {
        Peeked::Large(stream)
    } else {
        peek_small(stream, limit).await.map_err(body_error)?
    };
    let (stored_len, inline, holders) = match peeked {
        Peeked::Small(data) => (data.len() as u64, Some(data), Vec::new()),
        Peeked::Large(stream) => match app.replicas.put(&blob, stream, || crc.crc32c()).await {
            Ok(written) => (written.len, None, written.holders),
            Err(StorageError::Body(e)) => return Err(body_error(e)),
            Err(StorageError::Unavailable(_, reason)) => {
                tracing::warn!(%blob, %reason, "not enough nodes took the blob");
                return Err(S3Error::with_message(
                    S3ErrorCode::ServiceUnavailable,
                    "Not enough storage nodes are reachable to store the object safely; please retry.",
                ));
            }
            Err(e) => return Err(storage_error(&e)),
        },
    };
    let digest = slot
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .ok_or_else(|| S3Error::internal("body ended without a digest"))?;
    let sealed = match (encryption.wrapping(), &data_key) {
        (Some(wrapping), Some(key)) if digest.len > 0 => Some(
            wrapping
                .wrap(&app.keyring, key, digest.len)
                .map_err(crypto_error),
        ),
        _ => None,
    };
    let seal = match sealed.transpose() {
        Ok(seal) => seal,
        Err(e) => {
            app.replicas.abandon(&blob, &holders).await;
            return Err(e);
        }
    };
    let etag = match etag_for(app, &digest.md5, encryption) {
        Ok(etag) => etag,
        Err(e) => {
            app.replicas.abandon(&blob, &holders).await;
            return Err(e);
        }
    };
    if digest.len == 0 {
        app.replicas.abandon(&blob, &holders).await;
        return Ok(StoredBody {
            blob: None,
            digest,
            seal: None,
            etag,
            place: Placement::default(),
            inline: None,
        });
    }
    let place = Placement {
        nodes: holders,
        inline: inline.is_some(),
        stored: crc.crc32c().map(|crc32c| StoredBlob {
            len: stored_len,
            crc32c,
        }),
    };
    Ok(StoredBody {
        blob: Some(blob),
        digest,
        seal,
        etag,
        place,
        inline,
    })
}

/// The ETag of written bytes: their MD5, or for SSE-C and SSE-KMS a keyed
/// digest of it that reveals nothing about the plaintext.
pub fn etag_for(app: &App, md5: &[u8], encryption: &WriteEncryption) -> S3Result<String> {
    match encryption.wrapping() {
        Some(wrapping) if encryption.opaque_etag() => Ok(etag_of_md5(
            &wrapping
                .etag_digest(&app.keyring, md5)
                .map_err(crypto_error)?,
        )),
        _ => Ok(etag_of_md5(md5)),
    }
}

/// An extent ready to read: its data key opened, if it is sealed.
pub struct OpenExtent {
    extent: Extent,
    key: Option<Arc<DataKey>>,
}

/// Opens the data keys of `extents` (each once) with `keys`, before any byte
/// is sent, so a missing or wrong key is an error response, not a cut body.
pub fn open_extents(extents: &[Extent], keys: &KeySource) -> S3Result<Vec<OpenExtent>> {
    extents
        .iter()
        .map(|extent| {
            let key = match &extent.seal {
                None => None,
                Some(seal) => Some(Arc::new(keys.unwrap(seal).map_err(crypto_error)?)),
            };
            Ok(OpenExtent {
                extent: extent.clone(),
                key,
            })
        })
        .collect()
}

/// Streams plaintext bytes `start..start+length` of an object made of
/// `extents`, opening each blob only when the previous one is done.
pub fn extents_stream(
    blobs: Arc<Replicas>,
    inline: InlineBytes,
    extents: Vec<OpenExtent>,
    start: u64,
    length: u64,
) -> BodyStream {
    let end = start + length;
    let mut pieces = Vec::new();
    let mut offset = 0u64;
    for open in extents {
        let extent_end = offset + open.extent.length;
        if extent_end > start && offset < end {
            let from = start.max(offset);
            let to = end.min(extent_end);
            let blob_offset = open.extent.blob_offset + (from - offset);
            pieces.push((open, blob_offset, to - from));
        }
        offset = extent_end;
        if offset >= end {
            break;
        }
    }
    futures::stream::iter(pieces)
        .then(move |(open, offset, length)| {
            let blobs = blobs.clone();
            let inline = inline.clone();
            async move {
                let blob = &open.extent.blob;
                let place = &open.extent.place;
                let get = |offset, length| async move {
                    if place.inline {
                        return inline_range(&inline, blob, offset, length);
                    }
                    blobs.get(blob, place, offset, length).await
                };
                let stream = match (&open.key, &open.extent.seal) {
                    (Some(key), Some(seal)) => {
                        read_sealed(get, key, seal.blob_len, offset, length).await
                    }
                    _ => get(offset, length).await,
                };
                stream.map_err(|e| {
                    tracing::error!(%blob, error = %e, "cannot read blob of a stored object");
                    std::io::Error::other(e)
                })
            }
        })
        .try_flatten()
        .boxed()
}

/// The S3 answer to a blob store failure: a busy or unreachable backend is
/// 503 SlowDown (clients retry with backoff), unreachable holders 503
/// ServiceUnavailable, anything else 500. The reason is logged, not sent.
pub fn storage_error(e: &StorageError) -> S3Error {
    match e {
        StorageError::Busy { backend, reason } => {
            tracing::warn!(backend, reason, "storage backend is busy or unreachable");
            S3Error::new(S3ErrorCode::SlowDown)
        }
        StorageError::Unavailable(..) => S3Error::new(S3ErrorCode::ServiceUnavailable),
        StorageError::Upstream { backend, reason } => {
            tracing::error!(backend, reason, "storage backend refused a request");
            S3Error::with_message(
                S3ErrorCode::InternalError,
                "The storage backend refused the request; see the server log.",
            )
        }
        other => {
            tracing::error!(error = %other, "blob store failure");
            S3Error::new(S3ErrorCode::InternalError)
        }
    }
}

/// Reads the first piece of `stream` before the response is committed:
/// a blob that is missing or fails authentication becomes a 500 instead of
/// a 200 with a cut body.
pub async fn start_stream(mut stream: BodyStream) -> S3Result<BodyStream> {
    match stream.next().await {
        None => Ok(futures::stream::empty().boxed()),
        Some(Ok(first)) => Ok(futures::stream::once(async { Ok(first) })
            .chain(stream)
            .boxed()),
        Some(Err(e)) => {
            tracing::error!(error = %e, "cannot read a stored object");
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<StorageError>())
            {
                Some(inner) => Err(storage_error(inner)),
                None => Err(S3Error::new(S3ErrorCode::InternalError)),
            }
        }
    }
}

/// The bytes of an object's inline blobs, read with the check that the
/// object is still current.
pub type InlineBytes = Arc<HashMap<BlobId, Bytes>>;

fn inline_range(
    inline: &InlineBytes,
    blob: &BlobId,
    offset: u64,
    length: u64,
) -> Result<BodyStream, StorageError> {
    let data = inline
        .get(blob)
        .ok_or_else(|| StorageError::NotFound(blob.clone()))?;
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let end = usize::try_from(offset.saturating_add(length))
        .unwrap_or(usize::MAX)
        .min(data.len());
    let piece = data.slice(start..end);
    Ok(futures::stream::once(async move { Ok(piece) }).boxed())
}

/// An object's blobs held for reading: the blob store's pinned against
/// deletion, the inline ones read into memory.
pub struct Pinned {
    _guard: Option<PinGuard>,
    inline: InlineBytes,
}

/// Inline blobs' bytes as a metadata read returned them.
pub type InlineRead = Vec<(BlobId, Vec<u8>)>;

impl Pinned {
    pub fn inline(&self) -> InlineBytes {
        self.inline.clone()
    }

    /// The object's blobs when every one is inline and `inline` (read in the
    /// same transaction as `object`) holds them all; `None` otherwise.
    pub fn read_with(object: &ObjectRecord, inline: InlineRead) -> Option<Pinned> {
        let all_inline = object.extents.iter().all(|e| e.place.inline);
        let complete = object
            .extents
            .iter()
            .all(|e| inline.iter().any(|(blob, _)| *blob == e.blob));
        (all_inline && complete).then(|| Pinned {
            _guard: None,
            inline: shared_inline(inline),
        })
    }
}

/// The blobs of `object` stored inline in the metadata.
pub fn inline_blobs(object: &ObjectRecord) -> Vec<BlobId> {
    object
        .extents
        .iter()
        .filter(|e| e.place.inline)
        .map(|e| e.blob.clone())
        .collect()
}

fn shared_inline(inline: InlineRead) -> InlineBytes {
    Arc::new(
        inline
            .into_iter()
            .map(|(blob, data)| (blob, Bytes::from(data)))
            .collect(),
    )
}

/// Pins the blobs of `object` for reading. `None` if that version was
/// removed since it was read: its blobs may already be gone.
pub async fn pin_if_current(app: &App, object: &ObjectRecord) -> S3Result<Option<Pinned>> {
    let blobs = object.extents.iter().map(|e| e.blob.clone()).collect();
    let guard = app.pins.pin(app.blobs.clone(), blobs);
    let id = object.id;
    let inline = inline_blobs(object);
    let current = app
        .meta
        .lookup(move |c| {
            if !query::version_exists(c, id)? {
                return Ok(None);
            }
            query::inline_data(c, &inline).map(Some)
        })
        .await
        .map_err(|e| super::meta_error(e, &object.bucket, Some(&object.key)))?;
    Ok(current.map(|inline| Pinned {
        _guard: Some(guard),
        inline: shared_inline(inline),
    }))
}
