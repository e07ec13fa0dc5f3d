//! The flexible checksums S3 offers (`x-amz-checksum-*`), computed while a
//! body streams, and the MD5 that makes an ETag.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::Digest as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    #[serde(rename = "CRC32")]
    Crc32,
    #[serde(rename = "CRC32C")]
    Crc32c,
    #[serde(rename = "CRC64NVME")]
    Crc64Nvme,
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
}

pub const ALL_ALGORITHMS: [ChecksumAlgorithm; 5] = [
    ChecksumAlgorithm::Crc32,
    ChecksumAlgorithm::Crc32c,
    ChecksumAlgorithm::Crc64Nvme,
    ChecksumAlgorithm::Sha1,
    ChecksumAlgorithm::Sha256,
];

impl ChecksumAlgorithm {
    /// Parses the name as clients write it (`CRC32`, `crc32c`, …).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "CRC32" => ChecksumAlgorithm::Crc32,
            "CRC32C" => ChecksumAlgorithm::Crc32c,
            "CRC64NVME" => ChecksumAlgorithm::Crc64Nvme,
            "SHA1" => ChecksumAlgorithm::Sha1,
            "SHA256" => ChecksumAlgorithm::Sha256,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The header carrying this checksum: `x-amz-checksum-crc32`, …
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The element name in XML documents: `ChecksumCRC32`, …
    pub fn xml_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "ChecksumCRC32",
            ChecksumAlgorithm::Crc32c => "ChecksumCRC32C",
            ChecksumAlgorithm::Crc64Nvme => "ChecksumCRC64NVME",
            ChecksumAlgorithm::Sha1 => "ChecksumSHA1",
            ChecksumAlgorithm::Sha256 => "ChecksumSHA256",
        }
    }

    /// Length of the raw digest; a base64 value of another length is invalid.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// Whether parts' checksums can be combined into a whole-object checksum.
    pub fn is_crc(self) -> bool {
        matches!(
            self,
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc64Nvme
        )
    }

    fn crc_algorithm(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            ChecksumAlgorithm::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            ChecksumAlgorithm::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            ChecksumAlgorithm::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            _ => None,
        }
    }

    /// Checks that `value` is base64 of a digest of the right length.
    pub fn is_valid_value(self, value: &str) -> bool {
        BASE64
            .decode(value)
            .is_ok_and(|raw| raw.len() == self.digest_len())
    }
}

/// Whether a stored checksum covers the whole object or is a checksum of the
/// parts' checksums (multipart uploads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumType {
    #[serde(rename = "FULL_OBJECT")]
    FullObject,
    #[serde(rename = "COMPOSITE")]
    Composite,
}

impl ChecksumType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumType::FullObject => "FULL_OBJECT",
            ChecksumType::Composite => "COMPOSITE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "FULL_OBJECT" => Some(ChecksumType::FullObject),
            "COMPOSITE" => Some(ChecksumType::Composite),
            _ => None,
        }
    }
}

/// A checksum as stored with an object or part: base64 value, algorithm and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
    pub kind: ChecksumType,
}

impl StoredChecksum {
    /// The value as S3 shows it for a whole object: a COMPOSITE checksum
    /// carries `-<number of parts>`.
    pub fn header_value(&self, parts: usize) -> String {
        match self.kind {
            ChecksumType::Composite => format!("{}-{parts}", self.value),
            ChecksumType::FullObject => self.value.clone(),
        }
    }
}

/// An incremental hasher for one algorithm.
pub enum Hasher {
    Crc(crc_fast::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm.crc_algorithm() {
            Some(crc) => Hasher::Crc(crc_fast::Digest::new(crc)),
            None if algorithm == ChecksumAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            None => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc(d) => d.update(data),
            Hasher::Sha1(d) => d.update(data),
            Hasher::Sha256(d) => d.update(data),
        }
    }

    /// The raw digest (big-endian for CRCs, as S3 encodes them).
    pub fn finish_raw(self, algorithm: ChecksumAlgorithm) -> Vec<u8> {
        match self {
            Hasher::Crc(d) => {
                let value = d.finalize();
                if algorithm.digest_len() == 4 {
                    (value as u32).to_be_bytes().to_vec()
                } else {
                    value.to_be_bytes().to_vec()
                }
            }
            Hasher::Sha1(d) => d.finalize().to_vec(),
            Hasher::Sha256(d) => d.finalize().to_vec(),
        }
    }

    /// The digest in base64, as `x-amz-checksum-*` headers carry it.
    pub fn finish(self, algorithm: ChecksumAlgorithm) -> String {
        BASE64.encode(self.finish_raw(algorithm))
    }
}

/// Checksum of `data` in one call.
pub fn checksum_of(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
    let mut h = Hasher::new(algorithm);
    h.update(data);
    h.finish(algorithm)
}

/// Combines the CRC of `a` with the CRC of a following `b` of `len_b` bytes
/// into the CRC of `a ‖ b` (whole-object checksums of multipart uploads).
pub fn combine_crc(
    algorithm: ChecksumAlgorithm,
    a: &[u8],
    b: &[u8],
    len_b: u64,
) -> Option<Vec<u8>> {
    let crc = algorithm.crc_algorithm()?;
    let read = |raw: &[u8]| -> Option<u64> {
        match raw.len() {
            4 => Some(u32::from_be_bytes(raw.try_into().ok()?) as u64),
            8 => Some(u64::from_be_bytes(raw.try_into().ok()?)),
            _ => None,
        }
    };
    let combined = crc_fast::checksum_combine(crc, read(a)?, read(b)?, len_b);
    Some(if algorithm.digest_len() == 4 {
        (combined as u32).to_be_bytes().to_vec()
    } else {
        combined.to_be_bytes().to_vec()
    })
}

pub fn base64_encode(raw: &[u8]) -> String {
    BASE64.encode(raw)
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    BASE64.decode(s.trim()).ok()
}

/// The quoted hex MD5 that is a single-part object's ETag.
pub fn etag_of_md5(md5: &[u8]) -> String {
    format!("\"{}\"", hex::encode(md5))
}

pub fn md5_of(data: &[u8]) -> Vec<u8> {
    md5::Md5::digest(data).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_values() {
        // Values as S3 returns them for the body "hello world".
        let data = b"hello world";
        assert_eq!(checksum_of(ChecksumAlgorithm::Crc32, data), "DUoRhQ==");
        assert_eq!(checksum_of(ChecksumAlgorithm::Crc32c, data), "yZRlqg==");
        assert_eq!(
            checksum_of(ChecksumAlgorithm::Crc64Nvme, data),
            "jSnVw/bqjr4="
        );
        assert_eq!(
            checksum_of(ChecksumAlgorithm::Sha1, data),
            "Kq5sNclPz7QV2+lfQIuc6R7oRu0="
        );
        assert_eq!(
            checksum_of(ChecksumAlgorithm::Sha256, data),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
    }

    #[test]
    fn combining_crcs_equals_the_crc_of_the_concatenation() {
        for algorithm in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let whole = checksum_of(algorithm, b"hello world");
            let a = base64_decode(&checksum_of(algorithm, b"hello ")).unwrap();
            let b = base64_decode(&checksum_of(algorithm, b"world")).unwrap();
            let combined = combine_crc(algorithm, &a, &b, 5).unwrap();
            assert_eq!(base64_encode(&combined), whole, "{algorithm:?}");
        }
    }

    #[test]
    fn validates_value_lengths() {
        assert!(ChecksumAlgorithm::Crc32.is_valid_value("DUoRhQ=="));
        assert!(!ChecksumAlgorithm::Crc32.is_valid_value("jSnVw/bqjr4="));
        assert!(!ChecksumAlgorithm::Sha256.is_valid_value("not base64!"));
    }
}
