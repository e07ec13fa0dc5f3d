//! Data keys and their wrapping. Each encrypted blob has a random data key;
//! what is stored is that key sealed (AES-256-GCM, random nonce) by a
//! key-encryption key, with the kind and id of that key bound in as
//! associated data.

use super::CryptoError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const KEY_LEN: usize = 32;

fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| CryptoError::Random)?;
    Ok(bytes)
}

fn gcm(key: &[u8; KEY_LEN]) -> LessSafeKey {
    // AES_256_GCM accepts every 32-byte key.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap_or_else(|_| unreachable!()))
}

/// A blob's own key. Never stored unwrapped; zeroed when dropped.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(DataKey(Zeroizing::new(random()?)))
    }

    pub(super) fn cipher(&self) -> LessSafeKey {
        gcm(&self.0)
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// An ETag value that must not reveal the plaintext's MD5 (SSE-C,
/// SSE-KMS): a keyed digest of that MD5 under a key derived from `kek`, so
/// the same bytes under the same key get the same ETag (a re-sent part
/// matches its first upload) and nobody without the key learns anything.
pub(super) fn opaque_digest(kek: &[u8; KEY_LEN], plain_md5: &[u8]) -> [u8; 16] {
    let etag_key = hmac_sha256(kek, &[b"bleepstore/etag-key/v1"]);
    let digest = hmac_sha256(&etag_key, &[plain_md5]);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

#[cfg(test)]
impl PartialEq for DataKey {
    fn eq(&self, other: &Self) -> bool {
        *self.0 == *other.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(***)")
    }
}

/// A customer's SSE-C key, held only for the request that brought it.
#[derive(Clone)]
pub struct CustomerKey(Zeroizing<[u8; KEY_LEN]>);

impl CustomerKey {
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        CustomerKey(Zeroizing::new(bytes))
    }

    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Base64 MD5 of the key, as `x-amz-server-side-encryption-customer-key-MD5`.
    pub fn md5_base64(&self) -> String {
        use md5::Digest;
        BASE64.encode(md5::Md5::digest(*self.0))
    }

    /// What is stored to recognise this key later: a keyed hash (HMAC-SHA256
    /// under a random salt), never the key.
    pub fn hash(&self) -> Result<KeyHash, CryptoError> {
        let salt: [u8; 16] = random()?;
        Ok(KeyHash {
            salt: BASE64.encode(salt),
            hmac: BASE64.encode(self.hmac(&salt)),
        })
    }

    fn hmac(&self, salt: &[u8]) -> Vec<u8> {
        hmac_sha256(salt, &[&*self.0]).to_vec()
    }

    /// Whether this is the key `hash` was made from (constant time).
    pub fn matches(&self, hash: &KeyHash) -> bool {
        use subtle::ConstantTimeEq;
        let (Ok(salt), Ok(expected)) = (BASE64.decode(&hash.salt), BASE64.decode(&hash.hmac))
        else {
            return false;
        };
        bool::from(self.hmac(&salt).ct_eq(&expected))
    }
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(***)")
    }
}

/// A salted HMAC of a customer key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHash {
    pub salt: String,
    pub hmac: String,
}

/// Which key-encryption key wrapped a data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KekRef {
    /// A master key of the keyring, by id.
    Master(String),
    /// The customer's SSE-C key, which the server never keeps.
    Customer,
}

impl KekRef {
    fn aad(&self) -> Vec<u8> {
        match self {
            KekRef::Master(id) => format!("bleepstore/dek/v1/master/{id}").into_bytes(),
            KekRef::Customer => b"bleepstore/dek/v1/customer".to_vec(),
        }
    }
}

/// What an extent stores about its encrypted blob: the wrapped data key and
/// the blob's plaintext length (to map ranges onto chunks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub kek: KekRef,
    /// Base64 nonce and sealed data key (key ‖ tag).
    pub nonce: String,
    pub wrapped: String,
    pub blob_len: u64,
}

/// Wraps `key` under `kek` (whose reference is `kek_ref`).
pub fn wrap_key(
    key: &DataKey,
    kek: &[u8; KEY_LEN],
    kek_ref: KekRef,
    blob_len: u64,
) -> Result<Seal, CryptoError> {
    let nonce: [u8; NONCE_LEN] = random()?;
    let mut sealed = key.0.to_vec();
    gcm(kek)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kek_ref.aad()),
            &mut sealed,
        )
        .map_err(|_| CryptoError::Random)?;
    Ok(Seal {
        kek: kek_ref,
        nonce: BASE64.encode(nonce),
        wrapped: BASE64.encode(sealed),
        blob_len,
    })
}

impl Seal {
    /// The data key, if `kek` is the key that wrapped it.
    pub fn unwrap_key(&self, kek: &[u8; KEY_LEN]) -> Result<DataKey, CryptoError> {
        let nonce: [u8; NONCE_LEN] = BASE64
            .decode(&self.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| CryptoError::Malformed("nonce".into()))?;
        let mut sealed = Zeroizing::new(
            BASE64
                .decode(&self.wrapped)
                .map_err(|_| CryptoError::Malformed("wrapped key".into()))?,
        );
        let plain = gcm(kek)
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.kek.aad()),
                sealed.as_mut_slice(),
            )
            .map_err(|_| CryptoError::WrongKey)?;
        let bytes: [u8; KEY_LEN] = (&*plain)
            .try_into()
            .map_err(|_| CryptoError::Malformed("data key length".into()))?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }
}
