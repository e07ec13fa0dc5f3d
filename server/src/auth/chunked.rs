//! Decoding `aws-chunked` bodies:
//!
//! ```text
//! <hex size>[;chunk-signature=<sig>]\r\n<data>\r\n … 0[;chunk-signature=<sig>]\r\n
//! [<trailer>:<value>\r\n … [x-amz-trailer-signature:<sig>\r\n]]\r\n
//! ```
//!
//! Data is passed on as it arrives; each chunk's signature is checked when
//! the chunk ends, so a forged chunk fails the stream before the write that
//! consumes it can commit.

use super::ChunkSigner;
use super::sigv4;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::storage::BodyStream;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

/// Trailing headers (lowercase names) once the body has been read through.
pub type TrailerSlot = Arc<Mutex<Option<Vec<(String, String)>>>>;

/// Longest chunk header or trailer line accepted.
const MAX_LINE: usize = 4096;

enum State {
    Header,
    Data {
        remaining: u64,
        signature: Option<String>,
    },
    DataEnd {
        signature: Option<String>,
    },
    Trailers,
    Done,
}

struct Decoder {
    input: BodyStream,
    buf: BytesMut,
    eof: bool,
    state: State,
    signer: Option<ChunkSigner>,
    previous_signature: String,
    chunk_hash: Sha256,
    trailers: Vec<(String, String)>,
    trailer_signed: bool,
    slot: TrailerSlot,
}

fn fail(code: S3ErrorCode, message: &str) -> std::io::Error {
    std::io::Error::other(S3Error::with_message(code, message))
}

fn incomplete() -> std::io::Error {
    fail(
        S3ErrorCode::IncompleteBody,
        "The request body ended before the aws-chunked encoding was complete.",
    )
}

fn malformed(what: &str) -> std::io::Error {
    fail(
        S3ErrorCode::InvalidRequest,
        &format!("Malformed aws-chunked body: {what}"),
    )
}

fn signature_mismatch() -> std::io::Error {
    fail(
        S3ErrorCode::SignatureDoesNotMatch,
        "The chunk signature we calculated does not match the signature you provided.",
    )
}

impl Decoder {
    fn take_line(&mut self) -> Result<Option<String>, std::io::Error> {
        match self.buf.windows(2).position(|w| w == b"\r\n") {
            Some(pos) => {
                let line = self.buf.split_to(pos);
                let _ = self.buf.split_to(2);
                String::from_utf8(line.to_vec())
                    .map(Some)
                    .map_err(|_| malformed("a line is not UTF-8"))
            }
            None if self.buf.len() > MAX_LINE => Err(malformed("line too long")),
            None => Ok(None),
        }
    }

    fn verify_chunk(&mut self, signature: Option<String>) -> Result<(), std::io::Error> {
        let hash = hex::encode(std::mem::take(&mut self.chunk_hash).finalize());
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let provided = signature.ok_or_else(|| malformed("missing chunk-signature"))?;
        let sts = sigv4::chunk_string_to_sign(
            &signer.amz_date,
            &signer.scope,
            &self.previous_signature,
            &hash,
        );
        let expected = sigv4::sign(&signer.key, &sts);
        if !bool::from(expected.as_bytes().ct_eq(provided.as_bytes())) {
            return Err(signature_mismatch());
        }
        self.previous_signature = provided;
        Ok(())
    }

    fn verify_trailer(&mut self, provided: &str) -> Result<(), std::io::Error> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let canonical: String = self
            .trailers
            .iter()
            .map(|(k, v)| format!("{k}:{v}\n"))
            .collect();
        let sts = sigv4::trailer_string_to_sign(
            &signer.amz_date,
            &signer.scope,
            &self.previous_signature,
            &sigv4::sha256_hex(canonical.as_bytes()),
        );
        let expected = sigv4::sign(&signer.key, &sts);
        if !bool::from(expected.as_bytes().ct_eq(provided.as_bytes())) {
            return Err(signature_mismatch());
        }
        self.trailer_signed = true;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), std::io::Error> {
        self.state = State::Done;
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(std::mem::take(&mut self.trailers));
        Ok(())
    }

    /// Advances the parser; `Ok(Some(bytes))` is decoded data, `Ok(None)`
    /// means more input is needed (or the body is done when `State::Done`).
    fn step(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        loop {
            match &mut self.state {
                State::Header => {
                    let Some(line) = self.take_line()? else {
                        return if self.eof {
                            Err(incomplete())
                        } else {
                            Ok(None)
                        };
                    };
                    let mut fields = line.split(';');
                    let size_text = fields.next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size_text, 16)
                        .map_err(|_| malformed("bad chunk size"))?;
                    let signature = fields
                        .filter_map(|f| f.trim().strip_prefix("chunk-signature="))
                        .map(str::to_string)
                        .next();
                    if size == 0 {
                        self.verify_chunk(signature)?;
                        self.state = State::Trailers;
                    } else {
                        self.state = State::Data {
                            remaining: size,
                            signature,
                        };
                    }
                }
                State::Data {
                    remaining,
                    signature,
                } => {
                    if self.buf.is_empty() {
                        return if self.eof {
                            Err(incomplete())
                        } else {
                            Ok(None)
                        };
                    }
                    let n = (*remaining).min(self.buf.len() as u64) as usize;
                    let data = self.buf.split_to(n).freeze();
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        let signature = signature.take();
                        self.state = State::DataEnd { signature };
                    }
                    if self.signer.is_some() {
                        self.chunk_hash.update(&data);
                    }
                    return Ok(Some(data));
                }
                State::DataEnd { signature } => {
                    if self.buf.len() < 2 {
                        return if self.eof {
                            Err(incomplete())
                        } else {
                            Ok(None)
                        };
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(malformed("chunk data longer than its declared size"));
                    }
                    let _ = self.buf.split_to(2);
                    let signature = signature.take();
                    self.verify_chunk(signature)?;
                    self.state = State::Header;
                }
                State::Trailers => {
                    let line = match self.take_line()? {
                        Some(line) => line,
                        None if self.eof => {
                            // Some clients omit the final CRLF.
                            let rest = String::from_utf8_lossy(&self.buf).trim().to_string();
                            self.buf.clear();
                            rest
                        }
                        None => return Ok(None),
                    };
                    if line.trim().is_empty() {
                        self.finish()?;
                        return Ok(None);
                    }
                    let (name, value) = line
                        .split_once(':')
                        .ok_or_else(|| malformed("bad trailer line"))?;
                    let name = name.trim().to_ascii_lowercase();
                    let value = value.trim().to_string();
                    if name == "x-amz-trailer-signature" {
                        self.verify_trailer(&value)?;
                    } else {
                        self.trailers.push((name, value));
                    }
                }
                State::Done => return Ok(None),
            }
        }
    }
}

/// Decodes an `aws-chunked` body. With a `signer`, every chunk signature
/// (and the trailer signature, if `signed_trailer`) must verify.
pub fn decode(
    input: BodyStream,
    signer: Option<ChunkSigner>,
    signed_trailer: bool,
) -> (BodyStream, TrailerSlot) {
    let slot: TrailerSlot = Arc::new(Mutex::new(None));
    let previous_signature = signer
        .as_ref()
        .map(|s| s.seed_signature.clone())
        .unwrap_or_default();
    let decoder = Decoder {
        input,
        buf: BytesMut::new(),
        eof: false,
        state: State::Header,
        signer,
        previous_signature,
        chunk_hash: Sha256::new(),
        trailers: Vec::new(),
        trailer_signed: false,
        slot: slot.clone(),
    };
    let stream = futures::stream::unfold(Some(decoder), move |decoder| async move {
        let mut decoder = decoder?;
        loop {
            match decoder.step() {
                Ok(Some(data)) => return Some((Ok(data), Some(decoder))),
                Ok(None) if matches!(decoder.state, State::Done) => {
                    if signed_trailer && decoder.signer.is_some() && !decoder.trailer_signed {
                        return Some((Err(malformed("missing x-amz-trailer-signature")), None));
                    }
                    return None;
                }
                Ok(None) => {}
                Err(e) => return Some((Err(e), None)),
            }
            match decoder.input.next().await {
                Some(Ok(bytes)) => decoder.buf.extend_from_slice(&bytes),
                Some(Err(e)) => return Some((Err(e), None)),
                None => decoder.eof = true,
            }
        }
    });
    (stream.boxed(), slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn input(parts: Vec<&[u8]>) -> BodyStream {
        let owned: Vec<Result<Bytes, std::io::Error>> = parts
            .into_iter()
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        futures::stream::iter(owned).boxed()
    }

    async fn collect(stream: BodyStream) -> Result<Vec<u8>, std::io::Error> {
        let chunks: Vec<Bytes> = stream.try_collect().await?;
        Ok(chunks.concat())
    }

    fn s3_code(e: &std::io::Error) -> S3ErrorCode {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<S3Error>())
            .map(|s| s.code)
            .expect("an S3 error")
    }

    #[tokio::test]
    async fn unsigned_with_trailer_split_anywhere() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for split in 1..body.len() {
            let (stream, slot) = decode(input(vec![&body[..split], &body[split..]]), None, false);
            assert_eq!(
                collect(stream).await.unwrap(),
                b"hello world",
                "split {split}"
            );
            let trailers = slot.lock().unwrap().clone().unwrap();
            assert_eq!(
                trailers,
                vec![("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())]
            );
        }
    }

    /// AWS's documented example: 66560 bytes of 'a' in chunks of 65536 and 1024.
    #[tokio::test]
    async fn signed_chunks_from_the_aws_example() {
        let signer = ChunkSigner {
            key: sigv4::signing_key(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "20130524",
                "us-east-1",
                "s3",
            ),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed_signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
                .into(),
        };
        let mut body = Vec::new();
        body.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        body.extend(std::iter::repeat_n(b'a', 65536));
        body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        body.extend(std::iter::repeat_n(b'a', 1024));
        body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        let (stream, _) = decode(input(vec![&body]), Some(signer.clone()), false);
        assert_eq!(collect(stream).await.unwrap().len(), 66560);

        // One flipped byte of data fails the chunk's signature.
        let mut forged = body.clone();
        forged[200] = b'b';
        let (stream, _) = decode(input(vec![&forged]), Some(signer), false);
        let err = collect(stream).await.unwrap_err();
        assert_eq!(s3_code(&err), S3ErrorCode::SignatureDoesNotMatch);
    }

    #[tokio::test]
    async fn truncated_and_malformed_bodies_fail() {
        for body in [
            &b"5\r\nhel"[..],
            b"5\r\nhello\r\n",
            b"zz\r\nhello\r\n0\r\n\r\n",
            b"3\r\nhello\r\n0\r\n\r\n",
        ] {
            let (stream, _) = decode(input(vec![body]), None, false);
            assert!(collect(stream).await.is_err(), "{body:?}");
        }
        let long_line = vec![b'1'; MAX_LINE + 10];
        let (stream, _) = decode(input(vec![&long_line]), None, false);
        assert!(collect(stream).await.is_err());
    }

    #[tokio::test]
    async fn missing_final_crlf_is_tolerated() {
        let (stream, slot) = decode(
            input(vec![b"3\r\nabc\r\n0\r\nx-amz-checksum-sha256:abc"]),
            None,
            false,
        );
        assert_eq!(collect(stream).await.unwrap(), b"abc");
        assert_eq!(slot.lock().unwrap().as_ref().unwrap().len(), 1);
    }
}
