//! Encryption at rest (DESIGN.md §4): every encrypted blob is AES-256-GCM in
//! fixed-size chunks under a data key of its own, and the data key is stored
//! only wrapped by a key-encryption key — a master key from the keyring
//! (SSE-S3, SSE-KMS) or the customer's key (SSE-C).
//!
//! This layer sits between the handlers and the `BlobStore`: backends only
//! ever see ciphertext of encrypted objects. It knows nothing about S3.

mod cipher;
mod keyring;
mod keys;
mod sealed;

pub use cipher::{CHUNK_LEN, TAG_LEN, sealed_len};
pub use keyring::Keyring;
pub use keys::{CustomerKey, DataKey, KEY_LEN, KekRef, KeyHash, Seal};
pub use sealed::{KeySource, Wrapping, read_sealed, seal_body};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key offered does not open the data key: the wrong customer key,
    /// or a tampered wrapped key.
    #[error("the key does not match the one the data was encrypted with")]
    WrongKey,
    #[error("master key {0:?} is not in this server's keyring")]
    UnknownMasterKey(String),
    #[error("the object was encrypted with a customer key, which the request did not give")]
    CustomerKeyRequired,
    /// A chunk failed authentication: the stored bytes were changed.
    #[error("encrypted data failed authentication (chunk {0}): it was altered or truncated")]
    Tampered(u64),
    #[error("encrypted data is truncated")]
    Truncated,
    #[error("a stored key is malformed: {0}")]
    Malformed(String),
    #[error("the system random number generator failed")]
    Random,
}

impl From<CryptoError> for std::io::Error {
    fn from(e: CryptoError) -> Self {
        std::io::Error::other(e)
    }
}

#[cfg(test)]
mod tests;
