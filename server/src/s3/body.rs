//! The request body pipeline: raw bytes → (aws-chunked decoding with chunk
//! signatures) → length, MD5, checksum and payload-hash verification, all
//! while the bytes stream to the blob store. A body that fails any check ends
//! in an error, so the write that consumes it never commits.

use crate::auth::PayloadMode;
use crate::auth::chunked::{self, TrailerSlot};
use crate::checksum::{ALL_ALGORITHMS, ChecksumAlgorithm, Hasher};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use crate::storage::BodyStream;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use md5::Digest as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a fully read and verified body was.
#[derive(Debug, Clone)]
pub struct BodyDigest {
    pub len: u64,
    pub md5: Vec<u8>,
    /// The checksum the client asked for (or CRC64NVME by default), base64.
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    /// Whether the client supplied the checksum (so it is echoed back).
    pub checksum_from_client: bool,
}

pub type DigestSlot = Arc<Mutex<Option<BodyDigest>>>;

/// Wraps an incoming body so that a client that stops sending for
/// `idle` fails the request instead of holding it forever.
pub fn with_idle_timeout(body: BodyStream, idle: Duration) -> BodyStream {
    futures::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(item)) => Some((item, Some(body))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::other(S3Error::new(
                    S3ErrorCode::RequestTimeout,
                ))),
                None,
            )),
        }
    })
    .boxed()
}

/// Recovers the S3 error a body stream failed with, or describes an I/O
/// failure of the connection itself.
pub fn body_error(e: std::io::Error) -> S3Error {
    if e.get_ref().is_some_and(|inner| inner.is::<S3Error>()) {
        if let Some(inner) = e.into_inner()
            && let Ok(s3) = inner.downcast::<S3Error>()
        {
            return *s3;
        }
        return S3Error::new(S3ErrorCode::InternalError);
    }
    tracing::debug!(error = %e, "request body failed");
    S3Error::new(S3ErrorCode::IncompleteBody)
}

/// What the client declared about the body it is sending.
struct Declared {
    len: Option<u64>,
    content_md5: Option<Vec<u8>>,
    /// Algorithm and, when sent as a header, the expected value.
    checksum: Option<(ChecksumAlgorithm, Option<String>)>,
    /// The checksum arrives as a trailer (named by `x-amz-trailer`).
    trailer: Option<ChecksumAlgorithm>,
}

/// A checksum value that cannot be one (not base64, wrong length) can
/// never match the body: BadDigest, as s3-tests expect.
fn invalid_checksum_header(algorithm: ChecksumAlgorithm) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::BadDigest,
        format!("Value for {} header is invalid.", algorithm.header_name()),
    )
}

fn declared(req: &S3Request) -> S3Result<Declared> {
    // Framing follows x-amz-content-sha256 (STREAMING-*); a Content-Encoding
    // that mentions aws-chunked on a plain body is only a label.
    let chunked = req.auth.payload.is_chunked();
    let length_header = if chunked {
        "x-amz-decoded-content-length"
    } else {
        "content-length"
    };
    let len = match req.header(length_header) {
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            S3Error::invalid_argument(format!("{length_header} is not a valid length"))
        })?),
        None if chunked => return Err(S3Error::new(S3ErrorCode::MissingContentLength)),
        None => None,
    };
    let content_md5 = match req.header("content-md5") {
        None => None,
        Some(v) => Some(
            crate::checksum::base64_decode(v)
                .filter(|raw| raw.len() == 16)
                .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidDigest))?,
        ),
    };
    let mut checksum = None;
    for algorithm in ALL_ALGORITHMS {
        if let Some(value) = req.header(algorithm.header_name()) {
            if checksum.is_some() {
                return Err(S3Error::invalid_request(
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            if !algorithm.is_valid_value(value.trim()) {
                return Err(invalid_checksum_header(algorithm));
            }
            checksum = Some((algorithm, Some(value.trim().to_string())));
        }
    }
    let trailer = match req.header("x-amz-trailer") {
        None => None,
        Some(name) => {
            let name = name.trim().to_ascii_lowercase();
            let algorithm = ALL_ALGORITHMS
                .into_iter()
                .find(|a| a.header_name() == name)
                .ok_or_else(|| {
                    S3Error::invalid_request(format!(
                        "The value specified in the x-amz-trailer header is not supported: {name}"
                    ))
                })?;
            Some(algorithm)
        }
    };
    if let Some(algorithm) = trailer {
        if checksum.is_some() {
            return Err(S3Error::invalid_request(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            ));
        }
        checksum = Some((algorithm, None));
    }
    if checksum.is_none()
        && let Some(name) = req.header("x-amz-sdk-checksum-algorithm")
    {
        let algorithm = ChecksumAlgorithm::parse(name.trim()).ok_or_else(|| {
            S3Error::invalid_request("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
        })?;
        checksum = Some((algorithm, None));
    }
    Ok(Declared {
        len,
        content_md5,
        checksum,
        trailer,
    })
}

/// The declared length of the body, if any (after aws-chunked decoding).
pub fn declared_length(req: &S3Request) -> S3Result<Option<u64>> {
    Ok(declared(req)?.len)
}

/// Whether the request names a Content-MD5 or a checksum (as a header or a
/// trailer) its body will be checked against.
pub fn declares_integrity_check(req: &S3Request) -> S3Result<bool> {
    let d = declared(req)?;
    Ok(d.content_md5.is_some() || d.checksum.is_some() || d.trailer.is_some())
}

/// Checks a checksum an `UploadPart` or `PutObject` says it will send
/// without reading the body: used before work starts.
pub fn requested_checksum(req: &S3Request) -> S3Result<Option<ChecksumAlgorithm>> {
    Ok(declared(req)?.checksum.map(|(a, _)| a))
}

struct Verifier {
    input: BodyStream,
    declared_len: Option<u64>,
    max_len: u64,
    len: u64,
    md5: md5::Md5,
    content_md5: Option<Vec<u8>>,
    checksum: Option<(ChecksumAlgorithm, Option<String>, Hasher)>,
    checksum_from_client: bool,
    trailer: Option<(ChecksumAlgorithm, TrailerSlot)>,
    sha256: Option<(String, sha2::Sha256)>,
    slot: DigestSlot,
}

fn fail(e: S3Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl Verifier {
    fn into_stream(self) -> BodyStream {
        futures::stream::unfold(Some(self), |state| async move {
            let mut verifier = state?;
            match verifier.input.next().await {
                Some(Ok(data)) => match verifier.feed(&data) {
                    Ok(()) => Some((Ok(data), Some(verifier))),
                    Err(e) => Some((Err(e), None)),
                },
                Some(Err(e)) => Some((Err(e), None)),
                None => match verifier.finish() {
                    Ok(()) => None,
                    Err(e) => Some((Err(e), None)),
                },
            }
        })
        .boxed()
    }

    fn feed(&mut self, data: &Bytes) -> Result<(), std::io::Error> {
        self.len += data.len() as u64;
        if self.len > self.max_len {
            return Err(fail(
                S3Error::new(S3ErrorCode::EntityTooLarge)
                    .detail("MaxSizeAllowed", self.max_len.to_string()),
            ));
        }
        if let Some(declared) = self.declared_len
            && self.len > declared
        {
            return Err(fail(S3Error::invalid_request(
                "The request body is longer than its declared length.",
            )));
        }
        self.md5.update(data);
        if let Some((_, _, hasher)) = &mut self.checksum {
            hasher.update(data);
        }
        if let Some((_, hasher)) = &mut self.sha256 {
            sha2::Digest::update(hasher, data);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), std::io::Error> {
        if let Some(declared) = self.declared_len
            && self.len != declared
        {
            return Err(fail(S3Error::new(S3ErrorCode::IncompleteBody)));
        }
        if let Some((expected, hasher)) = self.sha256.take() {
            let actual = hex::encode(sha2::Digest::finalize(hasher));
            if actual != expected {
                return Err(fail(
                    S3Error::new(S3ErrorCode::XAmzContentSHA256Mismatch)
                        .detail("ClientComputedContentSHA256", expected)
                        .detail("S3ComputedContentSHA256", actual),
                ));
            }
        }
        let md5 = std::mem::take(&mut self.md5).finalize().to_vec();
        if let Some(expected) = &self.content_md5
            && *expected != md5
        {
            return Err(fail(S3Error::new(S3ErrorCode::BadDigest)));
        }
        let mut checksum = None;
        if let Some((algorithm, expected, hasher)) = self.checksum.take() {
            let actual = hasher.finish(algorithm);
            let expected = match (&self.trailer, expected) {
                (_, Some(value)) => Some(value),
                (Some((_, slot)), None) => {
                    let trailers = slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let value = trailers
                        .unwrap_or_default()
                        .into_iter()
                        .find(|(name, _)| name == algorithm.header_name())
                        .map(|(_, v)| v);
                    match value {
                        Some(v) if algorithm.is_valid_value(&v) => Some(v),
                        Some(_) => return Err(fail(invalid_checksum_header(algorithm))),
                        None => {
                            return Err(fail(S3Error::invalid_request(format!(
                                "The trailing {} checksum is missing.",
                                algorithm.header_name()
                            ))));
                        }
                    }
                }
                (None, None) => None,
            };
            if let Some(expected) = expected
                && expected != actual
            {
                return Err(fail(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        algorithm.as_str()
                    ),
                )));
            }
            checksum = Some((algorithm, actual));
        }
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(BodyDigest {
            len: self.len,
            md5,
            checksum,
            checksum_from_client: self.checksum_from_client,
        });
        Ok(())
    }
}

/// Builds the verified body stream of `req`; the digest lands in the slot
/// once the stream has ended successfully.
/// `default_checksum` is computed when the client names no checksum (S3
/// gives every new object a CRC64NVME; parts follow their upload).
pub fn verified_body(
    req: &mut S3Request,
    max_len: u64,
    default_checksum: Option<ChecksumAlgorithm>,
) -> S3Result<(BodyStream, DigestSlot)> {
    let declared = declared(req)?;
    if let Some(len) = declared.len
        && len > max_len
    {
        return Err(S3Error::new(S3ErrorCode::EntityTooLarge)
            .detail("ProposedSize", len.to_string())
            .detail("MaxSizeAllowed", max_len.to_string()));
    }
    let raw = req
        .take_body()
        .unwrap_or_else(|| futures::stream::empty().boxed());
    // Framing follows x-amz-content-sha256 (STREAMING-*); a Content-Encoding
    // that mentions aws-chunked on a plain body is only a label.
    let chunked = req.auth.payload.is_chunked();
    let (input, trailer_slot) = if chunked {
        let signed_trailer = matches!(
            req.auth.payload,
            PayloadMode::StreamingSigned { trailer: true }
        );
        let (stream, slot) = chunked::decode(raw, req.auth.chunk_signer.clone(), signed_trailer);
        (stream, Some(slot))
    } else {
        (raw, None)
    };
    let checksum_from_client =
        declared.checksum.as_ref().is_some_and(|(_, v)| v.is_some()) || declared.trailer.is_some();
    // Objects get a CRC64NVME checksum even when the client asks for none, as S3 does.
    let checksum = declared
        .checksum
        .or(default_checksum.map(|a| (a, None)))
        .map(|(algorithm, expected)| (algorithm, expected, Hasher::new(algorithm)));
    let sha256 = match &req.auth.payload {
        PayloadMode::Sha256(hash) => Some((hash.clone(), <sha2::Sha256 as sha2::Digest>::new())),
        _ => None,
    };
    let slot: DigestSlot = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        input,
        declared_len: declared.len,
        max_len,
        len: 0,
        md5: md5::Md5::new(),
        content_md5: declared.content_md5,
        checksum,
        checksum_from_client,
        trailer: declared.trailer.zip(trailer_slot),
        sha256,
        slot: slot.clone(),
    };
    Ok((verifier.into_stream(), slot))
}

/// Passes `input` through, computing length, MD5 and `algorithm`'s checksum
/// (UploadPartCopy reads a range of another object this way).
pub fn digest_only(
    input: BodyStream,
    algorithm: Option<ChecksumAlgorithm>,
) -> (BodyStream, DigestSlot) {
    let slot: DigestSlot = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        input,
        declared_len: None,
        max_len: u64::MAX,
        len: 0,
        md5: md5::Md5::new(),
        content_md5: None,
        checksum: algorithm.map(|a| (a, None, Hasher::new(a))),
        checksum_from_client: false,
        trailer: None,
        sha256: None,
        slot: slot.clone(),
    };
    (verifier.into_stream(), slot)
}

/// Reads a small request body (XML documents) into memory, verified like
/// any other body, refusing more than `limit` bytes.
pub async fn read_small(req: &mut S3Request, limit: u64) -> S3Result<Bytes> {
    let (mut stream, _) = verified_body(req, limit, None).map_err(|e| {
        if e.code == S3ErrorCode::EntityTooLarge {
            S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "The request document is too large.",
            )
        } else {
            e
        }
    })?;
    let mut buffer = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(body_error)?;
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// Drains what is left of a body so a kept-alive connection stays usable.
pub async fn discard(req: &mut S3Request) {
    if let Some(mut body) = req.take_body() {
        let mut budget: usize = 1 << 20;
        while let Some(Ok(chunk)) = body.next().await {
            budget = budget.saturating_sub(chunk.len());
            if budget == 0 {
                break;
            }
        }
    }
}
