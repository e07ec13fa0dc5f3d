//! Encrypted blobs over any `BlobStore`: sealing a body on its way in,
//! opening a plaintext range on its way out.

use super::CryptoError;
use super::cipher::{chunk_span, open_range, seal_stream};
use super::keyring::Keyring;
use super::keys::{CustomerKey, DataKey, KekRef, Seal, wrap_key};
use crate::storage::{BodyStream, StorageError};

/// The keys a request can open data keys with: the keyring, and the
/// customer's key when the request brought one.
pub struct KeySource<'a> {
    pub keyring: &'a Keyring,
    pub customer: Option<&'a CustomerKey>,
}

impl KeySource<'_> {
    pub fn unwrap(&self, seal: &Seal) -> Result<DataKey, CryptoError> {
        match &seal.kek {
            KekRef::Master(_) => self.keyring.unwrap(seal),
            KekRef::Customer => {
                let customer = self.customer.ok_or(CryptoError::CustomerKeyRequired)?;
                seal.unwrap_key(customer.bytes())
            }
        }
    }
}

/// How a new blob's data key is to be wrapped.
#[derive(Debug, Clone, Copy)]
pub enum Wrapping<'a> {
    Master(&'a str),
    Customer(&'a CustomerKey),
}

impl Wrapping<'_> {
    /// An ETag digest of `plain_md5` that reveals nothing without the key.
    pub fn etag_digest(
        &self,
        keyring: &Keyring,
        plain_md5: &[u8],
    ) -> Result<[u8; 16], CryptoError> {
        match self {
            Wrapping::Master(id) => keyring.etag_digest(id, plain_md5),
            Wrapping::Customer(customer) => {
                Ok(super::keys::opaque_digest(customer.bytes(), plain_md5))
            }
        }
    }

    pub fn wrap(
        &self,
        keyring: &Keyring,
        key: &DataKey,
        blob_len: u64,
    ) -> Result<Seal, CryptoError> {
        match self {
            Wrapping::Master(id) => keyring.wrap(key, id, blob_len),
            Wrapping::Customer(customer) => {
                wrap_key(key, customer.bytes(), KekRef::Customer, blob_len)
            }
        }
    }
}

/// A fresh data key and `body` encrypted under it.
pub fn seal_body(body: BodyStream) -> Result<(BodyStream, DataKey), CryptoError> {
    let key = DataKey::generate()?;
    Ok((seal_stream(body, &key), key))
}

/// Streams plaintext bytes `offset..offset+len` of a sealed blob whose
/// plaintext is `blob_len` long, reading only the chunks they lie in.
/// `get(offset, length)` reads stored (sealed) bytes.
pub async fn read_sealed<Get, Read>(
    get: Get,
    key: &DataKey,
    blob_len: u64,
    offset: u64,
    len: u64,
) -> Result<BodyStream, StorageError>
where
    Get: FnOnce(u64, u64) -> Read,
    Read: std::future::Future<Output = Result<BodyStream, StorageError>>,
{
    let span = chunk_span(offset, len, blob_len);
    let sealed = get(span.sealed_offset, span.sealed_len).await?;
    Ok(open_range(sealed, key, span, len))
}
