//! The master keys SSE-S3 and SSE-KMS data keys are wrapped with, loaded
//! from `encryption.keys`. Keys live only in this process's memory.

use super::CryptoError;
use super::keys::{DataKey, KEY_LEN, KekRef, Seal, wrap_key};
use bleepstore_config::{EncryptionConfig, decode_master_key};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

#[derive(Default)]
pub struct Keyring {
    keys: BTreeMap<String, Zeroizing<[u8; KEY_LEN]>>,
    default: Option<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .field("default", &self.default)
            .finish()
    }
}

impl Keyring {
    /// The keyring a validated configuration describes (loading has already
    /// resolved files and environment variables into values).
    pub fn from_config(config: &EncryptionConfig) -> Result<Self, String> {
        let mut keys = BTreeMap::new();
        for (i, key) in config.keys.iter().enumerate() {
            let material = key
                .value
                .as_ref()
                .and_then(|v| decode_master_key(v.expose()))
                .ok_or_else(|| format!("encryption.keys[{i}]: no usable key material"))?;
            keys.insert(key.id.clone(), Zeroizing::new(material));
        }
        Ok(Keyring {
            keys,
            default: config.effective_default_key().map(str::to_string),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn default_id(&self) -> Option<&str> {
        self.default.as_deref()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The keyring id a client's key reference names: the id itself, or an
    /// ARN / alias ending in it (`arn:aws:kms:…:key/<id>`, `alias/<id>`).
    pub fn resolve(&self, reference: &str) -> Option<&str> {
        let candidates = [
            Some(reference),
            reference.rsplit_once(":key/").map(|(_, id)| id),
            reference.rsplit_once("alias/").map(|(_, id)| id),
        ];
        candidates
            .into_iter()
            .flatten()
            .find_map(|id| self.keys.get_key_value(id).map(|(k, _)| k.as_str()))
    }

    fn material(&self, id: &str) -> Result<&[u8; KEY_LEN], CryptoError> {
        self.keys
            .get(id)
            .map(|k| &**k)
            .ok_or_else(|| CryptoError::UnknownMasterKey(id.to_string()))
    }

    /// Wraps `key` with the master key `id`.
    pub fn wrap(&self, key: &DataKey, id: &str, blob_len: u64) -> Result<Seal, CryptoError> {
        wrap_key(
            key,
            self.material(id)?,
            KekRef::Master(id.to_string()),
            blob_len,
        )
    }

    /// The opaque ETag digest of `plain_md5` under master key `id`.
    pub fn etag_digest(&self, id: &str, plain_md5: &[u8]) -> Result<[u8; 16], CryptoError> {
        Ok(super::keys::opaque_digest(self.material(id)?, plain_md5))
    }

    /// Opens a data key wrapped by one of these master keys.
    pub fn unwrap(&self, seal: &Seal) -> Result<DataKey, CryptoError> {
        match &seal.kek {
            KekRef::Master(id) => seal.unwrap_key(self.material(id)?),
            KekRef::Customer => Err(CryptoError::CustomerKeyRequired),
        }
    }
}
