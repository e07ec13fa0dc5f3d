//! What the S3 listener and the node-to-node client share about TLS: the
//! crypto provider and reading PEM certificate files.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("{field}: cannot read certificates from {}: {reason}", path.display())]
    Read {
        field: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{field}: {} holds no PEM certificate", path.display())]
    Empty { field: &'static str, path: PathBuf },
}

/// An explicit provider: other crates in the tree may enable a second one.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificates in a PEM file (the configuration `field` naming it, for
/// errors); at least one.
pub fn read_certificates(
    field: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsFileError::Read {
            field,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TlsFileError::Empty {
            field,
            path: path.to_path_buf(),
        });
    }
    Ok(certificates)
}
