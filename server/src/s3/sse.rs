//! Server-side encryption as S3 spells it: the `x-amz-server-side-encryption*`
//! request headers (SSE-S3, SSE-KMS, SSE-C and the copy-source SSE-C
//! headers), the bucket default, and the headers responses carry.

use crate::crypto::{CustomerKey, KEY_LEN, Keyring, Wrapping};
use crate::meta::model::{BucketRecord, ObjectEncryption, ObjectMeta, SseAlgorithm};
use crate::s3::error::{S3Error, S3ErrorCode, S3Result};
use crate::s3::request::S3Request;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use http::header::HeaderValue;

pub const SSE: &str = "x-amz-server-side-encryption";
const KMS_KEY_ID: &str = "x-amz-server-side-encryption-aws-kms-key-id";
const KMS_CONTEXT: &str = "x-amz-server-side-encryption-context";
const BUCKET_KEY: &str = "x-amz-server-side-encryption-bucket-key-enabled";

/// The three SSE-C headers, for the object itself or a copy source.
#[derive(Clone, Copy)]
pub struct CustomerHeaders {
    algorithm: &'static str,
    key: &'static str,
    md5: &'static str,
}

pub const CUSTOMER: CustomerHeaders = CustomerHeaders {
    algorithm: "x-amz-server-side-encryption-customer-algorithm",
    key: "x-amz-server-side-encryption-customer-key",
    md5: "x-amz-server-side-encryption-customer-key-md5",
};

pub const COPY_SOURCE_CUSTOMER: CustomerHeaders = CustomerHeaders {
    algorithm: "x-amz-copy-source-server-side-encryption-customer-algorithm",
    key: "x-amz-copy-source-server-side-encryption-customer-key",
    md5: "x-amz-copy-source-server-side-encryption-customer-key-md5",
};

/// A customer key a request brought, checked against its stated MD5.
#[derive(Clone)]
pub struct GivenCustomerKey {
    pub key: CustomerKey,
    pub md5: String,
}

impl CustomerHeaders {
    fn present(&self, req: &S3Request) -> bool {
        [self.algorithm, self.key, self.md5]
            .iter()
            .any(|h| req.headers.contains_key(*h))
    }

    /// The customer key in these headers, if any; all three must be there
    /// and agree, as S3 requires.
    pub fn parse(&self, req: &S3Request) -> S3Result<Option<GivenCustomerKey>> {
        if !self.present(req) {
            return Ok(None);
        }
        let algorithm = req.header(self.algorithm).ok_or_else(|| {
            S3Error::invalid_argument(
                "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
            )
            .detail("ArgumentName", self.algorithm)
        })?;
        if algorithm.trim() != "AES256" {
            return Err(S3Error::new(S3ErrorCode::InvalidEncryptionAlgorithmError)
                .detail("ArgumentName", self.algorithm)
                .detail("ArgumentValue", algorithm));
        }
        let encoded = req.header(self.key).ok_or_else(|| {
            S3Error::invalid_argument(
                "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.",
            )
            .detail("ArgumentName", self.key)
        })?;
        let raw: [u8; KEY_LEN] = BASE64
            .decode(encoded.trim())
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| {
                S3Error::invalid_argument("The secret key was invalid for the specified algorithm.")
                    .detail("ArgumentName", self.key)
            })?;
        let key = CustomerKey::new(raw);
        let stated = req.header(self.md5).ok_or_else(|| {
            S3Error::invalid_argument(
                "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.",
            )
            .detail("ArgumentName", self.md5)
        })?;
        let md5 = key.md5_base64();
        if stated.trim() != md5 {
            return Err(S3Error::invalid_argument(
                "The calculated MD5 hash of the key did not match the hash that was provided.",
            )
            .detail("ArgumentName", self.md5));
        }
        Ok(Some(GivenCustomerKey { key, md5 }))
    }
}

/// Over plain HTTP the customer key would cross the network in clear text.
fn require_secure(req: &S3Request, required: bool) -> S3Result<()> {
    let forwarded_tls = req
        .header("x-forwarded-proto")
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    if required && !req.secure && !forwarded_tls {
        return Err(S3Error::invalid_request(
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ));
    }
    Ok(())
}

/// The encryption a write asked for, before the bucket default applies.
enum Requested {
    None,
    S3,
    Kms {
        key_id: Option<String>,
        context: Option<String>,
        bucket_key: bool,
    },
    Customer(GivenCustomerKey),
}

fn bucket_key_header(req: &S3Request) -> S3Result<Option<bool>> {
    match req.header(BUCKET_KEY).map(str::trim) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(S3Error::invalid_argument(format!(
            "Invalid value for {BUCKET_KEY}: {v}"
        ))),
    }
}

/// An encryption context must be base64 of a JSON object of strings.
fn kms_context(req: &S3Request) -> S3Result<Option<String>> {
    let Some(value) = req.header(KMS_CONTEXT) else {
        return Ok(None);
    };
    let valid = BASE64
        .decode(value.trim())
        .ok()
        .and_then(|raw| serde_json::from_slice::<serde_json::Value>(&raw).ok())
        .is_some_and(|v| {
            v.as_object()
                .is_some_and(|o| o.values().all(|v| v.is_string()))
        });
    if !valid {
        return Err(S3Error::invalid_argument(
            "The encryption context must be a base64-encoded UTF-8 JSON object of string values.",
        )
        .detail("ArgumentName", KMS_CONTEXT));
    }
    Ok(Some(value.trim().to_string()))
}

fn requested(req: &S3Request, require_tls: bool) -> S3Result<Requested> {
    let customer = CUSTOMER.parse(req)?;
    let method = req.header(SSE).map(str::trim);
    let kms_only = [KMS_KEY_ID, KMS_CONTEXT, BUCKET_KEY]
        .into_iter()
        .find(|h| req.headers.contains_key(*h));
    if let Some(customer) = customer {
        if method.is_some() || kms_only.is_some() {
            return Err(S3Error::invalid_argument(
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
            )
            .detail("ArgumentName", SSE));
        }
        require_secure(req, require_tls)?;
        return Ok(Requested::Customer(customer));
    }
    match method {
        None => match kms_only {
            // A bucket-key flag alone just qualifies the bucket default.
            None | Some(BUCKET_KEY) => Ok(Requested::None),
            Some(header) => Err(S3Error::invalid_argument(format!(
                "Server Side Encryption with AWS KMS managed key requires HTTP header {SSE} : aws:kms"
            ))
            .detail("ArgumentName", header)),
        },
        Some("AES256") => {
            if let Some(header) = kms_only.filter(|h| *h != BUCKET_KEY) {
                return Err(S3Error::invalid_argument(format!(
                    "{header} is only valid with {SSE}: aws:kms"
                ))
                .detail("ArgumentName", header));
            }
            Ok(Requested::S3)
        }
        Some("aws:kms") => Ok(Requested::Kms {
            key_id: req
                .header(KMS_KEY_ID)
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty()),
            context: kms_context(req)?,
            bucket_key: bucket_key_header(req)?.unwrap_or(false),
        }),
        Some("aws:kms:dsse") => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Dual-layer server-side encryption (aws:kms:dsse) is not implemented by this server.",
        )
        .detail("Header", SSE)),
        Some(other) => Err(S3Error::invalid_argument("The encryption method specified is not supported")
            .detail("ArgumentName", SSE)
            .detail("ArgumentValue", other)),
    }
}

/// How a write's data is encrypted: what is recorded with the object, and
/// the key its data keys are wrapped with.
#[derive(Clone, Default)]
pub struct WriteEncryption {
    pub stored: Option<ObjectEncryption>,
    master_key: Option<String>,
    customer: Option<CustomerKey>,
}

impl WriteEncryption {
    pub fn none() -> Self {
        Self::default()
    }

    /// The key new data keys are wrapped with, or none for plaintext.
    pub fn wrapping(&self) -> Option<Wrapping<'_>> {
        if let Some(c) = &self.customer {
            return Some(Wrapping::Customer(c));
        }
        self.master_key.as_deref().map(Wrapping::Master)
    }

    /// SSE-C and SSE-KMS ETags are not the MD5 of the plaintext, as in S3.
    pub fn opaque_etag(&self) -> bool {
        opaque_etag(self.stored.as_ref())
    }

    /// The plan of a multipart upload's parts: the encryption its creation
    /// recorded, with the key the part request brought (SSE-C).
    pub fn for_part(
        keyring: &Keyring,
        stored: Option<&ObjectEncryption>,
        customer: Option<CustomerKey>,
    ) -> S3Result<Self> {
        let master_key = match stored {
            None | Some(ObjectEncryption::Customer { .. }) => None,
            Some(ObjectEncryption::S3) => Some(default_master_key(keyring)?),
            Some(ObjectEncryption::Kms { key_id, .. }) => Some(key_id.clone()),
        };
        Ok(WriteEncryption {
            stored: stored.cloned(),
            master_key,
            customer,
        })
    }
}

pub fn opaque_etag(encryption: Option<&ObjectEncryption>) -> bool {
    matches!(
        encryption,
        Some(ObjectEncryption::Kms { .. } | ObjectEncryption::Customer { .. })
    )
}

fn no_keyring() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NotImplemented,
        "Server-side encryption with server-managed keys (SSE-S3, SSE-KMS) needs a keyring: this server has no encryption.keys configured.",
    )
    .detail("Header", SSE)
}

fn default_master_key(keyring: &Keyring) -> S3Result<String> {
    keyring
        .default_id()
        .map(str::to_string)
        .ok_or_else(no_keyring)
}

/// Resolves a KMS key reference (id, ARN or alias) to a keyring id.
pub fn resolve_kms_key(keyring: &Keyring, reference: Option<&str>) -> S3Result<String> {
    if keyring.is_empty() {
        return Err(no_keyring());
    }
    match reference {
        None => default_master_key(keyring),
        Some(reference) => keyring
            .resolve(reference)
            .map(str::to_string)
            .ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::KmsNotFound,
                    format!("Invalid keyId {reference}"),
                )
            }),
    }
}

fn plan(keyring: &Keyring, requested: Requested) -> S3Result<WriteEncryption> {
    Ok(match requested {
        Requested::None => WriteEncryption::none(),
        Requested::S3 => WriteEncryption {
            stored: Some(ObjectEncryption::S3),
            master_key: Some(default_master_key(keyring)?),
            customer: None,
        },
        Requested::Kms {
            key_id,
            context,
            bucket_key,
        } => {
            let id = resolve_kms_key(keyring, key_id.as_deref())?;
            WriteEncryption {
                stored: Some(ObjectEncryption::Kms {
                    key_id: id.clone(),
                    context,
                    bucket_key,
                }),
                master_key: Some(id),
                customer: None,
            }
        }
        Requested::Customer(given) => WriteEncryption {
            stored: Some(ObjectEncryption::Customer {
                key_md5: given.md5.clone(),
                key_hash: given.key.hash().map_err(S3Error::internal)?,
            }),
            master_key: None,
            customer: Some(given.key),
        },
    })
}

/// The encryption of a new object: what the request asks for, else the
/// bucket's default encryption, else none.
pub fn plan_write(
    keyring: &Keyring,
    req: &S3Request,
    bucket: &BucketRecord,
    require_tls: bool,
) -> S3Result<WriteEncryption> {
    let requested = match requested(req, require_tls)? {
        Requested::None => match &bucket.settings.encryption {
            None => Requested::None,
            Some(default) => match default.algorithm {
                SseAlgorithm::Aes256 => Requested::S3,
                SseAlgorithm::Kms => Requested::Kms {
                    key_id: default.kms_key_id.clone(),
                    context: None,
                    bucket_key: bucket_key_header(req)?.unwrap_or(default.bucket_key),
                },
            },
        },
        explicit => explicit,
    };
    plan(keyring, requested)
}

/// Parts and the completion of an upload follow the encryption the upload
/// was created with. They may repeat its `x-amz-server-side-encryption*`
/// headers, but any that ask for something else are refused rather than
/// let a client believe they applied.
pub fn check_upload_headers(
    req: &S3Request,
    keyring: &Keyring,
    upload: &ObjectMeta,
) -> S3Result<()> {
    let method = req.header(SSE).map(str::trim);
    let key_id = req.header(KMS_KEY_ID).map(str::trim);
    if method.is_none() && key_id.is_none() {
        return Ok(());
    }
    let matches = match (&upload.encryption, method) {
        (Some(ObjectEncryption::S3), Some("AES256")) => key_id.is_none(),
        (Some(ObjectEncryption::Kms { key_id: stored, .. }), Some("aws:kms")) => {
            key_id.is_none_or(|k| keyring.resolve(k) == Some(stored.as_str()))
        }
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(S3Error::invalid_argument(
            "The encryption parameters do not match the ones the multipart upload was created with.",
        )
        .detail("ArgumentName", SSE))
    }
}

/// GET and HEAD take no `x-amz-server-side-encryption` headers (only the
/// SSE-C ones): S3 refuses them rather than let a client believe they
/// applied.
pub fn refuse_managed_headers(req: &S3Request) -> S3Result<()> {
    for header in [SSE, KMS_KEY_ID, KMS_CONTEXT] {
        if req.headers.contains_key(header) {
            return Err(S3Error::invalid_argument(format!(
                "The {header} header is not supported for this operation."
            ))
            .detail("ArgumentName", header));
        }
    }
    Ok(())
}

/// The customer key needed to read an object stored with `meta`, from
/// `headers`: none for other objects (which refuse SSE-C headers), and for
/// SSE-C objects the key that was used, else 400 (missing) or 403 (another
/// key).
pub fn read_key(
    req: &S3Request,
    headers: CustomerHeaders,
    meta: &ObjectMeta,
    require_tls: bool,
) -> S3Result<Option<CustomerKey>> {
    let given = headers.parse(req)?;
    match (&meta.encryption, given) {
        (Some(ObjectEncryption::Customer { key_hash, .. }), Some(given)) => {
            require_secure(req, require_tls)?;
            if given.key.matches(key_hash) {
                Ok(Some(given.key))
            } else {
                Err(S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    "The provided customer encryption key does not match the key the object was stored with.",
                ))
            }
        }
        (Some(ObjectEncryption::Customer { .. }), None) => Err(S3Error::invalid_request(
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        )),
        (_, Some(_)) => Err(S3Error::invalid_request(
            "The encryption parameters are not applicable to this object.",
        )),
        (_, None) => Ok(None),
    }
}

/// The customer key a request continuing a multipart upload brings when the
/// upload was created with SSE-C: parts must bring the same key (else 400,
/// as S3 answers); the completion may (`required` false: AWS does not
/// insist, and clients such as rclone send none), but not another one.
pub fn upload_key(
    req: &S3Request,
    upload: &ObjectMeta,
    require_tls: bool,
    required: bool,
) -> S3Result<Option<CustomerKey>> {
    let given = CUSTOMER.parse(req)?;
    match (&upload.encryption, given) {
        (Some(ObjectEncryption::Customer { key_hash, .. }), Some(given)) => {
            require_secure(req, require_tls)?;
            if given.key.matches(key_hash) {
                Ok(Some(given.key))
            } else {
                Err(S3Error::invalid_request(
                    "The provided encryption parameters did not match the ones used originally.",
                ))
            }
        }
        (Some(ObjectEncryption::Customer { .. }), None) if required => {
            Err(S3Error::invalid_request(
                "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.",
            ))
        }
        (_, Some(_)) => Err(S3Error::invalid_request(
            "The multipart upload initiate did not request encryption with a customer key.",
        )),
        (_, None) => Ok(None),
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// The SSE headers S3 returns for an object stored with `encryption`.
pub fn write_response_headers(headers: &mut HeaderMap, encryption: Option<&ObjectEncryption>) {
    match encryption {
        None => {}
        Some(ObjectEncryption::S3) => insert(headers, SSE, "AES256"),
        Some(ObjectEncryption::Kms {
            key_id,
            context,
            bucket_key,
        }) => {
            insert(headers, SSE, "aws:kms");
            insert(headers, KMS_KEY_ID, key_id);
            if let Some(context) = context {
                insert(headers, KMS_CONTEXT, context);
            }
            if *bucket_key {
                insert(headers, BUCKET_KEY, "true");
            }
        }
        Some(ObjectEncryption::Customer { key_md5, .. }) => {
            insert(headers, CUSTOMER.algorithm, "AES256");
            insert(headers, CUSTOMER.md5, key_md5);
        }
    }
}
