//! The chunked AEAD: plaintext is cut into `CHUNK_LEN` pieces, each sealed
//! with AES-256-GCM under the blob's data key, its 16-byte tag appended. The
//! nonce is the chunk's index, so chunks cannot be reordered, and a data key
//! is never used for two blobs, so a nonce never repeats under one key. A
//! range read opens only the chunks it overlaps; a changed byte fails that
//! chunk's tag and is never served.

use super::CryptoError;
use super::keys::DataKey;
use crate::storage::BodyStream;
use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

pub const CHUNK_LEN: usize = 64 * 1024;
pub const TAG_LEN: usize = 16;
const SEALED_CHUNK_LEN: usize = CHUNK_LEN + TAG_LEN;

/// Associated data of every data chunk: binds the format version.
const CHUNK_AAD: &[u8] = b"bleepstore/chunk/v1";

fn nonce(index: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[NONCE_LEN - 8..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// Size on disk of a blob holding `plain_len` bytes of plaintext.
pub fn sealed_len(plain_len: u64) -> u64 {
    plain_len + TAG_LEN as u64 * plain_len.div_ceil(CHUNK_LEN as u64)
}

/// Where the chunks covering plaintext bytes `offset..offset+len` of a blob
/// of `plain_len` bytes lie in its sealed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSpan {
    pub first_chunk: u64,
    /// Byte range of the sealed blob to read.
    pub sealed_offset: u64,
    pub sealed_len: u64,
    /// Plaintext bytes to drop from the first opened chunk.
    pub skip: usize,
}

pub fn chunk_span(offset: u64, len: u64, plain_len: u64) -> ChunkSpan {
    let chunk = CHUNK_LEN as u64;
    let first_chunk = offset / chunk;
    let last_chunk = (offset + len.max(1) - 1) / chunk;
    let sealed_offset = first_chunk * SEALED_CHUNK_LEN as u64;
    let sealed_end = ((last_chunk + 1) * SEALED_CHUNK_LEN as u64).min(sealed_len(plain_len));
    ChunkSpan {
        first_chunk,
        sealed_offset,
        sealed_len: sealed_end.saturating_sub(sealed_offset),
        skip: (offset - first_chunk * chunk) as usize,
    }
}

struct Sealer {
    input: BodyStream,
    key: LessSafeKey,
    buffer: BytesMut,
    index: u64,
    /// The tag of the chunk just yielded, yielded next.
    tag: Option<Bytes>,
    input_done: bool,
    failed: bool,
}

impl Sealer {
    /// Encrypts a chunk in place and keeps its tag for the next item, so no
    /// chunk is copied to make room for the tag.
    fn seal(&mut self, mut chunk: BytesMut) -> Result<Bytes, std::io::Error> {
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(self.index), Aad::from(CHUNK_AAD), &mut chunk)
            .map_err(|_| CryptoError::Random)?;
        self.index += 1;
        self.tag = Some(Bytes::copy_from_slice(tag.as_ref()));
        Ok(chunk.freeze())
    }
}

/// Encrypts a plaintext stream chunk by chunk as it flows; errors of the
/// input pass through unchanged (so body verification failures still reach
/// the writer) and end the stream.
pub fn seal_stream(input: BodyStream, key: &DataKey) -> BodyStream {
    let sealer = Sealer {
        input,
        key: key.cipher(),
        buffer: BytesMut::new(),
        index: 0,
        tag: None,
        input_done: false,
        failed: false,
    };
    futures::stream::unfold(sealer, |mut s| async move {
        if let Some(tag) = s.tag.take() {
            return Some((Ok(tag), s));
        }
        if s.failed {
            return None;
        }
        loop {
            if s.buffer.len() >= CHUNK_LEN {
                let chunk = s.buffer.split_to(CHUNK_LEN);
                let sealed = s.seal(chunk);
                s.failed = sealed.is_err();
                return Some((sealed, s));
            }
            if s.input_done {
                if s.buffer.is_empty() {
                    return None;
                }
                let chunk = s.buffer.split();
                let sealed = s.seal(chunk);
                s.failed = sealed.is_err();
                return Some((sealed, s));
            }
            match s.input.next().await {
                Some(Ok(bytes)) => s.buffer.extend_from_slice(&bytes),
                Some(Err(e)) => {
                    s.failed = true;
                    return Some((Err(e), s));
                }
                None => s.input_done = true,
            }
        }
    })
    .boxed()
}

struct Opener {
    input: BodyStream,
    key: LessSafeKey,
    buffer: BytesMut,
    index: u64,
    skip: usize,
    remaining: u64,
    input_done: bool,
    failed: bool,
}

impl Opener {
    fn open(&mut self, mut sealed: BytesMut) -> Result<Option<Bytes>, std::io::Error> {
        let index = self.index;
        self.index += 1;
        let plain_len = self
            .key
            .open_in_place(nonce(index), Aad::from(CHUNK_AAD), &mut sealed)
            .map_err(|_| CryptoError::Tampered(index))?
            .len();
        sealed.truncate(plain_len);
        let mut plain = sealed.freeze();
        let skip = std::mem::take(&mut self.skip).min(plain.len());
        plain = plain.slice(skip..);
        let keep = (plain.len() as u64).min(self.remaining) as usize;
        plain.truncate(keep);
        self.remaining -= keep as u64;
        Ok((!plain.is_empty()).then_some(plain))
    }
}

/// Decrypts the sealed chunks of `span` (read from the blob as `input`),
/// yielding exactly `len` plaintext bytes or an error: a chunk that fails
/// its tag, or a blob shorter than promised, never yields bytes.
pub fn open_range(input: BodyStream, key: &DataKey, span: ChunkSpan, len: u64) -> BodyStream {
    let opener = Opener {
        input,
        key: key.cipher(),
        buffer: BytesMut::new(),
        index: span.first_chunk,
        skip: span.skip,
        remaining: len,
        input_done: false,
        failed: false,
    };
    futures::stream::unfold(opener, |mut o| async move {
        loop {
            if o.failed || o.remaining == 0 {
                return None;
            }
            let whole = o.buffer.len() >= SEALED_CHUNK_LEN;
            if whole || (o.input_done && !o.buffer.is_empty()) {
                let take = o.buffer.len().min(SEALED_CHUNK_LEN);
                let sealed = o.buffer.split_to(take);
                match o.open(sealed) {
                    Ok(Some(plain)) => return Some((Ok(plain), o)),
                    Ok(None) => continue,
                    Err(e) => {
                        o.failed = true;
                        return Some((Err(e), o));
                    }
                }
            }
            if o.input_done {
                o.failed = true;
                return Some((Err(CryptoError::Truncated.into()), o));
            }
            match o.input.next().await {
                Some(Ok(bytes)) => o.buffer.extend_from_slice(&bytes),
                Some(Err(e)) => {
                    o.failed = true;
                    return Some((Err(e), o));
                }
                None => o.input_done = true,
            }
        }
    })
    .boxed()
}
